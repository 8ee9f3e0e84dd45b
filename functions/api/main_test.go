package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

var awsCfg = aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("x", "x", "")}

const arns = `{"start":"arn:aws:states:us-east-1:123456789012:stateMachine:sluice-start","suspend":"arn:aws:states:us-east-1:123456789012:stateMachine:sluice-suspend","stop":"arn:aws:states:us-east-1:123456789012:stateMachine:sluice-stop","clear":"arn:aws:states:us-east-1:123456789012:stateMachine:sluice-clear"}`

func TestSetup(t *testing.T) {
	quiet := slog.New(slog.NewJSONHandler(io.Discard, nil))
	ok := map[string]string{"SLUICE_TABLE": "t", "SLUICE_STATE_MACHINE_ARNS": arns}
	if _, err := setup(env(ok), awsCfg, quiet); err != nil {
		t.Fatal(err)
	}
	withLogs := map[string]string{"SLUICE_TABLE": "t", "SLUICE_STATE_MACHINE_ARNS": arns, "SLUICE_RUNTIME_LOG_GROUP": "/ecs/sluice",
		"SLUICE_RUNTIME_LOG_STREAM_PREFIX": "sluice", "SLUICE_ECS_CLUSTER": "sluice", "SLUICE_ECS_CONTAINER_NAME": "runtime"}
	if _, err := setup(env(withLogs), awsCfg, quiet); err != nil {
		t.Fatalf("with runtime logs: %v", err)
	}
	for name, m := range map[string]map[string]string{
		"log group without cluster": {"SLUICE_TABLE": "t", "SLUICE_STATE_MACHINE_ARNS": arns, "SLUICE_RUNTIME_LOG_GROUP": "/ecs/sluice"},
		"no table":                  {"SLUICE_STATE_MACHINE_ARNS": arns},
		"no state machines":         {"SLUICE_TABLE": "t"},
		"bad auth flag":             {"SLUICE_TABLE": "t", "SLUICE_STATE_MACHINE_ARNS": arns, "SLUICE_AUTH_DISABLED": "maybe"},
		"bad checkpoint":            {"SLUICE_TABLE": "t", "SLUICE_STATE_MACHINE_ARNS": arns, "SLUICE_CHECKPOINT_TIMEOUT": "soon"},
		"missing clear kind":        {"SLUICE_TABLE": "t", "SLUICE_STATE_MACHINE_ARNS": `{"start":"arn:aws:states:us-east-1:1:stateMachine:a"}`},
	} {
		if _, err := setup(env(m), awsCfg, quiet); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestFixtureEvent: event.json (for `sam local invoke -e`) is an API Gateway
// REST proxy event of POST /v0/pipelines/{pipeline_name}/stop?force=true with
// the authorizer's context (the httpapi tests also run it against DynamoDB
// Local).
func TestFixtureEvent(t *testing.T) {
	b, err := os.ReadFile("event.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.HTTPMethod != "POST" || ev.Resource != "/v0/pipelines/{pipeline_name}/stop" || ev.PathParameters["pipeline_name"] != "p1" ||
		ev.QueryStringParameters["force"] != "true" || ev.RequestContext.Authorizer["principal_role"] != "write" {
		t.Fatalf("fixture %+v", ev)
	}
}
