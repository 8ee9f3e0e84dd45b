package awswire

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/sluicehq/sluice/internal/metrics"
	"github.com/sluicehq/sluice/internal/obs"
	"github.com/sluicehq/sluice/internal/steps"
)

// Env is what a Lambda's wiring builds its handler from, loaded once per
// execution environment by Start.
type Env struct {
	Getenv func(string) string
	AWS    aws.Config   // config.LoadDefaultConfig's: region, credentials, endpoint overrides
	Logger *slog.Logger // obs.FromEnv's (SLUICE_LOG_LEVEL)
}

// Clients builds the clients the workflow-side Lambdas share (Build).
func (e Env) Clients() (Clients, error) { return Build(e.AWS, e.Getenv) }

// Start is every Lambda's main: it loads the Env (the logger, the AWS
// configuration), builds the handler with build once per execution
// environment, and serves it (lambda.Start). A failure of either ends the
// init with one JSON line, "<name>: loading the AWS configuration" or
// "<name>: configuration" (obs.ExitOnError).
func Start(name string, build func(Env) (any, error)) {
	logger := obs.FromEnv()
	awsCfg, err := config.LoadDefaultConfig(context.Background())
	obs.ExitOnError(logger, name+": loading the AWS configuration", err)
	handler, err := build(Env{Getenv: Getenv, AWS: awsCfg, Logger: logger})
	obs.ExitOnError(logger, name+": configuration", err)
	lambda.Start(handler)
}

// APILambda is the api function's handler: API's LambdaHandler.
func APILambda(e Env) (any, error) {
	h, err := API(e.Getenv, e.AWS, e.Logger)
	if err != nil {
		return nil, err
	}
	return h.LambdaHandler, nil
}

// AuthorizerLambda is the authorizer function's handler: Authorizer's Handle.
func AuthorizerLambda(e Env) (any, error) {
	a, err := Authorizer(e.Getenv, e.AWS, e.Logger)
	if err != nil {
		return nil, err
	}
	return a.Handle, nil
}

// StepsLambda is the steps function's handler: steps.Steps.Handle over the
// shared clients (Build) and the loop settings (steps.ConfigFromEnv); it
// logs each step with the invocation's request id.
func StepsLambda(e Env) (any, error) {
	clients, err := e.Clients()
	if err != nil {
		return nil, err
	}
	cfg, err := steps.ConfigFromEnv(e.Getenv)
	if err != nil {
		return nil, err
	}
	s := &steps.Steps{
		Store: clients.Store, Driver: clients.Driver, RuntimeFor: RuntimeFor,
		Continuer: clients.Workflows, Config: cfg, Logger: e.Logger, Metrics: metrics.New(os.Stdout),
	}
	return s.Handle, nil
}
