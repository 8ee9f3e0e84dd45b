package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/localsfn"
	"github.com/sluicehq/sluice/internal/localstack"
	"github.com/sluicehq/sluice/internal/sampleruntime"
	"github.com/sluicehq/sluice/internal/store"
)

// soakDuration is how long the clients send actions ($SLUICE_SOAK changes it).
var soakDuration = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("SLUICE_SOAK")); err == nil && d > 0 {
		return d
	}
	return 60 * time.Second
}()

const (
	soakClients   = 32
	soakPipelines = 8
)

// soakConfigs are the pipelines' runtime_config: every one checkpoints
// periodically; most inject faults, mixed.
var soakConfigs = []map[string]any{
	{"checkpoint_interval_secs": 1},
	{"checkpoint_interval_secs": 1, "fault": map[string]any{"unavailable_secs": 3}},
	{"checkpoint_interval_secs": 1, "fault": map[string]any{"suspend_delay_secs": 2}},
	{"checkpoint_interval_secs": 1, "fault": map[string]any{"suspend_error": "disk full while writing the final checkpoint"}},
	{"checkpoint_interval_secs": 1, "fault": map[string]any{"crash_after_secs": 4}},
	{"checkpoint_interval_secs": 1, "fault": map[string]any{"unavailable_secs": 2, "suspend_delay_secs": 1}},
	{"checkpoint_interval_secs": 1, "fault": map[string]any{"crash_after_secs": 7, "suspend_delay_secs": 1}},
	{"checkpoint_interval_secs": 2, "fault": map[string]any{"suspend_delay_secs": 3, "unavailable_secs": 1, "suspend_error": "checkpoint upload refused"}},
}

// soakActions and their weights.
var soakActions = []struct {
	action string
	weight int
}{
	{actStartRunning, 10}, {actStartPaused, 3}, {actStop, 3}, {actForceStop, 2}, {actPause, 10}, {actResume, 10},
	{actCheckpoint, 8}, {actClear, 2}, {actDismiss, 2}, {actGet, 20},
}

func pickAction(r *rand.Rand) string {
	total := 0
	for _, a := range soakActions {
		total += a.weight
	}
	n := r.IntN(total)
	for _, a := range soakActions {
		if n < a.weight {
			return a.action
		}
		n -= a.weight
	}
	return actGet
}

// exactness collects the /stats checks of the sample runtimes.
type exactness struct {
	mu           sync.Mutex
	checks       int
	violations   []string
	incarnations map[string]bool // incarnation uuid → resumed from a checkpoint
	lastCount    map[string]uint64
}

