package bench

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/internal/compute"
	"github.com/sluicehq/sluice/internal/ctxutil"
	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/metrics"
	"github.com/sluicehq/sluice/internal/obs"
	"github.com/sluicehq/sluice/internal/reconciler"
	"github.com/sluicehq/sluice/internal/runtimeclient"
	"github.com/sluicehq/sluice/internal/steps"
	"github.com/sluicehq/sluice/internal/store"
)

// The reconciler at scale: one pass (internal/reconciler.Reconciler.Run, the
// real code) over N provisioned, Running, converged pipelines, against
// in-process doubles — a store that keeps DynamoDB's semantics for the calls
// the pass makes (strongly consistent Get, a paged List of the index, the
// fenced read-decide-write of Transition and SetWorkflow) and counts the
// requests and request units they would cost, a compute driver, and fake
// runtimes whose GET /status answers in 5–20 ms (uniform, seeded). No local
// stack: DynamoDB Local is far too slow to hold 10,000 records per pass.

// ReconcilerLatencies is a latency model of the pass's calls (uniform in
// [min, max], seeded per pipeline and pass, so every run and every worker
// count sees the same latencies).
type ReconcilerLatencies struct {
	Name string `json:"name"`
	// Runtime: the runtime's GET /status.
	RuntimeMin, RuntimeMax time.Duration
	// Check: the compute driver's check (on AWS: ECS ListTasks + DescribeTasks).
	CheckMin, CheckMax time.Duration
	// Store: each DynamoDB request (GetItem, a Query page, TransactWriteItems).
	StoreMin, StoreMax time.Duration
	Describe           string `json:"describe"`
}

// The two latency models measured.
var (
	// LatencyRuntimeOnly: only the runtimes take time (the fakes).
	LatencyRuntimeOnly = ReconcilerLatencies{Name: "runtime-only", RuntimeMin: 5 * time.Millisecond, RuntimeMax: 20 * time.Millisecond,
		Describe: "runtime /status 5–20 ms; store and compute check in memory (no latency)"}
	// LatencyAWSLike adds assumed AWS latencies (not measured on AWS):
	// DynamoDB 2–6 ms per request, the ECS check (two calls) 30–80 ms.
	LatencyAWSLike = ReconcilerLatencies{Name: "aws-like", RuntimeMin: 5 * time.Millisecond, RuntimeMax: 20 * time.Millisecond,
		CheckMin: 30 * time.Millisecond, CheckMax: 80 * time.Millisecond, StoreMin: 2 * time.Millisecond, StoreMax: 6 * time.Millisecond,
		Describe: "runtime /status 5–20 ms; every DynamoDB request 2–6 ms; compute check (ECS ListTasks + DescribeTasks) 30–80 ms — assumed, not measured on AWS"}
)

// ReconcilerScaleResult is one configuration: N pipelines, Shards concurrent
// passes of Workers each, Passes passes.
type ReconcilerScaleResult struct {
	Latencies string `json:"latencies"`
	Pipelines int    `json:"pipelines"`
	Shards    int    `json:"shards"`
	Workers   int    `json:"workers"`
	Passes    int    `json:"passes"`
	// PassSec: wall time of each pass (the slowest shard's), and its p50.
	PassSec    []float64 `json:"pass_sec"`
	PassP50Sec float64   `json:"pass_p50_sec"`
	// ShardSecSum: the p50 pass's shard pass times summed (billed Lambda seconds).
	ShardSecSum float64 `json:"shard_sec_sum"`
	// Per pass (the p50 pass): what the pass did and cost.
	Observed      int     `json:"observed"`
	Left          int     `json:"left"`
	Errors        int     `json:"errors"`
	Changes       int     `json:"runtime_changes"`
	RuntimeCalls  int64   `json:"runtime_calls"`
	Checks        int64   `json:"compute_checks"`
	Gets          int64   `json:"get_item"`
	Queries       int64   `json:"query_pages"`
	Transactions  int64   `json:"transact_write_items"`
	RRU           float64 `json:"read_request_units"`
	WRU           float64 `json:"write_request_units"`
	LogBytes      int64   `json:"log_bytes"`
	LogLines      int64   `json:"log_lines"`
	PeakInFlight  int64   `json:"peak_calls_in_flight"`
	CPUSecPerPass float64 `json:"cpu_sec_per_pass"`
	// Item sizes (bytes) of a Running record and of its history event.
	RecordBytes int `json:"record_item_bytes"`
	EventBytes  int `json:"event_item_bytes"`
}

