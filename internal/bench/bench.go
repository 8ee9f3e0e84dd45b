// Package bench measures the control plane on this machine (`make bench`,
// infra/bench): API latency and its floor, convergence of stops, cost per
// stop, scale, the reconciler pass at scale (over in-memory doubles, see
// reconcilerscale.go) with the always-on cost per pipeline-month, and the
// Lambdas' cold start and size. Run starts the real local stack
// (DynamoDB Local in memory, the local Step Functions service running the
// real statemachine/*.asl.json with production timings: no Wait or Retry
// overrides, the step Lambdas behind the local Invoke endpoint, the API over
// HTTP with an API key) with InstantCompute as its compute driver, so the
// figures are the control plane's own: a fake runtime is ready at once and
// checkpoints instantly. What each figure measures is written beside it in
// Results (and in the README, "Measured figures").
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/localsfn"
	"github.com/sluicehq/sluice/internal/localstack"
	"github.com/sluicehq/sluice/internal/reconciler"
)

// Options of a run.
type Options struct {
	// ModuleRoot is the repository root ("" = found from the working directory).
	ModuleRoot string
	// Scale is the number of pipelines of the scale test (default 500).
	Scale int
	// Convergence is the number of stops of each kind measured (default 100).
	Convergence int
	// FirstStops is the number of pipelines stopped (first stop) per
	// concurrency level of the latency test (default 192).
	FirstStops int
	// Requests per concurrency level of the repeated-request latency tests (default 1000).
	Requests int
	// ColdStartRuns per function (default 5).
	ColdStartRuns int
	// ReconcilerSizes are the pipeline counts of the reconciler pass bench
	// (default 100, 1,000, 10,000), each one pass of ReconcilerWorkers
	// (default reconciler.DefaultWorkers), ReconcilerPasses times (default 3).
	ReconcilerSizes   []int
	ReconcilerWorkers int
	ReconcilerPasses  int
	// ReconcilerSharded pipelines (default 100,000; <0: none) are observed by
	// ReconcilerShards concurrent passes (default 10), each over its shard.
	ReconcilerSharded int
	ReconcilerShards  int
	// ReconcilerChurn is the fraction of runtimes that answer 503 in a pass
	// (default 0.01; <0: none), so that passes write and log.
	ReconcilerChurn float64
	// Skip names parts to skip: "latency", "floor", "convergence", "scale", "reconciler", "coldstart".
	Skip map[string]bool
	// Log receives progress lines (nil: discarded).
	Log io.Writer
}

func (o Options) withDefaults() Options {
	positiveOr(&o.Scale, 500)
	positiveOr(&o.Convergence, 100)
	positiveOr(&o.FirstStops, 192)
	positiveOr(&o.Requests, 1000)
	positiveOr(&o.ColdStartRuns, 5)
	if o.Log == nil {
		o.Log = io.Discard
	}
	if len(o.ReconcilerSizes) == 0 {
		o.ReconcilerSizes = []int{100, 1000, 10000}
	}
	positiveOr(&o.ReconcilerWorkers, reconciler.DefaultWorkers)
	positiveOr(&o.ReconcilerPasses, 3)
	defaultOrNone(&o.ReconcilerSharded, 100000)
	positiveOr(&o.ReconcilerShards, 10)
	defaultOrNone(&o.ReconcilerChurn, 0.01)
	return o
}

// positiveOr sets *v to def unless it is positive.
func positiveOr(v *int, def int) {
	if *v <= 0 {
		*v = def
	}
}

// defaultOrNone reads an option where 0 means the default and a negative
// value means none (0).
func defaultOrNone[T int | float64](v *T, def T) {
	switch {
	case *v == 0:
		*v = def
	case *v < 0:
		*v = 0
	}
}

// Machine describes where the figures were taken.
type Machine struct {
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model,omitempty"`
	MemoryGiB string `json:"memory_gib,omitempty"`
	Java      string `json:"java,omitempty"`
	Node      string `json:"node,omitempty"`
}

