package localproc

// The run directory of a deployment: its files (deployment.json, exit.json, the port file, runtime.log) and how they are written.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// meta is deployment.json.
type meta struct {
	Pipeline     string    `json:"pipeline"`
	PipelineID   string    `json:"pipeline_id"`
	DeploymentID string    `json:"deployment_id"`
	PID          int       `json:"pid"`
	StartTicks   uint64    `json:"start_ticks,omitempty"`
	Command      []string  `json:"command"`
	StorageDir   string    `json:"storage_dir"`
	Initial      string    `json:"initial"`
	StartedAt    time.Time `json:"started_at"`
}

// exitRecord is the exit file.
type exitRecord struct {
	ExitCode *int      `json:"exit_code"`
	Signal   string    `json:"signal,omitempty"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

func readMeta(runDir string) (meta, error) {
	b, err := os.ReadFile(filepath.Join(runDir, metaFile))
	if err != nil {
		return meta{}, err
	}
	var m meta
	if err := json.Unmarshal(b, &m); err != nil {
		return meta{}, fmt.Errorf("localproc: %s: %w", filepath.Join(runDir, metaFile), err)
	}
	return m, nil
}

func writeMeta(runDir string, m meta) error {
	if err := writeJSONFile(filepath.Join(runDir, metaFile), m); err != nil {
		return fmt.Errorf("localproc: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(runDir, pidFile), []byte(strconv.Itoa(m.PID)+"\n")); err != nil {
		return fmt.Errorf("localproc: %w", err)
	}
	return nil
}

func readExit(runDir string) (exitRecord, error) {
	b, err := os.ReadFile(filepath.Join(runDir, exitFile))
	if err != nil {
		return exitRecord{}, err
	}
	var r exitRecord
	err = json.Unmarshal(b, &r)
	return r, err
}

func readPort(runDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(runDir, portFile))
	if err != nil {
		return 0, err
	}
	p, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || p <= 0 || p > 65535 {
		return 0, fmt.Errorf("invalid port file content %q", strings.TrimSpace(string(b)))
	}
	return p, nil
}

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'))
}

// writeFileAtomic writes a file through a temp file and a rename.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	return nil
}

// logTail returns the last n bytes of a file, trimmed, on one line.
func logTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	off := fi.Size() - n
	if off < 0 {
		off = 0
	}
	b := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	return strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "")), " ")
}
