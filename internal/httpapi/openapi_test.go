package httpapi

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/workflow/workflowtest"
)

// captureTB records the failures checkResponse reports instead of failing.
type captureTB struct {
	*testing.T
	errs []string
}

func (c *captureTB) Errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

// TestOpenAPIValidatorBites proves that the response validation used by every
// HTTP test rejects answers the document does not describe.
func TestOpenAPIValidatorBites(t *testing.T) {
	jsonCT := http.Header{"Content-Type": {"application/json"}}
	bad := []struct {
		name, method, url string
		status            int
		header            http.Header
		body              string
	}{
		{"202 not a string", "POST", "/v0/pipelines/p1/stop?force=true", 202, jsonCT, `42`},
		{"undeclared status", "POST", "/v0/pipelines/p1/stop", 409, jsonCT, `{"message":"m","error_code":"X","details":{}}`},
		{"error without details", "POST", "/v0/pipelines/p1/stop", 400, jsonCT, `{"message":"m","error_code":"X"}`},
		{"503 without Retry-After", "POST", "/v0/pipelines/p1/stop", 503, jsonCT, `{"message":"m","error_code":"X","details":{}}`},
		{"error not JSON", "GET", "/nowhere", 404, http.Header{"Content-Type": {"text/plain"}}, `not found`},
		{"bad status enum", "GET", "/v0/pipelines/p1", 200, jsonCT, `{"name":"p1","deployment_status":"Sleeping"}`},
		{"checkpoint without number", "POST", "/v0/pipelines/p1/checkpoint", 200, jsonCT, `{"incarnation_uuid":"x"}`},
	}
	for _, tc := range bad {
		c := &captureTB{T: t}
		checkResponse(c, tc.method, tc.url, tc.status, tc.header, []byte(tc.body))
		if len(c.errs) == 0 {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	c := &captureTB{T: t}
	checkResponse(c, "POST", "/v0/pipelines/p1/stop?force=true", 202, jsonCT, []byte(`"Pipeline 'p1' is being stopped."`))
	if len(c.errs) != 0 {
		t.Errorf("a valid 202 rejected: %v", c.errs)
	}
}

// TestOpenAPICoversRoutes: the document describes exactly the handler's routes
// and methods.
func TestOpenAPICoversRoutes(t *testing.T) {
	doc, _ := loadDoc(t)
	h, err := New(Config{Store: &failingStore{}, Starter: workflowtest.NewRecorder()})
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]string{}
	for path, item := range doc.Paths.Map() {
		var ms []string
		for m := range item.Operations() {
			ms = append(ms, m)
		}
		sort.Strings(ms)
		documented[path] = strings.Join(ms, ",")
	}
	served := map[string]string{}
	for path, ms := range h.Routes() {
		served[path] = strings.Join(ms, ",")
	}
	if fmt.Sprint(documented) != fmt.Sprint(served) {
		t.Fatalf("documented %v\nserved     %v", documented, served)
	}
}
