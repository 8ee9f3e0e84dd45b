package reconciler

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/compute"
	"github.com/sluicehq/sluice/internal/domain"
)

// countingDriver counts the compute checks per pipeline.
type countingDriver struct {
	stubDriver
	mu     sync.Mutex
	checks map[string]int
}

func (d *countingDriver) Check(ctx context.Context, name, deploymentID string) (compute.CheckResult, error) {
	d.mu.Lock()
	d.checks[name]++
	d.mu.Unlock()
	return d.stubDriver.Check(ctx, name, deploymentID)
}

func (f *fixture) countChecks() *countingDriver {
	d := &countingDriver{stubDriver: stubDriver{check: f.drv.check}, checks: map[string]int{}}
	f.rec.Driver = d
	return d
}

func (f *fixture) runningMany(n int) []string {
	f.t.Helper()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("p%02d", i)
		f.running(names[i])
	}
	return names
}

// A concurrent pass observes every provisioned pipeline exactly once,
// whatever the number of workers, and its report adds up.
func TestConcurrentPassObservesEachPipelineOnce(t *testing.T) {
	f := newFixture(t)
	names := f.runningMany(7)
	for _, workers := range []int{1, 3, 32} {
		d := f.countChecks()
		f.rec.Workers = workers
		rep := f.run()
		if rep.Pipelines != len(names) || rep.Observed != len(names) || rep.Workers != workers || rep.Left != 0 || rep.Unfinished {
			t.Fatalf("workers %d: report %+v", workers, rep)
		}
		for _, n := range names {
			if d.checks[n] != 1 {
				t.Fatalf("workers %d: %s checked %d times", workers, n, d.checks[n])
			}
		}
	}
}

// Concurrent observations are fenced as serial ones: every pipeline's
// runtime change is recorded once, as one write of its record.
func TestConcurrentPassRecordsEveryChange(t *testing.T) {
	f := newFixture(t)
	names := f.runningMany(6)
	f.rt.report.RuntimeStatus = domain.RuntimePaused
	f.act(names[0], func(p domain.Pipeline, now time.Time) (domain.Outcome, error) { return domain.Pause(p, now) })
	before := map[string]int64{}
	for _, n := range names {
		before[n] = f.get(n).RefreshVersion
	}
	f.rec.Workers = 4
	rep := f.run()
	if rep.RuntimeChanges != len(names) {
		t.Fatalf("report %+v", rep)
	}
	for _, n := range names {
		p := f.get(n)
		if p.DeploymentStatus() != domain.CombinedPaused || p.RefreshVersion != before[n]+1 {
			t.Fatalf("%s: %s, refresh version %d → %d", n, p.DeploymentStatus(), before[n], p.RefreshVersion)
		}
	}
	// The others desire Running: the pass resumed each of them once.
	if rep.RuntimeActions != len(names)-1 || f.rt.starts != len(names)-1 {
		t.Fatalf("runtime actions %d, starts %d", rep.RuntimeActions, f.rt.starts)
	}
	if rep := f.run(); rep.RuntimeChanges != 0 {
		t.Fatalf("nothing changed: %+v", rep)
	}
}

// A pass whose deadline is nearer than its stop margin takes no pipeline and
// reports the listed ones it left to the next pass.
func TestPassStopsBeforeItsDeadline(t *testing.T) {
	f := newFixture(t)
	f.runningMany(3)
	d := f.countChecks()
	f.rec.StopMargin = time.Hour
	ctx, cancel := context.WithTimeout(f.ctx, time.Minute)
	defer cancel()
	rep, err := f.rec.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Pipelines != 0 || rep.Observed != 0 || len(d.checks) != 0 || !rep.Unfinished || rep.Left != f.rec.PageSize {
		t.Fatalf("report %+v, checks %v", rep, d.checks)
	}
	// With time enough, the same pass takes them all.
	f.rec.StopMargin = time.Second
	rep, err = f.rec.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Observed != 3 || rep.Unfinished || rep.Left != 0 {
		t.Fatalf("report %+v", rep)
	}
}

// Shards split a pass: each pipeline is observed by exactly one of them.
func TestShardsCoverEveryPipelineOnce(t *testing.T) {
	f := newFixture(t)
	names := f.runningMany(9)
	d := f.countChecks()
	const shards = 3
	total := 0
	for s := range shards {
		f.rec.Shards, f.rec.Shard = shards, s
		total += f.run().Observed
	}
	if total != len(names) {
		t.Fatalf("observed %d of %d", total, len(names))
	}
	for _, n := range names {
		if d.checks[n] != 1 {
			t.Fatalf("%s checked %d times", n, d.checks[n])
		}
	}
}

func TestWorkersFromEnv(t *testing.T) {
	for v, want := range map[string]int{"": 0, "1": 1, "64": 64} {
		if n, err := WorkersFromEnv(func(string) string { return v }); err != nil || n != want {
			t.Errorf("%q: %d, %v; want %d", v, n, err, want)
		}
	}
	for _, v := range []string{"0", "-3", "x", "5000"} {
		if _, err := WorkersFromEnv(func(string) string { return v }); err == nil {
			t.Errorf("%q accepted", v)
		}
	}
}
