package console

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/store"
)

const testKey = "apikey:console-test-key"

type keys map[string]store.APIKey

func (k keys) GetAPIKey(_ context.Context, hash string) (store.APIKey, error) {
	if key, ok := k[hash]; ok {
		return key, nil
	}
	return store.APIKey{}, store.ErrNotFound
}

// fakeSFN answers the machine list with the real suspend definition.
type fakeSFN struct{ SFN }

func (fakeSFN) DescribeStateMachine(context.Context, *sfn.DescribeStateMachineInput, ...func(*sfn.Options)) (*sfn.DescribeStateMachineOutput, error) {
	return &sfn.DescribeStateMachineOutput{Definition: aws.String(`{"StartAt":"A","States":{"A":{"Type":"Succeed"}}}`)}, nil
}

func newTestHandler(t *testing.T) *Handler {
	t.Helper()
	v, err := auth.NewVerifier(auth.Config{}, keys{auth.HashAPIKey(testKey): {Hash: auth.HashAPIKey(testKey), ID: "k1", Role: store.RoleRead}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{SFN: fakeSFN{}, Verifier: v, Machines: map[domain.WorkflowKind]string{domain.WorkflowSuspend: "arn:aws:states:us-east-1:123456789012:stateMachine:sluice-suspend"}})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestBackendAuth: the backend is checked by the API's verifier; the key
// only counts in the Authorization header (never in the URL), and failures
// answer in the API's error shape.
func TestBackendAuth(t *testing.T) {
	h := newTestHandler(t)
	for _, tc := range []struct {
		name   string
		target string
		header []string
		status int
		code   string
	}{
		{"no key", "/console/api/machines", nil, 401, "AuthenticationFailed"},
		{"wrong key", "/console/api/machines", []string{"Bearer apikey:wrong"}, 401, "AuthenticationFailed"},
		{"key in the query string", "/console/api/machines?api_key=" + testKey + "&token=" + testKey, nil, 401, "AuthenticationFailed"},
		{"two headers", "/console/api/machines", []string{"Bearer " + testKey, "Bearer " + testKey}, 401, "AuthenticationFailed"},
		{"right key", "/console/api/machines", []string{"Bearer " + testKey}, 200, ""},
		{"unknown execution", "/console/api/execution?arn=arn:aws:states:us-east-1:1:execution:other:x", []string{"Bearer " + testKey}, 404, "NotFound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", tc.target, nil)
			for _, v := range tc.header {
				req.Header.Add("Authorization", v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if tc.code == "" {
				return
			}
			var body struct {
				Message   string          `json:"message"`
				ErrorCode string          `json:"error_code"`
				Details   json.RawMessage `json:"details"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.ErrorCode != tc.code || body.Message == "" || len(body.Details) == 0 || body.Details[0] != '{' {
				t.Fatalf("body %s: want {message, error_code %s, details {…}}", rec.Body, tc.code)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
			if strings.Contains(rec.Body.String(), testKey) {
				t.Fatal("the answer repeats the key")
			}
		})
	}
}

// TestPageNeedsNoKey: the page and its assets carry no data; served without a key.
func TestPageNeedsNoKey(t *testing.T) {
	h := newTestHandler(t)
	for _, path := range []string{"/console/", "/console/app.js", "/console/app.css"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 200 || rec.Body.Len() == 0 || rec.Header().Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: %d (%d bytes), CSP %q", path, rec.Code, rec.Body.Len(), rec.Header().Get("Content-Security-Policy"))
		}
	}
}
