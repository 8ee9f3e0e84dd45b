package sampleruntime

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// logBuffer collects log output safely across goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func testLogger(t *testing.T) (*slog.Logger, *logBuffer) {
	t.Helper()
	lb := &logBuffer{}
	return slog.New(slog.NewJSONHandler(lb, nil)), lb
}

func stateAt(last int64) State {
	s := InitialState()
	s.process(uint64(last + 1))
	return s
}

func checkpointFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, checkpointPrefix+"*"+checkpointSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestStateConsistent(t *testing.T) {
	if !InitialState().Consistent() {
		t.Error("initial state inconsistent")
	}
	for _, last := range []int64{0, 1, 2, 3, 10, 999, 1000} {
		s := stateAt(last)
		if !s.Consistent() || s.Count != uint64(last+1) || s.Sum != TriangularSum(last) {
			t.Errorf("state at %d: %+v", last, s)
		}
	}
	if got := TriangularSum(100); got != 5050 {
		t.Errorf("TriangularSum(100) = %d", got)
	}
	bad := []State{
		{Count: 1, Sum: 0, LastSequenceNumber: -1},
		{Count: 3, Sum: 2, LastSequenceNumber: 2},
		{Count: 2, Sum: 3, LastSequenceNumber: 2},
		{Count: 0, Sum: 0, LastSequenceNumber: -2},
	}
	for _, s := range bad {
		if s.Consistent() {
			t.Errorf("%+v reported consistent", s)
		}
	}
	// Both sides wrap alike beyond 2^64.
	big := State{LastSequenceNumber: 1 << 40, Count: 1<<40 + 1, Sum: TriangularSum(1 << 40)}
	if !big.Consistent() {
		t.Error("big state inconsistent")
	}
}

func TestStoreRoundTripAndOrder(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Latest(); ok || err != nil {
		t.Fatalf("empty store: ok=%v err=%v", ok, err)
	}
	var metas []CheckpointMeta
	for _, last := range []int64{-1, 10, 10, 42} {
		m, err := s.Write(stateAt(last), "inc", "p", "d")
		if err != nil {
			t.Fatal(err)
		}
		metas = append(metas, m)
	}
	list := s.List()
	if len(list) != 4 || list[3].UUID != metas[3].UUID || list[0].UUID != metas[0].UUID {
		t.Fatalf("list = %+v", list)
	}
	if list[3].SequenceNumber != 42 || list[3].Size <= 0 {
		t.Errorf("newest = %+v", list[3])
	}
	cp, ok, err := s.Latest()
	if err != nil || !ok || cp.UUID != metas[3].UUID || cp.State != stateAt(42) || cp.IncarnationUUID != "inc" || cp.Pipeline != "p" {
		t.Fatalf("latest = %+v ok=%v err=%v", cp, ok, err)
	}

	// Reopening indexes the same checkpoints, and new ones sort after them.
	s2, err := OpenStore(dir, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := s2.List(); len(got) != 4 || got[3].UUID != metas[3].UUID || got[3].Size != list[3].Size {
		t.Fatalf("reopened list = %+v", got)
	}
	m, err := s2.Write(stateAt(50), "inc2", "p", "d")
	if err != nil {
		t.Fatal(err)
	}
	if cp, _, _ := s2.Latest(); cp.UUID != m.UUID || cp.Generation != 5 {
		t.Errorf("latest after reopen = %+v", cp)
	}
	// No temp file is left behind by successful writes.
	if tmp, _ := filepath.Glob(filepath.Join(dir, tempPrefix+"*")); len(tmp) != 0 {
		t.Errorf("temp files left: %v", tmp)
	}
}

func TestStoreKeepsLastN(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range int64(7) {
		if _, err := s.Write(stateAt(i), "inc", "", ""); err != nil {
			t.Fatal(err)
		}
	}
	files := checkpointFiles(t, dir)
	if len(files) != 3 {
		t.Fatalf("files = %v", files)
	}
	list := s.List()
	if len(list) != 3 || list[0].SequenceNumber != 4 || list[2].SequenceNumber != 6 {
		t.Fatalf("list = %+v", list)
	}
}

// A crash in the middle of a write leaves a truncated temp file: it is never
// loaded, it is cleaned up, and the previous checkpoint is the one resumed from.
func TestStoreTruncatedTempFileIsIgnored(t *testing.T) {
	dir := t.TempDir()
	s, _ := OpenStore(dir, 5, nil)
	good, err := s.Write(stateAt(99), "inc", "", "")
	if err != nil {
		t.Fatal(err)
	}
	var exitCode int
	s.crashNow = func() bool { return true }
	s.exit = func(code int) { exitCode = code }
	if _, err := s.Write(stateAt(150), "inc", "", ""); err != ErrCrashed {
		t.Fatalf("crash write: %v", err)
	}
	if exitCode != CrashExitCode {
		t.Errorf("exit code = %d", exitCode)
	}
	tmp, _ := filepath.Glob(filepath.Join(dir, tempPrefix+"*"))
	if len(tmp) != 1 {
		t.Fatalf("want one truncated temp file, got %v", tmp)
	}
	if b, _ := os.ReadFile(tmp[0]); len(b) == 0 {
		t.Fatal("temp file should hold part of the checkpoint")
	}

	log, logs := testLogger(t)
	s2, err := OpenStore(dir, 5, log)
	if err != nil {
		t.Fatal(err)
	}
	cp, ok, err := s2.Latest()
	if err != nil || !ok || cp.UUID != good.UUID || cp.State != stateAt(99) {
		t.Fatalf("latest = %+v ok=%v err=%v", cp, ok, err)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, tempPrefix+"*")); len(tmp) != 0 {
		t.Errorf("temp file not cleaned: %v", tmp)
	}
	if !strings.Contains(logs.String(), "interrupted checkpoint write") {
		t.Errorf("no log line about the temp file: %s", logs)
	}
}

