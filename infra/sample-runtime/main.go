// Command sample-runtime is the sample pipeline runtime: a stateful streaming job
// speaking the runtime protocol of SPEC §7. It is configured through environment
// variables; see package internal/sampleruntime for them and for the job.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/sluicehq/sluice/internal/sampleruntime"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := sampleruntime.Main(ctx, os.Getenv, os.Stderr)
	stop()
	os.Exit(code)
}
