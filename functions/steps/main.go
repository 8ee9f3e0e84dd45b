// Command steps is the Lambda behind every Task state of the lifecycle
// workflows (statemachine/*.asl.json): one binary dispatching on the step name
// in its payload. Wiring only; the steps are internal/steps.
//
// Environment: SLUICE_TABLE, the state machine ARNs (workflow.StateMachinesFromEnv,
// for continue-as-new), the compute driver's settings (ecsfargate.ConfigFromEnv),
// the loop settings (steps.ConfigFromEnv) and SLUICE_LOG_LEVEL.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/sluicehq/sluice/internal/awswire"
	"github.com/sluicehq/sluice/internal/metrics"
	"github.com/sluicehq/sluice/internal/obs"
	"github.com/sluicehq/sluice/internal/steps"
)

func main() {
	logger := obs.FromEnv()
	ctx := context.Background()
	clients, err := awswire.FromEnv(ctx, awswire.Getenv)
	obs.ExitOnError(logger, "steps: configuration", err)
	cfg, err := steps.ConfigFromEnv(awswire.Getenv)
	obs.ExitOnError(logger, "steps: configuration", err)
	s := &steps.Steps{
		Store: clients.Store, Driver: clients.Driver, RuntimeFor: awswire.RuntimeFor,
		Continuer: clients.Workflows, Config: cfg, Logger: logger, Metrics: metrics.New(os.Stdout),
	}
	lambda.Start(s.Handle)
}
