package awswire

import (
	"io"
	"log/slog"
	"testing"
)

// The handlers Start serves: each builds from a complete environment and
// refuses an incomplete one.
func TestLambdas(t *testing.T) {
	quiet := slog.New(slog.NewJSONHandler(io.Discard, nil))
	full := env(map[string]string{"SLUICE_TABLE": "t", "SLUICE_STATE_MACHINE_ARNS": arns,
		"SLUICE_ECS_CLUSTER": "sluice", "SLUICE_ECS_TASK_DEFINITION": "sluice-runtime", "SLUICE_ECS_CONTAINER_NAME": "runtime",
		"SLUICE_ECS_SUBNETS": "subnet-1", "SLUICE_ECS_SECURITY_GROUPS": "sg-1", "SLUICE_STORAGE_BUCKET": "b"})
	empty := env(map[string]string{})
	for name, build := range map[string]func(Env) (any, error){"api": APILambda, "authorizer": AuthorizerLambda, "steps": StepsLambda} {
		if h, err := build(Env{Getenv: full, AWS: awsCfg, Logger: quiet}); err != nil || h == nil {
			t.Errorf("%s: %v, %v", name, h, err)
		}
		if _, err := build(Env{Getenv: empty, AWS: awsCfg, Logger: quiet}); err == nil {
			t.Errorf("%s without a table: no error", name)
		}
	}
}
