package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/dynamolocal"
)

// Setup describes the stack the figures come from.
const Setup = "local stack: DynamoDB Local (in memory) + the local Step Functions service running statemachine/*.asl.json " +
	"with production timings (no Wait/Retry overrides) + the step Lambdas behind the local Invoke endpoint + the API on 127.0.0.1 " +
	"with API-key auth (every request verified); compute: InstantCompute (in-process runtimes, ready at once, instant checkpoint); " +
	"reconciler off; client and server on the same machine"

// Run takes every measurement. A part that fails is recorded in
// Results.Errors and the others still run.
func Run(ctx context.Context, opts Options) (*Results, error) {
	opts = opts.withDefaults()
	root := opts.ModuleRoot
	if root == "" {
		var err error
		if root, err = dynamolocal.ModuleRoot(); err != nil {
			return nil, err
		}
		opts.ModuleRoot = root
	}
	res := &Results{StartedAt: time.Now().UTC(), Machine: DescribeMachine(), Setup: Setup, Prices: ListPrices, AlwaysOnPrices: AlwaysOn}
	begin := time.Now()
	fail := func(part string, err error) {
		res.Errors = append(res.Errors, part+": "+err.Error())
		fmt.Fprintf(opts.Log, "%s: FAILED: %v\n", part, err)
	}
	parts := []struct {
		name string
		run  func(ctx context.Context, fresh func() (*env, error)) error
	}{
		{"latency", func(ctx context.Context, fresh func() (*env, error)) error { return runLatency(ctx, fresh, opts, res) }},
		{"floor", func(ctx context.Context, fresh func() (*env, error)) error { return runFloor(ctx, fresh, opts, res) }},
		{"convergence", func(ctx context.Context, fresh func() (*env, error)) error {
			return runConvergence(ctx, fresh, opts, res)
		}},
		{"scale", func(ctx context.Context, fresh func() (*env, error)) error {
			e, err := fresh()
			if err != nil {
				return err
			}
			return runScale(ctx, e, opts, res)
		}},
	}
	for _, p := range parts {
		if opts.Skip[p.name] {
			continue
		}
		// A fresh stack for every series of measurements: no series measures
		// on another's leftovers (executions, items, a warm JIT).
		var open []*env
		fresh := func() (*env, error) {
			for _, e := range open {
				if err := e.close(); err != nil {
					fmt.Fprintf(opts.Log, "%s: closing a stack: %v\n", p.name, err)
				}
			}
			open = nil
			fmt.Fprintf(opts.Log, "%s  %s: starting a local stack\n", time.Now().Format("15:04:05"), p.name)
			e, err := startEnv(ctx, opts)
			if err == nil {
				open = append(open, e)
			}
			return e, err
		}
		if err := p.run(ctx, fresh); err != nil {
			fail(p.name, err)
		}
		for _, e := range open {
			if err := e.close(); err != nil {
				fmt.Fprintf(opts.Log, "%s: closing the stack: %v\n", p.name, err)
			}
		}
	}
	if !opts.Skip["reconciler"] {
		// No local stack: the pass runs over in-memory doubles.
		if err := runReconcilerScale(ctx, opts, res); err != nil {
			fail("reconciler", err)
		}
	}
	if !opts.Skip["coldstart"] {
		e := &env{log: opts.Log}
		if err := runColdStart(ctx, e, root, opts, res); err != nil {
			fail("coldstart", err)
		}
	}
	res.DurationSec = time.Since(begin).Seconds()
	return res, nil
}

// WriteJSON writes the results to dir (created) as bench-<time>.json and
// latest.json; it returns the first file's path.
func WriteJSON(res *Results, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "bench-"+res.StartedAt.Format("20060102-150405")+".json")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return "", err
	}
	return path, os.WriteFile(filepath.Join(dir, "latest.json"), append(b, '\n'), 0o644)
}

