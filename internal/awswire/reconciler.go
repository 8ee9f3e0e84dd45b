package awswire

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/sluicehq/sluice/internal/metrics"
	"github.com/sluicehq/sluice/internal/obs"
	"github.com/sluicehq/sluice/internal/reconciler"
)

// EnvLambdaFunctionName is the function's own name, set by Lambda (a
// reserved variable): a sharded reconciler invokes itself by it.
const EnvLambdaFunctionName = "AWS_LAMBDA_FUNCTION_NAME"

// ReconcilerHandler builds the reconciler function's handler
// (reconciler.Entry) from the environment: the clients of Build, plus
// metrics.EnvStuckThreshold, reconciler.EnvWorkers and reconciler.EnvShards;
// sharded, a Lambda client invoking EnvLambdaFunctionName. Every log line
// of an invocation carries its request id.
func ReconcilerHandler(getenv func(string) string, awsCfg aws.Config, logger *slog.Logger) (func(context.Context, json.RawMessage) (any, error), error) {
	clients, err := Build(awsCfg, getenv)
	if err != nil {
		return nil, err
	}
	threshold, err := metrics.StuckThresholdFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	workers, err := reconciler.WorkersFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	shards, err := reconciler.ShardsFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	r := &reconciler.Reconciler{
		Store: clients.Store, Workflows: clients.Workflows, Driver: clients.Driver,
		RuntimeFor: RuntimeFor, Logger: logger, Metrics: metrics.New(os.Stdout),
		StuckThreshold: threshold, Workers: workers,
	}
	entry := reconciler.Entry{Pass: r, Shards: shards, Logger: logger}
	if shards > 1 {
		fn := getenv(EnvLambdaFunctionName)
		if fn == "" {
			return nil, fmt.Errorf("%s=%d needs $%s (set by Lambda)", reconciler.EnvShards, shards, EnvLambdaFunctionName)
		}
		entry.Invoker = reconciler.LambdaInvoker{Client: lambda.NewFromConfig(awsCfg), Function: fn}
	}
	return func(ctx context.Context, payload json.RawMessage) (any, error) {
		log := logger.With("aws_request_id", obs.LambdaRequestID(ctx))
		pass := *r
		pass.Logger = log
		inv := entry
		inv.Pass, inv.Logger = &pass, log
		return inv.Handle(ctx, payload)
	}, nil
}

// ReconcilerLambda is the reconciler function's handler (ReconcilerHandler).
func ReconcilerLambda(e Env) (any, error) {
	return ReconcilerHandler(e.Getenv, e.AWS, e.Logger)
}
