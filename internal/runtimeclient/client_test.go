package runtimeclient

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/domain"
)

// server starts an httptest server with one handler per "METHOD /path".
func server(t *testing.T, routes map[string]http.HandlerFunc) *Client {
	t.Helper()
	mux := http.NewServeMux()
	for pattern, h := range routes {
		mux.HandleFunc(pattern, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func reply(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}
}

func asTemporary(t *testing.T, err error) *TemporaryError {
	t.Helper()
	var te *TemporaryError
	if !errors.As(err, &te) {
		t.Fatalf("want *TemporaryError, got %T: %v", err, err)
	}
	if !IsTemporary(err) || IsFatal(err) {
		t.Fatalf("IsTemporary/IsFatal disagree for %v", err)
	}
	return te
}

func asFatal(t *testing.T, err error) *FatalError {
	t.Helper()
	var fe *FatalError
	if !errors.As(err, &fe) {
		t.Fatalf("want *FatalError, got %T: %v", err, err)
	}
	if IsTemporary(err) || !IsFatal(err) {
		t.Fatalf("IsTemporary/IsFatal disagree for %v", err)
	}
	return fe
}

func TestNewValidatesBaseURL(t *testing.T) {
	for _, bad := range []string{"", "127.0.0.1:80", "ftp://x", "http://", "http://h/?q=1", "://"} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%q): want error", bad)
		}
	}
	c, err := New("http://127.0.0.1:9/prefix/")
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseURL() != "http://127.0.0.1:9/prefix" {
		t.Errorf("BaseURL = %q", c.BaseURL())
	}
}

func TestBaseURLPrefixIsKept(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.URL.Path)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	c, err := New(srv.URL + "/p/x/")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Pause(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got.Load() != "/p/x/pause" {
		t.Errorf("path = %v", got.Load())
	}
}

func TestTimeoutDefaultsAndOverrides(t *testing.T) {
	c, _ := New("http://127.0.0.1:1")
	d := c.Timeouts()
	if d.Status != 5*time.Second || d.Suspend != 10*time.Second || d.Checkpoint != 60*time.Second ||
		d.Pause != 10*time.Second || d.Start != 10*time.Second || d.Stats != 5*time.Second || d.CheckpointStatus != 5*time.Second {
		t.Errorf("defaults = %+v", d)
	}
	c, _ = New("http://127.0.0.1:1", WithTimeouts(Timeouts{Checkpoint: 2 * time.Minute}))
	d = c.Timeouts()
	if d.Checkpoint != 2*time.Minute || d.Status != 5*time.Second {
		t.Errorf("override = %+v", d)
	}
}

func TestStatus(t *testing.T) {
	c := server(t, map[string]http.HandlerFunc{
		"GET /status": reply(200, `{"runtime_status":"Running","runtime_desired_status":"Running",
			"storage_status_details":{"checkpoints":[{"uuid":"a","sequence_number":41,"created_at":"2024-01-02T03:04:05Z","size":120}]}}`),
	})
	rep, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.RuntimeStatus != domain.RuntimeRunning || rep.RuntimeDesiredStatus != "Running" {
		t.Errorf("report = %+v", rep)
	}
	cps, err := rep.Checkpoints()
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) != 1 || cps[0].UUID != "a" || cps[0].SequenceNumber != 41 || cps[0].Size != 120 ||
		!cps[0].CreatedAt.Equal(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("checkpoints = %+v", cps)
	}
}

func TestStatusNullDetailsAndEveryStatus(t *testing.T) {
	for _, st := range domain.AllRuntimeStatuses {
		c := server(t, map[string]http.HandlerFunc{
			"GET /status": reply(200, `{"runtime_status":"`+string(st)+`","runtime_desired_status":"Standby","storage_status_details":null}`),
		})
		rep, err := c.Status(context.Background())
		if err != nil {
			t.Fatalf("%s: %v", st, err)
		}
		if rep.RuntimeStatus != st || rep.StorageStatusDetails != nil || rep.RuntimeDesiredStatus != "Standby" {
			t.Errorf("%s: report = %+v", st, rep)
		}
		if cps, err := rep.Checkpoints(); err != nil || cps != nil {
			t.Errorf("%s: checkpoints = %v, %v", st, cps, err)
		}
	}
}

