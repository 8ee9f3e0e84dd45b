package obs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestWithAttachesAttributes(t *testing.T) {
	var buf bytes.Buffer
	ctx := WithLogger(context.Background(), NewJSONLogger(&buf, slog.LevelInfo))
	ctx = With(ctx, RequestID("r-1"), Pipeline("p1"))
	ctx = With(ctx, Generation(8), Execution("p1-g8-suspend"))
	Logger(ctx).Info("accepted", Err(errors.New("boom")))
	Logger(ctx).Debug("not shown")

	got := lines(t, &buf)
	if len(got) != 1 {
		t.Fatalf("got %d lines, want 1: %s", len(got), buf.String())
	}
	want := map[string]any{"msg": "accepted", "level": "INFO", KeyRequestID: "r-1", KeyPipeline: "p1", KeyGeneration: float64(8), KeyExecution: "p1-g8-suspend", KeyError: "boom"}
	for k, v := range want {
		if got[0][k] != v {
			t.Errorf("%s = %v, want %v", k, got[0][k], v)
		}
	}
	if _, ok := got[0][KeyAWSRequestID]; ok {
		t.Errorf("aws_request_id outside Lambda: %v", got[0])
	}
}

func TestLambdaRequestID(t *testing.T) {
	var buf bytes.Buffer
	base := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "lambda-42"})
	if LambdaRequestID(base) != "lambda-42" {
		t.Fatal("LambdaRequestID")
	}
	ctx := WithLogger(base, NewJSONLogger(&buf, slog.LevelInfo))
	ctx = With(ctx, Pipeline("p1"))
	Logger(ctx).Info("x")
	got := lines(t, &buf)
	if len(got) != 1 || got[0][KeyAWSRequestID] != "lambda-42" || got[0][KeyPipeline] != "p1" {
		t.Fatalf("got %v", got)
	}
	// Attached once, not once per With.
	if n := strings.Count(buf.String(), KeyAWSRequestID); n != 1 {
		t.Errorf("aws_request_id appears %d times: %s", n, buf.String())
	}
}

func TestLoggerDefault(t *testing.T) {
	if Logger(context.Background()) == nil {
		t.Fatal("nil logger")
	}
	ctx := With(context.Background()) // no logger stored, no attrs
	if Logger(ctx) == nil {
		t.Fatal("nil logger")
	}
}

func TestRedaction(t *testing.T) {
	var buf bytes.Buffer
	l := NewJSONLogger(&buf, slog.LevelDebug)
	l.Info("req", "Authorization", "Bearer apikey:secret", "api_key", "apikey:x", "jwt_token", "eyJ", "pipeline", "p1",
		slog.Group("headers", slog.String("authorization", "Bearer t")))
	s := buf.String()
	for _, leak := range []string{"apikey:secret", "apikey:x", "eyJ", "Bearer t"} {
		if strings.Contains(s, leak) {
			t.Errorf("log line leaks %q: %s", leak, s)
		}
	}
	if !strings.Contains(s, `"pipeline":"p1"`) {
		t.Errorf("ordinary attribute lost: %s", s)
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{"": slog.LevelInfo, "DEBUG": slog.LevelDebug, "warn": slog.LevelWarn, "warning": slog.LevelWarn, "error": slog.LevelError, " info ": slog.LevelInfo} {
		got, err := ParseLevel(in)
		if err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseLevel("verbose"); err == nil {
		t.Error("ParseLevel(verbose): no error")
	}
}
