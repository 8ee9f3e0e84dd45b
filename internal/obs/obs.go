// Package obs is Sluice's structured logging: JSON lines through log/slog,
// with the request id, pipeline, generation and workflow execution attached
// to a context so that every line a request (or a workflow step) writes
// carries them.
//
//	ctx = obs.WithLogger(ctx, obs.NewJSONLogger(os.Stdout, slog.LevelInfo))
//	ctx = obs.With(ctx, obs.Pipeline("p1"), obs.Generation(8))
//	obs.Logger(ctx).Info("stop accepted")
//
// Inside a Lambda invocation the logger also carries the Lambda request id
// (aws_request_id) from aws-lambda-go's lambdacontext.
//
// Attributes whose key names a credential (authorization, token, secret,
// password, api_key, cookie) are redacted by the loggers this package builds:
// a token must never reach a log line, even by mistake.
package obs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Attribute keys shared by every Sluice log line.
const (
	KeyRequestID    = "request_id"     // the API request id (API Gateway's, or generated locally)
	KeyAWSRequestID = "aws_request_id" // the Lambda invocation's request id
	KeyPipeline     = "pipeline"
	KeyGeneration   = "generation"
	KeyExecution    = "execution" // a Step Functions execution name
	KeyError        = "error"
)

// EnvLogLevel names the environment variable FromEnv reads the level from
// (debug, info, warn, error; default info).
const EnvLogLevel = "SLUICE_LOG_LEVEL"

// Redacted replaces the value of an attribute that names a credential.
const Redacted = "[REDACTED]"

var sensitiveKeys = []string{"authorization", "token", "secret", "password", "api_key", "apikey", "cookie", "credential"}

// sensitive reports whether an attribute key names a credential.
func sensitive(key string) bool {
	k := strings.ToLower(key)
	for _, s := range sensitiveKeys {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

func redact(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() != slog.KindGroup && sensitive(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	return a
}

// NewJSONLogger returns a logger writing one JSON object per line to w, at
// level and above, with credential-named attributes redacted.
func NewJSONLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	if level == nil {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: redact}))
}

// ParseLevel parses debug, info, warn (warning) or error, case-insensitively.
// The empty string is info.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return slog.LevelInfo, fmt.Errorf("obs: unknown log level %q (want debug, info, warn or error)", s)
}

// FromEnv returns the JSON logger a Lambda or the local stack uses: standard
// output, level from $SLUICE_LOG_LEVEL (an unknown value logs a warning and
// uses info).
func FromEnv() *slog.Logger {
	level, err := ParseLevel(os.Getenv(EnvLogLevel))
	l := NewJSONLogger(os.Stdout, level)
	if err != nil {
		l.Warn("ignoring invalid log level", "variable", EnvLogLevel, KeyError, err.Error())
	}
	return l
}

type ctxKey struct{}

type ctxLogger struct {
	logger *slog.Logger
	// lambdaTagged: aws_request_id is already attached.
	lambdaTagged bool
}

// WithLogger stores l in the context as the base of Logger and With.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	if l == nil {
		l = slog.Default()
	}
	return store(ctx, ctxLogger{logger: l})
}

// With returns a context whose logger carries args (slog.Attr values or
// key/value pairs) in addition to everything the context's logger had.
func With(ctx context.Context, args ...any) context.Context {
	cur := current(ctx)
	if len(args) > 0 {
		cur.logger = cur.logger.With(args...)
	}
	return store(ctx, cur)
}

// Logger returns the context's logger (slog.Default when none was stored),
// carrying the Lambda request id when the context is a Lambda invocation's.
func Logger(ctx context.Context) *slog.Logger {
	return current(ctx).logger
}

func current(ctx context.Context) ctxLogger {
	cur, ok := ctx.Value(ctxKey{}).(ctxLogger)
	if !ok || cur.logger == nil {
		cur = ctxLogger{logger: slog.Default()}
	}
	if !cur.lambdaTagged {
		if id := LambdaRequestID(ctx); id != "" {
			cur.logger = cur.logger.With(slog.String(KeyAWSRequestID, id))
			cur.lambdaTagged = true
		}
	}
	return cur
}

func store(ctx context.Context, cur ctxLogger) context.Context {
	if !cur.lambdaTagged {
		if id := LambdaRequestID(ctx); id != "" {
			cur.logger = cur.logger.With(slog.String(KeyAWSRequestID, id))
			cur.lambdaTagged = true
		}
	}
	return context.WithValue(ctx, ctxKey{}, cur)
}

// LambdaRequestID is the Lambda invocation's request id, "" outside Lambda.
func LambdaRequestID(ctx context.Context) string {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc != nil {
		return lc.AwsRequestID
	}
	return ""
}

// RequestID is the request_id attribute.
func RequestID(id string) slog.Attr { return slog.String(KeyRequestID, id) }

// Pipeline is the pipeline attribute.
func Pipeline(name string) slog.Attr { return slog.String(KeyPipeline, name) }

// Generation is the generation attribute.
func Generation(g int64) slog.Attr { return slog.Int64(KeyGeneration, g) }

// Execution is the workflow execution attribute.
func Execution(name string) slog.Attr { return slog.String(KeyExecution, name) }

// Err is the error attribute ("" for nil).
func Err(err error) slog.Attr {
	if err == nil {
		return slog.String(KeyError, "")
	}
	return slog.String(KeyError, err.Error())
}

// ExitOnError ends a Lambda's init when its wiring failed: one JSON line
// saying what failed, then exit 1 (Lambda reports Runtime.ExitError and
// retries the init). It returns when err is nil.
func ExitOnError(logger *slog.Logger, what string, err error) {
	if err == nil {
		return
	}
	logger.Error(what, Err(err))
	os.Exit(1)
}
