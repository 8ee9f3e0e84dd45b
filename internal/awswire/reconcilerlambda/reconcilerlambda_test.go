package reconcilerlambda

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

var awsCfg = aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("x", "x", "")}

const arns = `{"start":"arn:aws:states:us-east-1:123456789012:stateMachine:sluice-start","suspend":"arn:aws:states:us-east-1:123456789012:stateMachine:sluice-suspend","stop":"arn:aws:states:us-east-1:123456789012:stateMachine:sluice-stop","clear":"arn:aws:states:us-east-1:123456789012:stateMachine:sluice-clear"}`

func TestHandler(t *testing.T) {
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
		if h, err := Handler(env(m), awsCfg, quiet); err != nil || h == nil {
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
		if _, err := Handler(env(c.env), awsCfg, quiet); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want one naming %s", name, err, c.want)
		}
	}
}

type fakeLambda struct {
	in     *lambda.InvokeInput
	status int32
	err    error
}

func (f *fakeLambda) Invoke(_ context.Context, in *lambda.InvokeInput, _ ...func(*lambda.Options)) (*lambda.InvokeOutput, error) {
	f.in = in
	if f.err != nil {
		return nil, f.err
	}
	return &lambda.InvokeOutput{StatusCode: f.status}, nil
}

func TestInvokerInvokesAsynchronously(t *testing.T) {
	fl := &fakeLambda{status: 202}
	inv := Invoker{Client: fl, Function: "sluice-reconciler"}
	if err := inv.InvokeAsync(context.Background(), []byte(`{"shard":0,"shards":2}`)); err != nil {
		t.Fatal(err)
	}
	if *fl.in.FunctionName != "sluice-reconciler" || fl.in.InvocationType != lambdatypes.InvocationTypeEvent || string(fl.in.Payload) != `{"shard":0,"shards":2}` {
		t.Fatalf("input %+v", fl.in)
	}
	fl.status = 200
	if err := inv.InvokeAsync(context.Background(), nil); err == nil {
		t.Fatal("a 200 (a synchronous answer) was taken for a queued event")
	}
	fl.err = errors.New("AccessDeniedException")
	if err := inv.InvokeAsync(context.Background(), nil); err == nil {
		t.Fatal("an error was lost")
	}
}