func (x *exactness) observe(name string, body []byte) {
	var st sampleruntime.Stats
	if err := json.Unmarshal(body, &st); err != nil || st.IncarnationUUID == "" {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.checks++
	x.incarnations[st.IncarnationUUID] = st.RestoredFromCheckpoint != nil
	if !st.State().Consistent() {
		x.violations = append(x.violations, fmt.Sprintf("%s incarnation %s: count %d, sum %d, last %d (restored from %v)",
			name, st.IncarnationUUID, st.Count, st.Sum, st.LastSequenceNumber, show(st.RestoredFromCheckpoint)))
	}
	if st.RestoredSequenceNumber != nil && st.LastSequenceNumber < *st.RestoredSequenceNumber {
		x.violations = append(x.violations, fmt.Sprintf("%s incarnation %s: last %d before the checkpoint it resumed from (%d)",
			name, st.IncarnationUUID, st.LastSequenceNumber, *st.RestoredSequenceNumber))
	}
	if prev, ok := x.lastCount[st.IncarnationUUID]; ok && st.Count < prev {
		x.violations = append(x.violations, fmt.Sprintf("%s incarnation %s: count went back from %d to %d", name, st.IncarnationUUID, prev, st.Count))
	}
	x.lastCount[st.IncarnationUUID] = st.Count
}

func TestSoak(t *testing.T) {
	t.Parallel()
	stack, logs := startStack(t, localstack.Config{
		ReconcileInterval: 2 * time.Second,
		// Shorter Wait states and Retry pauses than production: more
		// workflow steps, and more interleavings, per second of soak.
		Overrides: localsfn.Overrides{WaitTimeOverrides: map[string]int{"*": 250}, RetryIntervalOverrides: map[string]int{"*": 250}},
	})
	c := newClient(t, stack)
	log := &actionLog{}
	ctx, cancel := context.WithTimeout(context.Background(), soakDuration+waitLimit)
	defer cancel()

	names := make([]string, soakPipelines)
	for i := range names {
		names[i] = fmt.Sprintf("soak-%d", i)
		cfg := soakConfigs[i%len(soakConfigs)]
		r := c.do(ctx, "POST", "/v0/pipelines", map[string]any{"name": names[i], "description": "soak", "runtime_config": cfg}, "create-"+names[i])
		if r.status != 201 {
			t.Fatalf("create %s: %d %s %v", names[i], r.status, r.body, r.err)
		}
		log.add(sent{Pipeline: names[i], Action: "create", RequestID: "create-" + names[i], Sent: time.Now(), Received: time.Now(), Status: r.status})
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("stack logs of the soak (tail):\n%s", logs.lines(200, "soak-"))
		}
	})

	// The clients, and the /stats poller.
	x := &exactness{incarnations: map[string]bool{}, lastCount: map[string]uint64{}}
	soakEnd := time.Now().Add(soakDuration)
	var wg sync.WaitGroup
	for ci := range soakClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(ci)+1, uint64(time.Now().UnixNano())))
			for n := 0; time.Now().Before(soakEnd) && ctx.Err() == nil && n < 100000; n++ {
				name := names[r.IntN(len(names))]
				s := c.act(ctx, log, name, pickAction(r), fmt.Sprintf("soak-c%02d-%05d", ci, n))
				if s.Action == actGet && s.Status == 200 {
					var p domain.Pipeline
					if err := json.Unmarshal([]byte(s.Body), &p); err != nil || p.Name != name {
						log.add(sent{Pipeline: name, Action: "get-invalid", RequestID: s.RequestID, Body: s.Body})
					}
				}
				time.Sleep(time.Duration(300+r.IntN(900)) * time.Millisecond)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for round := 0; time.Now().Before(soakEnd) && ctx.Err() == nil && round < 100000; round++ {
			for _, name := range names {
				r := c.do(ctx, "GET", "/v0/pipelines/"+name+"/stats", nil, "")
				if r.err == nil && r.status == 200 {
					x.observe(name, r.body)
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	wg.Wait()
	soakEnded := time.Now()

	// Quiescence: the clients have stopped; the reconciler keeps running.
	// Every pipeline must reach its last desired state, by the control
	// plane alone. A runtime left in the other of Running/Paused by a pause
	// or resume whose forwarding failed (the client got a 5xx) is the
	// reconciler's to converge (it forwards the desired status again): the
	// test never re-sends the action. A runtime that still looks so after
	// a few reconciler passes is counted as a redrive the test would have
	// needed, and the soak fails on any.
	mismatchSince := map[string]time.Time{}
	redrives := 0
	var needed []string
	deadline := time.Now().Add(waitLimit)
	for {
		all := true
		var state []string
		for _, name := range names {
			p, err := stack.Store.Get(ctx, name)
			if err != nil {
				t.Fatalf("get %s: %v", name, err)
			}
			state = append(state, fmt.Sprintf("%s %s/%s storage %s", name, p.DeploymentStatus(), p.DeploymentDesiredStatus(), p.StorageStatus))
			if settled(p) {
				delete(mismatchSince, name)
				continue
			}
			all = false
			runtimeOnly := p.Converged() && p.ResourcesStatus == domain.ResourcesProvisioned &&
				(p.DeploymentStatus() == domain.CombinedRunning || p.DeploymentStatus() == domain.CombinedPaused)
			if !runtimeOnly {
				delete(mismatchSince, name)
				continue
			}
			since, ok := mismatchSince[name]
			if !ok {
				mismatchSince[name] = time.Now()
				continue
			}
			if time.Since(since) > 20*time.Second { // some ten reconciler passes

				needed = append(needed, fmt.Sprintf("%s stayed %s with desired %s for several reconciler passes", name, p.DeploymentStatus(), p.DeploymentDesiredStatus()))
				redrives++
				delete(mismatchSince, name)
			}
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pipelines did not converge within %s after the soak:\n%s", waitLimit, strings.Join(state, "\n"))
		}
		time.Sleep(500 * time.Millisecond)
	}
	converged := time.Since(soakEnded)

	// Stop everything, so that the histories stop growing, then check them.
	for _, name := range names {
		if s := c.act(ctx, log, name, actForceStop, "final-"+name); !s.acknowledged() {
			t.Fatalf("final forced stop of %s: %d %s %s", name, s.Status, s.Body, s.Err)
		}
	}
	for _, name := range names {
		waitRecord(t, stack, name, "settled Stopped", func(p domain.Pipeline) bool { return fullyStopped(p) && settled(p) })
	}

	calls := log.all()
	requests := requestsByID(calls)
	var total historyReport
	var problems []string
	linOps, linViolations := 0, 0
	for _, name := range names {
		rec, events := stableHistory(t, stack, name)
		ps, rep := checkHistory(rec, events, requests)
		total.add(rep)
		if len(ps) > 0 {
			problems = append(problems, ps...)
			t.Logf("history of %s:\n%s", name, compactEvents(events))
		}
		// Linearizability of the calls to this pipeline (porcupine).
		ops, err := linearizabilityOps(name, calls, events)
		if err != nil {
			problems = append(problems, "linearizability: "+err.Error())
			linViolations++
			continue
		}
		res, info := checkLinearizable(createdRecord(rec, events), ops, 2*time.Minute)
		linOps += len(ops)
		if res != porcupine.Ok {
			problems = append(problems, fmt.Sprintf("linearizability: the %d calls to %s are %s", len(ops), name, res))
			linViolations++
			if f, err := os.CreateTemp("", "sluice-linearizability-*.html"); err == nil {
				if porcupine.Visualize(newModel(createdRecord(rec, events)).porcupineModel(modelOf(createdRecord(rec, events))), info, f) == nil {
					t.Logf("linearizability of %s: visualization in %s", name, f.Name())
				}
				f.Close()
			}
			t.Logf("history of %s:\n%s", name, compactEvents(events))
		}
	}
	t.Logf("linearizability: %d operations on %d pipelines checked against the sequential model (porcupine), %d violations",
		linOps, len(names), linViolations)

	// The summary.
	byAction := map[string]map[string]int{}
	invalidGets := 0
	for _, s := range requests {
		if s.Action == "get-invalid" {
			invalidGets++
			continue
		}
		if byAction[s.Action] == nil {
			byAction[s.Action] = map[string]int{}
		}
		key := strconv.Itoa(s.Status)
		var e struct {
			ErrorCode string `json:"error_code"`
		}
		if s.Status >= 400 && json.Unmarshal([]byte(s.Body), &e) == nil && e.ErrorCode != "" {
			key += " " + e.ErrorCode
		}
		byAction[s.Action][key]++
	}
	var lines []string
	for a, m := range byAction {
		var parts []string
		for st, n := range m {
			parts = append(parts, fmt.Sprintf("%d× %s", n, st))
		}
		sort.Strings(parts)
		lines = append(lines, fmt.Sprintf("  %-22s %s", a, strings.Join(parts, ", ")))
	}
	sort.Strings(lines)
	x.mu.Lock()
	resumed := 0
	for _, r := range x.incarnations {
		if r {
			resumed++
		}
	}
	t.Logf("soak %s, %d clients, %d pipelines: %d requests (status 0 = transport error)\n%s\n"+
		"history: %d events (%d user, %d workflow, %d reconciler writes), %d generations, acknowledged: %d writes + %d no-ops; "+
		"reconciler forced stops %d, second workflow kind in a generation %d\n"+
		"stats checks %d over %d incarnations (%d resumed from a checkpoint), %d violations; converged %s after the soak, %d pause/resume redrives needed (must be 0)",
		soakDuration, soakClients, soakPipelines, len(requests), strings.Join(lines, "\n"),
		total.Events, total.UserWrites, total.WorkflowWrites, total.ReconcilerWrites, total.Generations, total.AckWrites, total.AckNoOps,
		total.ForcedByReconciler, total.SecondKind, x.checks, len(x.incarnations), resumed, len(x.violations), converged.Round(time.Second), redrives)
	violations := append([]string(nil), x.violations...)
	x.mu.Unlock()

	if invalidGets > 0 {
		t.Errorf("%d GET answers were 200 without a valid pipeline record", invalidGets)
	}
	for _, v := range violations {
		t.Errorf("exactness: %s", v)
	}
	for _, p := range problems {
		t.Errorf("history: %s", p)
	}
	for _, n := range needed {
		t.Errorf("convergence: the test would have had to re-send a pause or resume: %s", n)
	}
	if linOps == 0 {
		t.Error("linearizability: no operation checked")
	}
	if total.AckWrites == 0 || x.checks == 0 || resumed == 0 {
		t.Errorf("the soak checked too little: %d acknowledged writes, %d stats checks, %d resumed incarnations", total.AckWrites, x.checks, resumed)
	}
}

// stableHistory reads a record and its whole history, again until the
// record did not change meanwhile.
func stableHistory(t *testing.T, stack *localstack.Stack, name string) (domain.Pipeline, []store.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for range 20 {
		before, err := stack.Store.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		events, err := history(ctx, stack.Store, name)
		if err != nil {
			t.Fatal(err)
		}
		after, err := stack.Store.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if before.RefreshVersion == after.RefreshVersion {
			return after, events
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s keeps changing", name)
	return domain.Pipeline{}, nil
}
