package awswire

import (
	"io"
	"log/slog"
	"maps"
	"strings"
	"testing"
)

func TestReconcilerHandler(t *testing.T) {
	quiet := slog.New(slog.NewJSONHandler(io.Discard, nil))
	base := map[string]string{"SLUICE_TABLE": "t", "SLUICE_STATE_MACHINE_ARNS": arns,
		"SLUICE_ECS_CLUSTER": "sluice", "SLUICE_ECS_TASK_DEFINITION": "arn:aws:ecs:us-east-1:123456789012:task-definition/sluice:1",
		"SLUICE_ECS_CONTAINER_NAME": "runtime", "SLUICE_ECS_SUBNETS": "subnet-1", "SLUICE_ECS_SECURITY_GROUPS": "sg-1",
		"SLUICE_STORAGE_BUCKET": "b", "SLUICE_STORAGE_PREFIX": "p"}
	with := func(kv ...string) map[string]string {
		m := maps.Clone(base)
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for name, m := range map[string]map[string]string{
		"unsharded":         base,
		"one shard":         with("SLUICE_RECONCILER_SHARDS", "1"),
		"sharded, named":    with("SLUICE_RECONCILER_SHARDS", "4", EnvLambdaFunctionName, "sluice-ReconcilerFunction-x"),
		"workers and stuck": with("SLUICE_RECONCILER_WORKERS", "8", "SLUICE_STUCK_THRESHOLD", "20m"),
	} {
		if h, err := ReconcilerHandler(env(m), awsCfg, quiet); err != nil || h == nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, c := range map[string]struct {
		env  map[string]string
		want string
	}{
		"sharded without its own name": {with("SLUICE_RECONCILER_SHARDS", "4"), EnvLambdaFunctionName},
		"bad shards":                   {with("SLUICE_RECONCILER_SHARDS", "0"), "SLUICE_RECONCILER_SHARDS"},
		"bad workers":                  {with("SLUICE_RECONCILER_WORKERS", "x"), "SLUICE_RECONCILER_WORKERS"},
		"no table":                     {with("SLUICE_TABLE", ""), "SLUICE_TABLE"},
	} {
		if _, err := ReconcilerHandler(env(c.env), awsCfg, quiet); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want one naming %s", name, err, c.want)
		}
	}
}
