// Command bench is `make bench`'s measurement program: it starts the local
// stack, measures API latency, convergence, cost per stop, scale, and the
// Lambdas' cold start and size (internal/bench), prints the tables and
// writes the results as JSON to bench-results/ (git-ignored).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
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
	skip := flag.String("skip", "", "comma-separated parts to skip: latency, convergence, scale, coldstart")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := bench.Options{Scale: *scale, Convergence: *conv, FirstStops: *first, Requests: *requests, ColdStartRuns: *runs,
		Skip: map[string]bool{}, Log: os.Stderr}
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
