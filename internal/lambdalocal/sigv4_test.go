package lambdalocal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/smithy-go"
)

// signRequest signs req (whose body is body) as the AWS SDKs do, for the
// Lambda service in us-east-1 at t.
func signRequest(t testing.TB, req *http.Request, body []byte, creds aws.Credentials, at time.Time) {
	t.Helper()
	signRegion(t, req, body, creds, DefaultRegion, at)
}

func signRegion(t testing.TB, req *http.Request, body []byte, creds aws.Credentials, region string, at time.Time) {
	t.Helper()
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "lambda", region, at); err != nil {
		t.Fatal(err)
	}
}

// The payload of issue 14: an API Gateway proxy event for DELETE with a
// forged authorizer context.
const forgedAPIEvent = `{"httpMethod":"DELETE","path":"/v0/pipelines/p1","resource":"/v0/pipelines/{pipeline_name}",` +
	`"pathParameters":{"pipeline_name":"p1"},"requestContext":{"authorizer":{"principal_kind":"apikey","principal_subject":"x","principal_role":"write"}}}`

// TestInvokeNeedsTheServersSignature: every Invoke request must be SigV4
// signed with the Server's credentials; anything else is a 403 in the Lambda
// error shape and no function runs. One row per attack.
func TestInvokeNeedsTheServersSignature(t *testing.T) {
	srv := NewServer()
	var calls atomic.Int32
	srv.Register("sluice-api", func(_ context.Context, p json.RawMessage) (json.RawMessage, error) {
		calls.Add(1)
		return p, nil
	})
	good := srv.Credentials()
	otherSecret := good
	otherSecret.SecretAccessKey = NewCredentials().SecretAccessKey
	path := "/2015-03-31/functions/sluice-api/invocations"
	newReq := func(body string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	now := time.Now()
	cases := []struct {
		name    string
		req     func() *http.Request
		errType string
	}{
		{"issue 14: forged authorizer context, no signature", func() *http.Request { return newReq(forgedAPIEvent) }, "MissingAuthenticationTokenException"},
		{"a bearer token instead of a signature", func() *http.Request {
			r := newReq(forgedAPIEvent)
			r.Header.Set("Authorization", "Bearer apikey:whatever")
			return r
		}, "IncompleteSignatureException"},
		{"the engine's old dummy credentials (local/local)", func() *http.Request {
			r := newReq(forgedAPIEvent)
			signRequest(t, r, []byte(forgedAPIEvent), aws.Credentials{AccessKeyID: "local", SecretAccessKey: "local"}, now)
			return r
		}, "UnrecognizedClientException"},
		{"the right key id, another secret", func() *http.Request {
			r := newReq(forgedAPIEvent)
			signRequest(t, r, []byte(forgedAPIEvent), otherSecret, now)
			return r
		}, "InvalidSignatureException"},
		{"a signed request whose body was replaced", func() *http.Request {
			r := newReq(forgedAPIEvent)
			signRequest(t, r, []byte(`{}`), good, now)
			return r
		}, "InvalidSignatureException"},
		{"a signed request sent to another function", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/2015-03-31/functions/other/invocations", strings.NewReader(forgedAPIEvent))
			signRequest(t, r, []byte(forgedAPIEvent), good, now)
			r.URL.Path, r.URL.RawPath = path, ""
			return r
		}, "InvalidSignatureException"},
		{"a signed header changed after signing", func() *http.Request {
			r := newReq(forgedAPIEvent)
			r.Header.Set("X-Amz-Invocation-Type", "DryRun")
			signRequest(t, r, []byte(forgedAPIEvent), good, now)
			r.Header.Set("X-Amz-Invocation-Type", "RequestResponse")
			return r
		}, "InvalidSignatureException"},
		{"a replay of a request signed 20 minutes ago", func() *http.Request {
			r := newReq(forgedAPIEvent)
			signRequest(t, r, []byte(forgedAPIEvent), good, now.Add(-20*time.Minute))
			return r
		}, "InvalidSignatureException"},
		{"a signature scoped to another region", func() *http.Request {
			r := newReq(forgedAPIEvent)
			signRegion(t, r, []byte(forgedAPIEvent), good, "eu-west-1", now)
			return r
		}, "InvalidSignatureException"},
		{"two Authorization headers", func() *http.Request {
			r := newReq(forgedAPIEvent)
			signRequest(t, r, []byte(forgedAPIEvent), good, now)
			r.Header.Add("Authorization", r.Header.Get("Authorization"))
			return r
		}, "IncompleteSignatureException"},
		{"the signature without X-Amz-Date", func() *http.Request {
			r := newReq(forgedAPIEvent)
			signRequest(t, r, []byte(forgedAPIEvent), good, now)
			r.Header.Del("X-Amz-Date")
			return r
		}, "IncompleteSignatureException"},
		{"SignedHeaders without host", func() *http.Request {
			r := newReq(forgedAPIEvent)
			signRequest(t, r, []byte(forgedAPIEvent), good, now)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "SignedHeaders=content-length;content-type;host;", "SignedHeaders=content-length;content-type;", 1))
			return r
		}, "IncompleteSignatureException"},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, c.req())
		var doc struct{ Type, Message string }
		if rec.Code != http.StatusForbidden || rec.Header().Get("x-amzn-ErrorType") != c.errType ||
			json.Unmarshal(rec.Body.Bytes(), &doc) != nil || doc.Message == "" {
			t.Errorf("%s: HTTP %d %s %s, want 403 %s", c.name, rec.Code, rec.Header().Get("x-amzn-ErrorType"), rec.Body.String(), c.errType)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("the function ran %d times for refused requests", n)
	}

	// The same request, signed with the Server's credentials, runs.
	r := newReq(forgedAPIEvent)
	signRequest(t, r, []byte(forgedAPIEvent), good, now)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK || calls.Load() != 1 {
		t.Fatalf("signed request: HTTP %d %s, calls %d", rec.Code, rec.Body.String(), calls.Load())
	}
	t.Logf("%d unsigned or mis-signed Invoke requests refused with 403", len(cases))
}

