package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/bench"
	"github.com/sluicehq/sluice/internal/compute/localproc"
	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/localsfn"
	"github.com/sluicehq/sluice/internal/localstack"
	"github.com/sluicehq/sluice/internal/sampleruntime"
	"github.com/sluicehq/sluice/internal/store"
)

// fastWaits shortens the local engine's Wait states and Retry pauses.
var fastWaits = localsfn.Overrides{WaitTimeOverrides: map[string]int{"*": 200}, RetryIntervalOverrides: map[string]int{"*": 200}}

func TestChaos(t *testing.T) {
	t.Parallel()
	t.Run("SupervisedParts", func(t *testing.T) { t.Parallel(); chaosSupervisedParts(t) })
	t.Run("RestartDynamoDB", func(t *testing.T) { t.Parallel(); chaosRestartDynamo(t) })
	t.Run("RuntimeCrashMidCheckpoint", func(t *testing.T) { t.Parallel(); chaosCheckpointCrash(t) })
}

// reconcileUntil runs reconciler passes until cond holds (bounded).
func reconcileUntil(t *testing.T, stack *localstack.Stack, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if _, err := stack.Reconcile(ctx); err != nil {
			t.Logf("reconciler pass: %v", err)
		}
		cancel()
		if cond() {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("never: %s", what)
}

func get(t *testing.T, stack *localstack.Stack, name string) domain.Pipeline {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := stack.Store.Get(ctx, name)
	if err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	return p
}

// checkFinalHistory checks a pipeline's settled history (requests nil: the
// test's own setup requests are not tagged), failing the test on every
// problem, and returns its counts.
func checkFinalHistory(t *testing.T, stack *localstack.Stack, name string, requests map[string]sent) historyReport {
	t.Helper()
	rec, events := stableHistory(t, stack, name)
	problems, rep := checkHistory(rec, events, requests)
	for _, p := range problems {
		t.Errorf("history: %s", p)
	}
	if len(problems) > 0 {
		t.Logf("history of %s:\n%s", name, compactEvents(events))
	}
	return rep
}

// DynamoDB Local (persistent, DataDir) is restarted while 8 clients create
// pipelines and send lifecycle actions. Everything acknowledged before the
// restart is still there after it; every acknowledged action is in the
// history; the pipelines converge.
func chaosRestartDynamo(t *testing.T) {
	fake, err := bench.NewInstantCompute()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fake.Close() })
	stack, logs := startStack(t, localstack.Config{DataDir: t.TempDir(), Driver: fake, ReconcileInterval: 2 * time.Second, Overrides: fastWaits})
	c := newClient(t, stack)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("stack logs (tail):\n%s", logs.lines(150, "dyn-"))
		}
	})
	log := &actionLog{}
	var mu sync.Mutex
	var created []string
	stop := make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for ci := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(ci)+100, uint64(time.Now().UnixNano())))
			var mine []string
			for n := 0; n < 5000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("dyn-c%d-%04d", ci, n)
				if len(mine) == 0 || (len(mine) < 4 && r.IntN(4) == 0) {
					name := fmt.Sprintf("dyn-%d-%d", ci, len(mine))
					s := sent{Pipeline: name, Action: "create", RequestID: id, Sent: time.Now()}
					rep := c.do(ctx, "POST", "/v0/pipelines", map[string]any{"name": name, "runtime_config": map[string]any{"checkpoint_interval_secs": 1}}, id)
					s.Received, s.Status, s.Body = time.Now(), rep.status, string(rep.body)
					if rep.err != nil {
						s.Err = rep.err.Error()
					}
					log.add(s)
					if rep.status == 201 || rep.status == 409 {
						mine = append(mine, name)
						mu.Lock()
						created = append(created, name)
						mu.Unlock()
					}
				} else {
					actions := []string{actStartRunning, actStartPaused, actStop, actForceStop, actPause, actResume, actGet}
					c.act(ctx, log, mine[r.IntN(len(mine))], actions[r.IntN(len(actions))], id)
				}
				time.Sleep(time.Duration(20+r.IntN(100)) * time.Millisecond)
			}
		}()
	}

	// Mid-run: what the store acknowledged so far, then the restart.
	time.Sleep(6 * time.Second)
	snapshotAt := time.Now()
	mu.Lock()
	before := append([]string(nil), created...)
	mu.Unlock()
	type snap struct {
		rec    domain.Pipeline
		events []store.Event
	}
	snaps := map[string]snap{}
	for _, name := range before {
		rec, err := stack.Store.Get(ctx, name)
		if err != nil {
			t.Fatalf("get %s before the restart: %v", name, err)
		}
		events, err := history(ctx, stack.Store, name)
		if err != nil {
			t.Fatalf("history of %s before the restart: %v", name, err)
		}
		snaps[name] = snap{rec, events}
	}
	restartAt := time.Now()
	if err := stack.RestartDynamo(ctx); err != nil {
		t.Fatalf("restarting DynamoDB Local: %v", err)
	}
	restarted := time.Now()
	time.Sleep(5 * time.Second)
	close(stop)
	wg.Wait()

	// Nothing acknowledged before the restart was lost.
	for _, name := range before {
		s := snaps[name]
		rec, err := stack.Store.Get(ctx, name)
		if err != nil {
			t.Errorf("%s (created and read before the restart): %v", name, err)
			continue
		}
		if rec.ID != s.rec.ID || rec.RefreshVersion < s.rec.RefreshVersion {
			t.Errorf("%s: id %s refresh version %d after the restart; before: id %s version %d", name, rec.ID, rec.RefreshVersion, s.rec.ID, s.rec.RefreshVersion)
		}
		events, err := history(ctx, stack.Store, name)
		if err != nil {
			t.Fatalf("history of %s: %v", name, err)
		}
		if len(events) < len(s.events) {
			t.Errorf("%s: %d history events after the restart, %d before", name, len(events), len(s.events))
			continue
		}
		for i, ev := range s.events {
			a, _ := json.Marshal(ev)
			b, _ := json.Marshal(events[i])
			if string(a) != string(b) {
				t.Errorf("%s: history event %d changed across the restart:\n before %s\n after  %s", name, i, a, b)
			}
		}
	}
	all := log.all()
	ackBefore, ackDuring, unavailable := 0, 0, 0
	for _, s := range all {
		switch {
		case s.acknowledged() && s.Received.Before(snapshotAt):
			ackBefore++
		case s.acknowledged() && s.Received.Before(restarted):
			ackDuring++
		case s.Status == 503:
			unavailable++
		}
	}
	// Every pipeline converges, then the histories are checked.
	mu.Lock()
	names := append([]string(nil), created...)
	mu.Unlock()
	sort.Strings(names)
	for _, name := range names {
		waitRecord(t, stack, name, "settled", settled)
	}
	requests := requestsByID(all)
	var total historyReport
	for _, name := range names {
		total.add(checkFinalHistory(t, stack, name, requests))
	}
	t.Logf("%d requests, %d pipelines (%d read before the restart); acknowledged %d before the snapshot, %d until the restart was done; %d answered 503; "+
		"restart took %s; acknowledged writes %d, no-ops %d", len(all), len(names), len(before), ackBefore, ackDuring, unavailable,
		restarted.Sub(restartAt).Round(100*time.Millisecond), total.AckWrites, total.AckNoOps)
	if len(before) == 0 || ackBefore == 0 {
		t.Errorf("nothing was acknowledged before the restart")
	}
}

