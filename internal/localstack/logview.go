package localstack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/obs"
)

// newTeeLogger returns the logger of `make run`: every record goes as JSON to
// file (at level and above, credentials redacted as everywhere), and INFO+
// records of interest go as one readable line to term:
//
//	12:01:02 api     POST /v0/pipelines/p1/stop 202  (p1 g3)
//	12:01:02 api     stop p1 g3 → Running (desired Suspended)
//	12:01:03 steps   MarkSuspending p1 g3 → Suspending (desired Suspended)
//
// verbose shows every INFO+ record (reads and workflow step results too).
func newTeeLogger(file io.Writer, level slog.Leveler, term io.Writer, verbose bool) (*slog.Logger, *termView) {
	tv := &termView{w: term, verbose: verbose, now: time.Now}
	return slog.New(&teeHandler{file: obs.NewJSONLogger(file, level).Handler(), term: tv}), tv
}

// teeHandler is a slog.Handler writing to a JSON handler and a termView.
type teeHandler struct {
	file   slog.Handler
	term   *termView
	attrs  []slog.Attr // from WithAttrs, keys prefixed by their groups
	prefix string      // the open groups, "a.b."
}

func (h *teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.file.Enabled(ctx, l)
}

func (h *teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	if h.file.Enabled(ctx, r.Level) {
		err = h.file.Handle(ctx, r)
	}
	if r.Level >= slog.LevelInfo {
		fields := make(map[string]slog.Value, len(h.attrs)+r.NumAttrs())
		for _, a := range h.attrs {
			flatten(fields, "", a)
		}
		r.Attrs(func(a slog.Attr) bool {
			flatten(fields, h.prefix, a)
			return true
		})
		h.term.show(r, fields)
	}
	return err
}

func flatten(dst map[string]slog.Value, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range v.Group() {
			flatten(dst, p, g)
		}
		return
	}
	dst[prefix+a.Key] = v
}

func (h *teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.file = h.file.WithAttrs(as)
	c.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range as {
		if h.prefix != "" {
			a = slog.Attr{Key: h.prefix + a.Key, Value: a.Value}
		}
		c.attrs = append(c.attrs, a)
	}
	return &c
}

func (h *teeHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.file = h.file.WithGroup(name)
	c.prefix = h.prefix + name + "."
	return &c
}

// termView renders records as one line each.
type termView struct {
	mu      sync.Mutex
	w       io.Writer
	verbose bool
	now     func() time.Time
}

func (t *termView) show(r slog.Record, f map[string]slog.Value) {
	text := t.summary(r, f)
	if text == "" {
		return
	}
	at := r.Time
	if at.IsZero() {
		at = t.now()
	}
	t.print(at, r.Level, source(f), text)
}

// print writes one line: time, source, level (WARN and ERROR only), text.
func (t *termView) print(at time.Time, l slog.Level, src, text string) {
	level := ""
	switch {
	case l >= slog.LevelError:
		level = "ERROR "
	case l >= slog.LevelWarn:
		level = "WARN  "
	}
	line := fmt.Sprintf("%s %-7s %s%s\n", at.Local().Format("15:04:05"), src, level, text)
	t.mu.Lock()
	defer t.mu.Unlock()
	_, _ = io.WriteString(t.w, line)
}

// source names the part a record comes from.
func source(f map[string]slog.Value) string {
	switch str(f, "function") {
	case FunctionAPI:
		return "api"
	case FunctionSteps:
		return "steps"
	case FunctionReconciler:
		return "recon"
	case FunctionAuthorizer:
		return "auth"
	}
	switch c := str(f, "component"); c {
	case "store":
		return actorSource(str(f, "actor"))
	case "localproc":
		return "compute"
	case "":
		return "local"
	default:
		return c
	}
}

func actorSource(actor string) string {
	switch {
	case actor == "workflow":
		return "steps"
	case actor == "reconciler":
		return "recon"
	case strings.HasPrefix(actor, "user"):
		return "api"
	}
	return "store"
}

// str is the attribute k (or k inside a group) as text.
func str(f map[string]slog.Value, k string) string {
	if v, ok := f[k]; ok {
		return v.String()
	}
	for key, v := range f {
		if strings.HasSuffix(key, "."+k) {
			return v.String()
		}
	}
	return ""
}

// ref is " (p1 g3)" for the record's pipeline and generation, when known.
func ref(f map[string]slog.Value) string {
	p, g := str(f, "pipeline"), str(f, "generation")
	switch {
	case p != "" && g != "" && g != "0":
		return p + " g" + g
	case p != "":
		return p
	}
	return ""
}

