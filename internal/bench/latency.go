package bench

import (
	"context"
	"fmt"
	"time"
)

// LatencyResult is the latency of one kind of request at one concurrency:
// the time from sending the request to having read the whole answer,
// through the local HTTP server.
type LatencyResult struct {
	Request     string  `json:"request"`
	Measures    string  `json:"measures"`
	Concurrency int     `json:"concurrency"`
	Dist        Dist    `json:"latency"`
	PerSec      float64 `json:"requests_per_sec"`
	// Anatomy: where the time went (first stops and starts).
	Anatomy *Anatomy `json:"anatomy,omitempty"`
}

// firstForcedStop is the Request of the first forced stops.
const firstForcedStop = "POST /stop?force=true (first)"

var concurrencies = []int{1, 16, 64}

// measure runs n requests on c clients (request i by f(i)) and returns the
// latencies and the throughput.
func measure(n, c int, f func(i int) (time.Duration, error)) ([]time.Duration, float64, error) {
	lat := make([]time.Duration, n)
	start := time.Now()
	var err error
	labelled(func() {
		err = parallel(n, c, func(i int) error {
			d, err := f(i)
			lat[i] = d
			return err
		})
	})
	return lat, float64(n) / time.Since(start).Seconds(), err
}

func runLatency(ctx context.Context, fresh func() (*env, error), opts Options, res *Results) error {
	e, err := fresh()
	if err != nil {
		return err
	}
	// Stopped pipelines for the GETs and the repeated stops.
	names := make([]string, 64)
	for i := range names {
		names[i] = fmt.Sprintf("lat-%02d", i)
	}
	if err := e.createAll(ctx, names); err != nil {
		return err
	}
	// Warm-up: connections, the JIT of DynamoDB Local, the engine.
	for i := range 200 {
		if _, err := e.must(ctx, "GET", "/v0/pipelines/"+names[i%len(names)], nil, 200); err != nil {
			return err
		}
	}
	for _, c := range concurrencies {
		lat, rate, err := measure(opts.Requests, c, func(i int) (time.Duration, error) {
			return e.must(ctx, "GET", "/v0/pipelines/"+names[i%len(names)], nil, 200)
		})
		if err != nil {
			return err
		}
		res.Latency = append(res.Latency, LatencyResult{Request: "GET /v0/pipelines/{name}", Measures: "read of one record (strongly consistent GetItem), full view",
			Concurrency: c, Dist: distOf(lat), PerSec: rate})
		e.logf("latency: GET at %d clients: %+v", c, distOf(lat))
	}
	for _, c := range concurrencies {
		lat, rate, err := measure(opts.Requests, c, func(i int) (time.Duration, error) {
			return e.must(ctx, "POST", "/v0/pipelines/"+names[i%len(names)]+"/stop?force=true", nil, 202)
		})
		if err != nil {
			return err
		}
		res.Latency = append(res.Latency, LatencyResult{Request: "POST /stop?force=true (repeated)", Measures: "stop of a Stopped pipeline: read, rule, 202 'already stopped' (no write, no workflow)",
			Concurrency: c, Dist: distOf(lat), PerSec: rate})
		e.logf("latency: repeated stop at %d clients: %+v", c, distOf(lat))
	}

	// First stops: every request stops a Running pipeline (conditional
	// transactional write of record + history + workflow ref, StartExecution
	// write), while the stop workflows of the earlier requests run.
	pool := make([]string, opts.FirstStops)
	for i := range pool {
		pool[i] = fmt.Sprintf("first-%03d", i)
	}
	for _, force := range []bool{true, false} {
		for _, c := range concurrencies {
			// A fresh stack per level (see Run).
			e, err := fresh()
			if err != nil {
				return err
			}
			if err := e.createAll(ctx, pool); err != nil {
				return err
			}
			// The starts, measured at this level's clients too (once).
			var (
				startLat  []time.Duration
				startRate float64
			)
			startAnatomy, err := e.anatomy(func() (err error) {
				startLat, startRate, err = measure(len(pool), c, func(i int) (time.Duration, error) {
					return e.must(ctx, "POST", "/v0/pipelines/"+pool[i]+"/start", nil, 202)
				})
				return err
			})
			if err != nil {
				return err
			}
			if _, err := e.waitAll(ctx, pool, "Running", 10*time.Minute, isRunning); err != nil {
				return err
			}
			if force {
				res.Latency = append(res.Latency, LatencyResult{Request: "POST /start (first)", Concurrency: c, Dist: distOf(startLat), PerSec: startRate, Anatomy: startAnatomy,
					Measures: "start of a Stopped pipeline: desired Running + history in one conditional transaction, StartExecution of the start workflow (the workflow ref is in the transaction)"})
				e.logf("latency: first start at %d clients: %+v", c, distOf(startLat))
			}
			path := "/stop?force=true"
			req, what := firstForcedStop, "stop of a Running pipeline: desired Stopped + history in one conditional transaction, StartExecution of the stop workflow (the workflow ref is in the transaction)"
			if !force {
				path = "/stop"
				req, what = "POST /stop (first, graceful)", "stop of a Running pipeline: runtime desired Suspended + history in one conditional transaction, StartExecution of the suspend workflow (the workflow ref is in the transaction)"
			}
			var (
				lat  []time.Duration
				rate float64
			)
			anatomy, err := e.anatomy(func() (err error) {
				lat, rate, err = measure(len(pool), c, func(i int) (time.Duration, error) {
					return e.must(ctx, "POST", "/v0/pipelines/"+pool[i]+path, nil, 202)
				})
				return err
			})
			if err != nil {
				return err
			}
			if _, err := e.waitAll(ctx, pool, "Stopped", 10*time.Minute, isStopped); err != nil {
				return err
			}
			res.Latency = append(res.Latency, LatencyResult{Request: req, Measures: what, Concurrency: c, Dist: distOf(lat), PerSec: rate, Anatomy: anatomy})
			e.logf("latency: %s at %d clients: %+v", req, c, distOf(lat))
		}
	}
	return nil
}
