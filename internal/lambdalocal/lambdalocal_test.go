package lambdalocal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Named error types, as the step Lambdas return them.
type TemporaryError struct{ Reason string }

func (e TemporaryError) Error() string { return "temporarily unable: " + e.Reason }

type PermanentError struct{ Reason string }

func (e *PermanentError) Error() string { return "permanent: " + e.Reason }

type event struct {
	N int `json:"n"`
}

type result struct {
	Doubled int    `json:"doubled"`
	HTML    string `json:"html"`
}

// cases are handlers whose outcome the tests compare between this package and
// the real aws-lambda-go runtime loop (lambda.Start against a Runtime API).
var cases = map[string]struct {
	h       Handler
	payload string
}{
	"success": {Typed(func(_ context.Context, e event) (result, error) {
		return result{Doubled: 2 * e.N, HTML: "<a&b>"}, nil
	}), `{"n": 21, "extra": true}`},
	"valueError": {Typed(func(context.Context, event) (result, error) {
		return result{}, TemporaryError{Reason: "runtime busy"}
	}), `{"n":1}`},
	"pointerError": {Typed(func(context.Context, event) (*result, error) {
		return nil, &PermanentError{Reason: "bad image"}
	}), `{"n":1}`},
	"errorsNew": {Typed(func(context.Context, event) (result, error) {
		return result{}, errors.New("plain error")
	}), `{"n":1}`},
	"wrapped": {Typed(func(context.Context, event) (result, error) {
		return result{}, fmt.Errorf("step: %w", &PermanentError{Reason: "x"})
	}), `{"n":1}`},
	"invokeResponseError": {Typed(func(context.Context, event) (result, error) {
		return result{}, messages.InvokeResponse_Error{Type: "Custom.Error", Message: "as is"}
	}), `{"n":1}`},
	"decodeError": {Typed(func(_ context.Context, e event) (result, error) {
		return result{Doubled: e.N}, nil
	}), `{"n":"not a number"}`},
	"panicString": {Typed(func(context.Context, event) (result, error) {
		panic("boom")
	}), `{"n":1}`},
	"panicError": {Typed(func(context.Context, event) (result, error) {
		panic(&PermanentError{Reason: "panicked"})
	}), `{"n":1}`},
	"nilMap": {Typed(func(context.Context, event) (result, error) {
		var m map[string]int
		m["x"] = 1
		return result{}, nil
	}), `{"n":1}`},
	"raw": {func(_ context.Context, p json.RawMessage) (json.RawMessage, error) {
		return json.RawMessage(`{"echo":` + string(p) + `}`), nil
	}, `[1,2]`},
}

const runtimeCaseEnv = "LAMBDALOCAL_TEST_RUNTIME_CASE"

func TestMain(m *testing.M) {
	if name := os.Getenv(runtimeCaseEnv); name != "" {
		// Child process: the production runtime path, lambda.Start against
		// the fake Runtime API in AWS_LAMBDA_RUNTIME_API. It exits when the
		// API stops handing out invocations.
		lambda.Start(cases[name].h)
		os.Exit(3)
	}
	os.Exit(m.Run())
}

// runUnderRuntime runs one case through aws-lambda-go's Runtime API loop in a
// child process and returns what the runtime posted: the response or the
// error document, and whether it was an error.
func runUnderRuntime(t *testing.T, name string) (body []byte, isError bool) {
	t.Helper()
	var served atomic.Int32
	got := make(chan struct {
		body  []byte
		isErr bool
	}, 1)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/runtime/invocation/next"):
			if served.Add(1) > 1 {
				w.WriteHeader(http.StatusGone) // ends the child's loop
				return
			}
			w.Header().Set("Lambda-Runtime-Aws-Request-Id", "req-1")
			w.Header().Set("Lambda-Runtime-Deadline-Ms", fmt.Sprint(time.Now().Add(time.Minute).UnixMilli()))
			w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:"+name)
			_, _ = io.WriteString(w, cases[name].payload)
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/response"),
			r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/error"):
			b, _ := io.ReadAll(r.Body)
			w.WriteHeader(http.StatusAccepted)
			select {
			case got <- struct {
				body  []byte
				isErr bool
			}{b, strings.HasSuffix(r.URL.Path, "/error")}:
			default:
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer api.Close()
	u, _ := url.Parse(api.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), runtimeCaseEnv+"="+name, "AWS_LAMBDA_RUNTIME_API="+u.Host)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Wait() }()
	select {
	case g := <-got:
		return g.body, g.isErr
	case <-ctx.Done():
		t.Fatalf("runtime child produced no result; stderr:\n%s", stderr.String())
		return nil, false
	}
}

