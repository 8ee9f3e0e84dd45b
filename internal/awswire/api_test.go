package awswire

import (
	"io"
	"log/slog"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

var awsCfg = aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("x", "x", "")}

const arns = `{"start":"arn:aws:states:us-east-1:123456789012:stateMachine:sluice-start","suspend":"arn:aws:states:us-east-1:123456789012:stateMachine:sluice-suspend","stop":"arn:aws:states:us-east-1:123456789012:stateMachine:sluice-stop","clear":"arn:aws:states:us-east-1:123456789012:stateMachine:sluice-clear"}`

func TestAPI(t *testing.T) {
	quiet := slog.New(slog.NewJSONHandler(io.Discard, nil))
	ok := map[string]string{"SLUICE_TABLE": "t", "SLUICE_STATE_MACHINE_ARNS": arns}
	if _, err := API(env(ok), awsCfg, quiet); err != nil {
		t.Fatal(err)
	}
	withLogs := map[string]string{"SLUICE_TABLE": "t", "SLUICE_STATE_MACHINE_ARNS": arns, "SLUICE_RUNTIME_LOG_GROUP": "/ecs/sluice",
		"SLUICE_RUNTIME_LOG_STREAM_PREFIX": "sluice", "SLUICE_ECS_CLUSTER": "sluice", "SLUICE_ECS_CONTAINER_NAME": "runtime"}
	if _, err := API(env(withLogs), awsCfg, quiet); err != nil {
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
		if _, err := API(env(m), awsCfg, quiet); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestAuthorizer(t *testing.T) {
	quiet := slog.New(slog.NewJSONHandler(io.Discard, nil))
	if _, err := Authorizer(env(map[string]string{"SLUICE_TABLE": "t"}), awsCfg, quiet); err != nil {
		t.Fatal(err)
	}
	if _, err := Authorizer(env(map[string]string{}), awsCfg, quiet); err == nil {
		t.Error("no table: no error")
	}
}
