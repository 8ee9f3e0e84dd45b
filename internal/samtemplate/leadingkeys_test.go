package samtemplate

import (
	"slices"
	"testing"

	"github.com/sluicehq/sluice/internal/store"
)

// TestTableAccessConfinedByPartitionKey (issue 14): every function's access
// to the table's items is confined by dynamodb:LeadingKeys to the items it
// owns; only the api (which serves /v0/api_keys) may touch API key items, and
// the authorizer may only read them. The prefixes are the store's own.
func TestTableAccessConfinedByPartitionKey(t *testing.T) {
	tp := loadTemplate(t)
	pipelines, keys, names := store.PipelineItemsPrefix+"*", store.APIKeyItemsPrefix+"*", store.KeyNameItemsPrefix+"*"
	want := map[string][]string{
		"ApiFunction":        {pipelines, keys, names},
		"StepsFunction":      {pipelines},
		"ReconcilerFunction": {pipelines},
		"AuthorizerFunction": {keys},
	}
	for fn, prefixes := range want {
		found := 0
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
				exp := slices.Clone(prefixes)
				slices.Sort(exp)
				if !slices.Equal(got, exp) {
					t.Errorf("%s: table statement %v confined to %v, want %v", fn, s["Sid"], got, exp)
				}
			}
		}
		if found == 0 {
			t.Errorf("%s: no statement on the table found", fn)
		}
	}
}
