// Command reconciler is the scheduled Lambda (every minute) that observes
// provisioned pipelines and restarts lost workflows (internal/reconciler);
// sharded, the scheduled invocation invokes it once per shard. Wiring only:
// the handler is built once per execution environment by
// awswire.ReconcilerHandler (which documents the environment it reads).
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/sluicehq/sluice/internal/awswire"
	"github.com/sluicehq/sluice/internal/obs"
)

func main() {
	logger := obs.FromEnv()
	awsCfg, err := config.LoadDefaultConfig(context.Background())
	obs.ExitOnError(logger, "reconciler: loading the AWS configuration", err)
	h, err := awswire.ReconcilerHandler(os.Getenv, awsCfg, logger)
	obs.ExitOnError(logger, "reconciler: configuration", err)
	lambda.Start(h)
}
