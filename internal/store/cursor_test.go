package store

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sluicehq/sluice/internal/domain"
)

// The cursor item on DynamoDB Local: missing, written, overwritten (the last
// writer wins), cleared only while it still names what the clearer read,
// and kept per shard.
func TestReconcilerCursorItem(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	one := CursorKey{Shard: 0, Shards: 1}

	read := func(k CursorKey) Cursor {
		t.Helper()
		c, err := e.store.ReconcilerCursor(e.ctx, k)
		if err != nil {
			t.Fatalf("read %v: %v", k, err)
		}
		return c
	}
	if c := read(one); c != (Cursor{}) {
		t.Fatalf("missing cursor read as %+v", c)
	}
	if cleared, err := e.store.ClearReconcilerCursor(e.ctx, one, "p-1"); err != nil || cleared {
		t.Fatalf("clearing a missing cursor: %v %v", cleared, err)
	}

	if err := e.store.SetReconcilerCursor(e.ctx, one, "p-1"); err != nil {
		t.Fatal(err)
	}
	c := read(one)
	if c.ResumeFrom != "p-1" || c.WrittenAt.IsZero() {
		t.Fatalf("written cursor read as %+v", c)
	}
	if err := e.store.SetReconcilerCursor(e.ctx, one, "p-7"); err != nil {
		t.Fatal(err)
	}
	if c := read(one); c.ResumeFrom != "p-7" {
		t.Fatalf("overwritten cursor read as %+v", c)
	}
	// Zero shards is the unsharded pass too.
	if c := read(CursorKey{}); c.ResumeFrom != "p-7" {
		t.Fatalf("0/0 read as %+v", c)
	}

	// A clear by a pass that started from p-1 loses to the newer p-7.
	if cleared, err := e.store.ClearReconcilerCursor(e.ctx, one, "p-1"); err != nil || cleared {
		t.Fatalf("stale clear: %v %v", cleared, err)
	}
	if c := read(one); c.ResumeFrom != "p-7" {
		t.Fatalf("after a stale clear: %+v", c)
	}
	if cleared, err := e.store.ClearReconcilerCursor(e.ctx, one, "p-7"); err != nil || !cleared {
		t.Fatalf("clear: %v %v", cleared, err)
	}
	if c := read(one); c != (Cursor{}) {
		t.Fatalf("cleared cursor read as %+v", c)
	}
	if cleared, err := e.store.ClearReconcilerCursor(e.ctx, one, "p-7"); err != nil || cleared {
		t.Fatalf("clearing twice: %v %v", cleared, err)
	}
	// Written again after a clear.
	if err := e.store.SetReconcilerCursor(e.ctx, one, "p-3"); err != nil {
		t.Fatal(err)
	}
	if c := read(one); c.ResumeFrom != "p-3" {
		t.Fatalf("rewritten cursor read as %+v", c)
	}

	// Shards keep their own.
	for s := range 3 {
		if err := e.store.SetReconcilerCursor(e.ctx, CursorKey{Shard: s, Shards: 3}, fmt.Sprintf("s%d", s)); err != nil {
			t.Fatal(err)
		}
	}
	for s := range 3 {
		if c := read(CursorKey{Shard: s, Shards: 3}); c.ResumeFrom != fmt.Sprintf("s%d", s) {
			t.Fatalf("shard %d/3: %+v", s, c)
		}
	}
	if c := read(CursorKey{Shard: 0, Shards: 2}); c != (Cursor{}) {
		t.Fatalf("0/2 never written, read as %+v", c)
	}
	if c := read(one); c.ResumeFrom != "p-3" {
		t.Fatalf("0/1 after the shards' writes: %+v", c)
	}

	// Invalid keys and resume points are refused before DynamoDB is called.
	if err := e.store.SetReconcilerCursor(e.ctx, one, "not a name"); err == nil {
		t.Fatal("an invalid resume point was written")
	}
	if err := e.store.SetReconcilerCursor(e.ctx, CursorKey{Shard: 3, Shards: 3}, "p"); err == nil {
		t.Fatal("shard 3/3 was written")
	}
	if _, err := e.store.ReconcilerCursor(e.ctx, CursorKey{Shard: -1, Shards: 2}); err == nil {
		t.Fatal("shard -1/2 was read")
	}
}

