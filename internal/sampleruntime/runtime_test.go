package sampleruntime

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/compute"
)

const waitDeadline = 15 * time.Second

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type harness struct {
	t    *testing.T
	rt   *Runtime
	url  string
	dir  string
	exit atomic.Int32 // exit code passed to the crash hook, -1 if none
	logs *logBuffer
}

// start runs a runtime in process behind an httptest server. cfgJSON is a
// runtime_config; events_per_sec defaults to a fast 20000 here.
func start(t *testing.T, dir, cfgJSON, initial string) *harness {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(cfgJSON), &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["events_per_sec"]; !ok {
		m["events_per_sec"] = 20000
	}
	b, _ := json.Marshal(m)
	cfg, err := ParseConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, dir: dir}
	h.exit.Store(-1)
	log, logs := testLogger(t)
	h.logs = logs
	rt, err := New(Options{
		Config:       cfg,
		StorageDir:   dir,
		Initial:      initial,
		Pipeline:     "p1",
		DeploymentID: "d1",
		Logger:       log,
		TickInterval: 2 * time.Millisecond,
		Exit:         func(code int) { h.exit.Store(int32(code)) },
	})
	if err != nil {
		t.Fatal(err)
	}
	h.rt = rt
	srv := httptest.NewServer(rt.Handler())
	h.url = srv.URL
	rt.Start()
	t.Cleanup(func() {
		rt.Close()
		srv.Close()
	})
	return h
}