// reconcilerScaleConfig is one measured configuration.
type reconcilerScaleConfig struct {
	lat       ReconcilerLatencies
	pipelines int
	shards    int
	workers   int
}

// runReconcilerScale measures every configuration of opts.
func runReconcilerScale(ctx context.Context, opts Options, res *Results) error {
	var configs []reconcilerScaleConfig
	for _, lat := range []ReconcilerLatencies{LatencyRuntimeOnly, LatencyAWSLike} {
		for _, n := range opts.ReconcilerSizes {
			configs = append(configs, reconcilerScaleConfig{lat, n, 1, opts.ReconcilerWorkers})
		}
		if opts.ReconcilerSharded > 0 {
			// One invocation for all of them first: what the deadline leaves.
			configs = append(configs, reconcilerScaleConfig{lat, opts.ReconcilerSharded, 1, opts.ReconcilerWorkers},
				reconcilerScaleConfig{lat, opts.ReconcilerSharded, opts.ReconcilerShards, opts.ReconcilerWorkers})
		}
	}
	for _, c := range configs {
		fmt.Fprintf(opts.Log, "%s  reconciler: %s, %d pipelines, %d shard(s) × %d workers, %d passes\n",
			time.Now().Format("15:04:05"), c.lat.Name, c.pipelines, c.shards, c.workers, opts.ReconcilerPasses)
		r, err := measureReconciler(ctx, c, opts.ReconcilerPasses, opts.ReconcilerChurn)
		if err != nil {
			return err
		}
		res.ReconcilerScale = append(res.ReconcilerScale, r)
	}
	res.ReconcilerChurn = opts.ReconcilerChurn
	res.PipelineMonth = pipelineMonthCosts(res.ReconcilerScale)
	return nil
}

// ReconcilerProgramBytes is the size of the program code of every bench
// pipeline (the record stores the whole definition, so it sets the item size
// and with it the read units): a modest SQL program.
const ReconcilerProgramBytes = 2000

