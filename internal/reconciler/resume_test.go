package reconciler

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sluicehq/sluice/internal/compute"
	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/store"
)

// orderDriver records the order of the compute checks (with Workers = 1,
// the order the pass took the pipelines in).
type orderDriver struct {
	stubDriver
	mu    sync.Mutex
	order []string
}

func (d *orderDriver) Check(ctx context.Context, name, deploymentID string) (compute.CheckResult, error) {
	d.mu.Lock()
	d.order = append(d.order, name)
	d.mu.Unlock()
	return d.stubDriver.Check(ctx, name, deploymentID)
}

// checked returns and forgets the checks so far.
func (d *orderDriver) checked() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	o := d.order
	d.order = nil
	return o
}

func (f *fixture) recordOrder() *orderDriver {
	d := &orderDriver{stubDriver: stubDriver{check: f.drv.check}}
	f.rec.Driver = d
	f.rec.Workers = 1
	return d
}

// cutAfter cuts a pass once it has taken n pipelines (never: n < 0).
func cutAfter(n int) func(context.Context, int) bool {
	return func(_ context.Context, taken int) bool { return n >= 0 && taken >= n }
}

func (f *fixture) cursor(key store.CursorKey) string {
	f.t.Helper()
	c, err := f.store.ReconcilerCursor(f.ctx, key)
	if err != nil {
		f.t.Fatal(err)
	}
	return c.ResumeFrom
}

var unsharded = store.CursorKey{Shard: 0, Shards: 1}

// A cut pass records the first pipeline it did not take; the next pass takes
// the tail first, then the head; a pass that completes its ring clears the
// cursor, and the pass after it starts at the first name again.
func TestCutPassResumesWhereItStopped(t *testing.T) {
	f := newFixture(t)
	names := f.runningMany(10) // p00 … p09
	d := f.recordOrder()

	type want struct {
		cut                int
		order              []string
		resumed, next      string
		unfinished         bool
		cursorAfterThePass string
	}
	for i, w := range []want{
		{cut: 4, order: names[0:4], next: "p04", unfinished: true, cursorAfterThePass: "p04"},
		{cut: 4, order: names[4:8], resumed: "p04", next: "p08", unfinished: true, cursorAfterThePass: "p08"},
		// Wraps around: the tail, then the head.
		{cut: 4, order: []string{"p08", "p09", "p00", "p01"}, resumed: "p08", next: "p02", unfinished: true, cursorAfterThePass: "p02"},
		// A full ring from p02: every pipeline once; the cursor is cleared.
		{cut: -1, order: append(slices.Clone(names[2:]), names[:2]...), resumed: "p02"},
		{cut: -1, order: names},
	} {
		f.rec.cut = cutAfter(w.cut)
		rep := f.run()
		if got := d.checked(); !slices.Equal(got, w.order) {
			t.Fatalf("pass %d took %v, want %v", i+1, got, w.order)
		}
		if rep.ResumedFrom != w.resumed || rep.NextFrom != w.next || rep.Unfinished != w.unfinished || rep.CursorError != "" {
			t.Fatalf("pass %d: report %+v", i+1, rep)
		}
		if c := f.cursor(unsharded); c != w.cursorAfterThePass {
			t.Fatalf("pass %d: cursor %q, want %q", i+1, c, w.cursorAfterThePass)
		}
	}
}

