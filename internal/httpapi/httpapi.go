// Package httpapi serves Sluice's /v0 API (SPEC §3–6): one router and one set
// of handlers behind two adapters.
//
//   - Handler.Handle is the core: a plain Request in, a Response out. It
//     routes, authenticates and authorizes, validates the path, query and
//     body strictly, runs the action (read → domain rule → conditional write →
//     workflow), and maps every error to the {message, error_code, details}
//     shape in one place (errorResponse).
//   - Handler.LambdaHandler adapts API Gateway REST proxy events (the
//     deployed path): the principal comes from the REQUEST authorizer's
//     context.
//   - Handler.ServeHTTP adapts net/http (the local stack and the tests): it
//     verifies the Authorization header itself with the same auth.Verifier
//     the authorizer Lambda uses, so the tested path is the deployed path.
//
// Every request writes one JSON log line (method, route, status, duration,
// request id, pipeline, generation, execution, error code); never a
// credential.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"github.com/sluicehq/sluice/internal/metrics"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/google/uuid"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/compute"
	"github.com/sluicehq/sluice/internal/obs"
	"github.com/sluicehq/sluice/internal/runtimeclient"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/workflow"
)

// Limits and defaults.
const (
	// MaxBodyBytes bounds a request body (413 PayloadTooLarge above it).
	MaxBodyBytes = 1 << 20
	// DefaultMaxAttempts bounds the read-decide-write rounds of an action
	// that keeps losing its conditional write to concurrent writers (then 503).
	DefaultMaxAttempts = 5
	// DefaultSideEffectTimeout bounds the work done after an accepted write
	// (StartExecution, SetWorkflow, StopExecution of a superseded execution).
	// It runs detached from the caller's cancellation: a client that hangs up
	// does not abort a workflow start.
	DefaultSideEffectTimeout = 10 * time.Second
	// NextPageHeader carries the token of the next page of GET /v0/pipelines
	// and GET /v0/pipelines/{name}/events (absent on the last page); the body
	// stays a JSON array, as in Feldera.
	NextPageHeader = "X-Next-Page-Token"
	// RequestIDHeader is echoed on every response (and accepted from a
	// trusted proxy by ServeHTTP).
	RequestIDHeader = "X-Request-Id"
)

// Config configures a Handler.
type Config struct {
	// Store is the state store (required).
	Store store.Store
	// Starter starts and stops the lifecycle workflows (required).
	Starter workflow.Starter
	// Verifier verifies the Authorization header of a request that arrives
	// without a principal: every request of ServeHTTP, and a Lambda event
	// without authorizer context. Nil: such requests get 401. An
	// auth.NewVerifier(auth.Config{Disabled: true}, …) lets everyone in as an
	// anonymous writer (local development only).
	Verifier auth.Verifier
	// Runtimes connects to a pipeline runtime at its deployment_location.
	// Nil: runtimeclient with RuntimeTimeouts.
	Runtimes RuntimeDialer
	// RuntimeTimeouts are the per-call timeouts of forwarded actions when
	// Runtimes is nil (zero fields: runtimeclient's defaults: pause and
	// resume 10 s, checkpoint 60 s, checkpoint_status and stats 5 s).
	RuntimeTimeouts runtimeclient.Timeouts
	// Logger receives the access log and error lines. Nil: slog.Default().
	Logger *slog.Logger
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// NewID makes pipeline ids and request ids. Nil: random UUIDs.
	NewID func() string
	// MaxAttempts: DefaultMaxAttempts when zero.
	MaxAttempts int
	// SideEffectTimeout: DefaultSideEffectTimeout when zero.
	SideEffectTimeout time.Duration
	// Metrics receives the StopRequested metric (EMF). Nil: none.
	Metrics *metrics.Emitter
	// Logs reads the runtimes' logs (GET /v0/pipelines/{name}/logs). Nil:
	// that route answers a one-line note that logs are not configured.
	Logs compute.LogReader
	// ExecutionLink turns a workflow execution's ARN into the address of a
	// page that shows it (the record's workflow_console_url): the AWS
	// console on AWS (workflow.AWSConsoleURL), the local console under
	// `make run`. Nil: no link.
	ExecutionLink func(executionArn string) (string, bool)
	// LogFollowLimit bounds how long a followed log stream (net/http only)
	// stays open: DefaultLogFollowLimit when zero.
	LogFollowLimit time.Duration
}

// Handler serves the API. It is safe for concurrent use.
type Handler struct {
	store       store.Store
	starter     workflow.Starter
	verifier    auth.Verifier
	runtimes    RuntimeDialer
	log         *slog.Logger
	now         func() time.Time
	newID       func() string
	maxAttempts int
	sideTimeout time.Duration
	metrics     *metrics.Emitter
	logs        compute.LogReader
	followLimit time.Duration
	routes      []*route
	execLink    func(string) (string, bool)
}