func measureReconciler(ctx context.Context, c reconcilerScaleConfig, passes int, churn float64) (ReconcilerScaleResult, error) {
	out := ReconcilerScaleResult{Latencies: c.lat.Name, Pipelines: c.pipelines, Shards: c.shards, Workers: c.workers, Passes: passes}
	calls := &inFlight{}
	st, err := newScaleStore(c.pipelines, c.lat, calls)
	if err != nil {
		return out, err
	}
	out.RecordBytes, out.EventBytes = st.recordBytes, st.eventBytes
	fakes := &scaleFakes{lat: c.lat, churn: churn, calls: calls}
	type passResult struct {
		sec, shardSum float64
		rep           reconciler.Report
		counts        storeCounts
		runtime       int64
		checks        int64
		logBytes      int64
		logLines      int64
		peak          int64
		cpu           float64
	}
	var results []passResult
	// Pass 0 warms up and is not reported: after it, every pass both records
	// the churned runtimes as Unavailable and the previous pass's as Running.
	for pass := range passes + 1 {
		st.resetCounts()
		fakes.reset(pass)
		var logs countingWriter
		logger := obs.NewJSONLogger(&logs, nil)
		emitter := metrics.New(&logs)
		cpu0 := cpuSeconds()
		begin := time.Now()
		var (
			mu       sync.Mutex
			total    reconciler.Report
			shardSum float64
			firstErr error
			wg       sync.WaitGroup
		)
		for shard := range c.shards {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// As the Lambda: a 55 s deadline, each shard its own invocation.
				pctx, cancel := context.WithTimeout(ctx, 55*time.Second)
				defer cancel()
				r := &reconciler.Reconciler{Store: st, Workflows: scaleWorkflows{}, Driver: fakes, RuntimeFor: fakes.runtimeFor,
					Logger: logger.With("aws_request_id", fmt.Sprintf("bench-%d-%d", pass, shard)), Metrics: emitter,
					Workers: c.workers, Shards: c.shards, Shard: shard}
				t0 := time.Now()
				rep, err := r.Run(pctx)
				d := time.Since(t0).Seconds()
				mu.Lock()
				defer mu.Unlock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				shardSum += d
				total.Pipelines += rep.Pipelines
				total.Observed += rep.Observed
				total.Left += rep.Left
				total.Errors += rep.Errors
				total.RuntimeChanges += rep.RuntimeChanges
			}()
		}
		wg.Wait()
		sec := time.Since(begin).Seconds()
		if firstErr != nil {
			return out, firstErr
		}
		if pass == 0 {
			continue
		}
		results = append(results, passResult{sec: sec, shardSum: shardSum, rep: total, counts: st.snapshot(),
			runtime: fakes.runtimeCalls.Load(), checks: fakes.checks.Load(), logBytes: logs.bytes.Load(), logLines: logs.lines.Load(),
			peak: calls.peak.Load(), cpu: cpuSeconds() - cpu0})
		out.PassSec = append(out.PassSec, round3(sec))
	}
	// The p50 pass (nearest rank) gives every per-pass figure.
	order := make([]int, len(results))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return results[order[a]].sec < results[order[b]].sec })
	mid := results[order[(len(order)-1)/2]]
	out.PassP50Sec, out.ShardSecSum = round3(mid.sec), round3(mid.shardSum)
	out.Observed, out.Left, out.Errors, out.Changes = mid.rep.Observed, mid.rep.Left, mid.rep.Errors, mid.rep.RuntimeChanges
	out.RuntimeCalls, out.Checks, out.PeakInFlight = mid.runtime, mid.checks, mid.peak
	out.Gets, out.Queries, out.Transactions = mid.counts.gets, mid.counts.queries, mid.counts.transactions
	out.RRU, out.WRU = mid.counts.rru, mid.counts.wru
	out.LogBytes, out.LogLines = mid.logBytes, mid.logLines
	out.CPUSecPerPass = round3(mid.cpu)
	return out, nil
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// cpuSeconds is this process's user + system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// countingWriter counts the bytes and lines written to it (the log volume).
type countingWriter struct {
	bytes, lines atomic.Int64
}

func (w *countingWriter) Write(b []byte) (int, error) {
	w.bytes.Add(int64(len(b)))
	w.lines.Add(int64(strings.Count(string(b), "\n")))
	return len(b), nil
}

var _ io.Writer = (*countingWriter)(nil)

// draw is a deterministic uniform draw in [lo, hi] for (key, pass, salt).
func draw(key string, pass int, salt uint64, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(unit(key, pass, salt)*float64(hi-lo))
}

// unit is a deterministic uniform draw in [0, 1) for (key, pass, salt).
func unit(key string, pass int, salt uint64) float64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return rand.New(rand.NewPCG(h.Sum64(), uint64(pass)<<8|salt)).Float64()
}

// ---- the fakes: compute driver and runtimes ----

type scaleFakes struct {
	lat   ReconcilerLatencies
	churn float64 // fraction of runtimes that answer 503 in a pass

	pass                 atomic.Int64
	runtimeCalls, checks atomic.Int64
	calls                *inFlight
}

// inFlight counts the external calls (runtime, compute check, DynamoDB) in
// progress and their peak: each worker makes one at a time, so the peak is
// the pass's concurrency as it ran (at most workers, plus the listing).
type inFlight struct{ now, peak atomic.Int64 }

func (c *inFlight) enter() func() {
	n := c.now.Add(1)
	for {
		p := c.peak.Load()
		if n <= p || c.peak.CompareAndSwap(p, n) {
			break
		}
	}
	return func() { c.now.Add(-1) }
}