func (h *harness) do(method, path string) (int, http.Header, []byte) {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.url+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func (h *harness) expect(method, path string, code int) []byte {
	h.t.Helper()
	got, _, b := h.do(method, path)
	if got != code {
		h.t.Fatalf("%s %s = %d %s, want %d", method, path, got, b, code)
	}
	return b
}

type statusAnswer struct {
	RuntimeStatus        string `json:"runtime_status"`
	RuntimeDesiredStatus string `json:"runtime_desired_status"`
	StorageStatusDetails struct {
		Checkpoints []CheckpointMeta `json:"checkpoints"`
	} `json:"storage_status_details"`
}

func (h *harness) status() statusAnswer {
	h.t.Helper()
	var s statusAnswer
	if err := json.Unmarshal(h.expect("GET", "/status", 200), &s); err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *harness) stats() Stats {
	h.t.Helper()
	var s Stats
	if err := json.Unmarshal(h.expect("GET", "/stats", 200), &s); err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *harness) waitStatus(want string) {
	h.t.Helper()
	waitFor(h.t, "runtime_status "+want, func() bool { return h.status().RuntimeStatus == want })
}

func (h *harness) waitCount(atLeast uint64) Stats {
	h.t.Helper()
	var s Stats
	waitFor(h.t, "count ≥ "+strconv.FormatUint(atLeast, 10), func() bool { s = h.stats(); return s.Count >= atLeast })
	return s
}

func decodeError(t *testing.T, b []byte) ErrorBody {
	t.Helper()
	var e ErrorBody
	if err := json.Unmarshal(b, &e); err != nil || e.Message == "" || e.ErrorCode == "" || e.Details == nil {
		t.Fatalf("not a Feldera error body: %s (%v)", b, err)
	}
	return e
}

func newestCheckpoint(t *testing.T, dir string) Checkpoint {
	t.Helper()
	files := checkpointFiles(t, dir)
	if len(files) == 0 {
		t.Fatal("no checkpoint file")
	}
	cp, err := ReadCheckpoint(files[len(files)-1])
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig(nil)
	if err != nil || cfg != DefaultConfig() {
		t.Fatalf("defaults = %+v, %v", cfg, err)
	}
	if cfg.EventsPerSec != 1000 || cfg.CheckpointInterval != time.Minute || !cfg.Storage || cfg.KeepCheckpoints != 5 {
		t.Errorf("defaults = %+v", cfg)
	}
	cfg, err = ParseConfig([]byte(`{"events_per_sec":5,"checkpoint_interval_secs":0,"storage":false,"keep_checkpoints":2,
		"command":["x"],"resources":{"cpu":1},
		"fault":{"unavailable_secs":1.5,"initializing_secs":2,"suspend_delay_secs":3,"suspend_error":"boom",
		"crash_after_secs":4,"checkpoint_crash":true,"checkpoint_crash_after":2}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{EventsPerSec: 5, CheckpointInterval: 0, Storage: false, KeepCheckpoints: 2, Fault: Fault{
		Unavailable: 1500 * time.Millisecond, Initializing: 2 * time.Second, SuspendDelay: 3 * time.Second,
		SuspendError: "boom", CrashAfter: 4 * time.Second, CheckpointCrash: true, CheckpointCrashAfter: 2,
	}}
	if cfg != want {
		t.Errorf("cfg = %+v\nwant %+v", cfg, want)
	}
	for _, bad := range []string{`[`, `{"events_per_sec":-1}`, `{"checkpoint_interval_secs":-1}`, `{"storage":"yes"}`,
		`{"keep_checkpoints":0}`, `{"fault":{"crash_after_secs":-2}}`, `{"fault":{"checkpoint_crash_after":-1}}`, `{"fault":[]}`} {
		if _, err := ParseConfig([]byte(bad)); err == nil {
			t.Errorf("ParseConfig(%s): want error", bad)
		}
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Options{Config: DefaultConfig()}); err == nil {
		t.Error("storage without directory accepted")
	}
	if _, err := New(Options{Config: DefaultConfig(), StorageDir: t.TempDir(), Initial: "Suspended"}); err == nil {
		t.Error("bad initial state accepted")
	}
}

func TestRunsAndReportsStatus(t *testing.T) {
	h := start(t, t.TempDir(), `{"checkpoint_interval_secs":0}`, "")
	h.waitStatus(StatusRunning)
	st := h.status()
	if st.RuntimeDesiredStatus != DesiredRunning || st.StorageStatusDetails.Checkpoints == nil || len(st.StorageStatusDetails.Checkpoints) != 0 {
		t.Errorf("status = %+v", st)
	}
	s := h.waitCount(100)
	if !s.State().Consistent() {
		t.Errorf("inconsistent: %+v", s)
	}
	if s.RestoredFromCheckpoint != nil || s.RestoredSequenceNumber != nil || s.IncarnationUUID != h.rt.IncarnationUUID() ||
		s.Pipeline != "p1" || s.DeploymentID != "d1" || s.RuntimeStatus != StatusRunning {
		t.Errorf("stats = %+v", s)
	}
	// The raw /stats carries null for the restore fields and -1 never appears once running.
	raw := string(h.expect("GET", "/stats", 200))
	if !strings.Contains(raw, `"restored_from_checkpoint":null`) || !strings.Contains(raw, `"checkpoints":0`) {
		t.Errorf("raw stats = %s", raw)
	}
}

func TestInitialPausedAndPauseResume(t *testing.T) {
	h := start(t, t.TempDir(), `{"checkpoint_interval_secs":0}`, StatusPaused)
	h.waitStatus(StatusPaused)
	if st := h.status(); st.RuntimeDesiredStatus != DesiredPaused {
		t.Errorf("status = %+v", st)
	}
	// Paused: nothing is ingested.
	time.Sleep(30 * time.Millisecond)
	if s := h.stats(); s.Count != 0 || s.LastSequenceNumber != -1 {
		t.Fatalf("paused runtime ingested: %+v", s)
	}
	h.expect("GET", "/start", 202)
	if st := h.status(); st.RuntimeStatus != StatusRunning || st.RuntimeDesiredStatus != DesiredRunning {
		t.Errorf("after start: %+v", st)
	}
	h.waitCount(50)
	h.expect("GET", "/pause", 202)
	h.expect("GET", "/pause", 202) // idempotent
	s1 := h.stats()
	time.Sleep(30 * time.Millisecond)
	if s2 := h.stats(); s2.Count != s1.Count || s2.RuntimeStatus != StatusPaused {
		t.Fatalf("ingested while paused: %+v then %+v", s1, s2)
	}
	h.expect("POST", "/start", 202) // POST accepted too
	h.waitCount(s1.Count + 50)
	if s := h.stats(); !s.State().Consistent() {
		t.Errorf("inconsistent: %+v", s)
	}
}

func TestManualCheckpointAndStatus(t *testing.T) {
	dir := t.TempDir()
	h := start(t, dir, `{"checkpoint_interval_secs":0}`, "")
	h.waitStatus(StatusRunning)
	var cs map[string]any
	_ = json.Unmarshal(h.expect("GET", "/checkpoint_status", 200), &cs)
	if cs["success"] != nil || cs["failure"] != nil {
		t.Errorf("initial checkpoint status = %v", cs)
	}
	for want := uint64(1); want <= 2; want++ {
		var cr struct {
			Seq  uint64 `json:"checkpoint_sequence_number"`
			Inc  string `json:"incarnation_uuid"`
			Rest map[string]any
		}
		if err := json.Unmarshal(h.expect("POST", "/checkpoint", 200), &cr); err != nil {
			t.Fatal(err)
		}
		if cr.Seq != want || cr.Inc != h.rt.IncarnationUUID() {
			t.Errorf("checkpoint answer = %+v", cr)
		}
	}
	_ = json.Unmarshal(h.expect("GET", "/checkpoint_status", 200), &cs)
	if cs["success"] != float64(2) || cs["failure"] != nil {
		t.Errorf("checkpoint status = %v", cs)
	}
	st := h.status()
	if n := len(st.StorageStatusDetails.Checkpoints); n != 2 {
		t.Fatalf("checkpoints = %+v", st.StorageStatusDetails)
	}
	newest := st.StorageStatusDetails.Checkpoints[1]
	cp := newestCheckpoint(t, dir)
	if newest.UUID != cp.UUID || newest.SequenceNumber != cp.SequenceNumber || newest.Size <= 0 || newest.CreatedAt.IsZero() {
		t.Errorf("newest listed %+v, on disk %+v", newest, cp)
	}
	if h.stats().Checkpoints != 2 {
		t.Error("stats.checkpoints != 2")
	}
	h.expect("GET", "/checkpoint", 405)
}

func TestPeriodicCheckpointsAndRetention(t *testing.T) {
	dir := t.TempDir()
	h := start(t, dir, `{"checkpoint_interval_secs":0.01,"keep_checkpoints":3}`, "")
	waitFor(t, "periodic checkpoints", func() bool {
		return len(h.rt.Checkpoints()) == 3 && h.rt.Snapshot().Count > 0 && newestCheckpoint(t, dir).Generation >= 6
	})
	h.rt.Close() // between a rename and its pruning there are briefly keep+1 files
	if n := len(checkpointFiles(t, dir)); n != 3 {
		t.Errorf("%d checkpoint files kept, want 3", n)
	}
	for _, f := range checkpointFiles(t, dir) {
		if _, err := ReadCheckpoint(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// Periodic checkpoints also run while paused (state unchanged) but not before
// initialization nor after a suspend.
func TestPeriodicCheckpointWhilePaused(t *testing.T) {
	dir := t.TempDir()
	h := start(t, dir, `{"checkpoint_interval_secs":0.01}`, StatusPaused)
	waitFor(t, "a periodic checkpoint", func() bool { return len(h.rt.Checkpoints()) >= 1 })
	if cp := newestCheckpoint(t, dir); cp.SequenceNumber != -1 || cp.State != InitialState() {
		t.Errorf("checkpoint = %+v", cp)
	}
}

// Suspend: ingestion stops, the final checkpoint holds exactly the final state,
// and nothing is processed afterwards.
func TestSuspendSemantics(t *testing.T) {
	dir := t.TempDir()
	h := start(t, dir, `{"checkpoint_interval_secs":0.005}`, "")
	h.waitCount(500)
	h.expect("POST", "/suspend", 202)
	h.waitStatus(StatusSuspended)
	final := h.stats()
	cp := newestCheckpoint(t, dir)
	if cp.State != final.State() || !final.State().Consistent() {
		t.Fatalf("final checkpoint %+v differs from final state %+v", cp.State, final.State())
	}
	if st := h.status(); st.RuntimeDesiredStatus != DesiredSuspended ||
		st.StorageStatusDetails.Checkpoints[len(st.StorageStatusDetails.Checkpoints)-1].UUID != cp.UUID {
		t.Errorf("status = %+v", st)
	}
	files := len(checkpointFiles(t, dir))
	// Give the ingest loop and the periodic checkpointer many ticks: nothing moves.
	time.Sleep(50 * time.Millisecond)
	if s := h.stats(); s.State() != final.State() {
		t.Fatalf("events processed after suspend: %+v then %+v", final, s)
	}
	if got := newestCheckpoint(t, dir); got.UUID != cp.UUID || len(checkpointFiles(t, dir)) != files {
		t.Fatal("a checkpoint was written after the final one")
	}
	// Idempotent: no second checkpoint.
	h.expect("POST", "/suspend", 202)
	if got := newestCheckpoint(t, dir); got.UUID != cp.UUID {
		t.Fatal("repeated suspend wrote a checkpoint")
	}
	// Pause, start and checkpoint are refused after a suspend.
	for _, c := range []struct{ method, path string }{{"GET", "/pause"}, {"GET", "/start"}, {"POST", "/checkpoint"}} {
		e := decodeError(t, h.expect(c.method, c.path, 400))
		if e.ErrorCode != "IllegalPipelineAction" {
			t.Errorf("%s: %+v", c.path, e)
		}
	}
	h.expect("GET", "/stats", 200)
}

// Stop, restart from the same directory: the state continues at exactly the next
// sequence number.
func TestResumeExactness(t *testing.T) {
	dir := t.TempDir()
	h1 := start(t, dir, `{"checkpoint_interval_secs":0}`, "")
	h1.waitCount(300)
	h1.expect("POST", "/suspend", 202)
	h1.waitStatus(StatusSuspended)
	final := h1.stats()
	cp := newestCheckpoint(t, dir)
	h1.rt.Close()

	h2 := start(t, dir, `{"checkpoint_interval_secs":0}`, StatusPaused)
	h2.waitStatus(StatusPaused)
	s := h2.stats()
	if s.State() != final.State() {
		t.Fatalf("restored %+v, suspended at %+v", s.State(), final.State())
	}
	if s.RestoredFromCheckpoint == nil || *s.RestoredFromCheckpoint != cp.UUID ||
		s.RestoredSequenceNumber == nil || *s.RestoredSequenceNumber != final.LastSequenceNumber {
		t.Fatalf("restore fields = %+v", s)
	}
	if s.IncarnationUUID == final.IncarnationUUID {
		t.Error("same incarnation after restart")
	}
	h2.expect("GET", "/start", 202)
	s = h2.waitCount(final.Count + 100)
	if !s.State().Consistent() {
		t.Fatalf("inconsistent after resume: %+v", s)
	}
}

// A forced stop (Close, as on SIGTERM) writes no checkpoint; the next incarnation
// resumes from the last one written before, re-processing the later events exactly once.
func TestForcedStopResumesFromLastCheckpoint(t *testing.T) {
	dir := t.TempDir()
	h1 := start(t, dir, `{"checkpoint_interval_secs":0}`, "")
	h1.waitCount(100)
	h1.expect("POST", "/checkpoint", 200)
	cp := newestCheckpoint(t, dir)
	h1.waitCount(uint64(cp.SequenceNumber) + 200)
	h1.rt.Close()
	if n := len(checkpointFiles(t, dir)); n != 1 {
		t.Fatalf("Close wrote a checkpoint: %d files", n)
	}
	h2 := start(t, dir, `{"checkpoint_interval_secs":0}`, "")
	h2.waitStatus(StatusRunning)
	s := h2.waitCount(cp.State.Count + 100)
	if *s.RestoredSequenceNumber != cp.SequenceNumber || !s.State().Consistent() {
		t.Fatalf("stats = %+v", s)
	}
}

func TestStorageDisabled(t *testing.T) {
	dir := t.TempDir()
	h := start(t, dir, `{"storage":false,"checkpoint_interval_secs":0.01}`, "")
	h.waitStatus(StatusRunning)
	for _, p := range []string{"/checkpoint", "/suspend"} {
		e := decodeError(t, h.expect("POST", p, 400))
		if e.ErrorCode != "FeatureNotAvailable" || e.Details["feature"] == nil {
			t.Errorf("%s: %+v", p, e)
		}
	}
	time.Sleep(30 * time.Millisecond)
	if st := h.status(); st.RuntimeStatus != StatusRunning || st.StorageStatusDetails.Checkpoints == nil || len(st.StorageStatusDetails.Checkpoints) != 0 {
		t.Errorf("status = %+v", st)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("storage disabled but files written: %v", entries)
	}
	// Storage disabled needs no directory.
	if _, err := New(Options{Config: Config{Storage: false}}); err != nil {
		t.Errorf("New without storage dir: %v", err)
	}
}

func TestFaultUnavailable(t *testing.T) {
	h := start(t, t.TempDir(), `{"checkpoint_interval_secs":0,"fault":{"unavailable_secs":0.3}}`, "")
	code, hdr, b := h.do("GET", "/status")
	if code == 503 {
		if hdr.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
		if e := decodeError(t, b); e.ErrorCode != "PipelineUnavailable" {
			t.Errorf("error = %+v", e)
		}
		for _, c := range []struct{ method, path string }{{"GET", "/stats"}, {"POST", "/suspend"}, {"POST", "/checkpoint"}, {"GET", "/pause"}} {
			if code, _, _ := h.do(c.method, c.path); code != 503 && h.rt.unavailableFor(time.Now()) > 50*time.Millisecond {
				t.Errorf("%s during unavailability = %d", c.path, code)
			}
		}
	} else if code != 200 {
		t.Fatalf("status = %d", code)
	}
	waitFor(t, "availability", func() bool { code, _, _ := h.do("GET", "/status"); return code == 200 })
	h.waitCount(10)
}

func TestFaultInitializing(t *testing.T) {
	h := start(t, t.TempDir(), `{"checkpoint_interval_secs":0,"fault":{"initializing_secs":60}}`, "")
	if st := h.status(); st.RuntimeStatus != StatusInitializing || st.RuntimeDesiredStatus != DesiredRunning {
		t.Fatalf("status = %+v", st)
	}
	code, hdr, _ := h.do("POST", "/checkpoint")
	if code != 503 || hdr.Get("Retry-After") == "" {
		t.Errorf("checkpoint while initializing = %d", code)
	}
	h.expect("GET", "/pause", 202)
	if st := h.status(); st.RuntimeStatus != StatusInitializing || st.RuntimeDesiredStatus != DesiredPaused {
		t.Errorf("status = %+v", st)
	}
	// A suspend while initializing goes to Suspending; Close interrupts everything.
	h.expect("POST", "/suspend", 202)
	if st := h.status(); st.RuntimeStatus != StatusSuspending {
		t.Errorf("status = %+v", st)
	}
}

func TestSuspendDuringInitialization(t *testing.T) {
	dir := t.TempDir()
	h := start(t, dir, `{"checkpoint_interval_secs":0,"fault":{"initializing_secs":0.1}}`, "")
	h.expect("POST", "/suspend", 202)
	h.waitStatus(StatusSuspended)
	if cp := newestCheckpoint(t, dir); cp.State != InitialState() {
		t.Errorf("checkpoint = %+v", cp)
	}
	if s := h.stats(); s.Count != 0 {
		t.Errorf("ingested during a suspend: %+v", s)
	}
}

func TestFaultSuspendDelay(t *testing.T) {
	dir := t.TempDir()
	h := start(t, dir, `{"checkpoint_interval_secs":0,"fault":{"suspend_delay_secs":60}}`, "")
	h.waitCount(100)
	h.expect("POST", "/suspend", 202)
	st := h.status()
	if st.RuntimeStatus != StatusSuspending || st.RuntimeDesiredStatus != DesiredSuspended {
		t.Fatalf("status = %+v", st)
	}
	s1 := h.stats()
	time.Sleep(30 * time.Millisecond)
	if s2 := h.stats(); s2.State() != s1.State() || s2.RuntimeStatus != StatusSuspending {
		t.Fatalf("ingesting while suspending: %+v then %+v", s1, s2)
	}
	if len(checkpointFiles(t, dir)) != 0 {
		t.Fatal("checkpoint written before the suspend delay passed")
	}
	h.expect("POST", "/suspend", 202)

	// A short delay ends in Suspended with the state at the suspend request.
	dir2 := t.TempDir()
	h2 := start(t, dir2, `{"checkpoint_interval_secs":0,"fault":{"suspend_delay_secs":0.1}}`, "")
	h2.waitCount(100)
	h2.expect("POST", "/suspend", 202)
	asked := h2.stats()
	h2.waitStatus(StatusSuspended)
	if cp := newestCheckpoint(t, dir2); cp.State != asked.State() {
		t.Fatalf("checkpoint %+v, state at suspend %+v", cp.State, asked.State())
	}
}

func TestFaultSuspendError(t *testing.T) {
	dir := t.TempDir()
	h := start(t, dir, `{"checkpoint_interval_secs":0,"fault":{"suspend_error":"disk quota exceeded","suspend_delay_secs":0.05}}`, "")
	h.waitStatus(StatusRunning)
	h.expect("POST", "/suspend", 202)
	var body []byte
	waitFor(t, "the suspend to fail", func() bool {
		code, _, b := h.do("GET", "/status")
		body = b
		return code == 500
	})
	e := decodeError(t, body)
	if e.Message != "disk quota exceeded" || e.ErrorCode != "SuspendError" {
		t.Errorf("error = %+v", e)
	}
	for _, c := range []struct{ method, path string }{{"POST", "/suspend"}, {"POST", "/checkpoint"}, {"GET", "/pause"}, {"GET", "/start"}} {
		if e := decodeError(t, h.expect(c.method, c.path, 500)); e.Message != "disk quota exceeded" {
			t.Errorf("%s: %+v", c.path, e)
		}
	}
	h.expect("GET", "/stats", 200)
	h.expect("GET", "/checkpoint_status", 200)
	if len(checkpointFiles(t, dir)) != 0 {
		t.Error("a failed suspend wrote a checkpoint")
	}
}

func TestFaultCrashAfter(t *testing.T) {
	dir := t.TempDir()
	h := start(t, dir, `{"checkpoint_interval_secs":0,"fault":{"crash_after_secs":0.05}}`, "")
	waitFor(t, "the crash", func() bool { return h.exit.Load() != -1 })
	if code := h.exit.Load(); code != CrashExitCode {
		t.Errorf("exit code = %d", code)
	}
	// The "dead" runtime drops connections.
	resp, err := http.Get(h.url + "/status")
	if err == nil {
		resp.Body.Close()
		t.Errorf("crashed runtime answered %d", resp.StatusCode)
	}
	if !strings.Contains(h.logs.String(), "crash_after_secs") {
		t.Error("no log line about the crash")
	}
	if len(checkpointFiles(t, dir)) != 0 {
		t.Error("a crash wrote a checkpoint")
	}
}

// checkpoint_crash: the crash happens half-way through a checkpoint write; the
// next incarnation skips the torn temp file and resumes from the previous checkpoint.
func TestFaultCheckpointCrash(t *testing.T) {
	dir := t.TempDir()
	h := start(t, dir, `{"checkpoint_interval_secs":0,"fault":{"checkpoint_crash":true,"checkpoint_crash_after":1}}`, "")
	h.waitCount(100)
	h.expect("POST", "/checkpoint", 200)
	good := newestCheckpoint(t, dir)
	h.waitCount(good.State.Count + 100)
	// The second checkpoint crashes the runtime; the request gets no answer.
	resp, err := http.Post(h.url+"/checkpoint", "", nil)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("crashing checkpoint answered %d", resp.StatusCode)
	}
	if h.exit.Load() != CrashExitCode {
		t.Fatalf("exit code = %d", h.exit.Load())
	}
	tmp, _ := filepath.Glob(filepath.Join(dir, tempPrefix+"*"))
	if len(tmp) != 1 {
		t.Fatalf("want a torn temp file, got %v", tmp)
	}
	h.rt.Close()

	h2 := start(t, dir, `{"checkpoint_interval_secs":0}`, "")
	h2.waitStatus(StatusRunning)
	s := h2.stats()
	if s.RestoredFromCheckpoint == nil || *s.RestoredFromCheckpoint != good.UUID {
		t.Fatalf("restored from %v, want %s", s.RestoredFromCheckpoint, good.UUID)
	}
	s = h2.waitCount(good.State.Count + 50)
	if !s.State().Consistent() {
		t.Fatalf("inconsistent: %+v", s)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, tempPrefix+"*")); len(tmp) != 0 {
		t.Errorf("temp file kept: %v", tmp)
	}
}

// A corrupt newest checkpoint is skipped at start (with a log line), the previous one loaded.
func TestCorruptNewestCheckpointOnStart(t *testing.T) {
	dir := t.TempDir()
	h := start(t, dir, `{"checkpoint_interval_secs":0}`, "")
	h.waitCount(50)
	h.expect("POST", "/checkpoint", 200)
	good := newestCheckpoint(t, dir)
	h.waitCount(good.State.Count + 50)
	h.expect("POST", "/checkpoint", 200)
	h.rt.Close()
	files := checkpointFiles(t, dir)
	b, _ := os.ReadFile(files[len(files)-1])
	if err := os.WriteFile(files[len(files)-1], b[:len(b)-20], 0o644); err != nil {
		t.Fatal(err)
	}

	h2 := start(t, dir, `{"checkpoint_interval_secs":0}`, StatusPaused)
	h2.waitStatus(StatusPaused)
	s := h2.stats()
	if s.RestoredFromCheckpoint == nil || *s.RestoredFromCheckpoint != good.UUID || s.State() != good.State {
		t.Fatalf("stats = %+v, want restore of %+v", s, good)
	}
	if !strings.Contains(h2.logs.String(), "skipping invalid checkpoint") {
		t.Error("no log line about the corrupt checkpoint")
	}
	if n := len(h2.status().StorageStatusDetails.Checkpoints); n != 1 {
		t.Errorf("listed checkpoints = %d, want 1 (the valid one)", n)
	}
}

func TestUnknownEndpointAndMethod(t *testing.T) {
	h := start(t, t.TempDir(), `{"checkpoint_interval_secs":0}`, "")
	if e := decodeError(t, h.expect("GET", "/nope", 404)); e.ErrorCode != "UnknownEndpoint" {
		t.Errorf("%+v", e)
	}
	code, hdr, b := h.do("GET", "/suspend")
	if code != 405 || hdr.Get("Allow") != "POST" {
		t.Errorf("GET /suspend = %d, Allow %q", code, hdr.Get("Allow"))
	}
	decodeError(t, b)
	h.expect("DELETE", "/status", 405)
}

func TestLaunchFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	l, err := LaunchFromEnv(env(map[string]string{compute.EnvStorageDir: "/s", compute.EnvInitial: "paused", compute.EnvPipeline: "p", compute.EnvDeploymentID: "d", compute.EnvPortFile: "/pf"}))
	if err != nil {
		t.Fatal(err)
	}
	if l.Initial != StatusPaused || l.Listen != DefaultListen || l.StorageDir != "/s" || l.Pipeline != "p" || l.DeploymentID != "d" ||
		l.PortFile != "/pf" || l.Config != DefaultConfig() {
		t.Errorf("launch = %+v", l)
	}
	for name, m := range map[string]map[string]string{
		"no storage dir": {},
		"bad initial":    {compute.EnvStorageDir: "/s", compute.EnvInitial: "Suspended"},
		"bad config":     {compute.EnvStorageDir: "/s", compute.EnvRuntimeConfig: `{"events_per_sec":"fast"}`},
	} {
		if _, err := LaunchFromEnv(env(m)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := LaunchFromEnv(env(map[string]string{compute.EnvRuntimeConfig: `{"storage":false}`})); err != nil {
		t.Errorf("storage disabled without dir: %v", err)
	}
	if code := Main(context.Background(), env(map[string]string{}), io.Discard); code != 2 {
		t.Errorf("Main with bad launch = %d", code)
	}
}

// Run binds, writes the port file, serves, and stops on cancel without a checkpoint.
func TestRunWithPortFile(t *testing.T) {
	dir := t.TempDir()
	portFile := filepath.Join(dir, "port")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lb := &logBuffer{}
	done := make(chan int, 1)
	env := map[string]string{
		compute.EnvStorageDir:    filepath.Join(dir, "storage"),
		compute.EnvPortFile:      portFile,
		compute.EnvRuntimeConfig: `{"events_per_sec":5000,"checkpoint_interval_secs":0}`,
		compute.EnvPipeline:      "pipe",
		compute.EnvDeploymentID:  "dep",
	}
	go func() { done <- Main(ctx, func(k string) string { return env[k] }, lb) }()
	var port int
	waitFor(t, "the port file", func() bool {
		p, err := ReadPortFile(portFile)
		port = p
		return err == nil
	})
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	waitFor(t, "ingestion", func() bool {
		resp, err := http.Get(base + "/stats")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var s Stats
		_ = json.NewDecoder(resp.Body).Decode(&s)
		return s.Count > 10 && s.Pipeline == "pipe" && s.DeploymentID == "dep"
	})
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code = %d", code)
		}
	case <-time.After(waitDeadline):
		t.Fatal("Main did not return after cancel")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "storage", checkpointPrefix+"*")); len(m) != 0 {
		t.Errorf("stop wrote a checkpoint: %v", m)
	}
	logs := lb.String()
	if !strings.Contains(logs, `"pipeline":"pipe"`) || !strings.Contains(logs, `"deployment_id":"dep"`) || !strings.Contains(logs, "listening") {
		t.Errorf("logs = %s", logs)
	}
}

func TestPortFileHelpers(t *testing.T) {
	p := filepath.Join(t.TempDir(), "port")
	if err := WritePortFile(p, 4321); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadPortFile(p); err != nil || got != 4321 {
		t.Errorf("ReadPortFile = %d, %v", got, err)
	}
	_ = os.WriteFile(p, []byte("nope"), 0o644)
	if _, err := ReadPortFile(p); err == nil {
		t.Error("invalid port file accepted")
	}
	if err := WritePortFile(filepath.Join(t.TempDir(), "missing", "port"), 1); err == nil {
		t.Error("port file in a missing directory accepted")
	}
}
