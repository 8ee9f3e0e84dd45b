// Package ctxutil holds the one context-aware sleep of the project.
package ctxutil

import (
	"context"
	"time"
)

// Sleep waits d or until ctx ends, whichever is first: nil after d,
// ctx.Err() when ctx ended (at once for d <= 0 only if ctx has ended).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