func (f *scaleFakes) reset(pass int) {
	f.pass.Store(int64(pass))
	f.runtimeCalls.Store(0)
	f.checks.Store(0)
	f.calls.peak.Store(0)
}

func (f *scaleFakes) Provision(context.Context, compute.ProvisionRequest) (compute.Deployment, error) {
	return compute.Deployment{}, errors.New("bench: not provisioned here")
}
func (f *scaleFakes) Deprovision(context.Context, string, string) error  { return nil }
func (f *scaleFakes) ClearStorage(context.Context, string, string) error { return nil }

func (f *scaleFakes) Check(ctx context.Context, name, _ string) (compute.CheckResult, error) {
	f.checks.Add(1)
	defer f.calls.enter()()
	if err := ctxutil.Sleep(ctx, draw(name, int(f.pass.Load()), 1, f.lat.CheckMin, f.lat.CheckMax)); err != nil {
		return compute.CheckResult{}, err
	}
	return compute.CheckResult{State: compute.StateRunning, Location: "fake://" + name}, nil
}

func (f *scaleFakes) runtimeFor(location string) (steps.Runtime, error) {
	return scaleRuntime{f: f, name: strings.TrimPrefix(location, "fake://")}, nil
}

type scaleRuntime struct {
	f    *scaleFakes
	name string
}

func (r scaleRuntime) Status(ctx context.Context) (runtimeclient.StatusReport, error) {
	f := r.f
	f.runtimeCalls.Add(1)
	defer f.calls.enter()()
	pass := int(f.pass.Load())
	if err := ctxutil.Sleep(ctx, draw(r.name, pass, 2, f.lat.RuntimeMin, f.lat.RuntimeMax)); err != nil {
		return runtimeclient.StatusReport{}, &runtimeclient.TemporaryError{Op: "status", Cause: err}
	}
	if f.churn > 0 && unit(r.name, pass, 3) < f.churn {
		return runtimeclient.StatusReport{}, &runtimeclient.TemporaryError{Op: "status", StatusCode: 503, Cause: errors.New("503 (bench churn)")}
	}
	return runtimeclient.StatusReport{RuntimeStatus: domain.RuntimeRunning}, nil
}

func (scaleRuntime) Suspend(context.Context) error { return nil }
func (scaleRuntime) Pause(context.Context) error   { return nil }
func (scaleRuntime) Start(context.Context) error   { return nil }

// scaleWorkflows: every bench pipeline has converged, so the pass starts
// nothing; a call would be counted as an error of the bench.
type scaleWorkflows struct{}

func (scaleWorkflows) StartAttempt(context.Context, domain.Pipeline, domain.WorkflowKind, int) (domain.WorkflowRef, error) {
	return domain.WorkflowRef{}, errors.New("bench: no workflow expected")
}
func (scaleWorkflows) IsRunning(context.Context, domain.WorkflowRef) (bool, error) { return false, nil }
func (scaleWorkflows) Stop(context.Context, domain.WorkflowRef, string) error      { return nil }
func (scaleWorkflows) Status(context.Context, domain.WorkflowRef) (string, error) {
	return "", errors.New("bench: no workflow expected")
}

// ---- the store double ----

// storeCounts are the DynamoDB requests and request units of a pass.
type storeCounts struct {
	gets, queries, transactions int64
	rru, wru                    float64
}

// scaleStore is an in-memory store.Store for the calls the reconciler makes
// (Get, List, Transition, SetWorkflow; every other method panics), with
// store.Dynamo's semantics (fenced by generation, a transition that changes
// nothing writes nothing) and its request units: GetItem strongly consistent,
// 1 RRU per 4 KB of the item; a List page is one Query of the index, eventually
// consistent, 0.5 RRU per 4 KB of the page's items summed; a write is one
// TransactWriteItems of the record and its history event, 2 WRU per 1 KB of
// each (transactional).
type scaleStore struct {
	store.Store // nil: methods the pass does not call

	lat                     ReconcilerLatencies
	recordBytes, eventBytes int
	calls                   *inFlight

	mu      sync.Mutex
	names   []string // sorted
	records map[string]domain.Pipeline
	sizes   map[string]int
	counts  storeCounts
	seq     atomic.Int64 // seeds the latency draws
	cursors map[store.CursorKey]string
}

