//go:build unix

package filelock

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

func TestLockExcludesUntilUnlocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "install.lock")
	unlock, err := Lock(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	// A second holder waits; a cancelled wait gives up with ctx's error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Lock(ctx, path); !errors.Is(err, context.Canceled) {
		t.Fatalf("second Lock while held: %v, want context.Canceled", err)
	}
	unlock()
	unlock2, err := Lock(context.Background(), path)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	unlock2()
}

func TestLockReportsAPathThatCannotBeOpened(t *testing.T) {
	if _, err := Lock(context.Background(), filepath.Join(t.TempDir(), "missing", "x.lock")); err == nil {
		t.Fatal("Lock in a missing folder succeeded")
	}
}
