// Command bench is `make bench`'s measurement program: it starts the local
// stack, measures API latency and its floor, convergence, cost per stop,
// scale, the reconciler pass at scale with the cost per pipeline-month, and
// the Lambdas' cold start and size (internal/bench), prints the tables and
// writes the results as JSON to bench-results/ (git-ignored).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/sluicehq/sluice/internal/bench"
)

func main() {
	out := flag.String("out", "bench-results", "folder for the JSON results")
	scale := flag.Int("scale", 500, "pipelines of the scale test")
	conv := flag.Int("convergence", 100, "stops of each kind measured for convergence and cost")
	first := flag.Int("first-stops", 192, "first stops per concurrency level of the latency test")
	requests := flag.Int("requests", 1000, "requests per concurrency level of the repeated-request latency tests")
	runs := flag.Int("cold-start-runs", 5, "cold starts per Lambda")
	recSizes := flag.String("reconciler-sizes", "100,1000,10000", "pipeline counts of the reconciler pass bench (one pass each, -reconciler-workers at once)")
	recWorkers := flag.Int("reconciler-workers", 32, "the reconciler pass's concurrency (per shard)")
	recPasses := flag.Int("reconciler-passes", 3, "passes per reconciler configuration (the p50 is reported)")
	recSharded := flag.Int("reconciler-sharded", 100000, "pipelines of the sharded reconciler simulation (-1: none)")
	recShards := flag.Int("reconciler-shards", 10, "concurrent shard passes of the sharded simulation")
	recChurn := flag.Float64("reconciler-churn", 0.01, "fraction of runtimes answering 503 in a pass (-1: none)")
	skip := flag.String("skip", "", "comma-separated parts to skip: latency, floor, convergence, scale, reconciler, coldstart")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := bench.Options{Scale: *scale, Convergence: *conv, FirstStops: *first, Requests: *requests, ColdStartRuns: *runs,
		ReconcilerWorkers: *recWorkers, ReconcilerPasses: *recPasses, ReconcilerSharded: *recSharded, ReconcilerShards: *recShards,
		ReconcilerChurn: *recChurn, Skip: map[string]bool{}, Log: os.Stderr}
	for _, s := range strings.Split(*recSizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "bench: -reconciler-sizes: %q is not a positive integer\n", s)
			os.Exit(2)
		}
		opts.ReconcilerSizes = append(opts.ReconcilerSizes, n)
	}
	for _, s := range strings.Split(*skip, ",") {
		if s = strings.TrimSpace(s); s != "" {
			opts.Skip[s] = true
		}
	}
	res, err := bench.Run(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	bench.PrintTable(os.Stdout, res)
	path, err := bench.WriteJSON(res, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: writing the results:", err)
		os.Exit(1)
	}
	fmt.Printf("Results: %s\n", path)
	if len(res.Errors) > 0 {
		os.Exit(1)
	}
}
