package lambdalocal

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
)

// Invoke's rules as the Lambda API reference states them
// (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html; each check
// in handleInvoke cites its rule), checked with the real aws-sdk-go-v2 lambda
// client against the endpoint.

func contractClient(t *testing.T) (*lambda.Client, *Server, *atomic.Int32) {
	t.Helper()
	srv := NewServer()
	var calls atomic.Int32
	srv.Register("echo", func(_ context.Context, p json.RawMessage) (json.RawMessage, error) {
		calls.Add(1)
		return p, nil
	})
	srv.Register("fails", Typed(func(context.Context, event) (event, error) {
		calls.Add(1)
		return event{}, &PermanentError{Reason: "image missing"}
	}))
	endpoint, shutdown, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdown(context.Background()) })
	c := lambda.New(lambda.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials:      credentials.StaticCredentialsProvider{Value: srv.Credentials()},
		RetryMaxAttempts: 1,
	})
	return c, srv, &calls
}

// wantAPIError asserts err is the code answered with the HTTP status.
func wantAPIError(t *testing.T, what string, err error, code string, status int) {
	t.Helper()
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != code {
		t.Fatalf("%s: %v, want %s", what, err, code)
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != status {
		t.Fatalf("%s: %v, want HTTP %d", what, err, status)
	}
}

func invoke(c *lambda.Client, in lambda.InvokeInput) (*lambda.InvokeOutput, error) {
	return c.Invoke(context.Background(), &in)
}

// FunctionName: the name, name:qualifier, partial ARN and ARN forms; 1..170
// characters matching Invoke's pattern, else ValidationException; a name of
// more than 64 characters, or one not registered, is ResourceNotFoundException
// (404).
func TestInvokeFunctionNameRules(t *testing.T) {
	c, _, calls := contractClient(t)
	for _, name := range []string{
		"echo", "echo:live", "echo:$LATEST", "123456789012:function:echo", "123456789012:function:echo:3",
		"arn:aws:lambda:us-east-1:123456789012:function:echo", "arn:aws:lambda:us-east-1:123456789012:function:echo:live",
		"arn:aws-cn:lambda:cn-north-1:123456789012:function:echo",
	} {
		out, err := invoke(c, lambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(`{"n":1}`)})
		if err != nil || out.StatusCode != 200 || string(out.Payload) != `{"n":1}` || out.FunctionError != nil {
			t.Fatalf("FunctionName %q: %+v %v", name, out, err)
		}
	}
	before := calls.Load()
	for _, name := range []string{"has space", "x/y", "a:b:c", "arn:aws:s3:::bucket", "echo:bad.qualifier", strings.Repeat("n", 171),
		"arn:aws:lambda:us-east-1:123456789012:function:" + strings.Repeat("n", 171-len("arn:aws:lambda:us-east-1:123456789012:function:"))} {
		_, err := invoke(c, lambda.InvokeInput{FunctionName: aws.String(name)})
		wantAPIError(t, fmt.Sprintf("FunctionName %.60q", name), err, "ValidationException", http.StatusBadRequest)
	}
	for _, name := range []string{"nope", strings.Repeat("n", 65), "arn:aws:lambda:us-east-1:123456789012:function:nope:live"} {
		_, err := invoke(c, lambda.InvokeInput{FunctionName: aws.String(name)})
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) {
			t.Fatalf("FunctionName %.60q: %v, want ResourceNotFoundException", name, err)
		}
		wantAPIError(t, name, err, "ResourceNotFoundException", http.StatusNotFound)
	}
	if calls.Load() != before {
		t.Fatalf("a rejected request invoked the function (%d calls)", calls.Load()-before)
	}
}

// Qualifier: 1..128 characters of [a-zA-Z0-9$_-], else ValidationException.
func TestInvokeQualifierRules(t *testing.T) {
	c, _, _ := contractClient(t)
	for _, q := range []string{"live", "$LATEST", "7", strings.Repeat("q", 128)} {
		if _, err := invoke(c, lambda.InvokeInput{FunctionName: aws.String("echo"), Qualifier: aws.String(q)}); err != nil {
			t.Fatalf("Qualifier %q: %v", q, err)
		}
	}
	for _, q := range []string{strings.Repeat("q", 129), "a.b", "a b", "a:b"} {
		_, err := invoke(c, lambda.InvokeInput{FunctionName: aws.String("echo"), Qualifier: aws.String(q)})
		wantAPIError(t, fmt.Sprintf("Qualifier %.40q", q), err, "ValidationException", http.StatusBadRequest)
	}
}

