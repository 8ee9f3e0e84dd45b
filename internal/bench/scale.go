package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/domain"
)

// ScaleResult: N pipelines started, then all stopped at once.
type ScaleResult struct {
	Pipelines int    `json:"pipelines"`
	Measures  string `json:"measures"`
	// Starts: N starts sent by 64 clients; accepted per second, and the time
	// from the first request to the last pipeline Running.
	StartsAcceptedPerSec float64 `json:"starts_accepted_per_sec"`
	AllRunningSec        float64 `json:"all_running_sec"`
	// Stops: N goroutines released at once, each sending one
	// stop?force=true: accepted per second (N / time to the last 202), the
	// 202 latencies, and the time from the release to the last pipeline
	// Stopped (the newest deployment_resources_status_since).
	StopsAcceptedPerSec float64 `json:"stops_accepted_per_sec"`
	StopLatency         Dist    `json:"stop_202_latency"`
	AllStoppedSec       float64 `json:"all_stopped_sec"`
	StopConvergence     Dist    `json:"stop_convergence"`
	// StopAnatomy: where the time went from the release to the last 202.
	StopAnatomy *Anatomy `json:"stop_anatomy,omitempty"`
}

func runScale(ctx context.Context, e *env, opts Options, res *Results) error {
	names := make([]string, opts.Scale)
	for i := range names {
		names[i] = fmt.Sprintf("scale-%03d", i)
	}
	if err := e.createAll(ctx, names); err != nil {
		return err
	}
	r := &ScaleResult{Pipelines: opts.Scale, Measures: "fake compute (instant runtimes): the control plane's own throughput; the reconciler does not run"}

	start := time.Now()
	var mu sync.Mutex
	var lastAck time.Time
	if err := parallel(len(names), 64, func(i int) error {
		_, err := e.must(ctx, "POST", "/v0/pipelines/"+names[i]+"/start", nil, 202)
		mu.Lock()
		lastAck = time.Now()
		mu.Unlock()
		return err
	}); err != nil {
		return err
	}
	r.StartsAcceptedPerSec = float64(len(names)) / lastAck.Sub(start).Seconds()
	recs, err := e.waitAll(ctx, names, "Running", 15*time.Minute, isRunning)
	if err != nil {
		return err
	}
	r.AllRunningSec = latest(recs).Sub(start).Seconds()
	e.logf("scale: %d started: %.1f starts/s accepted, all Running after %.1f s", len(names), r.StartsAcceptedPerSec, r.AllRunningSec)

	release := make(chan struct{})
	lat := make([]time.Duration, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	labelled(func() {
		for i := range names {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-release
				lat[i], errs[i] = e.must(ctx, "POST", "/v0/pipelines/"+names[i]+"/stop?force=true", nil, 202)
				mu.Lock()
				if t := time.Now(); t.After(lastAck) {
					lastAck = t
				}
				mu.Unlock()
			}()
		}
	})
	time.Sleep(200 * time.Millisecond)
	released := time.Now()
	anatomy, err := e.anatomy(func() error {
		close(release)
		wg.Wait()
		return nil
	})
	if err != nil {
		return err
	}
	r.StopAnatomy = anatomy
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	r.StopsAcceptedPerSec = float64(len(names)) / lastAck.Sub(released).Seconds()
	r.StopLatency = distOf(lat)
	recs, err = e.waitAll(ctx, names, "Stopped", 15*time.Minute, isStopped)
	if err != nil {
		return err
	}
	r.AllStoppedSec = latest(recs).Sub(released).Seconds()
	var conv []time.Duration
	for _, p := range recs {
		conv = append(conv, p.ResourcesStatusSince.Sub(released))
	}
	r.StopConvergence = distOf(conv)
	res.Scale = r
	e.logf("scale: %d stopped at once: %.1f stops/s accepted, all Stopped after %.1f s", len(names), r.StopsAcceptedPerSec, r.AllStoppedSec)
	return nil
}

func latest(recs map[string]domain.Pipeline) time.Time {
	var t time.Time
	for _, p := range recs {
		if p.ResourcesStatusSince.After(t) {
			t = p.ResourcesStatusSince
		}
	}
	return t
}