// PrintTable writes the results as Markdown tables.
func PrintTable(w io.Writer, res *Results) {
	m := res.Machine
	fmt.Fprintf(w, "Machine: %d cores (%s), %s GiB memory, %s %s/%s, %s\n", m.CPUs, m.CPUModel, m.MemoryGiB, m.GoVersion, m.OS, m.Arch, m.Java)
	fmt.Fprintf(w, "Setup: %s\n\n", res.Setup)
	if len(res.Latency) > 0 {
		fmt.Fprintf(w, "API latency (send → whole answer read), ms\n\n| request | clients | p50 | p95 | p99 | max | req/s | n |\n|---|---|---|---|---|---|---|---|\n")
		for _, l := range res.Latency {
			fmt.Fprintf(w, "| %s | %d | %.1f | %.1f | %.1f | %.1f | %.0f | %d |\n", l.Request, l.Concurrency, l.Dist.P50, l.Dist.P95, l.Dist.P99, l.Dist.Max, l.PerSec, l.Dist.N)
		}
		fmt.Fprintln(w)
	}
	printFloor(w, res)
	printAnatomy(w, res)
	if len(res.Convergence) > 0 {
		fmt.Fprintf(w, "Convergence (202 → state reached, one at a time, production timings), ms\n\n| action | p50 | p99 | max | n | path |\n|---|---|---|---|---|---|\n")
		for _, c := range res.Convergence {
			fmt.Fprintf(w, "| %s | %.1f | %.1f | %.1f | %d | %s |\n", c.Action, c.Dist.P50, c.Dist.P99, c.Dist.Max, c.Dist.N, c.Measures)
		}
		fmt.Fprintln(w)
	}
	if len(res.Cost) > 0 {
		fmt.Fprintf(w, "Cost per execution (from GetExecutionHistory) and per 1M, USD\n\n| workflow | executions | state transitions | Lambda invocations | step median (local) | Step Functions | Lambda | total per 1M |\n|---|---|---|---|---|---|---|---|\n")
		for _, c := range res.Cost {
			fmt.Fprintf(w, "| %s | %d | %s | %s | %.1f ms | $%.2f | $%.2f | **$%.2f** |\n", c.Workflow, c.Executions,
				span(c.TransitionsMin, c.TransitionsMax), span(c.LambdasMin, c.LambdasMax), c.StepMedianMs, c.StepFunctionsUSD, c.LambdaUSD, c.TotalUSDPerMillon)
		}
		fmt.Fprintf(w, "\nPrices: %s\n\n", res.Prices.Source)
	}
	printPipelineMonth(w, res)
	if s := res.Scale; s != nil {
		fmt.Fprintf(w, "Scale (%d pipelines, %s)\n\n| | value |\n|---|---|\n", s.Pipelines, s.Measures)
		fmt.Fprintf(w, "| starts accepted per second (64 clients) | %.0f |\n| start of the first → all Running | %.1f s |\n", s.StartsAcceptedPerSec, s.AllRunningSec)
		fmt.Fprintf(w, "| stops accepted per second (%d at once) | %.0f |\n| stop 202 latency p50 / p99 | %.0f / %.0f ms |\n", s.Pipelines, s.StopsAcceptedPerSec, s.StopLatency.P50, s.StopLatency.P99)
		fmt.Fprintf(w, "| release → all Stopped | %.1f s |\n| release → Stopped p50 / p99 | %.1f / %.1f s |\n\n", s.AllStoppedSec, s.StopConvergence.P50/1000, s.StopConvergence.P99/1000)
	}
	printReconcilerScale(w, res)
	if len(res.ColdStart) > 0 {
		fmt.Fprintf(w, "Lambda cold start (Runtime Interface Emulator INIT REPORT, median) and bootstrap sizes\n\n| function | init (ms) | runs | 1st invoke (ms) | %s | linux/arm64 |\n|---|---|---|---|---|---|\n", res.ColdStart[0].HostArch)
		for _, c := range res.ColdStart {
			runs := make([]string, len(c.InitRunsMs))
			for i, r := range c.InitRunsMs {
				runs[i] = fmt.Sprintf("%.1f", r)
			}
			fmt.Fprintf(w, "| %s | %.1f | %s | %.1f | %.1f MiB | %.1f MiB |\n", c.Function, c.InitMedianMs, strings.Join(runs, " "), c.FirstInvokeMedianMs, mib(c.HostBytes), mib(c.Arm64Bytes))
		}
		fmt.Fprintln(w)
	}
	for _, e := range res.Errors {
		fmt.Fprintf(w, "ERROR: %s\n", e)
	}
	fmt.Fprintf(w, "Total: %.0f s\n", res.DurationSec)
}

func span(lo, hi int) string {
	if lo == hi {
		return fmt.Sprint(lo)
	}
	return fmt.Sprintf("%d–%d", lo, hi)
}
