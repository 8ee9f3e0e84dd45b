// Command reconciler is the scheduled Lambda (every minute) that observes
// provisioned pipelines and restarts lost workflows (internal/reconciler).
// Wiring only. Environment: as functions/steps, plus SLUICE_STUCK_THRESHOLD
// and SLUICE_RECONCILER_WORKERS (the pass's concurrency, default 32).
package main

import (
	"context"
	"os"

	"github.com/sluicehq/sluice/internal/awswire"
	"github.com/sluicehq/sluice/internal/metrics"
	"github.com/sluicehq/sluice/internal/obs"
	"github.com/sluicehq/sluice/internal/reconciler"
)

func main() { awswire.Start("reconciler", wire) }

// wire builds the handler once per execution environment (awswire.Start).
func wire(env awswire.Env) (any, error) {
	logger := env.Logger
	clients, err := env.Clients()
	obs.ExitOnError(logger, "reconciler: configuration", err)
	threshold, err := metrics.StuckThresholdFromEnv(awswire.Getenv)
	obs.ExitOnError(logger, "reconciler: configuration", err)
	workers, err := reconciler.WorkersFromEnv(awswire.Getenv)
	obs.ExitOnError(logger, "reconciler: configuration", err)
	r := &reconciler.Reconciler{
		Store: clients.Store, Workflows: clients.Workflows, Driver: clients.Driver,
		RuntimeFor: awswire.RuntimeFor, Logger: logger,
		Metrics: metrics.New(os.Stdout), StuckThreshold: threshold,
		Workers: workers,
	}
	return func(ctx context.Context) (reconciler.Report, error) {
		// Every log line of this pass carries the invocation's request id.
		pass := *r
		pass.Logger = logger.With("aws_request_id", obs.LambdaRequestID(ctx))
		return pass.Run(ctx)
	}, nil
}
