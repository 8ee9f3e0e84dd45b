// Package testkit holds the small helpers that tests of several packages (and
// the bench program) share, so that each is written once.
package testkit

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
)

// SyncBuffer is a bytes.Buffer safe for concurrent writers (a logger, a
// child process's stdout and stderr) and a concurrent reader.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FreePorts returns n distinct TCP ports that were free a moment ago (all
// held open together while they are picked, so none is returned twice).
func FreePorts(tb testing.TB, n int) []int {
	tb.Helper()
	lns := make([]net.Listener, 0, n)
	out := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", ":0")
		if err != nil {
			tb.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		_ = ln.Close()
	}
	return out
}

// ReadAllOf reads a whole stream returned with err (for readers such as a
// compute.LogReader's), failing the test on either error, and closes it.
func ReadAllOf(tb testing.TB, rc io.ReadCloser, err error) string {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}
