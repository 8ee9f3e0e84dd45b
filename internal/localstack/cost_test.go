package localstack

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/sluicehq/sluice/internal/domain"
)

// execCost is what one execution's history says it costs: Step Functions
// Standard bills one state transition per state entered (retries included;
// these runs have none), and every Task here is one Lambda invocation.
type execCost struct {
	transitions int
	lambdas     int
	checks      int             // WaitUntilSuspended entries
	durations   []time.Duration // Lambda Scheduled → Succeeded, per invocation
}

func costOf(events []sfntypes.HistoryEvent) execCost {
	var c execCost
	var scheduled time.Time
	for _, ev := range events {
		switch {
		case strings.HasSuffix(string(ev.Type), "StateEntered"):
			c.transitions++
			if ev.StateEnteredEventDetails != nil && ev.StateEnteredEventDetails.Name != nil && *ev.StateEnteredEventDetails.Name == "WaitUntilSuspended" {
				c.checks++
			}
		case ev.Type == sfntypes.HistoryEventTypeLambdaFunctionScheduled:
			c.lambdas++
			scheduled = *ev.Timestamp
		case ev.Type == sfntypes.HistoryEventTypeLambdaFunctionSucceeded:
			c.durations = append(c.durations, ev.Timestamp.Sub(scheduled))
		}
	}
	return c
}

// The cost figures of the README ("What a stop costs"): state transitions and Lambda
// invocations of a forced stop and of graceful stops, measured on real
// executions of the real ASL. The test checks the structure the figures rely
// on (3 transitions and 1 invocation per suspend-check iteration) and logs
// the table; run it with -v to see it.
func TestCostFigures(t *testing.T) {
	t.Parallel()
	e := sharedEnv(t, stackDefault)

	forced := func(name string) execCost {
		e.startRunning(name)
		e.must("POST", "/v0/pipelines/"+name+"/stop?force=true", nil, 202)
		p := e.waitSettled(name, "Stopped", stopped)
		e.waitExecution(p.Workflow.ExecutionName)
		return costOf(e.execHistory(domain.WorkflowStop, p.Workflow.ExecutionName))
	}
	graceful := func(name string, pending int) execCost {
		e.startRunning(name)
		e.runtime(name).set(func(f *fakeRuntime) { f.pendingChecks = pending })
		e.must("POST", "/v0/pipelines/"+name+"/stop", nil, 202)
		p := e.waitSettled(name, "Stopped", stopped)
		if p.DeploymentError != nil {
			t.Fatalf("%s: %+v", name, p.DeploymentError)
		}
		e.waitExecution(p.Workflow.ExecutionName)
		return costOf(e.execHistory(domain.WorkflowSuspend, p.Workflow.ExecutionName))
	}
	f := forced(e.name("cost-forced"))
	g1 := graceful(e.name("cost-graceful-1"), 0) // suspended at the first check
	g5 := graceful(e.name("cost-graceful-5"), 4) // four more checks
	if g1.checks != 1 || g5.checks != 5 {
		t.Fatalf("checks %d and %d, want 1 and 5", g1.checks, g5.checks)
	}
	perCheckTransitions := (g5.transitions - g1.transitions) / (g5.checks - g1.checks)
	perCheckLambdas := (g5.lambdas - g1.lambdas) / (g5.checks - g1.checks)
	if perCheckTransitions != 3 || perCheckLambdas != 1 {
		t.Fatalf("per check: %d transitions, %d invocations; want 3 (Task, Choice, Wait) and 1", perCheckTransitions, perCheckLambdas)
	}
	fixedTransitions := g1.transitions - perCheckTransitions*g1.checks
	fixedLambdas := g1.lambdas - perCheckLambdas*g1.checks
	if f.transitions != 5 || f.lambdas != 3 || fixedTransitions != 5 || fixedLambdas != 5 {
		t.Fatalf("forced stop %d/%d, graceful fixed part %d/%d: the ASL changed, update the README's cost figures", f.transitions, f.lambdas, fixedTransitions, fixedLambdas)
	}

	var all []time.Duration
	for _, c := range []execCost{f, g1, g5} {
		all = append(all, c.durations...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	median := all[len(all)/2]

	// Prices (AWS list prices, us-east-1, as of 2026-11).
	const (
		perTransition   = 0.025 / 1000          // Step Functions Standard
		perRequest      = 0.20 / 1e6            // Lambda requests
		perGBSecondArm  = 0.0000133334          // Lambda duration, arm64
		memoryGB        = 128.0 / 1024          // the steps function's memory
		assumedDuration = 50 * time.Millisecond // per step invocation, billed
	)
	perInvocation := perRequest + memoryGB*assumedDuration.Seconds()*perGBSecondArm
	var b strings.Builder
	fmt.Fprintf(&b, "| stop | CheckSuspend iterations | state transitions | Lambda invocations | USD per 1M stops (Step Functions + Lambda) |\n|---|---|---|---|---|\n")
	row := func(what string, checks, transitions, lambdas int) {
		sfnCost := float64(transitions) * perTransition * 1e6
		lambdaCost := float64(lambdas) * perInvocation * 1e6
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %.2f (%.2f + %.2f) |\n", what, dash(checks), transitions, lambdas, sfnCost+lambdaCost, sfnCost, lambdaCost)
	}
	row("forced", 0, f.transitions, f.lambdas)
	// Iterations of the default backoff (base 1 s, cap 30 s, equal jitter at
	// its mean, Rand 0.5) until a suspend of that length is seen done: see
	// TestSuspendChecksForCost in internal/steps.
	for _, s := range []struct {
		what   string
		checks int
	}{{"graceful, suspend 1 s", 2}, {"graceful, suspend 60 s", 8}, {"graceful, suspend 10 min", 32}} {
		row(s.what, s.checks, fixedTransitions+perCheckTransitions*s.checks, fixedLambdas+perCheckLambdas*s.checks)
	}
	t.Logf("measured: forced stop %d transitions / %d invocations; graceful stop %d + %d per check transitions, %d + %d per check invocations; "+
		"step invocation median %s locally (%d invocations, race detector on)\n%s",
		f.transitions, f.lambdas, fixedTransitions, perCheckTransitions, fixedLambdas, perCheckLambdas, median, len(all), b.String())
}

func dash(n int) string {
	if n == 0 {
		return "–"
	}
	return fmt.Sprint(n)
}