func TestStatusInvalidAnswersAreFatal(t *testing.T) {
	for name, body := range map[string]string{
		"malformed JSON":  `{"runtime_status":`,
		"unknown status":  `{"runtime_status":"Exploded"}`,
		"missing status":  `{"runtime_desired_status":"Running"}`,
		"not an object":   `[1,2]`,
		"empty body":      ``,
		"html from proxy": `<html>hello</html>`,
	} {
		t.Run(name, func(t *testing.T) {
			c := server(t, map[string]http.HandlerFunc{"GET /status": reply(200, body)})
			_, err := c.Status(context.Background())
			fe := asFatal(t, err)
			if fe.StatusCode != 200 || fe.Body.ErrorCode != "InvalidRuntimeResponse" || fe.Op != "status" {
				t.Errorf("fatal = %+v", fe)
			}
		})
	}
}

func TestSuspendPauseStart(t *testing.T) {
	var calls atomic.Int32
	count := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { calls.Add(1); h(w, r) }
	}
	c := server(t, map[string]http.HandlerFunc{
		"POST /suspend": count(reply(202, `"suspending"`)),
		"GET /pause":    count(reply(202, ``)),
		"GET /start":    count(reply(202, ``)),
	})
	ctx := context.Background()
	if err := c.Suspend(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 {
		t.Errorf("calls = %d", calls.Load())
	}
}

func TestWrongMethodIsFatal(t *testing.T) {
	// The mux answers 405 to GET /suspend.
	c := server(t, map[string]http.HandlerFunc{"GET /suspend": reply(202, ``)})
	fe := asFatal(t, c.Suspend(context.Background()))
	if fe.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("fatal = %+v", fe)
	}
}

func TestCheckpoint(t *testing.T) {
	c := server(t, map[string]http.HandlerFunc{
		"POST /checkpoint": reply(200, `{"checkpoint_sequence_number":7,"incarnation_uuid":"inc-1"}`),
	})
	cp, err := c.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cp != (CheckpointResponse{CheckpointSequenceNumber: 7, IncarnationUUID: "inc-1"}) {
		t.Errorf("checkpoint = %+v", cp)
	}

	c = server(t, map[string]http.HandlerFunc{"POST /checkpoint": reply(200, `{"incarnation_uuid":"x"}`)})
	_, err = c.Checkpoint(context.Background())
	asFatal(t, err)

	c = server(t, map[string]http.HandlerFunc{"POST /checkpoint": reply(200, `{"checkpoint_sequence_number":-1}`)})
	_, err = c.Checkpoint(context.Background())
	asFatal(t, err)
}

