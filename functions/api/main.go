// Command api is the API Gateway REST API's proxy Lambda: every /v0 route of
// Sluice (SPEC §3–6), /healthz and /v0/openapi.json. Wiring only: the
// handler is httpapi.Handler.LambdaHandler, built once per execution
// environment by awswire.API (which documents the environment it reads).
package main

import "github.com/sluicehq/sluice/internal/awswire"

func main() { awswire.Start("api", awswire.APILambda) }