// Dist summarizes a sample of durations, in milliseconds.
type Dist struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_ms"`
	P95  float64 `json:"p95_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

// distOf computes the nearest-rank percentiles of a sample.
func distOf(d []time.Duration) Dist {
	if len(d) == 0 {
		return Dist{}
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	ms := func(x time.Duration) float64 { return math.Round(float64(x.Microseconds())/10) / 100 }
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	var sum time.Duration
	for _, x := range s {
		sum += x
	}
	return Dist{N: len(s), P50: ms(rank(0.50)), P95: ms(rank(0.95)), P99: ms(rank(0.99)), Max: ms(s[len(s)-1]), Mean: ms(sum / time.Duration(len(s)))}
}

// Results of a run (the JSON written to bench-results/).
type Results struct {
	StartedAt   time.Time        `json:"started_at"`
	DurationSec float64          `json:"duration_sec"`
	Machine     Machine          `json:"machine"`
	Setup       string           `json:"setup"`
	Latency     []LatencyResult  `json:"api_latency,omitempty"`
	Floor       []FloorResult    `json:"floor,omitempty"`
	Convergence []ConvergeResult `json:"convergence,omitempty"`
	Cost        []CostResult     `json:"cost_per_stop,omitempty"`
	Prices      Prices           `json:"prices"`
	Scale       *ScaleResult     `json:"scale,omitempty"`
	// The reconciler pass at scale and the always-on cost per pipeline-month.
	ReconcilerScale []ReconcilerScaleResult `json:"reconciler_scale,omitempty"`
	ReconcilerChurn float64                 `json:"reconciler_churn,omitempty"`
	PipelineMonth   []PipelineMonthCost     `json:"cost_per_pipeline_month,omitempty"`
	AlwaysOnPrices  AlwaysOnPrices          `json:"always_on_prices"`
	ColdStart       []ColdStartResult       `json:"cold_start,omitempty"`
	Errors          []string                `json:"errors,omitempty"`
}

// env is a running local stack with its fake compute and an HTTP client.
type env struct {
	stack *localstack.Stack
	fake  *InstantCompute
	http  *http.Client
	log   io.Writer
	calls *callTimers // the API's calls (anatomy)
}

func startEnv(ctx context.Context, opts Options) (*env, error) {
	fake, err := NewInstantCompute()
	if err != nil {
		return nil, err
	}
	calls := &callTimers{}
	stack, err := localstack.Start(ctx, localstack.Config{
		WrapAWSHTTP: calls.wrap,
		ModuleRoot:  opts.ModuleRoot, Driver: fake,
		// The reconciler does not run (Reconcile is never called): every
		// figure is the API's and the workflows' own.
		ReconcileInterval:  -1,
		Logger:             slog.New(slog.DiscardHandler),
		ExtraStateMachines: []localsfn.StateMachine{{Name: FloorMachine, Definition: floorDefinition}},
	})
	if err != nil {
		_ = fake.Close()
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 1024, 1024
	return &env{stack: stack, fake: fake, http: &http.Client{Timeout: 2 * time.Minute, Transport: tr}, log: opts.Log, calls: calls}, nil
}

func (e *env) close() error {
	e.http.CloseIdleConnections()
	err := e.stack.Close()
	_ = e.fake.Close()
	return err
}

func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(e.log, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// call sends one API request; it returns the status, body and the time from
// sending to the whole answer read.
func (e *env) call(ctx context.Context, method, path string, body any) (int, []byte, time.Duration, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.stack.APIURL+path, rd)
	if err != nil {
		return 0, nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+e.stack.APIKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	res, err := e.http.Do(req)
	if err != nil {
		return 0, nil, time.Since(start), err
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	return res.StatusCode, b, time.Since(start), err
}

// must sends a request and fails unless it gets want.
func (e *env) must(ctx context.Context, method, path string, body any, want int) (time.Duration, error) {
	status, b, d, err := e.call(ctx, method, path, body)
	if err != nil {
		return d, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if status != want {
		return d, fmt.Errorf("%s %s: %d %s, want %d", method, path, status, b, want)
	}
	return d, nil
}

// parallel runs f(i) for i in [0, n) on c workers; it returns the first error.
func parallel(n, c int, f func(i int) error) error {
	work := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	return first
}

// createAll creates pipelines (64 at a time).
func (e *env) createAll(ctx context.Context, names []string) error {
	return parallel(len(names), 64, func(i int) error {
		_, err := e.must(ctx, "POST", "/v0/pipelines", map[string]any{"name": names[i], "runtime_config": map[string]any{"checkpoint_interval_secs": 60}}, 201)
		return err
	})
}

// records reads the records of the named pipelines.
func (e *env) records(ctx context.Context, names []string) (map[string]domain.Pipeline, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]domain.Pipeline{}
	token := ""
	for {
		page, next, err := e.stack.Store.List(ctx, token, 500)
		if err != nil {
			return nil, err
		}
		for _, p := range page {
			if want[p.Name] {
				out[p.Name] = p
			}
		}
		if next == "" {
			return out, nil
		}
		token = next
	}
}

// waitAll polls until every named pipeline satisfies cond (bounded).
func (e *env) waitAll(ctx context.Context, names []string, what string, limit time.Duration, cond func(domain.Pipeline) bool) (map[string]domain.Pipeline, error) {
	deadline := time.Now().Add(limit)
	for {
		recs, err := e.records(ctx, names)
		if err == nil {
			ok := len(recs) == len(names)
			for _, p := range recs {
				ok = ok && cond(p)
			}
			if ok {
				return recs, nil
			}
		}
		if time.Now().After(deadline) {
			missing := 0
			for _, n := range names {
				if p, found := recs[n]; !found || !cond(p) {
					missing++
				}
			}
			return nil, fmt.Errorf("%d of %d pipelines never %s within %s (%v)", missing, len(names), what, limit, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func combined(s domain.CombinedStatus, d domain.CombinedDesiredStatus) func(domain.Pipeline) bool {
	return func(p domain.Pipeline) bool {
		return p.DeploymentStatus() == s && p.DeploymentDesiredStatus() == d && p.PendingWorkflow() == ""
	}
}

var (
	isRunning = combined(domain.CombinedRunning, domain.CombinedDesiredRunning)
	isStopped = combined(domain.CombinedStopped, domain.CombinedDesiredStopped)
)

// startAll starts the pipelines (64 requests at a time) and waits until they run.
func (e *env) startAll(ctx context.Context, names []string) error {
	if err := parallel(len(names), 64, func(i int) error {
		_, err := e.must(ctx, "POST", "/v0/pipelines/"+names[i]+"/start", nil, 202)
		return err
	}); err != nil {
		return err
	}
	_, err := e.waitAll(ctx, names, "Running", 10*time.Minute, isRunning)
	return err
}

// DescribeMachine reads what this machine is.
func DescribeMachine() Machine {
	m := Machine{GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb); err == nil {
			m.MemoryGiB = fmt.Sprintf("%.1f", float64(kb)/(1<<20))
		}
	}
	if out, err := exec.Command("java", "-version").CombinedOutput(); err == nil {
		m.Java = strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
	}
	return m
}
