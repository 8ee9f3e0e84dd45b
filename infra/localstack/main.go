// Command localstack is `make run`: the whole Sluice control plane on this
// machine (DynamoDB Local, the local Step Functions service, the local Lambda
// endpoint, the API with auth on, the reconciler and the local process
// compute running the sample runtime). Flags: `-h`; the logic is
// internal/localstack.Run.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/sluicehq/sluice/internal/localstack"
)

func main() {
	// Signals stay caught until exit: a second Ctrl-C during the shutdown
	// does not cut it short (that would leave runtimes behind).
	ctx, _ := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	os.Exit(localstack.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}