func newScaleStore(n int, lat ReconcilerLatencies, calls *inFlight) (*scaleStore, error) {
	s := &scaleStore{lat: lat, calls: calls, records: make(map[string]domain.Pipeline, n), sizes: make(map[string]int, n)}
	now := time.Now().UTC()
	program := "-- bench program\n" + strings.Repeat("CREATE VIEW v AS SELECT x, COUNT(*) FROM t GROUP BY x;\n", ReconcilerProgramBytes/56)
	for i := range n {
		name := fmt.Sprintf("bench-%06d", i)
		p, err := domain.Create(domain.Definition{Name: name, RuntimeConfig: []byte(`{"checkpoint_interval_secs":60}`), ProgramCode: program},
			fmt.Sprintf("00000000-0000-4000-8000-%012d", i), now)
		if err != nil {
			return nil, err
		}
		out, err := domain.Start(p, domain.StartRequest{Initial: domain.InitialRunning}, now)
		if err != nil {
			return nil, err
		}
		p = out.Pipeline
		for _, tr := range []domain.Transition{domain.MarkProvisioning("dep-" + name), domain.MarkProvisioned("fake://"+name, domain.RuntimeRunning)} {
			if p, err = tr(p, now); err != nil {
				return nil, err
			}
		}
		p.Workflow = &domain.WorkflowRef{ExecutionName: name + "-g1-start", Kind: domain.WorkflowStart, Generation: p.Generation, Status: "SUCCEEDED"}
		if i == 0 {
			if s.recordBytes, s.eventBytes, err = store.ItemSizes(p, store.Cause{Action: "ObserveRuntime", Actor: "reconciler"}); err != nil {
				return nil, err
			}
		}
		s.names = append(s.names, name)
		s.records[name] = p
		s.sizes[name] = s.recordBytes
	}
	slices.Sort(s.names)
	return s, nil
}

func (s *scaleStore) resetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts = storeCounts{}
}

func (s *scaleStore) snapshot() storeCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

// request waits one DynamoDB request's latency.
func (s *scaleStore) request(ctx context.Context) error {
	defer s.calls.enter()()
	n := s.seq.Add(1)
	return ctxutil.Sleep(ctx, draw("store", int(n), 4, s.lat.StoreMin, s.lat.StoreMax))
}

func units(bytes, per int) float64 { return math.Ceil(float64(bytes) / float64(per)) }

