package reliability

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/sluicehq/sluice/internal/domain"
)

// The model must tell linearizable histories from others; these are small
// hand-made histories of one pipeline (times in µs).
func TestLinearizabilityModel(t *testing.T) {
	t.Parallel()
	created, err := domain.Create(domain.Definition{Name: "lin", RuntimeConfig: []byte(`{}`)}, "00000000-0000-4000-8000-000000000009", time.Unix(0, 0).UTC())
	if err != nil {
		t.Fatal(err)
	}
	initial := modelOf(created)
	m := newModel(created)
	// after is what the domain rule of action writes on s (the writes of
	// the histories below; the Illegal ones are wrong in how they are
	// ordered or repeated, not in what one write does).
	after := func(action string, s mstate) mstate {
		t.Helper()
		out, err := decide(action, m.record(s), time.Unix(0, 0).UTC())
		if err != nil || !out.Write {
			t.Fatalf("setup: %s on %s: write %v, %v", action, s, out.Write, err)
		}
		return modelOf(out.Pipeline)
	}
	started := after(actStartRunning, initial)
	cancelled := after(actForceStop, started)
	running := mstate{Gen: started.Gen, RS: domain.ResourcesProvisioned, RD: domain.ResourcesDesiredProvisioned, RT: domain.RuntimeRunning,
		RTD: domain.RuntimeDesiredRunning, Init: domain.InitialRunning, Storage: domain.StorageInUse}
	paused := after(actPause, running)
	resumed := after(actResume, paused)
	stopping := after(actForceStop, running)
	suspending := after(actStop, running)
	op := func(client int, action string, call, ret int64, res linResult) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: linOp{Action: action, RequestID: action}, Call: call, Output: res, Return: ret}
	}
	write := func(s mstate) linResult { return linResult{Kind: resWrite, After: s} }
	read := func(s mstate) linResult { return linResult{Kind: resRead, After: s} }
	skipped := started
	skipped.Gen++
	for _, c := range []struct {
		name string
		ops  []porcupine.Operation
		want porcupine.CheckResult
	}{
		{"start, a concurrent idempotent repeat, a forced stop of the pending start, a read", []porcupine.Operation{
			op(0, actStartRunning, 0, 10, write(started)),
			op(1, actStartRunning, 5, 15, linResult{Kind: resNoOp}),
			op(0, actForceStop, 20, 30, write(cancelled)),
			op(1, actGet, 40, 50, read(cancelled)),
		}, porcupine.Ok},
		{"the workflow moves the record between calls: a read of Running, a pause, a resume", []porcupine.Operation{
			op(0, actStartRunning, 0, 10, write(started)),
			op(1, actGet, 20, 30, read(running)),
			op(1, actPause, 40, 50, write(paused)),
			op(0, actResume, 45, 55, write(resumed)),
		}, porcupine.Ok},
		{"a refusal the record justifies: start while a stop is in progress", []porcupine.Operation{
			op(0, actStartRunning, 0, 10, write(started)),
			op(1, actGet, 20, 30, read(running)),
			op(1, actForceStop, 40, 50, write(stopping)),
			op(0, actStartRunning, 60, 70, linResult{Kind: resRefused, Code: string(domain.CodeIllegalPipelineAction)}),
		}, porcupine.Ok},

		{"lost update: two concurrent starts both acknowledged as writes of the first generation", []porcupine.Operation{
			op(0, actStartRunning, 0, 10, write(started)),
			op(1, actStartRunning, 0, 10, write(started)),
		}, porcupine.Illegal},
		{"lost update: a graceful and a forced stop both decided on the running generation", []porcupine.Operation{
			op(0, actStartRunning, 0, 10, write(started)),
			op(1, actGet, 20, 30, read(running)),
			op(1, actStop, 40, 50, write(suspending)),
			op(0, actForceStop, 40, 50, write(stopping)),
		}, porcupine.Illegal},
		{"stale read: a GET sent after a start was acknowledged sees the created record", []porcupine.Operation{
			op(0, actStartRunning, 0, 10, write(started)),
			op(1, actGet, 20, 30, read(initial)),
		}, porcupine.Illegal},
		{"an acknowledged no-op the record never allowed: a start repeat before any start", []porcupine.Operation{
			op(0, actStartRunning, 0, 10, linResult{Kind: resNoOp}),
		}, porcupine.Illegal},
		{"a refusal the record never justified: IllegalPipelineAction for a first start", []porcupine.Operation{
			op(0, actStartRunning, 0, 10, linResult{Kind: resRefused, Code: string(domain.CodeIllegalPipelineAction)}),
		}, porcupine.Illegal},
		{"a write that skips a generation", []porcupine.Operation{
			op(0, actStartRunning, 0, 10, write(skipped)),
		}, porcupine.Illegal},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, _ := checkLinearizable(created, c.ops, time.Minute)
			if got != c.want {
				t.Fatalf("porcupine says %s, want %s", got, c.want)
			}
		})
	}
}