// InvocationType: RequestResponse (200), Event (202), DryRun (204), anything
// else ValidationException; LogType None or Tail, else ValidationException.
func TestInvokeInvocationTypeRules(t *testing.T) {
	c, _, calls := contractClient(t)
	for typ, status := range map[types.InvocationType]int32{"": 200, types.InvocationTypeRequestResponse: 200, types.InvocationTypeEvent: 202, types.InvocationTypeDryRun: 204} {
		out, err := invoke(c, lambda.InvokeInput{FunctionName: aws.String("echo"), InvocationType: typ})
		if err != nil || out.StatusCode != status {
			t.Fatalf("InvocationType %q: %+v %v, want %d", typ, out, err, status)
		}
	}
	before := calls.Load()
	for _, typ := range []types.InvocationType{"event", "Sync", "DRYRUN"} {
		_, err := invoke(c, lambda.InvokeInput{FunctionName: aws.String("echo"), InvocationType: typ})
		wantAPIError(t, fmt.Sprintf("InvocationType %q", typ), err, "ValidationException", http.StatusBadRequest)
	}
	for _, lt := range []types.LogType{"tail", "Full"} {
		_, err := invoke(c, lambda.InvokeInput{FunctionName: aws.String("echo"), LogType: lt})
		wantAPIError(t, fmt.Sprintf("LogType %q", lt), err, "ValidationException", http.StatusBadRequest)
	}
	if _, err := invoke(c, lambda.InvokeInput{FunctionName: aws.String("echo"), LogType: types.LogTypeTail}); err != nil {
		t.Fatalf("LogType Tail: %v", err)
	}
	if n := calls.Load() - before; n != 1 {
		t.Fatalf("%d invocations after the rejected requests and one Tail, want 1", n)
	}
}

// Payload: JSON, at most 6 MB synchronous and 1 MB asynchronous
// (RequestTooLargeException, 413); not JSON: InvalidRequestContentException.
// ClientContext: at most 3583 bytes of base64.
func TestInvokePayloadRules(t *testing.T) {
	c, _, _ := contractClient(t)
	jsonOf := func(n int) []byte { // a JSON string of exactly n bytes
		return []byte(`"` + strings.Repeat("x", n-2) + `"`)
	}
	if out, err := invoke(c, lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: jsonOf(6 << 20)}); err != nil || len(out.Payload) != 6<<20 {
		t.Fatalf("6 MB synchronous payload: %v", err)
	}
	_, err := invoke(c, lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: jsonOf(6<<20 + 1)})
	var tooLarge *types.RequestTooLargeException
	if !errors.As(err, &tooLarge) {
		t.Fatalf("6 MB + 1 synchronous: %v, want RequestTooLargeException", err)
	}
	wantAPIError(t, "6 MB + 1 synchronous", err, "RequestTooLargeException", http.StatusRequestEntityTooLarge)
	if _, err := invoke(c, lambda.InvokeInput{FunctionName: aws.String("echo"), InvocationType: types.InvocationTypeEvent, Payload: jsonOf(1 << 20)}); err != nil {
		t.Fatalf("1 MB asynchronous payload: %v", err)
	}
	_, err = invoke(c, lambda.InvokeInput{FunctionName: aws.String("echo"), InvocationType: types.InvocationTypeEvent, Payload: jsonOf(1<<20 + 1)})
	wantAPIError(t, "1 MB + 1 asynchronous", err, "RequestTooLargeException", http.StatusRequestEntityTooLarge)

	for _, p := range []string{`{not json`, `{"a":1}}`, `undefined`} {
		_, err := invoke(c, lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(p)})
		var bad *types.InvalidRequestContentException
		if !errors.As(err, &bad) {
			t.Fatalf("payload %q: %v, want InvalidRequestContentException", p, err)
		}
	}
	if out, err := invoke(c, lambda.InvokeInput{FunctionName: aws.String("echo")}); err != nil || string(out.Payload) != `{}` {
		t.Fatalf("no payload: %s %v, want {}", out.Payload, err)
	}

	ctxDoc := base64.StdEncoding.EncodeToString([]byte(`{"custom":{"k":"v"}}`))
	if _, err := invoke(c, lambda.InvokeInput{FunctionName: aws.String("echo"), ClientContext: aws.String(ctxDoc)}); err != nil {
		t.Fatalf("ClientContext: %v", err)
	}
	for _, cc := range []string{"not base64!", base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", 2700)))} {
		_, err := invoke(c, lambda.InvokeInput{FunctionName: aws.String("echo"), ClientContext: aws.String(cc)})
		wantAPIError(t, fmt.Sprintf("ClientContext of %d bytes", len(cc)), err, "InvalidRequestContentException", http.StatusBadRequest)
	}
}

// A function error: HTTP 200, X-Amz-Function-Error (FunctionError
// "Unhandled"), and the payload the runtime's {"errorMessage", "errorType"}.
func TestInvokeFunctionError(t *testing.T) {
	c, _, _ := contractClient(t)
	out, err := invoke(c, lambda.InvokeInput{FunctionName: aws.String("fails"), Payload: []byte(`{"n":1}`)})
	if err != nil || out.StatusCode != 200 || aws.ToString(out.FunctionError) != "Unhandled" {
		t.Fatalf("function error: %+v %v", out, err)
	}
	var doc errDoc
	if err := json.Unmarshal(out.Payload, &doc); err != nil || doc.Type != "PermanentError" || doc.Message != "permanent: image missing" {
		t.Fatalf("error document %s", out.Payload)
	}
}