func (s *scaleStore) Get(ctx context.Context, name string) (domain.Pipeline, error) {
	if err := s.request(ctx); err != nil {
		return domain.Pipeline{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts.gets++
	p, ok := s.records[name]
	if !ok {
		s.counts.rru++ // a miss costs the minimum
		return domain.Pipeline{}, domain.UnknownPipelineName(name)
	}
	s.counts.rru += units(s.sizes[name], 4096)
	return p, nil
}

func (s *scaleStore) List(ctx context.Context, token string, limit int) ([]domain.Pipeline, string, error) {
	if err := s.request(ctx); err != nil {
		return nil, "", err
	}
	if limit <= 0 {
		limit = store.DefaultPageLimit
	}
	limit = min(limit, store.MaxPageLimit)
	s.mu.Lock()
	defer s.mu.Unlock()
	i, _ := slices.BinarySearch(s.names, token)
	if i < len(s.names) && s.names[i] == token {
		i++
	}
	end := min(i+limit, len(s.names))
	page := make([]domain.Pipeline, 0, end-i)
	bytes := 0
	for _, n := range s.names[i:end] {
		page = append(page, s.records[n])
		bytes += s.sizes[n]
	}
	s.counts.queries++
	s.counts.rru += max(units(bytes, 4096), 1) * 0.5
	next := ""
	if end < len(s.names) {
		next = s.names[end-1]
	}
	return page, next, nil
}

// ListFrom is List from the first name >= from (the reconciler's resume
// point): List starts after its token, so it is given the name before.
func (s *scaleStore) ListFrom(ctx context.Context, from, token string, limit int) ([]domain.Pipeline, string, error) {
	if token == "" && from != "" {
		s.mu.Lock()
		i, found := slices.BinarySearch(s.names, from)
		token = from
		if found {
			token = ""
			if i > 0 {
				token = s.names[i-1]
			}
		}
		s.mu.Unlock()
	}
	return s.List(ctx, token, limit)
}

// The reconciler's cursors, in memory (no latency, not counted).

func (s *scaleStore) ReconcilerCursor(_ context.Context, key store.CursorKey) (store.Cursor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return store.Cursor{ResumeFrom: s.cursors[key]}, nil
}

func (s *scaleStore) SetReconcilerCursor(_ context.Context, key store.CursorKey, resumeFrom string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cursors == nil {
		s.cursors = map[store.CursorKey]string{}
	}
	s.cursors[key] = resumeFrom
	return nil
}

func (s *scaleStore) ClearReconcilerCursor(_ context.Context, key store.CursorKey, ifResumeFrom string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.cursors[key]
	if !ok || (ifResumeFrom != "" && cur != ifResumeFrom) {
		return false, nil
	}
	delete(s.cursors, key)
	return true, nil
}

func (s *scaleStore) Transition(ctx context.Context, name string, generation int64, tr domain.Transition, cause store.Cause) (domain.Pipeline, error) {
	return s.fenced(ctx, name, generation, nil, cause, tr)
}

// TransitionFrom decides on read first, as store.Dynamo does: no read
// counted unless the write loses its condition.
func (s *scaleStore) TransitionFrom(ctx context.Context, read domain.Pipeline, tr domain.Transition, cause store.Cause) (domain.Pipeline, error) {
	return s.fenced(ctx, read.Name, read.Generation, &read, cause, tr)
}

func (s *scaleStore) SetWorkflow(ctx context.Context, name string, ref domain.WorkflowRef) (domain.Pipeline, error) {
	cause := store.Cause{Action: "SetWorkflow", Actor: "workflow", Execution: ref.ExecutionName}
	return s.fenced(ctx, name, ref.Generation, nil, cause, func(p domain.Pipeline, _ time.Time) (domain.Pipeline, error) {
		w, changed := domain.UpdateWorkflowRef(p.Workflow, ref)
		if !changed {
			return p, nil
		}
		next := p
		next.Workflow = &w
		next.RefreshVersion = p.RefreshVersion + 1
		return next, nil
	})
}

// fenced is store.Dynamo's read-decide-write: a strongly consistent read,
// the generation fence, then (if anything changed) one transaction
// conditional on the refresh version read.
// current is the record to decide on: read on the first attempt when
// given, else a (counted) read.
func (s *scaleStore) current(ctx context.Context, name string, read *domain.Pipeline, attempt int) (domain.Pipeline, error) {
	if read != nil && attempt == 0 {
		return *read, nil
	}
	return s.Get(ctx, name)
}

func (s *scaleStore) fenced(ctx context.Context, name string, generation int64, read *domain.Pipeline, cause store.Cause, tr domain.Transition) (domain.Pipeline, error) {
	for attempt := 0; ; attempt++ {
		if attempt == store.DefaultMaxAttempts {
			return domain.Pipeline{}, fmt.Errorf("pipeline %q: %w: gave up after %d attempts", name, store.ErrStale, attempt)
		}
		cur, err := s.current(ctx, name, read, attempt)
		if err != nil {
			return domain.Pipeline{}, err
		}
		if cur.Generation != generation {
			return domain.Pipeline{}, &store.SupersededError{Generation: generation, Current: cur}
		}
		next, err := tr(cur, time.Now().UTC())
		if err != nil {
			var unexpected *domain.UnexpectedStatusError
			if errors.As(err, &unexpected) {
				return domain.Pipeline{}, &store.ConflictError{Current: cur, Cause: err}
			}
			return domain.Pipeline{}, err
		}
		if next.RefreshVersion == cur.RefreshVersion {
			return cur, nil
		}
		if err := domain.ValidateTransition(cur, next); err != nil {
			return domain.Pipeline{}, err
		}
		rec, ev, err := store.ItemSizes(next, cause)
		if err != nil {
			return domain.Pipeline{}, err
		}
		if err := s.request(ctx); err != nil {
			return domain.Pipeline{}, err
		}
		s.mu.Lock()
		s.counts.transactions++
		s.counts.wru += 2 * (units(rec, 1024) + units(ev, 1024))
		if s.records[name].RefreshVersion != cur.RefreshVersion {
			s.mu.Unlock()
			continue // lost the condition to a concurrent write: decide again
		}
		s.records[name] = next
		s.sizes[name] = rec
		s.mu.Unlock()
		return next, nil
	}
}

// ---- cost per pipeline-month ----

// AlwaysOnPrices are the list prices of the always-on parts (us-east-1, list
// prices at the time of writing, 2026-12-02; free tiers ignored).
type AlwaysOnPrices struct {
	PerRRUUSD          float64 `json:"dynamodb_per_read_request_unit_usd"`
	PerWRUUSD          float64 `json:"dynamodb_per_write_request_unit_usd"`
	PerLogGBUSD        float64 `json:"cloudwatch_logs_per_gb_ingested_usd"`
	ReconcilerMemoryMB int     `json:"reconciler_memory_mb"`
	PlatformLogBytes   int     `json:"lambda_platform_log_bytes_per_invocation"`
	PassesPerMonth     int     `json:"passes_per_month"`
	Source             string  `json:"source"`
}

// AlwaysOn are the prices used for the cost per pipeline-month.
var AlwaysOn = AlwaysOnPrices{
	PerRRUUSD: 0.25 / 1e6, PerWRUUSD: 1.25 / 1e6, PerLogGBUSD: 0.50,
	ReconcilerMemoryMB: 512, PlatformLogBytes: 600, PassesPerMonth: 30 * 24 * 60,
	Source: "list prices at the time of writing (2026-12-02, us-east-1): DynamoDB on-demand $0.25 per 1M read request units " +
		"(a strongly consistent read of up to 4 KB = 1 RRU, eventually consistent 0.5) and $1.25 per 1M write request units " +
		"(transactional: 2 WRU per 1 KB); CloudWatch Logs ingestion $0.50 per GB (2^30 bytes); Lambda as above (arm64), the reconciler " +
		"at 512 MB (template.yaml), billed for the pass's wall time; a pass a minute, 43,200 a month (30 days); Lambda's platform log " +
		"lines (start and report, JSON) assumed 600 bytes per invocation; free tiers ignored",
}

// PipelineMonthCost is the always-on cost at N pipelines, from one measured
// configuration.
type PipelineMonthCost struct {
	Latencies           string  `json:"latencies"`
	Pipelines           int     `json:"pipelines"`
	Shards              int     `json:"shards"`
	InvocationsPerMonth float64 `json:"invocations_per_month"`
	GBSecondsPerMonth   float64 `json:"gb_seconds_per_month"`
	LambdaUSD           float64 `json:"lambda_usd_per_month"`
	ReadsUSD            float64 `json:"dynamodb_reads_usd_per_month"`
	WritesUSD           float64 `json:"dynamodb_writes_usd_per_month"`
	LogsUSD             float64 `json:"logs_usd_per_month"`
	TotalUSD            float64 `json:"total_usd_per_month"`
	PerPipelineUSD      float64 `json:"usd_per_pipeline_month"`
}

func pipelineMonthCosts(rs []ReconcilerScaleResult) []PipelineMonthCost {
	var out []PipelineMonthCost
	a := AlwaysOn
	passes := float64(a.PassesPerMonth)
	for _, r := range rs {
		if r.Pipelines != 1000 && r.Pipelines != 10000 && r.Pipelines != 100000 || r.Observed < r.Pipelines {
			continue // a pass that did not observe them all costs nothing meaningful
		}
		c := PipelineMonthCost{Latencies: r.Latencies, Pipelines: r.Pipelines, Shards: r.Shards}
		c.InvocationsPerMonth = passes * float64(r.Shards)
		c.GBSecondsPerMonth = passes * r.ShardSecSum * float64(a.ReconcilerMemoryMB) / 1024
		c.LambdaUSD = c.InvocationsPerMonth*ListPrices.PerLambdaRequestUSD + c.GBSecondsPerMonth*ListPrices.PerGBSecondArmUSD
		c.ReadsUSD = passes * r.RRU * a.PerRRUUSD
		c.WritesUSD = passes * r.WRU * a.PerWRUUSD
		logBytes := float64(r.LogBytes) + float64(r.Shards*a.PlatformLogBytes)
		c.LogsUSD = passes * logBytes / (1 << 30) * a.PerLogGBUSD
		c.TotalUSD = c.LambdaUSD + c.ReadsUSD + c.WritesUSD + c.LogsUSD
		c.PerPipelineUSD = c.TotalUSD / float64(r.Pipelines)
		out = append(out, c)
	}
	return out
}

// printReconcilerScale writes the reconciler tables.
func printReconcilerScale(w io.Writer, res *Results) {
	if len(res.ReconcilerScale) == 0 {
		return
	}
	r0 := res.ReconcilerScale[0]
	fmt.Fprintf(w, "Reconciler pass at scale (real Reconciler.Run over in-memory doubles; p50 of %d passes after a warm-up pass; per pass: the p50 pass's counts; "+
		"%.1f%% of runtimes answer 503 in a pass; record item %d B, event item %d B)\n\n", r0.Passes, res.ReconcilerChurn*100, r0.RecordBytes, r0.EventBytes)
	fmt.Fprintf(w, "| latencies | pipelines | shards × workers | pass p50 | passes (s) | observed | left listed | runtime calls | checks | peak calls in flight | GetItem | Query pages | RRU | TransactWriteItems | WRU | log lines / bytes | CPU s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range res.ReconcilerScale {
		ps := make([]string, len(r.PassSec))
		for i, s := range r.PassSec {
			ps[i] = fmt.Sprintf("%.2f", s)
		}
		fmt.Fprintf(w, "| %s | %d | %d × %d | **%.2f s** | %s | %d | %d | %d | %d | %d | %d | %d | %.0f | %d | %.0f | %d / %d | %.2f |\n",
			r.Latencies, r.Pipelines, r.Shards, r.Workers, r.PassP50Sec, strings.Join(ps, " "), r.Observed, r.Left, r.RuntimeCalls, r.Checks,
			r.PeakInFlight, r.Gets, r.Queries, r.RRU, r.Transactions, r.WRU, r.LogLines, r.LogBytes, r.CPUSecPerPass)
	}
	fmt.Fprintf(w, "\nLatency models: %s; %s.\n\n", LatencyRuntimeOnly.Describe, LatencyAWSLike.Describe)
}

// printPipelineMonth writes the always-on cost (beside the cost per stop).
func printPipelineMonth(w io.Writer, res *Results) {
	if len(res.PipelineMonth) == 0 {
		return
	}
	fmt.Fprintf(w, "Always-on cost (the reconciler: Lambda, its DynamoDB reads and writes, its logs), USD per month\n\n| latencies | pipelines | shards | invocations | GB-s | Lambda | DynamoDB reads | DynamoDB writes | logs | total | **per pipeline-month** |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range res.PipelineMonth {
		fmt.Fprintf(w, "| %s | %d | %d | %.0f | %.0f | $%.2f | $%.2f | $%.2f | $%.2f | $%.2f | **$%.5f** |\n", c.Latencies, c.Pipelines, c.Shards,
			c.InvocationsPerMonth, c.GBSecondsPerMonth, c.LambdaUSD, c.ReadsUSD, c.WritesUSD, c.LogsUSD, c.TotalUSD, c.PerPipelineUSD)
	}
	fmt.Fprintf(w, "\nPrices: %s\n\n", res.AlwaysOnPrices.Source)
}
