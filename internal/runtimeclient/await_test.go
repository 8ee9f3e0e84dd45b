package runtimeclient

import (
	"context"
	"errors"
	"testing"

	"github.com/sluicehq/sluice/internal/domain"
)

func TestAwaitStatus(t *testing.T) {
	reads := 0
	paused := func(n int) func(context.Context) (StatusReport, error) {
		return func(context.Context) (StatusReport, error) {
			reads++
			if reads >= n {
				return StatusReport{RuntimeStatus: domain.RuntimePaused}, nil
			}
			return StatusReport{RuntimeStatus: domain.RuntimeRunning}, nil
		}
	}
	// Reached on the third read: three reads, the wanted report.
	rep, err := AwaitStatus(context.Background(), paused(3), domain.RuntimePaused)
	if err != nil || rep.RuntimeStatus != domain.RuntimePaused || reads != 3 {
		t.Fatalf("%+v %v after %d reads", rep, err, reads)
	}
	// Never reached: AwaitAttempts reads, the last report.
	reads = 0
	rep, err = AwaitStatus(context.Background(), paused(1000), domain.RuntimePaused)
	if err != nil || rep.RuntimeStatus != domain.RuntimeRunning || reads != AwaitAttempts {
		t.Fatalf("%+v %v after %d reads", rep, err, reads)
	}
	// A read's error ends it at once.
	boom := errors.New("boom")
	reads = 0
	_, err = AwaitStatus(context.Background(), func(context.Context) (StatusReport, error) { reads++; return StatusReport{}, boom }, domain.RuntimePaused)
	if !errors.Is(err, boom) || reads != 1 {
		t.Fatalf("%v after %d reads", err, reads)
	}
	// A cancelled context ends the waiting.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	reads = 0
	if _, err := AwaitStatus(ctx, paused(1000), domain.RuntimePaused); !errors.Is(err, context.Canceled) || reads != 1 {
		t.Fatalf("%v after %d reads", err, reads)
	}
}
