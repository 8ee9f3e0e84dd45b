package samtemplate

import (
	"slices"
	"testing"

	"github.com/sluicehq/sluice/internal/store"
)

// TestTableAccessConfinedByPartitionKey (issue 14): every function's access
// to the table's items is confined by dynamodb:LeadingKeys to the items it
// owns; only the api (which serves /v0/api_keys) may touch API key items, and
// the authorizer may only read them; only the reconciler may touch its own
// items (its cursors), in a statement of their own. The prefixes are the
// store's own. Every table statement of a function is confined to one of
// its sets, and each of its sets has a statement.
func TestTableAccessConfinedByPartitionKey(t *testing.T) {
	tp := loadTemplate(t)
	pipelines, keys, names := store.PipelineItemsPrefix+"*", store.APIKeyItemsPrefix+"*", store.KeyNameItemsPrefix+"*"
	reconciler := store.ReconcilerItemsPrefix + "*"
	want := map[string][][]string{
		"ApiFunction":        {{pipelines, keys, names}},
		"StepsFunction":      {{pipelines}},
		"ReconcilerFunction": {{pipelines}, {reconciler}},
		"AuthorizerFunction": {{keys}},
	}
	for fn, sets := range want {
		found := 0
		seen := make([]bool, len(sets))
		for _, pol := range asSlice(tp.props(fn)["Policies"]) {
			for _, st := range asSlice(asMap(pol)["Statement"]) {
				s := asMap(st)
				if getAtt(s["Resource"]) != "PipelinesTable.Arn" {
					continue
				}
				found++
				cond := asMap(asMap(asMap(s["Condition"])["ForAllValues:StringLike"]))
				var got []string
				for _, v := range asSlice(cond["dynamodb:LeadingKeys"]) {
					got = append(got, v.(string))
				}
				slices.Sort(got)
				match := slices.IndexFunc(sets, func(prefixes []string) bool {
					exp := slices.Clone(prefixes)
					slices.Sort(exp)
					return slices.Equal(got, exp)
				})
				if match < 0 {
					t.Errorf("%s: table statement %v confined to %v, want one of %v", fn, s["Sid"], got, sets)
					continue
				}
				seen[match] = true
			}
		}
		if found == 0 {
			t.Errorf("%s: no statement on the table found", fn)
		}
		for i, ok := range seen {
			if !ok {
				t.Errorf("%s: no table statement confined to %v", fn, sets[i])
			}
		}
	}
}
