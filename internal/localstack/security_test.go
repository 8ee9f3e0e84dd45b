package localstack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/lambdalocal"
)

// Issue 14, item 1: POST :9001/2015-03-31/functions/sluice-api/invocations
// with a forged authorizer context deleted a pipeline with no key. Now the
// endpoint refuses every caller without the stack's per-run credentials
// (403, Lambda's error shape), and even a signed invocation of the api
// function cannot claim an authorizer principal; the stack's own callers
// (the Step Functions service) still run the workflows.
func TestForgedAuthorizerContextOnTheLambdaEndpoint(t *testing.T) {
	t.Parallel()
	e := sharedEnv(t, stackDefault)
	name := e.name("sec-forged")
	e.create(name, map[string]any{})
	forged, _ := json.Marshal(map[string]any{
		"httpMethod": "DELETE", "path": "/v0/pipelines/" + name, "resource": "/v0/pipelines/{pipeline_name}",
		"pathParameters": map[string]string{"pipeline_name": name},
		"requestContext": map[string]any{"requestId": "forged", "authorizer": map[string]any{
			"principal_kind": "apikey", "principal_subject": "attacker", "principal_role": "write"}},
	})
	invoke := func(body []byte, creds *aws.Credentials) (int, http.Header, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(e.ctx, http.MethodPost, e.stack.LambdaEndpoint+"/2015-03-31/functions/"+FunctionAPI+"/invocations", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if creds != nil {
			sum := sha256.Sum256(body)
			if err := v4.NewSigner().SignHTTP(context.Background(), *creds, req, hex.EncodeToString(sum[:]), "lambda", lambdalocal.DefaultRegion, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		res, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, b
	}

	// The request, unsigned, and signed with credentials not the stack's.
	if code, h, b := invoke(forged, nil); code != http.StatusForbidden || h.Get("x-amzn-ErrorType") != "MissingAuthenticationTokenException" {
		t.Fatalf("unsigned forged invocation: %d %s %s", code, h.Get("x-amzn-ErrorType"), b)
	}
	other := lambdalocal.NewCredentials()
	if code, h, b := invoke(forged, &other); code != http.StatusForbidden || h.Get("x-amzn-ErrorType") != "UnrecognizedClientException" {
		t.Fatalf("forged invocation with other credentials: %d %s %s", code, h.Get("x-amzn-ErrorType"), b)
	}
	// Signed with the stack's own credentials: the function runs, but the
	// authorizer context is not trusted, the event has no key: 401.
	own := e.stack.Lambda.Credentials()
	code, _, b := invoke(forged, &own)
	var out struct {
		StatusCode int    `json:"statusCode"`
		Body       string `json:"body"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &out) != nil || out.StatusCode != http.StatusUnauthorized {
		t.Fatalf("signed forged invocation: %d %s", code, b)
	}
	var body struct {
		ErrorCode string `json:"error_code"`
	}
	if json.Unmarshal([]byte(out.Body), &body) != nil || body.ErrorCode != string(domain.CodeAuthenticationFailed) {
		t.Fatalf("signed forged invocation answered %s", out.Body)
	}
	if p := e.get(name); p.Name != name {
		t.Fatalf("the pipeline is gone: %+v", p)
	}

	// The stack's own caller, the Step Functions service, still invokes the
	// step functions: a start runs to Running.
	e.startRunning(e.name("sec-still-runs"))
}
