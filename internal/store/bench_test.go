package store

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/domain"
)

// Benchmarks against DynamoDB Local (not run by the normal test suite):
//
//	go test -run '^$' -bench . -benchtime 2s ./internal/store/
//
// Each reports throughput (ops/s) and per-operation latency percentiles.

// latencies collects per-operation durations.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B, elapsed time.Duration) {
	if len(l.d) == 0 {
		return
	}
	slices.Sort(l.d)
	pct := func(p float64) float64 {
		i := min(int(p*float64(len(l.d))), len(l.d)-1)
		return float64(l.d[i].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(l.d))/elapsed.Seconds(), "ops/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// BenchmarkApplyAction: a user action (pause/resume alternately, each a
// generation-bumping conditional write with its history event) on a
// provisioned pipeline, decided on the record the previous write returned.
func BenchmarkApplyAction(b *testing.B) {
	for _, workers := range []int{1, 8} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			e := newEnv(b)
			recs := make([]domain.Pipeline, workers)
			for w := range workers {
				recs[w] = e.provisioned(fmt.Sprintf("bench-%d", w))
			}
			var lat latencies
			b.ResetTimer()
			start := time.Now()
			parallel(b, workers, func(w, i int) {
				act := domain.Pause
				if i%2 == 1 {
					act = domain.Resume
				}
				out, err := act(recs[w], time.Now().UTC())
				if err != nil {
					b.Error(err)
					return
				}
				t0 := time.Now()
				p, err := e.store.ApplyAction(e.ctx, recs[w], out, Cause{Action: "bench", Actor: "user:bench"})
				lat.add(time.Since(t0))
				if err != nil {
					b.Error(err)
					return
				}
				recs[w] = p
			})
			elapsed := time.Since(start)
			b.StopTimer()
			lat.report(b, elapsed)
		})
	}
}

// BenchmarkTransition: a workflow step (an observation alternating Running
// and Paused, so every step writes): strongly consistent read, generation
// check, conditional write with its history event.
func BenchmarkTransition(b *testing.B) {
	for _, workers := range []int{1, 8} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			e := newEnv(b)
			recs := make([]domain.Pipeline, workers)
			for w := range workers {
				recs[w] = e.provisioned(fmt.Sprintf("bench-%d", w))
			}
			var lat latencies
			b.ResetTimer()
			start := time.Now()
			parallel(b, workers, func(w, i int) {
				obs := domain.RuntimePaused
				if i%2 == 1 {
					obs = domain.RuntimeRunning
				}
				t0 := time.Now()
				_, err := e.store.Transition(e.ctx, recs[w].Name, recs[w].Generation, domain.ObserveRuntime(obs, nil),
					Cause{Action: "ObserveRuntime", Actor: "workflow"})
				lat.add(time.Since(t0))
				if err != nil {
					b.Error(err)
				}
			})
			elapsed := time.Since(start)
			b.StopTimer()
			lat.report(b, elapsed)
		})
	}
}

// parallel runs b.N operations on workers goroutines; worker w runs its
// share as op(w, i) with i counting from 0.
func parallel(b *testing.B, workers int, op func(w, i int)) {
	var wg sync.WaitGroup
	for w := range workers {
		n := b.N / workers
		if w < b.N%workers {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				op(w, i)
			}
		}()
	}
	wg.Wait()
}