func corruptions() map[string]func([]byte) []byte {
	return map[string]func([]byte) []byte{
		"torn (truncated)": func(b []byte) []byte { return b[:len(b)/2] },
		"empty":            func(b []byte) []byte { return nil },
		"bit flip in state": func(b []byte) []byte {
			// Change the count inside the payload: JSON stays valid, the checksum does not.
			return bytes.Replace(b, []byte(`"count":101`), []byte(`"count":102`), 1)
		},
		"checksum replaced": func(b []byte) []byte {
			i := bytes.Index(b, []byte(`"sha256:`))
			out := bytes.Clone(b)
			out[i+8] ^= 1
			return out
		},
		"garbage": func(b []byte) []byte { return []byte("\x00\x01not json") },
	}
}

func TestStoreCorruptNewestIsSkipped(t *testing.T) {
	for name, corrupt := range corruptions() {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s, _ := OpenStore(dir, 5, nil)
			good, err := s.Write(stateAt(50), "inc", "", "")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Write(stateAt(100), "inc", "", ""); err != nil {
				t.Fatal(err)
			}
			newest := filepath.Join(dir, CheckpointFileName(2))
			b, err := os.ReadFile(newest)
			if err != nil {
				t.Fatal(err)
			}
			nb := corrupt(b)
			if bytes.Equal(nb, b) {
				t.Fatal("corruption did not change the file")
			}
			if err := os.WriteFile(newest, nb, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := ReadCheckpoint(newest); err == nil {
				t.Fatal("corrupt checkpoint read without error")
			}

			log, logs := testLogger(t)
			s2, err := OpenStore(dir, 5, log)
			if err != nil {
				t.Fatal(err)
			}
			cp, ok, err := s2.Latest()
			if err != nil || !ok || cp.UUID != good.UUID || cp.State != stateAt(50) {
				t.Fatalf("latest = %+v ok=%v err=%v", cp, ok, err)
			}
			if l := s2.List(); len(l) != 1 || l[0].UUID != good.UUID {
				t.Errorf("list should hold only the valid checkpoint: %+v", l)
			}
			if !strings.Contains(logs.String(), "skipping invalid checkpoint") {
				t.Errorf("no log line about the corrupt checkpoint: %s", logs)
			}
			// The next checkpoint sorts after the corrupt one.
			m, err := s2.Write(stateAt(60), "inc2", "", "")
			if err != nil {
				t.Fatal(err)
			}
			if cp, _, _ := s2.Latest(); cp.UUID != m.UUID || cp.Generation != 3 {
				t.Errorf("latest after write = %+v", cp)
			}
		})
	}
}

func TestStoreCorruptionAfterOpenIsSkipped(t *testing.T) {
	dir := t.TempDir()
	s, _ := OpenStore(dir, 5, nil)
	good, _ := s.Write(stateAt(5), "inc", "", "")
	_, _ = s.Write(stateAt(6), "inc", "", "")
	if err := os.WriteFile(filepath.Join(dir, CheckpointFileName(2)), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	cp, ok, err := s.Latest()
	if err != nil || !ok || cp.UUID != good.UUID {
		t.Fatalf("latest = %+v ok=%v err=%v", cp, ok, err)
	}
}

func TestCheckpointValidation(t *testing.T) {
	valid := Checkpoint{UUID: "u", Generation: 1, SequenceNumber: 3, State: stateAt(3)}
	b, err := encodeCheckpoint(valid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeCheckpoint(b); err != nil {
		t.Fatalf("valid: %v", err)
	}
	for name, cp := range map[string]Checkpoint{
		"inconsistent state":   {UUID: "u", Generation: 1, SequenceNumber: 3, State: State{Count: 4, Sum: 7, LastSequenceNumber: 3}},
		"seq mismatch":         {UUID: "u", Generation: 1, SequenceNumber: 2, State: stateAt(3)},
		"missing uuid":         {Generation: 1, SequenceNumber: 3, State: stateAt(3)},
		"count without events": {UUID: "u", SequenceNumber: -1, State: State{Count: 1, LastSequenceNumber: -1}},
	} {
		b, err := encodeCheckpoint(cp)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeCheckpoint(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A well-formed file with another format version is refused.
	if _, err := decodeCheckpoint(bytes.Replace(b, []byte(`"format":1`), []byte(`"format":9`), 1)); err == nil {
		t.Error("unknown format accepted")
	}
	// A file whose name does not match its generation is skipped.
	dir := t.TempDir()
	b, _ = encodeCheckpoint(valid)
	if err := os.WriteFile(filepath.Join(dir, CheckpointFileName(7)), b, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := OpenStore(dir, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Latest(); ok {
		t.Error("misnamed checkpoint loaded")
	}
}
