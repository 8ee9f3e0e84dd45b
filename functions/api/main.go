// Command api is the API Gateway REST API's proxy Lambda: every /v0 route of
// Sluice (SPEC §3–6), /healthz and /v0/openapi.json. Wiring only: the
// handler is httpapi.Handler.LambdaHandler, built once per execution
// environment by awswire.API (which documents the environment it reads).
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
	obs.ExitOnError(logger, "api: loading the AWS configuration", err)
	h, err := awswire.API(os.Getenv, awsCfg, logger)
	obs.ExitOnError(logger, "api: configuration", err)
	lambda.Start(h.LambdaHandler)
}
