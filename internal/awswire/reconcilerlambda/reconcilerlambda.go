// Package reconcilerlambda wires the reconciler function: its handler
// (reconciler.Entry over the clients of awswire.Build) and the Lambda client
// a sharded coordinator invokes its shards with. It is a package of its own
// so that only the reconciler's binary links the Lambda API client.
package reconcilerlambda

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/sluicehq/sluice/internal/awswire"
	"github.com/sluicehq/sluice/internal/metrics"
	"github.com/sluicehq/sluice/internal/obs"
	"github.com/sluicehq/sluice/internal/reconciler"
)

// LambdaAPI is the part of the Lambda client Invoker uses.
type LambdaAPI interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, optFns ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

// Invoker invokes Function with InvocationType Event: Lambda queues
// the event and answers 202 at once (API_Invoke: "Event – Invoke the
// function asynchronously. Send events that fail multiple times to the
// function's dead-letter queue"; the function's EventInvokeConfig, zero
// retries in template.yaml, applies to these invocations too).
type Invoker struct {
	Client   LambdaAPI
	Function string // name or ARN; the function's own (AWS_LAMBDA_FUNCTION_NAME)
}

// InvokeAsync implements reconciler.Invoker.
func (l Invoker) InvokeAsync(ctx context.Context, payload []byte) error {
	out, err := l.Client.Invoke(ctx, &lambda.InvokeInput{
		FunctionName: aws.String(l.Function), InvocationType: lambdatypes.InvocationTypeEvent, Payload: payload,
	})
	if err != nil {
		return err
	}
	// "For asynchronous invocation, Lambda adds events to a queue before
	// sending them to your function ... If successful, the response is
	// 202" (API_Invoke, StatusCode).
	if out.StatusCode != 202 {
		return fmt.Errorf("reconciler: asynchronous invoke of %s answered %d, want 202", l.Function, out.StatusCode)
	}
	return nil
}

// EnvLambdaFunctionName is the function's own name, set by Lambda (a
// reserved variable): a sharded reconciler invokes itself by it.
const EnvLambdaFunctionName = "AWS_LAMBDA_FUNCTION_NAME"

// Handler builds the reconciler function's handler
// (reconciler.Entry) from the environment: the clients of Build, plus
// metrics.EnvStuckThreshold, reconciler.EnvWorkers and reconciler.EnvShards;
// sharded, a Lambda client invoking EnvLambdaFunctionName. Every log line
// of an invocation carries its request id.
func Handler(getenv func(string) string, awsCfg aws.Config, logger *slog.Logger) (func(context.Context, json.RawMessage) (any, error), error) {
	clients, err := awswire.Build(awsCfg, getenv)
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
		RuntimeFor: awswire.RuntimeFor, Logger: logger, Metrics: metrics.New(os.Stdout),
		StuckThreshold: threshold, Workers: workers,
	}
	entry := reconciler.Entry{Pass: r, Shards: shards}
	if shards > 1 {
		fn := getenv(EnvLambdaFunctionName)
		if fn == "" {
			return nil, fmt.Errorf("%s=%d needs $%s (set by Lambda)", reconciler.EnvShards, shards, EnvLambdaFunctionName)
		}
		entry.Invoker = Invoker{Client: lambda.NewFromConfig(awsCfg), Function: fn}
	}
	return func(ctx context.Context, payload json.RawMessage) (any, error) {
		log := logger.With("aws_request_id", obs.LambdaRequestID(ctx))
		pass := *r
		pass.Logger = log
		inv := entry
		inv.Pass = &pass
		return inv.Handle(ctx, payload)
	}, nil
}

// Lambda is the reconciler function's handler for awswire.Start (Handler).
func Lambda(e awswire.Env) (any, error) {
	return Handler(e.Getenv, e.AWS, e.Logger)
}