func TestCheckpointStatus(t *testing.T) {
	c := server(t, map[string]http.HandlerFunc{
		"GET /checkpoint_status": reply(200, `{"success":3,"failure":{"sequence_number":4,"error":"disk full"}}`),
	})
	cs, err := c.CheckpointStatus(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if cs.Success == nil || *cs.Success != 3 || cs.Failure == nil || cs.Failure.SequenceNumber != 4 || cs.Failure.Error != "disk full" {
		t.Errorf("status = %+v", cs)
	}

	c = server(t, map[string]http.HandlerFunc{"GET /checkpoint_status": reply(200, `{"success":null,"failure":null}`)})
	cs, err = c.CheckpointStatus(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if cs.Success != nil || cs.Failure != nil {
		t.Errorf("status = %+v", cs)
	}

	c = server(t, map[string]http.HandlerFunc{"GET /checkpoint_status": reply(200, `{"success":"x"}`)})
	_, err = c.CheckpointStatus(context.Background(), "")
	asFatal(t, err)
}

func TestStats(t *testing.T) {
	c := server(t, map[string]http.HandlerFunc{"GET /stats": reply(200, `{"count":10,"sum":45}`)})
	st, err := c.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Count, Sum int }
	if err := json.Unmarshal(st, &v); err != nil || v.Count != 10 || v.Sum != 45 {
		t.Errorf("stats = %s (%v)", st, err)
	}

	c = server(t, map[string]http.HandlerFunc{"GET /stats": reply(200, `{"count":`)})
	_, err = c.Stats(context.Background())
	asFatal(t, err)
}

func TestStatsBodyLimit(t *testing.T) {
	big := `{"x":"` + strings.Repeat("a", 2000) + `"}`
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", reply(200, big))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, _ := New(srv.URL, WithMaxBodyBytes(1000))
	_, err := c.Stats(context.Background())
	fe := asFatal(t, err)
	if !strings.Contains(fe.Body.Message, "larger than 1000") {
		t.Errorf("fatal = %+v", fe)
	}
	c, _ = New(srv.URL, WithMaxBodyBytes(4000))
	if _, err := c.Stats(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestConnectionRefusedIsTemporary(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more
	c, _ := New("http://" + addr)
	_, err = c.Status(context.Background())
	te := asTemporary(t, err)
	if te.StatusCode != 0 || te.Op != "status" || te.Cause == nil {
		t.Errorf("temporary = %+v", te)
	}
	for _, call := range []func() error{
		func() error { return c.Suspend(context.Background()) },
		func() error { _, err := c.Checkpoint(context.Background()); return err },
		func() error { _, err := c.CheckpointStatus(context.Background(), ""); return err },
		func() error { return c.Pause(context.Background()) },
		func() error { return c.Start(context.Background()) },
		func() error { _, err := c.Stats(context.Background()); return err },
	} {
		asTemporary(t, call())
	}
}

func TestDNSFailureIsTemporary(t *testing.T) {
	// .invalid never resolves (RFC 2606); the resolver may or may not be reachable
	// here, either way the error is a temporary one.
	c, _ := New("http://sluice-no-such-host.invalid:80", WithTimeouts(Timeouts{Status: 3 * time.Second}))
	_, err := c.Status(context.Background())
	asTemporary(t, err)
}

func TestPerCallTimeoutIsTemporary(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c, _ := New(srv.URL, WithTimeouts(Timeouts{Status: 50 * time.Millisecond}))
	_, err := c.Status(context.Background())
	te := asTemporary(t, err)
	if !errors.Is(err, ErrTimeout) {
		t.Errorf("want ErrTimeout in chain: %v", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a per-call timeout must not look like the caller's deadline: %v", err)
	}
	if te.StatusCode != 0 {
		t.Errorf("temporary = %+v", te)
	}
}

func TestCallerCancellationIsNotTemporary(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c, _ := New(srv.URL)

	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(30 * time.Millisecond); cancel() }()
	_, err := c.Status(ctx)
	if !errors.Is(err, context.Canceled) || IsTemporary(err) || IsFatal(err) {
		t.Errorf("cancel: got %T %v", err, err)
	}

	ctx, cancel2 := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel2()
	_, err = c.Status(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || IsTemporary(err) || IsFatal(err) {
		t.Errorf("caller deadline: got %T %v", err, err)
	}

	done, cancel3 := context.WithCancel(context.Background())
	cancel3()
	if err := c.Suspend(done); !errors.Is(err, context.Canceled) {
		t.Errorf("already cancelled: %v", err)
	}
}

func TestTemporaryStatuses(t *testing.T) {
	for _, code := range []int{502, 503, 504, 429} {
		c := server(t, map[string]http.HandlerFunc{"GET /status": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(code)
			_, _ = w.Write([]byte(`{"message":"busy","error_code":"RuntimeUnavailable","details":{}}`))
		}})
		_, err := c.Status(context.Background())
		te := asTemporary(t, err)
		if te.StatusCode != code || te.RetryAfter != 7*time.Second || te.Body.ErrorCode != "RuntimeUnavailable" || te.Body.Message != "busy" {
			t.Errorf("%d: temporary = %+v", code, te)
		}
		if RetryAfter(err) != 7*time.Second {
			t.Errorf("%d: RetryAfter = %v", code, RetryAfter(err))
		}
		if !strings.Contains(err.Error(), "503") && code == 503 {
			t.Errorf("message: %v", err)
		}
	}
}

func TestRetryAfterForms(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		"0":                             0,
		"-5":                            0,
		"soon":                          0,
		"Wed, 01 Jan 2025 00:00:10 GMT": 10 * time.Second,
		"Tue, 31 Dec 2024 23:00:00 GMT": 0,
		"999999999":                     24 * time.Hour,
	}
	for h, want := range cases {
		if got := parseRetryAfter(h, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", h, got, want)
		}
	}
}

func TestFatalWithJSONErrorBody(t *testing.T) {
	c := server(t, map[string]http.HandlerFunc{
		"POST /suspend": reply(500, `{"message":"disk on fire","error_code":"SuspendError","details":{"path":"/data"}}`),
	})
	err := c.Suspend(context.Background())
	fe := asFatal(t, err)
	if fe.StatusCode != 500 || fe.Op != "suspend" || fe.Body.Message != "disk on fire" || fe.Body.ErrorCode != "SuspendError" ||
		string(fe.Body.Details) != `{"path":"/data"}` {
		t.Errorf("fatal = %+v", fe)
	}
	if !strings.Contains(err.Error(), "disk on fire") || !strings.Contains(err.Error(), "SuspendError") {
		t.Errorf("message: %v", err)
	}
}

func TestFatalWithTextBody(t *testing.T) {
	c := server(t, map[string]http.HandlerFunc{
		"GET /pause": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(400)
			_, _ = w.Write([]byte("  cannot pause now\n"))
		},
	})
	fe := asFatal(t, c.Pause(context.Background()))
	if fe.StatusCode != 400 || fe.Body.Message != "cannot pause now" || fe.Body.ErrorCode != "" {
		t.Errorf("fatal = %+v", fe)
	}
}

func TestFatalTextBodyIsTruncated(t *testing.T) {
	long := strings.Repeat("é", 5000) // 10000 bytes
	c := server(t, map[string]http.HandlerFunc{"GET /start": reply(404, long)})
	fe := asFatal(t, c.Start(context.Background()))
	if len(fe.Body.Message) > MaxErrorMessageBytes || len(fe.Body.Message) < MaxErrorMessageBytes-4 {
		t.Errorf("message length = %d", len(fe.Body.Message))
	}
	if !strings.HasPrefix(long, fe.Body.Message) {
		t.Error("truncation split a character")
	}
}

func TestJSONBodyWithoutErrorShapeKeptAsText(t *testing.T) {
	c := server(t, map[string]http.HandlerFunc{"GET /stats": reply(500, `{"foo":1}`)})
	_, err := c.Stats(context.Background())
	fe := asFatal(t, err)
	if fe.Body.Message != `{"foo":1}` {
		t.Errorf("fatal = %+v", fe)
	}
}

func TestConnectionResetMidBodyIsTemporary(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(200)
		_, _ = w.Write([]byte(`{"count":`))
		hj, ok := w.(http.Hijacker)
		if !ok {
			return
		}
		conn, _, err := hj.Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer srv.Close()
	c, _ := New(srv.URL)
	_, err := c.Stats(context.Background())
	asTemporary(t, err)
}

func TestErrorStrings(t *testing.T) {
	te := &TemporaryError{Op: "status", Cause: errors.New("connection refused")}
	if te.Error() != "runtime status: temporarily unavailable: connection refused" {
		t.Errorf("%q", te.Error())
	}
	te = &TemporaryError{Op: "status", StatusCode: 503, Body: ErrorBody{Message: "later"}, RetryAfter: time.Second}
	if te.Error() != "runtime status: temporarily unavailable: HTTP 503: later (retry after 1s)" {
		t.Errorf("%q", te.Error())
	}
	fe := &FatalError{Op: "suspend", StatusCode: 500, Body: ErrorBody{Message: "boom", ErrorCode: "X"}}
	if fe.Error() != "runtime suspend: HTTP 500 X: boom" {
		t.Errorf("%q", fe.Error())
	}
	if IsTemporary(nil) || IsFatal(nil) || RetryAfter(errors.New("x")) != 0 {
		t.Error("helpers on non-matching errors")
	}
}

func TestCustomHTTPClientIsUsed(t *testing.T) {
	var used atomic.Bool
	srv := httptest.NewServer(reply(202, ``))
	defer srv.Close()
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		used.Store(true)
		return http.DefaultTransport.RoundTrip(r)
	})}
	c, _ := New(srv.URL, WithHTTPClient(hc))
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !used.Load() {
		t.Error("custom client not used")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
