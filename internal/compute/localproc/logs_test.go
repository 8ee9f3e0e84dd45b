package localproc

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/compute"
	"github.com/sluicehq/sluice/internal/testkit"
)

// reader returns a function reading a whole log (for d.Logs(…) results).
func reader(t *testing.T) func(io.ReadCloser, error) string {
	return func(rc io.ReadCloser, err error) string {
		t.Helper()
		return testkit.ReadAllOf(t, rc, err)
	}
}

func TestLogsReadTailAndFollow(t *testing.T) {
	// Three lines (one on stderr), the port, then one more line once the go
	// file exists, then exit.
	script := `echo line 1; echo line 2 >&2; echo line 3; echo 1 > "$SLUICE_PORT_FILE"; ` +
		`while [ ! -e "$SLUICE_PORT_FILE.go" ]; do sleep 0.05; done; echo after-go`
	d, err := New(Config{Root: t.TempDir(), GracePeriod: 5 * time.Second, RuntimeCommand: []string{"/bin/sh", "-c", script}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Shutdown(context.Background())
	ctx := context.Background()
	readAll := reader(t)

	if _, err := d.Logs(ctx, "p1", "", compute.LogOptions{}); !errors.Is(err, compute.ErrNoLogs) {
		t.Fatalf("no deployment yet: %v, want ErrNoLogs", err)
	}
	if _, err := d.Logs(ctx, "p1", "dep-9", compute.LogOptions{}); !errors.Is(err, compute.ErrNoLogs) {
		t.Fatalf("unknown deployment: %v, want ErrNoLogs", err)
	}
	if _, err := d.Logs(ctx, "../p1", "dep-1", compute.LogOptions{}); err == nil {
		t.Fatal("an invalid pipeline name was accepted")
	}

	if _, err := d.Provision(ctx, req("p1", "dep-1", `{}`, "")); err != nil {
		t.Fatal(err)
	}
	got := readAll(d.Logs(ctx, "p1", "dep-1", compute.LogOptions{}))
	if got != "line 1\nline 2\nline 3\n" {
		t.Fatalf("log = %q", got)
	}
	// A tail that starts inside "line 2" begins at the next line.
	if got := readAll(d.Logs(ctx, "p1", "dep-1", compute.LogOptions{Tail: int64(len("line 3\n") + 2)})); got != "line 3\n" {
		t.Fatalf("tail = %q", got)
	}
	// A tail that starts exactly at a line keeps it; a large tail is the whole log.
	if got := readAll(d.Logs(ctx, "p1", "dep-1", compute.LogOptions{Tail: int64(len("line 2\nline 3\n"))})); got != "line 2\nline 3\n" {
		t.Fatalf("tail at a line = %q", got)
	}
	if got := readAll(d.Logs(ctx, "p1", "dep-1", compute.LogOptions{Tail: 1 << 20})); got != "line 1\nline 2\nline 3\n" {
		t.Fatalf("large tail = %q", got)
	}

	// Following: the new line arrives, and the stream ends with the process.
	rc, err := d.Logs(ctx, "p1", "dep-1", compute.LogOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan string)
	go func() {
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Errorf("follow: %v", err)
		}
		done <- string(b)
	}()
	if err := os.WriteFile(filepath.Join(d.RunDir("p1", "dep-1"), portFile+".go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := <-done; got != "line 1\nline 2\nline 3\nafter-go\n" {
		t.Fatalf("followed log = %q", got)
	}
	_ = rc.Close()

	// Without a deployment id: the most recent deployment's log.
	if got := readAll(d.Logs(ctx, "p1", "", compute.LogOptions{})); !strings.HasSuffix(got, "after-go\n") {
		t.Fatalf("most recent deployment's log = %q", got)
	}
}

func TestLogsFollowEndsWithContextAndClose(t *testing.T) {
	script := `echo hello; echo 1 > "$SLUICE_PORT_FILE"; exec sleep 300`
	d, err := New(Config{Root: t.TempDir(), GracePeriod: 5 * time.Second, RuntimeCommand: []string{"/bin/sh", "-c", script}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Shutdown(context.Background())
	if _, err := d.Provision(context.Background(), req("p1", "dep-1", `{}`, "")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rc, err := d.Logs(ctx, "p1", "dep-1", compute.LogOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := io.ReadAtLeast(rc, buf, len("hello\n"))
	if err != nil || string(buf[:n]) != "hello\n" {
		t.Fatalf("first read %q, %v", buf[:n], err)
	}
	cancel()
	if _, err := rc.Read(buf); !errors.Is(err, context.Canceled) {
		t.Fatalf("read after cancel: %v, want context.Canceled", err)
	}
	_ = rc.Close()

	rc, err = d.Logs(context.Background(), "p1", "dep-1", compute.LogOptions{Follow: true, Tail: 1})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, err := io.ReadAll(rc); errc <- err }()
	_ = rc.Close()
	if err := <-errc; err == nil {
		t.Fatal("a closed follow reader ended without an error")
	}
}