// New checks cfg and builds the Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Store == nil {
		return nil, errors.New("httpapi: no store")
	}
	if cfg.Starter == nil {
		return nil, errors.New("httpapi: no workflow starter")
	}
	h := &Handler{
		store: cfg.Store, starter: cfg.Starter, verifier: cfg.Verifier, runtimes: cfg.Runtimes,
		log: cfg.Logger, now: cfg.Now, newID: cfg.NewID, maxAttempts: cfg.MaxAttempts, sideTimeout: cfg.SideEffectTimeout,
		metrics: cfg.Metrics, logs: cfg.Logs, followLimit: cfg.LogFollowLimit, execLink: cfg.ExecutionLink,
	}
	if h.followLimit <= 0 {
		h.followLimit = DefaultLogFollowLimit
	}
	if h.runtimes == nil {
		h.runtimes = RuntimeClientDialer(cfg.RuntimeTimeouts, nil)
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.newID == nil {
		h.newID = uuid.NewString
	}
	if h.maxAttempts <= 0 {
		h.maxAttempts = DefaultMaxAttempts
	}
	if h.sideTimeout <= 0 {
		h.sideTimeout = DefaultSideEffectTimeout
	}
	h.routes = h.routeTable()
	return h, nil
}

// Request is one API request, as an adapter hands it to Handle.
type Request struct {
	Method string
	// Path is the request path, e.g. /v0/pipelines/p1/stop. It may be
	// percent-encoded (RawPath is preferred when set): each segment is
	// decoded after splitting, so an encoded slash stays inside its segment.
	Path string
	// RawPath is the path exactly as sent (percent-encoding kept), "" if unknown.
	RawPath string
	// Resource is API Gateway's resource template
	// (/v0/pipelines/{pipeline_name}/stop), routed on with PathParameters
	// when it is one of this API's routes; "" routes on the path.
	Resource       string
	PathParameters map[string]string
	// Query is the parsed query; when nil, RawQuery is parsed strictly.
	Query    map[string][]string
	RawQuery string
	Header   http.Header
	Body     []byte
	// BodyTooLarge: the adapter stopped reading the body at MaxBodyBytes.
	BodyTooLarge bool
	// BodyErr is a failure of the adapter to decode the body (base64); it is
	// answered as it is when it is a *domain.Error, else as InvalidRequestBody.
	BodyErr error
	// RequestID identifies the request in logs and in InternalError bodies.
	// "" = generated.
	RequestID string
	// Principal is set when a trusted front (API Gateway's authorizer) has
	// verified the credentials; nil = Handle verifies the Authorization
	// header with the configured Verifier.
	Principal *auth.Principal
	// CanStream: the adapter sends a Response.Stream as it is read (net/http).
	// API Gateway's REST proxy integration cannot: a handler then answers a
	// buffered Body.
	CanStream bool
}

// Response is what Handle answers.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	// Stream, only when the request's CanStream, is sent after Body until it
	// ends; the adapter closes it.
	Stream io.ReadCloser
}

// accessLog collects what the request's log line reports; handlers fill it in.
type accessLog struct {
	route      string
	pipeline   string
	generation int64
	execution  string
	errorCode  string
	principal  string
}

// Handle serves one request. It never panics: a panic becomes a 500
// InternalError carrying the request id.
func (h *Handler) Handle(ctx context.Context, req Request) (resp Response) {
	start := time.Now()
	if req.RequestID == "" {
		req.RequestID = h.newID()
	}
	if req.Header == nil {
		req.Header = http.Header{}
	}
	ctx = obs.With(obs.WithLogger(withRequestID(ctx, req.RequestID), h.log), obs.RequestID(req.RequestID))
	al := &accessLog{}
	defer func() {
		if v := recover(); v != nil {
			obs.Logger(ctx).Error("panic while serving a request", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			resp = h.errorResponse(ctx, req.RequestID, al, fmt.Errorf("panic: %v", v))
		}
		if resp.Header == nil {
			resp.Header = http.Header{}
		}
		resp.Header.Set(RequestIDHeader, req.RequestID)
		h.logAccess(ctx, req, al, resp, time.Since(start))
	}()
	r, err := h.serve(ctx, &req, al)
	if err != nil {
		return h.errorResponse(ctx, req.RequestID, al, err)
	}
	return r
}

func (h *Handler) logAccess(ctx context.Context, req Request, al *accessLog, resp Response, d time.Duration) {
	level := slog.LevelInfo
	switch {
	case resp.Status == http.StatusServiceUnavailable:
		level = slog.LevelWarn
	case resp.Status >= 500:
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.String("method", truncate(req.Method, 20)),
		slog.String("route", al.route),
		slog.Int("status", resp.Status),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
	}
	if al.route == "" {
		attrs = append(attrs, slog.String("path", truncate(req.Path, 200)))
	}
	if al.pipeline != "" {
		attrs = append(attrs, obs.Pipeline(al.pipeline))
	}
	if al.generation != 0 {
		attrs = append(attrs, obs.Generation(al.generation))
	}
	if al.execution != "" {
		attrs = append(attrs, obs.Execution(al.execution))
	}
	if al.errorCode != "" {
		attrs = append(attrs, slog.String("error_code", al.errorCode))
	}
	if al.principal != "" {
		attrs = append(attrs, slog.String("principal", al.principal))
	}
	obs.Logger(ctx).LogAttrs(ctx, level, "request", attrs...)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
