package reconciler

import (
	"context"
	"errors"
	"slices"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/store"
)

// Resuming an unfinished pass.
//
// A pass lists in name order. Without a resume point, a pass that cannot
// take every pipeline before its deadline would leave the same last names
// to the next pass, which would start at the first name again: the tail
// would never be observed. So a pass cut by its deadline records, in its
// shard's cursor (store.Cursors), the name of the first pipeline it did not
// take; the next pass lists from that name to the last one, then from the
// first name up to it (a ring: every pipeline once), and a pass that
// completes its ring clears the cursor. A pipeline is therefore taken by
// the passes in turn, the ones left by a cut pass first: with N pipelines
// in the shard and k taken per pass, every one is observed within ⌈N/k⌉
// passes.
//
// The cursor is a hint, never a fence, so at-least-once delivery and
// overlapping passes need no coordination:
//
//   - A pass writes only the point where it itself stopped, having taken
//     every pipeline from the start it read up to there. Whichever of two
//     overlapping passes writes last (store.SetReconcilerCursor, last writer
//     wins), the next pass starts at a point some pass reached: it re-takes
//     pipelines the other just took, or goes on past pipelines the writer
//     just took. A point is never one its writer reached without taking
//     every pipeline on the way from a start it read, so no write moves the
//     cursor past pipelines that nobody took.
//   - A lost or failed write leaves the previous point: the next pass repeats
//     this one's start (today's behaviour for one pass), never skips. So
//     does a pass ended by its context or a listing error rather than by its
//     stop margin: it records nothing.
//   - A clear is conditional on the cursor still naming the start this pass
//     read (store.ClearReconcilerCursor), so it does not undo a newer point
//     another pass recorded; a lost clear leaves a valid start.
//   - A cursor that cannot be read or used (an error, not a pipeline name)
//     is ignored: the pass starts at the first name, as without a cursor. A
//     cursor naming a pipeline deleted since is a valid start: the listing
//     begins at the first name >= it (store.ListFrom).
//
// Only after the last overlapping pass ends does the cursor advance one
// pass at a time again; until then overlap costs repeated work, not misses.

// ringPart is one listing of a ring: the names >= from ("" : from the first)
// and, when before is set, < before.
type ringPart struct{ from, before string }

// ringOf is the ring that starts at start: from start to the last name,
// then from the first name up to start. No start: one listing of all.
func ringOf(start string) []ringPart {
	if start == "" {
		return []ringPart{{}}
	}
	return []ringPart{{from: start}, {before: start}}
}

// listPage lists one page of a ring's part.
func (r *Reconciler) listPage(ctx context.Context, part ringPart, token string, size int) ([]domain.Pipeline, string, error) {
	var (
		page []domain.Pipeline
		next string
		err  error
	)
	if part.from != "" {
		page, next, err = r.Store.ListFrom(ctx, part.from, token, size)
	} else {
		page, next, err = r.Store.List(ctx, token, size)
	}
	if err != nil || part.before == "" {
		return page, next, err
	}
	if i := slices.IndexFunc(page, func(p domain.Pipeline) bool { return p.Name >= part.before }); i >= 0 {
		return page[:i], "", nil // the rest of the ring was listed first
	}
	return page, next, nil
}

// cursorKey is this pass's shard.
func (r *Reconciler) cursorKey() store.CursorKey {
	if r.Shards <= 1 {
		return store.CursorKey{Shard: 0, Shards: 1}
	}
	return store.CursorKey{Shard: r.Shard, Shards: r.Shards}
}

// stopNow: the pass takes no more pipelines (nearDeadline, or the test's cut).
func (r *Reconciler) stopNow(ctx context.Context, taken int) bool {
	if r.cut != nil {
		return r.cut(ctx, taken)
	}
	return r.nearDeadline(ctx)
}

// resumePoint reads the shard's cursor: the name to start from ("" : the
// first). corrupt: there is an item that is not a usable cursor (the pass
// clears it when it completes its ring).
func (r *Reconciler) resumePoint(ctx context.Context, key store.CursorKey, rep *Report) (start string, corrupt bool) {
	c, err := r.Store.ReconcilerCursor(ctx, key)
	if err == nil && c.ResumeFrom != "" && domain.ValidateName(c.ResumeFrom) != nil {
		err = errors.Join(store.ErrCorruptCursor, errors.New("resume point "+c.ResumeFrom+" is not a pipeline name"))
	}
	if err != nil {
		rep.CursorError = "read: " + err.Error()
		r.logger().Warn("reconciler resume point unusable; the pass starts at the first name",
			"shard", key.String(), "error", err.Error())
		return "", errors.Is(err, store.ErrCorruptCursor)
	}
	if c.ResumeFrom != "" {
		rep.ResumedFrom = c.ResumeFrom
		r.logger().Info("reconciler pass resumes where an unfinished pass stopped",
			"shard", key.String(), "resumed_from", c.ResumeFrom, "recorded_at", c.WrittenAt)
	}
	return c.ResumeFrom, false
}

// recordResume records next, the first pipeline this cut pass did not take,
// as the shard's resume point (last writer wins, see above). A pass cut
// before it took anything since its start has nothing new to record.
func (r *Reconciler) recordResume(ctx context.Context, key store.CursorKey, start, next string, rep *Report) {
	if next == start {
		rep.NextFrom = next
		return
	}
	if err := r.Store.SetReconcilerCursor(ctx, key, next); err != nil {
		rep.CursorError = "record: " + err.Error()
		r.logger().Warn("reconciler resume point not recorded; the next pass starts where this one did",
			"shard", key.String(), "next_from", next, "resumed_from", start, "error", err.Error())
		return
	}
	rep.NextFrom = next
}

// ringDone: the pass took every pipeline of its ring; the resume point it
// started from (or a corrupt item) is cleared.
func (r *Reconciler) ringDone(ctx context.Context, key store.CursorKey, start string, corrupt bool, rep *Report) {
	if start == "" && !corrupt {
		return // none read: nothing to clear (one written since is a valid start)
	}
	cleared, err := r.Store.ClearReconcilerCursor(ctx, key, start)
	switch {
	case err != nil:
		rep.CursorError = "clear: " + err.Error()
		r.logger().Warn("reconciler resume point not cleared; the next pass starts from it again",
			"shard", key.String(), "resumed_from", start, "error", err.Error())
	case cleared:
		r.logger().Info("reconciler ring complete; resume point cleared", "shard", key.String(), "resumed_from", start)
	default:
		r.logger().Info("reconciler ring complete; a newer resume point recorded by another pass is kept",
			"shard", key.String(), "resumed_from", start)
	}
}