func invokeHTTP(t *testing.T, srv *Server, fn string, payload string) (*http.Response, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/2015-03-31/functions/"+url.PathEscape(fn)+"/invocations", strings.NewReader(payload))
	signRequest(t, req, []byte(payload), srv.Credentials(), time.Now())
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	return rec.Result(), rec.Body.Bytes()
}

type errDoc struct {
	Message    string            `json:"errorMessage"`
	Type       string            `json:"errorType"`
	StackTrace []json.RawMessage `json:"stackTrace"`
}

// TestErrorShapeMatchesRuntime compares, for each case, the local endpoint's
// answer with what aws-lambda-go's Runtime API loop (the code that runs in
// AWS) reports for the same handler and event.
func TestErrorShapeMatchesRuntime(t *testing.T) {
	srv := NewServer()
	for name, c := range cases {
		srv.Register(name, c.h)
	}
	wantTypes := map[string]string{
		"valueError":          "TemporaryError",
		"pointerError":        "PermanentError",
		"errorsNew":           "errorString",
		"wrapped":             "wrapError",
		"invokeResponseError": "Custom.Error",
		"decodeError":         "UnmarshalTypeError",
		"panicString":         "string",
		"panicError":          "PermanentError",
		"nilMap":              "plainError",
	}
	for name := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want, wantErr := runUnderRuntime(t, name)
			resp, got := invokeHTTP(t, srv, "arn:aws:lambda:us-east-1:123456789012:function:"+name, cases[name].payload)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, body %s", resp.StatusCode, got)
			}
			gotErr := resp.Header.Get("X-Amz-Function-Error") == "Unhandled"
			if gotErr != wantErr {
				t.Fatalf("function error: local %v, runtime %v (local body %s, runtime body %s)", gotErr, wantErr, got, want)
			}
			if !wantErr {
				if !bytes.Equal(got, want) {
					t.Fatalf("payload: local %s, runtime %s", got, want)
				}
				return
			}
			var g, w errDoc
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatalf("local error body %s: %v", got, err)
			}
			if err := json.Unmarshal(want, &w); err != nil {
				t.Fatalf("runtime error body %s: %v", want, err)
			}
			if g.Type != w.Type || g.Message != w.Message {
				t.Fatalf("error: local {%s %q}, runtime {%s %q}", g.Type, g.Message, w.Type, w.Message)
			}
			if g.Type != wantTypes[name] {
				t.Fatalf("errorType %q, want %q", g.Type, wantTypes[name])
			}
			if (len(w.StackTrace) > 0) != strings.HasPrefix(name, "panic") && name != "nilMap" {
				t.Fatalf("runtime stack trace presence unexpected for %s", name)
			}
		})
	}
	if got := cases["success"]; got.h == nil {
		t.Fatal("no success case")
	}
}

func TestSuccessPayloadExact(t *testing.T) {
	srv := NewServer()
	srv.Register("success", cases["success"].h)
	resp, body := invokeHTTP(t, srv, "success", cases["success"].payload)
	if resp.StatusCode != 200 || resp.Header.Get("X-Amz-Function-Error") != "" {
		t.Fatalf("status %d fe %q", resp.StatusCode, resp.Header.Get("X-Amz-Function-Error"))
	}
	// aws-lambda-go encodes without HTML escaping and without a trailing newline.
	if string(body) != `{"doubled":42,"html":"<a&b>"}` {
		t.Fatalf("body %s", body)
	}
	if resp.Header.Get("x-amzn-RequestId") == "" || resp.Header.Get("X-Amz-Executed-Version") != "$LATEST" {
		t.Fatalf("headers %v", resp.Header)
	}
}

