package domain

import (
	"encoding/json"
	"testing"
)

func TestEnumsRoundTripAndDecodeStrictly(t *testing.T) {
	check := func(name string, values []string, decode func([]byte) error) {
		for _, v := range values {
			if err := decode([]byte(`"` + v + `"`)); err != nil {
				t.Errorf("%s %q: %v", name, v, err)
			}
		}
		for _, bad := range []string{`"stopped"`, `""`, `"Bogus"`, `1`, `null`} {
			if err := decode([]byte(bad)); err == nil && bad != `null` {
				t.Errorf("%s accepted %s", name, bad)
			}
		}
	}
	check("resources", strs(AllResourcesStatuses), func(b []byte) error { var v ResourcesStatus; return json.Unmarshal(b, &v) })
	check("resources desired", strs(AllResourcesDesiredStatuses), func(b []byte) error { var v ResourcesDesiredStatus; return json.Unmarshal(b, &v) })
	check("runtime", strs(AllRuntimeStatuses), func(b []byte) error { var v RuntimeStatus; return json.Unmarshal(b, &v) })
	check("runtime desired", strs(AllRuntimeDesiredStatuses), func(b []byte) error { var v RuntimeDesiredStatus; return json.Unmarshal(b, &v) })
	check("storage", strs(AllStorageStatuses), func(b []byte) error { var v StorageStatus; return json.Unmarshal(b, &v) })
	check("combined", strs(AllCombinedStatuses), func(b []byte) error { var v CombinedStatus; return json.Unmarshal(b, &v) })
	check("combined desired", strs(AllCombinedDesiredStatuses), func(b []byte) error { var v CombinedDesiredStatus; return json.Unmarshal(b, &v) })
	check("initial", strs(AllInitialStates), func(b []byte) error { var v InitialState; return json.Unmarshal(b, &v) })
	check("workflow", strs(AllWorkflowKinds), func(b []byte) error { var v WorkflowKind; return json.Unmarshal(b, &v) })

	if _, err := json.Marshal(ResourcesStatus("Bogus")); err == nil {
		t.Error("marshalling an unknown status must fail")
	}
}

func strs[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

func TestRecordJSONRoundTrip(t *testing.T) {
	p := rec(ResourcesProvisioned, ResourcesDesiredProvisioned, RuntimeRunning, RuntimeDesiredRunning)
	b, err := json.Marshal(ViewOf(p))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["deployment_status"] != "Running" || m["deployment_desired_status"] != "Running" || m["deployment_resources_status"] != "Provisioned" {
		t.Errorf("view: %s", b)
	}
	var back Pipeline
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Generation != p.Generation || *back.RuntimeStatus != RuntimeRunning {
		t.Errorf("round trip lost data: %+v", back)
	}
	bad := []byte(`{"deployment_resources_status":"Running"}`)
	if err := json.Unmarshal(bad, &back); err == nil {
		t.Error("a record with an unknown status must not decode")
	}
}

// TestCombinedView checks SPEC §2.3 over every combination of layers.
func TestCombinedView(t *testing.T) {
	for _, rs := range AllResourcesStatuses {
		for _, rt := range append([]RuntimeStatus{""}, AllRuntimeStatuses...) {
			p := Pipeline{ResourcesStatus: rs}
			if rt != "" {
				p.RuntimeStatus = ptr(rt)
			}
			want := CombinedStatus(rs)
			if rs == ResourcesProvisioned {
				want = CombinedUnavailable
				if rt != "" {
					want = CombinedStatus(rt)
				}
			}
			if got := p.DeploymentStatus(); got != want {
				t.Errorf("%s/%q: %s, want %s", rs, rt, got, want)
			}
		}
	}
	for _, rd := range AllResourcesDesiredStatuses {
		for _, rtd := range AllRuntimeDesiredStatuses {
			p := Pipeline{ResourcesDesiredStatus: rd, RuntimeDesiredStatus: ptr(rtd)}
			want := CombinedDesiredStopped
			if rd == ResourcesDesiredProvisioned {
				want = CombinedDesiredStatus(rtd)
			}
			if got := p.DeploymentDesiredStatus(); got != want {
				t.Errorf("%s/%s: %s, want %s", rd, rtd, got, want)
			}
		}
	}
}

func TestErrorCatalogueIsComplete(t *testing.T) {
	for _, c := range AllErrorCodes() {
		if s := c.HTTPStatus(); s < 400 || s > 599 {
			t.Errorf("%s has status %d", c, s)
		}
	}
	if ErrorCode("Nope").HTTPStatus() != 500 {
		t.Error("unknown codes are internal errors")
	}
	spec := map[ErrorCode]int{
		CodeUnknownPipelineName: 404, CodeIllegalPipelineAction: 400, CodeUnsupportedPipelineAction: 405, CodeDuplicateName: 409,
		CodeFeatureNotAvailable: 501, CodePipelineInteractionNotDeployed: 503, CodeServiceUnavailable: 503,
		CodeAuthenticationFailed: 401, CodeInsufficientPermissions: 403, CodeInternalError: 500, CodeInvalidQueryParameter: 400,
	}
	for c, s := range spec {
		if c.HTTPStatus() != s {
			t.Errorf("%s: %d, want %d", c, c.HTTPStatus(), s)
		}
	}
}