// summary is the line's text, or "" when the record is not of interest.
func (t *termView) summary(r slog.Record, f map[string]slog.Value) string {
	switch r.Message {
	case "request":
		method, status := str(f, "method"), str(f, "status")
		path := str(f, "route")
		if path == "" {
			path = str(f, "path")
		} else if p := str(f, "pipeline"); p != "" {
			path = strings.ReplaceAll(path, "{pipeline_name}", p)
		}
		read := method == "GET" || method == "HEAD"
		if read && !t.verbose && r.Level < slog.LevelWarn && !strings.HasPrefix(status, "4") {
			return ""
		}
		s := method + " " + path + " " + status
		if code := str(f, "error_code"); code != "" {
			s += " " + code
		}
		if rf := ref(f); rf != "" {
			s += "  (" + rf + ")"
		}
		return s
	case MsgStatus:
		rf := ref(f)
		if f["deleted"].Kind() == slog.KindBool && f["deleted"].Bool() {
			return str(f, "action") + " " + str(f, "pipeline") + " → deleted"
		}
		st, desired := str(f, "deployment_status"), str(f, "deployment_desired_status")
		s := str(f, "action") + " " + rf + " → " + st
		if desired != st {
			s += " (desired " + desired + ")"
		}
		if action := strings.ToLower(str(f, "action")); strings.Contains(action, "clear") || str(f, "storage_status") == "Clearing" {
			s += ", storage " + str(f, "storage_status")
		}
		if e := str(f, "deployment_error"); e != "" {
			s += "  error: " + e
		}
		return s
	case "workflow started":
		return "workflow " + str(f, "execution") + " started  (" + ref(f) + ")"
	case "workflow started by the reconciler":
		return str(f, "kind") + " workflow " + str(f, "execution") + " started by the reconciler  (" + ref(f) + ")"
	case "runtime started":
		return "runtime of " + str(f, "pipeline") + " started, pid " + str(f, "pid")
	case "runtime exited":
		return "runtime of " + str(f, "pipeline") + " (pid " + str(f, "pid") + ") " + str(f, "reason")
	case "step failed":
		return str(f, "step") + " " + ref(f) + " failed: " + str(f, "error")
	case MsgPartDown:
		return str(f, "part") + " is down (" + str(f, "error") + "); restarting it with back-off (GET /healthz shows it)"
	case MsgPartRestartFailed:
		return str(f, "part") + " did not restart: " + str(f, "error") + "; trying again with back-off"
	case MsgPartBack:
		s := str(f, "part") + " is back up (restart " + str(f, "restarts")
		if pid := str(f, "pid"); pid != "" && pid != "0" {
			s += ", pid " + pid
		}
		if ms, err := strconv.ParseInt(str(f, "down_ms"), 10, 64); err == nil {
			s += ", down " + (time.Duration(ms) * time.Millisecond).Round(100*time.Millisecond).String()
		}
		return s + ")"
	case "step done", "runtime status observed", "stopping runtime", "action accepted":
		// The status lines say the same, once.
		if !t.verbose {
			return ""
		}
	}
	if r.Level >= slog.LevelWarn || t.verbose {
		return generic(r.Message, f)
	}
	return ""
}

// generic is "msg key=value …" with the few attributes worth a terminal line.
func generic(msg string, f map[string]slog.Value) string {
	var b strings.Builder
	b.WriteString(msg)
	for _, k := range []string{"pipeline", "generation", "step", "execution", "error_code", "reason", "error"} {
		if v := str(f, k); v != "" {
			fmt.Fprintf(&b, " %s=%s", k, v)
		}
	}
	return b.String()
}

// serviceLog turns the output of DynamoDB Local (text) and of the Step
// Functions service (JSON lines) into JSON lines of the log file, tagged
// with their component.
//
// The end of every workflow execution is also shown on the terminal (a
// failed one as a warning, with its error): the executions are where a
// stuck pipeline is explained.
type serviceLog struct {
	mu   sync.Mutex
	w    io.Writer
	term *termView // nil: no terminal lines
	buf  []byte
	now  func() time.Time
}

func newServiceLog(w io.Writer, term *termView) *serviceLog {
	return &serviceLog{w: w, term: term, now: time.Now}
}

func (s *serviceLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, p...)
	for {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			break
		}
		s.line(s.buf[:i])
		s.buf = s.buf[i+1:]
	}
	if len(s.buf) > 64<<10 { // a runaway line: write what we have
		s.line(s.buf)
		s.buf = nil
	}
	return len(p), nil
}

// Flush writes a last unterminated line.
func (s *serviceLog) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.buf) > 0 {
		s.line(s.buf)
		s.buf = nil
	}
}

func (s *serviceLog) line(b []byte) {
	b = bytes.TrimRight(b, "\r")
	if len(bytes.TrimSpace(b)) == 0 {
		return
	}
	var obj map[string]any
	if json.Unmarshal(b, &obj) == nil && obj != nil {
		// The Step Functions service writes JSON lines.
		if _, ok := obj["component"]; !ok {
			obj["component"] = "stepfunctions"
		}
		s.show(obj)
		if out, err := json.Marshal(obj); err == nil {
			_, _ = s.w.Write(append(out, '\n'))
			return
		}
	}
	out, _ := json.Marshal(map[string]any{
		"time": s.now().UTC().Format(time.RFC3339Nano), "level": "INFO", "component": "dynamodb-local", "msg": string(b),
	})
	_, _ = s.w.Write(append(out, '\n'))
}

// show puts the end of a workflow execution on the terminal.
func (s *serviceLog) show(obj map[string]any) {
	if s.term == nil || obj["msg"] != "execution finished" {
		return
	}
	arn, _ := obj["executionArn"].(string)
	status, _ := obj["status"].(string)
	name := arn[strings.LastIndexByte(arn, ':')+1:]
	machine := ""
	if parts := strings.Split(arn, ":"); len(parts) >= 2 {
		machine = parts[len(parts)-2]
	}
	text := "execution " + name + " (" + machine + ") " + status
	level := slog.LevelInfo
	if status != "SUCCEEDED" {
		level = slog.LevelWarn
		if e, _ := obj["error"].(string); e != "" {
			text += ": " + e
		}
		if c, _ := obj["cause"].(string); c != "" {
			text += ": " + c
		}
	}
	at := s.now()
	if ts, _ := obj["time"].(string); ts != "" {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			at = t
		}
	}
	s.term.print(at, level, "sfn", text)
}
