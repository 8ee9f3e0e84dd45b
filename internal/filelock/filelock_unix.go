//go:build unix

// Package filelock is an exclusive lock between processes (and goroutines)
// on a lock file: the local stack's one-time installs (DynamoDB Local's jar,
// the Node packages) are shared by concurrent test binaries.
package filelock

import (
	"context"
	"errors"
	"os"
	"syscall"
	"time"
)

// pollInterval is how often a waiting Lock retries: flock has no timeout, so
// the wait polls a non-blocking flock to let ctx cancel it.
const pollInterval = 100 * time.Millisecond

// Lock takes an exclusive flock on path (created if missing), waiting until
// ctx is done. The lock belongs to the open file, so it also excludes other
// goroutines of the same process. unlock releases it.
func Lock(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}