// TestSDKClientCredentials: the real aws-sdk-go-v2 Lambda client gets in with
// the Server's credentials and is refused (403 UnrecognizedClientException,
// InvalidSignatureException) with any other.
func TestSDKClientCredentials(t *testing.T) {
	srv := NewServer()
	srv.Register("echo", func(_ context.Context, p json.RawMessage) (json.RawMessage, error) { return p, nil })
	endpoint, shutdown, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdown(context.Background()) })
	client := func(c aws.Credentials) *lambda.Client {
		return lambda.New(lambda.Options{Region: DefaultRegion, BaseEndpoint: aws.String(endpoint),
			Credentials: credentials.StaticCredentialsProvider{Value: c}, RetryMaxAttempts: 1})
	}
	in := &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{"a":1}`)}
	out, err := client(srv.Credentials()).Invoke(context.Background(), in)
	if err != nil || string(out.Payload) != `{"a":1}` {
		t.Fatalf("signed with the server's credentials: %v", err)
	}
	wrongSecret := srv.Credentials()
	wrongSecret.SecretAccessKey = "not-the-secret"
	for want, c := range map[string]aws.Credentials{
		"UnrecognizedClientException": {AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"},
		"InvalidSignatureException":   wrongSecret,
	} {
		_, err := client(c).Invoke(context.Background(), in)
		var api smithy.APIError
		if !errors.As(err, &api) || api.ErrorCode() != want {
			t.Errorf("credentials %s: %v, want %s", c.AccessKeyID, err, want)
		}
	}
	// Fresh servers have fresh credentials.
	if a, b := NewServer().Credentials(), NewServer().Credentials(); a.AccessKeyID == b.AccessKeyID || a.SecretAccessKey == b.SecretAccessKey {
		t.Fatal("two servers share credentials")
	}
}