// A cursor item that this package did not write is ErrCorruptCursor, and an
// unconditional clear repairs it.
func TestReconcilerCursorCorrupt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := CursorKey{Shard: 1, Shards: 2}
	put := func(item map[string]types.AttributeValue) {
		t.Helper()
		item[attrPK] = &types.AttributeValueMemberS{Value: cursorPKPrefix + key.String()}
		item[attrSK] = &types.AttributeValueMemberS{Value: cursorSK}
		if _, err := e.client.PutItem(e.ctx, &dynamodb.PutItemInput{TableName: aws.String(e.table), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	n := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	for name, item := range map[string]map[string]types.AttributeValue{
		"not a name":  {"type": s(typeCursor), "shard": n("1"), "shards": n("2"), attrResumeFrom: s("../x y")},
		"wrong type":  {"type": s("pipeline"), "shard": n("1"), "shards": n("2"), attrResumeFrom: s("p")},
		"other shard": {"type": s(typeCursor), "shard": n("0"), "shards": n("2"), attrResumeFrom: s("p")},
		"a number":    {"type": s(typeCursor), "shard": n("1"), "shards": n("2"), attrResumeFrom: n("7")},
	} {
		put(item)
		if c, err := e.store.ReconcilerCursor(e.ctx, key); !errors.Is(err, ErrCorruptCursor) {
			t.Fatalf("%s: read %+v, %v", name, c, err)
		}
	}
	if cleared, err := e.store.ClearReconcilerCursor(e.ctx, key, ""); err != nil || !cleared {
		t.Fatalf("unconditional clear: %v %v", cleared, err)
	}
	if c, err := e.store.ReconcilerCursor(e.ctx, key); err != nil || c != (Cursor{}) {
		t.Fatalf("after the repair: %+v %v", c, err)
	}
}

// The cursor item is in no listing: List, ListFrom and ListAPIKeys.
func TestReconcilerCursorNotListed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.create("a")
	if err := e.store.SetReconcilerCursor(e.ctx, CursorKey{}, "a"); err != nil {
		t.Fatal(err)
	}
	recs, _, err := e.store.List(e.ctx, "", 10)
	if err != nil || len(recs) != 1 || recs[0].Name != "a" {
		t.Fatalf("list: %v %v", recs, err)
	}
	recs, _, err = e.store.ListFrom(e.ctx, "a", "", 10)
	if err != nil || len(recs) != 1 {
		t.Fatalf("list from: %v %v", recs, err)
	}
	keys, _, err := e.store.ListAPIKeys(e.ctx, "", 10)
	if err != nil || len(keys) != 0 {
		t.Fatalf("api keys: %v %v", keys, err)
	}
}

// ListFrom lists the names >= from, in order, page by page; from may be a
// deleted pipeline's name or one that never existed, and a page token is
// valid only with its own from.
func TestListFrom(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var names []string
	for i := range 12 {
		names = append(names, fmt.Sprintf("p-%02d", i))
	}
	names = append(names, "A", "_u", "zz")
	for _, n := range names {
		e.create(n)
	}
	slices.Sort(names)
	// Delete p-05: a cursor may name a pipeline deleted since.
	if err := e.store.Delete(e.ctx, e.get("p-05"), Cause{Action: "delete", Actor: "user:test"}); err != nil {
		t.Fatal(err)
	}
	names = slices.DeleteFunc(names, func(n string) bool { return n == "p-05" })

	listFrom := func(from string, size int) []string {
		t.Helper()
		var got []string
		token := ""
		for pages := 0; ; pages++ {
			recs, next, err := e.store.ListFrom(e.ctx, from, token, size)
			if err != nil {
				t.Fatalf("from %q: %v", from, err)
			}
			for _, r := range recs {
				got = append(got, r.Name)
			}
			if next == "" {
				return got
			}
			if pages > 20 {
				t.Fatal("paging does not end")
			}
			token = next
		}
	}
	from := func(name string) []string {
		i, _ := slices.BinarySearch(names, name)
		return names[i:]
	}
	for _, start := range []string{"", "A", "p-00", "p-05", "p-050", "p-07", "p-11", "q", "zz", "zzz"} {
		for _, size := range []int{1, 3, 100} {
			got := listFrom(start, size)
			if want := from(start); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Errorf("from %q, pages of %d: %v, want %v", start, size, got, want)
			}
		}
	}

	// A token of one from is refused with another whose range it is not in.
	_, next, err := e.store.ListFrom(e.ctx, "p-00", "", 2)
	if err != nil || next == "" {
		t.Fatalf("first page: %q %v", next, err)
	}
	if _, _, err := e.store.ListFrom(e.ctx, "p-09", next, 2); err == nil {
		t.Fatal("a token before from was accepted")
	}
	var de *domain.Error
	if _, _, err := e.store.ListFrom(e.ctx, "not a name", "", 2); !errors.As(err, &de) {
		t.Fatalf("invalid from: %v", err)
	}
}
