package store

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sluicehq/sluice/internal/domain"
)

func TestListPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	recs, next, err := e.store.List(e.ctx, "", 5)
	if err != nil || recs == nil || len(recs) != 0 || next != "" {
		t.Fatalf("empty table: %v %q %v", recs, next, err)
	}

	var names []string
	for i := range 23 {
		names = append(names, fmt.Sprintf("p-%02d", i))
	}
	names = append(names, "A", "Z_z", "_under", "zz-last", "0")
	created := map[string]domain.Pipeline{}
	for _, i := range rand.Perm(len(names)) { // created in random order
		created[names[i]] = e.create(names[i])
	}
	slices.Sort(names) // DynamoDB orders string keys by their UTF-8 bytes

	var got []string
	var pages []int
	token := ""
	for {
		recs, next, err := e.store.List(e.ctx, token, 5)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, len(recs))
		for _, r := range recs {
			got = append(got, r.Name)
			sameRecord(t, "listed record", r, created[r.Name])
		}
		if next == "" {
			break
		}
		if len(pages) > 10 {
			t.Fatal("paging does not end")
		}
		token = next
	}
	if !slices.Equal(got, names) {
		t.Fatalf("listed\n %v\nwant\n %v", got, names)
	}
	if !slices.Equal(pages, []int{5, 5, 5, 5, 5, 3}) {
		t.Fatalf("page sizes %v", pages)
	}

	// A page that ends exactly at the last record has no next token.
	recs, next, err = e.store.List(e.ctx, "", len(names))
	if err != nil || len(recs) != len(names) || next != "" {
		t.Fatalf("exact page: %d records, next %q, %v", len(recs), next, err)
	}
	// limit <= 0 is the default page size.
	if recs, next, err := e.store.List(e.ctx, "", 0); err != nil || len(recs) != len(names) || next != "" {
		t.Fatalf("default limit: %d records, next %q, %v", len(recs), next, err)
	}

	badTokens := map[string]string{
		"not base64":      "***",
		"padding":         base64.URLEncoding.EncodeToString([]byte(`{"pk":"PIPELINE#a"}`)),
		"not an object":   b64(`["a"]`),
		"missing keys":    b64(`{"pk":"PIPELINE#a","sk":"RECORD"}`),
		"extra key":       b64(`{"pk":"PIPELINE#a","sk":"RECORD","gsi1pk":"PIPELINE","gsi1sk":"a","x":"y"}`),
		"wrong partition": b64(`{"pk":"PIPELINE#a","sk":"RECORD","gsi1pk":"OTHER","gsi1sk":"a"}`),
		"pk disagrees":    b64(`{"pk":"PIPELINE#b","sk":"RECORD","gsi1pk":"PIPELINE","gsi1sk":"a"}`),
		"invalid name":    b64(`{"pk":"PIPELINE#a b","sk":"RECORD","gsi1pk":"PIPELINE","gsi1sk":"a b"}`),
		"number values":   b64(`{"pk":1,"sk":"RECORD","gsi1pk":"PIPELINE","gsi1sk":"a"}`),
		"history token":   b64(`{"pk":"PIPELINE#a","sk":"EVENT#x#00000000000000000001"}`),
		"trailing data":   b64(`{"pk":"PIPELINE#a","sk":"RECORD","gsi1pk":"PIPELINE","gsi1sk":"a"}{}`),
		"huge":            b64(fmt.Sprintf(`{"pk":"PIPELINE#a","sk":"RECORD","gsi1pk":"PIPELINE","gsi1sk":"%0*d"}`, 3000, 0)),
	}
	for what, tok := range badTokens {
		_, _, err := e.store.List(e.ctx, tok, 5)
		if errCode(err) != domain.CodeInvalidQueryParameter {
			t.Errorf("%s: got %v, want InvalidQueryParameter", what, err)
			continue
		}
		if d := err.(*domain.Error).Details.(domain.ParameterDetails); d.Parameter != "page_token" {
			t.Errorf("%s: details %+v", what, d)
		}
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestHistoryPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.provisioned("hist") // 4 events
	for i := range 8 {         // 8 more: Running → Paused → Running …
		obs := domain.RuntimePaused
		if i%2 == 1 {
			obs = domain.RuntimeRunning
		}
		e.transition("hist", domain.ObserveRuntime(obs, nil))
	}
	last := e.get("hist")
	if last.RefreshVersion != 12 || last.Generation != p.Generation {
		t.Fatalf("record: %s", statusesOf(last))
	}

	var rvs []int64
	var pages []int
	token := ""
	for {
		evs, next, err := e.store.History(e.ctx, "hist", token, 5)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, len(evs))
		for _, ev := range evs {
			rvs = append(rvs, ev.RefreshVersion)
		}
		if next == "" {
			break
		}
		token = next
	}
	want := []int64{12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}
	if !slices.Equal(rvs, want) || !slices.Equal(pages, []int{5, 5, 2}) {
		t.Fatalf("history refresh versions %v in pages %v", rvs, pages)
	}
	evs, _, err := e.store.History(e.ctx, "hist", "", 1)
	if err != nil || statusesOfEvent(evs[0]) != statusesOf(last) {
		t.Fatalf("newest event %+v does not match the record %s (%v)", evs, statusesOf(last), err)
	}

	// Tokens: another pipeline's, List's, or garbage are rejected.
	e.create("other")
	e.act("other", start)
	_, otherToken, err := e.store.History(e.ctx, "other", "", 1)
	if err != nil || otherToken == "" {
		t.Fatalf("other history: %q %v", otherToken, err)
	}
	e.create("zzz")
	_, listToken, err := e.store.List(e.ctx, "", 1)
	if err != nil || listToken == "" {
		t.Fatalf("list: %q %v", listToken, err)
	}
	for what, tok := range map[string]string{"other pipeline's": otherToken, "List's": listToken, "garbage": "%%%",
		"other incarnation's": b64(`{"pk":"PIPELINE#hist","sk":"EVENT#00000000-0000-0000-0000-000000000000#00000000000000000003"}`)} {
		if _, _, err := e.store.History(e.ctx, "hist", tok, 5); errCode(err) != domain.CodeInvalidQueryParameter {
			t.Errorf("%s token: got %v, want InvalidQueryParameter", what, err)
		}
	}
	if _, _, err := e.store.History(e.ctx, "nope", "", 5); errCode(err) != domain.CodeUnknownPipelineName {
		t.Errorf("unknown pipeline: %v", err)
	}
}