func TestResolveFunctionName(t *testing.T) {
	for in, want := range map[string]string{
		"step":                         "step",
		"step:live":                    "step",
		"step:$LATEST":                 "step",
		"123456789012:function:step":   "step",
		"123456789012:function:step:3": "step",
		"arn:aws:lambda:us-east-1:123456789012:function:step":         "step",
		"arn:aws:lambda:eu-west-1:123456789012:function:my-Step_2:v1": "my-Step_2",
		"arn:aws-cn:lambda:cn-north-1:123456789012:function:step":     "step",
		"arn:aws:states:::lambda:invoke":                              "",
		"arn:aws:lambda:us-east-1:123456789012:layer:x":               "",
		"arn:aws:lambda:us-east-1:123456789012:function:a:b:c":        "",
		"":           "",
		"bad name":   "",
		"a:b:c":      "",
		"x/y":        "",
		"step:alias": "step",
	} {
		got, ok := ResolveFunctionName(in)
		if ok != (want != "") || got != want {
			t.Errorf("ResolveFunctionName(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestUnknownFunction(t *testing.T) {
	srv := NewServer()
	resp, body := invokeHTTP(t, srv, "arn:aws:lambda:us-east-1:123456789012:function:nope:live", `{}`)
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("x-amzn-ErrorType") != "ResourceNotFoundException" {
		t.Fatalf("status %d type %q", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"))
	}
	var doc struct{ Type, Message string }
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Type != "User" || doc.Message != "Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope" {
		t.Fatalf("body %s", body)
	}
	if _, err := srv.Invoke("nope", nil); !IsNotFound(err) {
		t.Fatalf("Invoke err %v", err)
	}
}

func TestPanicKeepsServing(t *testing.T) {
	srv := NewServer()
	srv.Register("panics", cases["panicString"].h)
	srv.Register("ok", cases["raw"].h)
	for range 3 {
		resp, body := invokeHTTP(t, srv, "panics", `{}`)
		if resp.Header.Get("X-Amz-Function-Error") != "Unhandled" || !strings.Contains(string(body), `"errorType":"string"`) {
			t.Fatalf("panic answer %d %s", resp.StatusCode, body)
		}
		_, body = invokeHTTP(t, srv, "ok", `{"a":1}`)
		if string(body) != `{"echo":{"a":1}}` {
			t.Fatalf("after panic: %s", body)
		}
	}
}

func TestOptimizedIntegrationUnwrap(t *testing.T) {
	srv := NewServer()
	var gotPayload atomic.Value
	srv.Register("step", func(_ context.Context, p json.RawMessage) (json.RawMessage, error) {
		gotPayload.Store(string(p))
		return json.RawMessage(`{"done":true}`), nil
	})
	srv.Register("fails", Typed(func(context.Context, event) (event, error) {
		return event{}, &PermanentError{Reason: "no"}
	}))
	params := `{"FunctionName":"arn:aws:lambda:us-east-1:123456789012:function:step","Payload":{"pipeline":"p1","generation":3}}`
	resp, body := invokeHTTP(t, srv, OptimizedInvokeResource, params)
	if resp.StatusCode != 200 || resp.Header.Get("X-Amz-Function-Error") != "" {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	if gotPayload.Load() != `{"pipeline":"p1","generation":3}` {
		t.Fatalf("handler got %v", gotPayload.Load())
	}
	var out struct {
		ExecutedVersion string
		Payload         json.RawMessage
		StatusCode      int
		SdkHttpMetadata struct{ HttpStatusCode int }
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	if string(out.Payload) != `{"done":true}` || out.StatusCode != 200 || out.ExecutedVersion != "$LATEST" || out.SdkHttpMetadata.HttpStatusCode != 200 {
		t.Fatalf("wrapper %s", body)
	}

	// A function error is reported as such (the engine fails the Task with
	// the errorType, as Step Functions does for the integration).
	resp, body = invokeHTTP(t, srv, OptimizedInvokeResource, `{"FunctionName":"fails","Payload":{}}`)
	if resp.Header.Get("X-Amz-Function-Error") != "Unhandled" || !strings.Contains(string(body), `"errorType":"PermanentError"`) {
		t.Fatalf("error %s", body)
	}
	// Unknown function behind the integration → 404.
	resp, _ = invokeHTTP(t, srv, OptimizedInvokeResource, `{"FunctionName":"missing"}`)
	if resp.StatusCode != 404 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// Parameters without FunctionName → 400.
	resp, _ = invokeHTTP(t, srv, OptimizedInvokeResource, `{"Payload":{}}`)
	if resp.StatusCode != 400 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestLambdaContextAndTimeout(t *testing.T) {
	srv := NewServer()
	type seen struct {
		RequestID, ARN string
		Deadline       time.Time
	}
	srv.Register("ctx", Typed(func(ctx context.Context, _ event) (seen, error) {
		lc, ok := lambdacontext.FromContext(ctx)
		if !ok {
			return seen{}, errors.New("no lambda context")
		}
		dl, ok := ctx.Deadline()
		if !ok {
			return seen{}, errors.New("no deadline")
		}
		return seen{RequestID: lc.AwsRequestID, ARN: lc.InvokedFunctionArn, Deadline: dl}, nil
	}), WithTimeout(5*time.Second))
	srv.Register("slow", Typed(func(ctx context.Context, _ event) (event, error) {
		select {
		case <-ctx.Done():
			return event{}, ctx.Err()
		case <-time.After(5 * time.Second):
			return event{}, nil
		}
	}), WithTimeout(100*time.Millisecond))

	before := time.Now()
	_, body := invokeHTTP(t, srv, "ctx", `{}`)
	after := time.Now()
	var s seen
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	if len(s.RequestID) != 36 || s.ARN != "arn:aws:lambda:us-east-1:123456789012:function:ctx" ||
		// The deadline is the function's timeout after the invocation began
		// (between the request and its answer), whatever the machine's speed.
		s.Deadline.Before(before.Add(5*time.Second).Truncate(time.Second)) || s.Deadline.After(after.Add(5*time.Second)) {
		t.Fatalf("context %+v", s)
	}

	// The timeout is enforced: the answer is a function error (the handler
	// would otherwise succeed after its 5 s), not a success.
	resp, body := invokeHTTP(t, srv, "slow", `{}`)
	var d errDoc
	_ = json.Unmarshal(body, &d)
	if resp.Header.Get("X-Amz-Function-Error") != "Unhandled" {
		t.Fatalf("no function error: %s", body)
	}
	// Either the handler noticed its deadline (ctx.Err → deadlineExceededError)
	// or the endpoint cut it off (Sandbox.Timedout, as Lambda reports).
	if d.Type != "Sandbox.Timedout" && d.Type != "deadlineExceededError" {
		t.Fatalf("timeout error %s", body)
	}
}

func TestInvocationTypes(t *testing.T) {
	srv := NewServer()
	done := make(chan string, 1)
	srv.Register("async", func(_ context.Context, p json.RawMessage) (json.RawMessage, error) {
		done <- string(p)
		return nil, nil
	})
	req := httptest.NewRequest(http.MethodPost, "/2015-03-31/functions/async/invocations", strings.NewReader(`{"a":1}`))
	req.Header.Set("X-Amz-Invocation-Type", "Event")
	signRequest(t, req, []byte(`{"a":1}`), srv.Credentials(), time.Now())
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status %d", rec.Code)
	}
	if p := <-done; p != `{"a":1}` { // the asynchronous invocation ran, with its payload
		t.Fatalf("payload %s", p)
	}
	req = httptest.NewRequest(http.MethodPost, "/2015-03-31/functions/async/invocations", nil)
	req.Header.Set("X-Amz-Invocation-Type", "DryRun")
	signRequest(t, req, nil, srv.Credentials(), time.Now())
	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusNoContent {
		t.Fatalf("dry run status %d", rec.Code)
	}
}

func TestStartServes(t *testing.T) {
	srv := NewServer()
	srv.Register("raw", cases["raw"].h)
	endpoint, shutdown, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = shutdown(context.Background()) }()
	req, err := http.NewRequest(http.MethodPost, endpoint+"/2015-03-31/functions/raw/invocations", strings.NewReader(`"x"`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	signRequest(t, req, []byte(`"x"`), srv.Credentials(), time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != `{"echo":"x"}` {
		t.Fatalf("%s", b)
	}
}

// WaitAsync waits for the asynchronous invocations accepted so far.
func TestWaitAsync(t *testing.T) {
	srv := NewServer()
	release := make(chan struct{})
	srv.Register("slow", func(_ context.Context, _ json.RawMessage) (json.RawMessage, error) {
		<-release
		return nil, nil
	})
	if err := srv.WaitAsync(context.Background()); err != nil {
		t.Fatalf("nothing queued: %v", err)
	}
	req := httptest.NewRequest(http.MethodPost, "/2015-03-31/functions/slow/invocations", strings.NewReader(`{}`))
	req.Header.Set("X-Amz-Invocation-Type", "Event")
	signRequest(t, req, []byte(`{}`), srv.Credentials(), time.Now())
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status %d", rec.Code)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := srv.WaitAsync(ctx); err == nil {
		t.Fatal("WaitAsync returned while an invocation was running")
	}
	close(release)
	if err := srv.WaitAsync(context.Background()); err != nil {
		t.Fatal(err)
	}
}