// With more pipelines than a pass takes, every one is observed within two
// passes (here 6 a pass of 10): the second takes the 4 the first left, then
// wraps around to the first names (without the cursor it would take the same
// 6 again and never observe the last 4).
func TestEveryPipelineObservedWithinTwoPasses(t *testing.T) {
	f := newFixture(t)
	names := f.runningMany(10)
	d := f.countChecks()
	f.rec.cut = cutAfter(6)
	for range 2 {
		if rep := f.run(); !rep.Unfinished {
			t.Fatalf("report %+v", rep)
		}
	}
	for i, n := range names {
		if want := 1 + btoi(i < 2); d.checks[n] != want {
			t.Fatalf("%s checked %d times in two passes, want %d: %v", n, d.checks[n], want, d.checks)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A cursor that names a pipeline deleted since, or a name past every
// pipeline, is a valid start: the listing starts at the first name >= it.
func TestResumeFromDeletedOrStaleName(t *testing.T) {
	f := newFixture(t)
	names := f.runningMany(6) // p00 … p05
	p, err := domain.Create(domain.Definition{Name: "p02x", RuntimeConfig: []byte(`{}`)}, uuid.NewString(), time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.Create(f.ctx, p, store.Cause{Action: "create"}); err != nil {
		t.Fatal(err)
	}
	d := f.recordOrder()
	f.rec.cut = cutAfter(3)
	f.run() // p00 p01 p02 taken (p02x is fully stopped: taken, not checked)
	if c := f.cursor(unsharded); c != "p02x" {
		t.Fatalf("cursor %q", c)
	}
	d.checked()
	if err := f.store.Delete(f.ctx, f.get("p02x"), store.Cause{Action: "delete"}); err != nil {
		t.Fatal(err)
	}
	f.rec.cut = nil
	rep := f.run()
	if got, want := d.checked(), append(slices.Clone(names[3:]), names[:3]...); !slices.Equal(got, want) {
		t.Fatalf("from the deleted p02x: took %v, want %v", got, want)
	}
	if rep.ResumedFrom != "p02x" || rep.Unfinished || rep.CursorError != "" || f.cursor(unsharded) != "" {
		t.Fatalf("report %+v, cursor %q", rep, f.cursor(unsharded))
	}

	// A name after every pipeline: the tail is empty, the head is all.
	if err := f.store.SetReconcilerCursor(f.ctx, unsharded, "zzz"); err != nil {
		t.Fatal(err)
	}
	rep = f.run()
	if got := d.checked(); !slices.Equal(got, names) || rep.ResumedFrom != "zzz" || f.cursor(unsharded) != "" {
		t.Fatalf("from zzz: took %v, report %+v", got, rep)
	}
}

// cursorStore serves a given cursor read (value or error) and records the
// clears; everything else goes to the wrapped store.
type cursorStore struct {
	store.Store
	read    store.Cursor
	readErr error
	mu      sync.Mutex
	clears  []string
}

func (s *cursorStore) ReconcilerCursor(context.Context, store.CursorKey) (store.Cursor, error) {
	return s.read, s.readErr
}

func (s *cursorStore) ClearReconcilerCursor(ctx context.Context, key store.CursorKey, ifResumeFrom string) (bool, error) {
	s.mu.Lock()
	s.clears = append(s.clears, ifResumeFrom)
	s.mu.Unlock()
	return s.Store.ClearReconcilerCursor(ctx, key, ifResumeFrom)
}

// A cursor that cannot be read or used makes the pass start at the first
// name, as without one; a corrupt one is cleared once the ring is complete,
// an unavailable store's is left alone.
func TestUnusableCursorStartsAtTheFirstName(t *testing.T) {
	f := newFixture(t)
	names := f.runningMany(4)
	d := f.recordOrder()
	for _, c := range []struct {
		name    string
		read    store.Cursor
		readErr error
		clears  []string
	}{
		{name: "not a name", read: store.Cursor{ResumeFrom: "../p 02"}, clears: []string{""}},
		{name: "corrupt item", readErr: fmt.Errorf("store: %w 0/1: type %q", store.ErrCorruptCursor, "pipeline"), clears: []string{""}},
		{name: "unavailable", readErr: fmt.Errorf("store: read: %w", store.ErrUnavailable)},
	} {
		cs := &cursorStore{Store: f.store, read: c.read, readErr: c.readErr}
		f.rec.Store = cs
		rep := f.run()
		if got := d.checked(); !slices.Equal(got, names) {
			t.Fatalf("%s: took %v", c.name, got)
		}
		if rep.ResumedFrom != "" || rep.CursorError == "" || rep.Unfinished {
			t.Fatalf("%s: report %+v", c.name, rep)
		}
		if !slices.Equal(cs.clears, c.clears) {
			t.Fatalf("%s: clears %q, want %q", c.name, cs.clears, c.clears)
		}
	}
}

// failingCursorWrites fails every cursor write.
type failingCursorWrites struct{ store.Store }

func (failingCursorWrites) SetReconcilerCursor(context.Context, store.CursorKey, string) error {
	return fmt.Errorf("store: write: %w", store.ErrUnavailable)
}

// A resume point that could not be recorded leaves the previous one: the
// next pass repeats this one's start (nothing is skipped), and the report
// says so.
func TestLostCursorWriteRepeatsTheStart(t *testing.T) {
	f := newFixture(t)
	names := f.runningMany(6)
	d := f.recordOrder()
	f.rec.cut = cutAfter(2)
	f.run()
	d.checked() // p00 p01; cursor p02
	f.rec.Store = failingCursorWrites{f.store}
	rep := f.run()
	if got := d.checked(); !slices.Equal(got, names[2:4]) || rep.NextFrom != "" || rep.CursorError == "" {
		t.Fatalf("took %v, report %+v", got, rep)
	}
	f.rec.Store = f.store
	f.run()
	if got := d.checked(); !slices.Equal(got, names[2:4]) || f.cursor(unsharded) != "p04" {
		t.Fatalf("after the lost write: took %v, cursor %q", got, f.cursor(unsharded))
	}
}

// Shards keep their own cursors: each names a pipeline of its shard, and
// each shard resumes from its own.
func TestShardsKeepTheirOwnCursor(t *testing.T) {
	f := newFixture(t)
	names := f.runningMany(12)
	d := f.recordOrder()
	const shards = 2
	ofShard := map[int][]string{}
	for _, n := range names {
		s := ShardOf(n, shards)
		ofShard[s] = append(ofShard[s], n)
	}
	if len(ofShard[0]) < 3 || len(ofShard[1]) < 3 {
		t.Fatalf("test names split badly: %v", ofShard)
	}
	f.rec.Shards = shards
	f.rec.cut = cutAfter(2)
	for s := range shards {
		f.rec.Shard = s
		f.run()
		if got := d.checked(); !slices.Equal(got, ofShard[s][:2]) {
			t.Fatalf("shard %d took %v, want %v", s, got, ofShard[s][:2])
		}
	}
	for s := range shards {
		if c := f.cursor(store.CursorKey{Shard: s, Shards: shards}); c != ofShard[s][2] {
			t.Fatalf("shard %d cursor %q, want %q", s, c, ofShard[s][2])
		}
	}
	if c := f.cursor(unsharded); c != "" {
		t.Fatalf("the unsharded cursor was written: %q", c)
	}
	// Shard 1 completes its ring from its own point; shard 0's is untouched.
	f.rec.Shard, f.rec.cut = 1, nil
	rep := f.run()
	want := append(slices.Clone(ofShard[1][2:]), ofShard[1][:2]...)
	if got := d.checked(); !slices.Equal(got, want) || rep.ResumedFrom != ofShard[1][2] {
		t.Fatalf("shard 1 took %v, want %v; report %+v", got, want, rep)
	}
	if c0, c1 := f.cursor(store.CursorKey{Shard: 0, Shards: shards}), f.cursor(store.CursorKey{Shard: 1, Shards: shards}); c0 != ofShard[0][2] || c1 != "" {
		t.Fatalf("cursors after shard 1's ring: %q %q", c0, c1)
	}
}

// Overlapping passes (a duplicate delivery, a pass that overran its minute)
// each record where they stopped, the last writer winning: whatever the
// interleaving, no pipeline is lost, and every round of passes moves on.
func TestConcurrentPassesLoseNoPipeline(t *testing.T) {
	f := newFixture(t)
	names := f.runningMany(12)
	d := f.countChecks()
	f.rec.Workers = 3
	const perPass, rounds = 3, 4 // 12 / 3: each round moves the cursor at least 3
	for round := range rounds {
		var wg sync.WaitGroup
		reps := make([]Report, 2)
		errs := make([]error, 2)
		for i := range 2 {
			pass := *f.rec // what each invocation does (functions/reconciler)
			pass.cut = cutAfter(perPass)
			wg.Go(func() { reps[i], errs[i] = pass.Run(f.ctx) })
		}
		wg.Wait()
		for i := range 2 {
			if errs[i] != nil || reps[i].Errors != 0 || reps[i].CursorError != "" || !reps[i].Unfinished {
				t.Fatalf("round %d pass %d: %+v %v", round, i, reps[i], errs[i])
			}
		}
	}
	for _, n := range names {
		if d.checks[n] == 0 {
			t.Fatalf("%s never observed in %d rounds: %v", n, rounds, d.checks)
		}
	}
}

// A late (stale) write of an older point and a clear racing a newer point
// cost repeated work, never a skip: the stale point is re-taken from, and a
// ring's clear keeps a point another pass recorded meanwhile.
func TestStaleCursorWritesSkipNothing(t *testing.T) {
	f := newFixture(t)
	names := f.runningMany(8)
	d := f.recordOrder()
	f.rec.cut = cutAfter(3)
	f.run() // p00-p02, cursor p03
	f.run() // p03-p05, cursor p06
	d.checked()
	// A duplicate of the first pass, late, writes its point again.
	if err := f.store.SetReconcilerCursor(f.ctx, unsharded, "p03"); err != nil {
		t.Fatal(err)
	}
	f.run()
	if got := d.checked(); !slices.Equal(got, names[3:6]) {
		t.Fatalf("after the stale write: took %v", got)
	}
	// A full ring from p06 while another pass records p01 halfway through:
	// the ring's clear is conditional on p06 and keeps p01.
	f.rec.cut = func(ctx context.Context, taken int) bool {
		if taken == 4 {
			if err := f.store.SetReconcilerCursor(ctx, unsharded, "p01"); err != nil {
				t.Error(err)
			}
		}
		return false
	}
	rep := f.run()
	if got := d.checked(); len(got) != len(names) || rep.ResumedFrom != "p06" || rep.Unfinished {
		t.Fatalf("ring took %v, report %+v", got, rep)
	}
	if c := f.cursor(unsharded); c != "p01" {
		t.Fatalf("cursor %q after the ring, want the newer p01", c)
	}
}

// The report says where a pass resumed and where the next one will, in the
// JSON the Lambda returns.
func TestReportNamesTheResumePoints(t *testing.T) {
	f := newFixture(t)
	f.runningMany(3)
	f.rec.cut = cutAfter(1)
	rep := f.run()
	if rep.ResumedFrom != "" || rep.NextFrom != "p01" {
		t.Fatalf("report %+v", rep)
	}
	rep = f.run()
	if rep.ResumedFrom != "p01" || rep.NextFrom != "p02" {
		t.Fatalf("report %+v", rep)
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(js, &got); err != nil {
		t.Fatal(err)
	}
	if got["resumed_from"] != "p01" || got["next_from"] != "p02" || got["unfinished"] != true {
		t.Fatalf("report JSON %s", js)
	}
	// A pass that finishes its ring names no next point.
	f.rec.cut = nil
	if rep := f.run(); rep.ResumedFrom != "p02" || rep.NextFrom != "" || rep.Unfinished {
		t.Fatalf("report %+v", rep)
	}
}