// A sample runtime crashes in the middle of writing its third checkpoint.
// The reconciler force-stops the pipeline (ComputeVanished); started again
// (the fault removed), it resumes from the newest complete checkpoint, and
// the exactness invariant holds.
func chaosCheckpointCrash(t *testing.T) {
	stack, logs := startStack(t, localstack.Config{ReconcileInterval: -1, Overrides: fastWaits})
	c := newClient(t, stack)
	name := "chaos-ckcrash"
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("stack logs (tail):\n%s", logs.lines(150, name))
		}
	})
	c.must(t, "POST", "/v0/pipelines", map[string]any{"name": name, "runtime_config": map[string]any{
		"checkpoint_interval_secs": 0, "fault": map[string]any{"checkpoint_crash": true, "checkpoint_crash_after": 2}}}, 201)
	c.must(t, "POST", "/v0/pipelines/"+name+"/start", nil, 202)
	waitRecord(t, stack, name, "Running", func(p domain.Pipeline) bool {
		return settled(p) && p.DeploymentStatus() == domain.CombinedRunning
	})
	for i := range 2 {
		time.Sleep(300 * time.Millisecond)
		c.must(t, "POST", "/v0/pipelines/"+name+"/checkpoint", nil, 200)
		_ = i
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if r := c.do(ctx, "POST", "/v0/pipelines/"+name+"/checkpoint", nil, ""); r.err == nil && r.status < 300 {
		t.Fatalf("the third checkpoint (the crashing one) was acknowledged: %d %s", r.status, r.body)
	}
	reconcileUntil(t, stack, "the pipeline is force-stopped", func() bool { return fullyStopped(get(t, stack, name)) })
	p := get(t, stack, name)
	if p.DeploymentError == nil || p.DeploymentError.ErrorCode != "ComputeVanished" {
		t.Fatalf("deployment_error %+v, want ComputeVanished", p.DeploymentError)
	}

	// Storage: the two acknowledged checkpoints, intact, and the torn one.
	driver, ok := stack.Driver.(*localproc.Driver)
	if !ok {
		t.Fatalf("the stack's driver is %T, want the local process driver", stack.Driver)
	}
	dir := driver.StorageDir(name, p.ID)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var valid []sampleruntime.Checkpoint
	torn := 0
	for _, e := range entries {
		switch {
		case strings.HasPrefix(e.Name(), ".tmp-checkpoint-"):
			torn++
		case strings.HasPrefix(e.Name(), "checkpoint-"):
			cp, err := sampleruntime.ReadCheckpoint(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Errorf("checkpoint %s is not intact: %v", e.Name(), err)
				continue
			}
			valid = append(valid, cp)
		}
	}
	if len(valid) != 2 || torn == 0 {
		t.Fatalf("storage after the crash: %d complete checkpoints and %d torn files, want 2 and at least 1", len(valid), torn)
	}
	sort.Slice(valid, func(i, j int) bool { return valid[i].Generation < valid[j].Generation })
	newest := valid[1]

	// Start again without the fault: it resumes from the newest complete one.
	c.must(t, "PUT", "/v0/pipelines/"+name, map[string]any{"description": "fault removed", "runtime_config": map[string]any{"checkpoint_interval_secs": 1}}, 200)
	c.must(t, "POST", "/v0/pipelines/"+name+"/start", nil, 202)
	waitRecord(t, stack, name, "Running again", func(p domain.Pipeline) bool {
		return settled(p) && p.DeploymentStatus() == domain.CombinedRunning
	})
	checks := 0
	eventually(t, "the resumed runtime processes events past its checkpoint", func() bool {
		r := c.do(ctx, "GET", "/v0/pipelines/"+name+"/stats", nil, "")
		if r.err != nil || r.status != 200 {
			return false
		}
		var st sampleruntime.Stats
		if err := json.Unmarshal(r.body, &st); err != nil {
			t.Fatalf("stats: %v: %s", err, r.body)
		}
		checks++
		if st.RestoredFromCheckpoint == nil || *st.RestoredFromCheckpoint != newest.UUID ||
			st.RestoredSequenceNumber == nil || *st.RestoredSequenceNumber != newest.SequenceNumber {
			t.Fatalf("resumed from %s (sequence %s), want the newest complete checkpoint %s (sequence %d)",
				show(st.RestoredFromCheckpoint), show(st.RestoredSequenceNumber), newest.UUID, newest.SequenceNumber)
		}
		if !st.State().Consistent() || st.Count < newest.State.Count {
			t.Fatalf("exactness after the resume: count %d sum %d last %d (checkpoint count %d)", st.Count, st.Sum, st.LastSequenceNumber, newest.State.Count)
		}
		return st.Count > newest.State.Count
	})
	t.Logf("crashed during checkpoint 3; resumed from checkpoint %s (sequence %d, count %d); %d stats checks consistent",
		newest.UUID, newest.SequenceNumber, newest.State.Count, checks)
	c.must(t, "POST", "/v0/pipelines/"+name+"/stop?force=true", nil, 202)
	waitRecord(t, stack, name, "Stopped", fullyStopped)
	checkFinalHistory(t, stack, name, nil)
}
