package httpapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/internal/compute"
	"github.com/sluicehq/sluice/internal/domain"
)

// fakeLogs is a compute.LogReader over fixed logs, by deployment id ("" is
// the most recent deployment). A followed log delivers its text, then stays
// open until ended is closed (the runtime ends) or its context is done.
type fakeLogs struct {
	mu     sync.Mutex
	logs   map[string]string
	err    error
	calls  []logCall
	ended  chan struct{}
	ctxErr chan error // a followed reader's context error, once it ended by it
}

type logCall struct {
	deployment string
	opts       compute.LogOptions
}

func newFakeLogs() *fakeLogs {
	return &fakeLogs{logs: map[string]string{}, ended: make(chan struct{}), ctxErr: make(chan error, 1)}
}

func (f *fakeLogs) Logs(ctx context.Context, pipeline, deploymentID string, opts compute.LogOptions) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, logCall{deploymentID, opts})
	if f.err != nil {
		return nil, f.err
	}
	text, ok := f.logs[deploymentID]
	if !ok {
		return nil, compute.ErrNoLogs
	}
	if opts.Tail > 0 && int64(len(text)) > opts.Tail {
		text = text[int64(len(text))-opts.Tail:]
	}
	if !opts.Follow {
		return io.NopCloser(strings.NewReader(text)), nil
	}
	pr, pw := io.Pipe()
	go func() {
		if _, err := pw.Write([]byte(text)); err != nil {
			return
		}
		select {
		case <-f.ended:
			_ = pw.Close()
		case <-ctx.Done():
			f.ctxErr <- ctx.Err()
			_ = pw.CloseWithError(ctx.Err())
		}
	}()
	return pr, nil
}

func (f *fakeLogs) lastCall(t *testing.T) logCall {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		t.Fatal("the log reader was not called")
	}
	return f.calls[len(f.calls)-1]
}

func wantText(t *testing.T, r response, want string) {
	t.Helper()
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("status %d, Content-Type %q; body %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	if string(r.body) != want {
		t.Fatalf("body %q, want %q", r.body, want)
	}
}

func TestLogsRoute(t *testing.T) {
	e := newEnv(t)
	const url = "/v0/pipelines/p1/logs"

	wantError(t, e.do("GET", url, nil), http.StatusNotFound, domain.CodeUnknownPipelineName, nil)

	// Never started, no log reader configured: a one-line note.
	e.create("p1", "")
	if r := e.do("GET", url, nil); !strings.Contains(string(r.body), "not configured") {
		t.Fatalf("without a log reader: %d %q", r.status, r.body)
	}

	logs := newFakeLogs()
	e.handler.logs = logs
	// Never started: an empty log (Feldera's SDK iterates its lines: none).
	wantText(t, e.do("GET", url, nil, asReader(e)), "")
	if c := logs.lastCall(t); c.deployment != "" || c.opts.Follow {
		t.Fatalf("never started: call %+v", c)
	}
	wantError(t, e.do("GET", url+"?follow=true", nil), http.StatusBadRequest, domain.CodeInvalidQueryParameter, nil)

	// Running: the current deployment's log, followed until the runtime ends.
	p := e.pipelineIn("p2", "Running/Running", "")
	deployment := *p.DeploymentID
	logs.logs[deployment] = "started\nline 2\n"
	close(logs.ended)
	wantText(t, e.do("GET", "/v0/pipelines/p2/logs", nil), "started\nline 2\n")
	if c := logs.lastCall(t); c.deployment != deployment || !c.opts.Follow || c.opts.Tail != 0 {
		t.Fatalf("running: call %+v, want deployment %s followed from the head", c, deployment)
	}

	// Stopped after a run: the most recent deployment's log, not followed.
	e.pipelineIn("p3", "Stopped/Stopped InUse", "")
	logs.logs[""] = "the last run\n"
	wantText(t, e.do("GET", "/v0/pipelines/p3/logs", nil), "the last run\n")
	if c := logs.lastCall(t); c.deployment != "" || c.opts.Follow {
		t.Fatalf("stopped: call %+v", c)
	}

	// The log service fails: 503 with Retry-After (checked by the harness).
	logs.err = errors.New("throttled")
	wantError(t, e.do("GET", "/v0/pipelines/p2/logs", nil), http.StatusServiceUnavailable, domain.CodeServiceUnavailable, nil)
}

// TestLogsFollowEndsWhenTheClientLeaves: a followed stream's context ends
// with the client's connection.
func TestLogsFollowEndsWhenTheClientLeaves(t *testing.T) {
	e := newEnv(t)
	logs := newFakeLogs()
	e.handler.logs = logs
	p := e.pipelineIn("p1", "Running/Running", "")
	logs.logs[*p.DeploymentID] = "first line\n"

	req, _ := http.NewRequest("GET", e.srv.URL+"/v0/pipelines/p1/logs", nil)
	req.Header.Set("Authorization", "Bearer "+e.writeKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.ContentLength != -1 {
		t.Fatalf("status %d, Content-Length %d: want a 200 stream", resp.StatusCode, resp.ContentLength)
	}
	buf := make([]byte, len("first line\n"))
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first line\n" {
		t.Fatalf("first line %q, %v", buf, err)
	}
	_ = resp.Body.Close()
	if err := <-logs.ctxErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("the stream's context ended with %v, want context.Canceled", err)
	}
}

// TestLogsLambdaTail: behind API Gateway the answer is the log's last
// LambdaLogTail bytes after a note, never a stream.
func TestLogsLambdaTail(t *testing.T) {
	e := newEnv(t)
	logs := newFakeLogs()
	e.handler.logs = logs
	p := e.pipelineIn("p1", "Running/Running", "")
	big := strings.Repeat("0123456789abcdef\n", (LambdaLogTail/17)*2) + "the end\n"
	logs.logs[*p.DeploymentID] = big

	r := invoke(t, e.handler, event("GET", routeLogs, "p1", "", "", "read"))
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("status %d, %q: %s", r.status, r.header.Get("Content-Type"), r.body[:min(len(r.body), 200)])
	}
	note, rest, _ := bytes.Cut(r.body, []byte("\n"))
	if !bytes.HasPrefix(note, []byte("[sluice] the last 256 KiB")) || !strings.Contains(string(note), *p.DeploymentID) {
		t.Fatalf("note %q", note)
	}
	if len(rest) != LambdaLogTail || !bytes.HasSuffix(rest, []byte("the end\n")) {
		t.Fatalf("%d bytes after the note (want %d) ending %q", len(rest), LambdaLogTail, rest[max(0, len(rest)-20):])
	}
	if c := logs.lastCall(t); c.opts.Follow || c.opts.Tail != LambdaLogTail || c.deployment != *p.DeploymentID {
		t.Fatalf("call %+v", c)
	}
}
