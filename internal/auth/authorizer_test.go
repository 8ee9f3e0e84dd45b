package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/store"
)

const testMethodArn = "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/POST/v0/pipelines/p1/stop"

func authorizerRequest(headers map[string]string, multi map[string][]string) events.APIGatewayCustomAuthorizerRequestTypeRequest {
	return events.APIGatewayCustomAuthorizerRequestTypeRequest{
		Type: "REQUEST", MethodArn: testMethodArn, HTTPMethod: "POST",
		Headers: headers, MultiValueHeaders: multi,
	}
}

func TestAuthorizerAllows(t *testing.T) {
	e := newTestEnv(t, nil)
	secret, key := e.keys.add(t, store.RoleRead)
	a := NewAPIGatewayAuthorizer(e.v, jsonLogger(e.logs))

	for name, req := range map[string]events.APIGatewayCustomAuthorizerRequestTypeRequest{
		"canonical header":      authorizerRequest(map[string]string{"Authorization": "Bearer " + secret}, nil),
		"lower-case header":     authorizerRequest(map[string]string{"authorization": "Bearer " + secret}, nil),
		"upper-case header":     authorizerRequest(map[string]string{"AUTHORIZATION": "Bearer " + secret}, nil),
		"multi-value only":      authorizerRequest(nil, map[string][]string{"Authorization": {"Bearer " + secret}}),
		"both, same value":      authorizerRequest(map[string]string{"authorization": "Bearer " + secret}, map[string][]string{"Authorization": {"Bearer " + secret}}),
		"lower-case scheme too": authorizerRequest(map[string]string{"authorization": "bearer " + secret}, nil),
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := a.Handle(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.PrincipalID != "apikey/"+key.ID {
				t.Errorf("principalId %q", resp.PrincipalID)
			}
			if len(resp.PolicyDocument.Statement) != 1 {
				t.Fatalf("policy %+v", resp.PolicyDocument)
			}
			st := resp.PolicyDocument.Statement[0]
			want := "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/*/*"
			if st.Effect != "Allow" || len(st.Resource) != 1 || st.Resource[0] != want ||
				len(st.Action) != 1 || st.Action[0] != "execute-api:Invoke" || resp.PolicyDocument.Version != "2012-10-17" {
				t.Errorf("statement %+v", st)
			}
			wantCtx := map[string]any{ContextKind: KindAPIKey, ContextSubject: key.ID, ContextRole: "read"}
			if fmt.Sprint(resp.Context) != fmt.Sprint(wantCtx) {
				t.Errorf("context %v, want %v", resp.Context, wantCtx)
			}
			for k, v := range resp.Context {
				if _, ok := v.(string); !ok {
					t.Errorf("context %s is %T, not a string", k, v)
				}
			}
			// The api Lambda reads the principal back and checks the route's role:
			// a read key is authenticated here, refused (403) there.
			p, err := PrincipalFromAuthorizerContext(resp.Context)
			if err != nil {
				t.Fatal(err)
			}
			if Authorize(p, RequiredRole(req.HTTPMethod)) == nil {
				t.Error("read key authorized for POST")
			}
			// The response marshals to API Gateway's shape.
			b, _ := json.Marshal(resp)
			for _, s := range []string{`"principalId"`, `"policyDocument"`, `"Statement"`, `"context"`} {
				if !strings.Contains(string(b), s) {
					t.Errorf("response JSON lacks %s: %s", s, b)
				}
			}
		})
	}
}

func TestAuthorizerRejects(t *testing.T) {
	e := newTestEnv(t, nil)
	secret, _ := e.keys.add(t, store.RoleWrite)
	a := NewAPIGatewayAuthorizer(e.v, jsonLogger(e.logs))
	for name, req := range map[string]events.APIGatewayCustomAuthorizerRequestTypeRequest{
		"no header":           authorizerRequest(nil, nil),
		"unknown key":         authorizerRequest(map[string]string{"Authorization": "Bearer apikey:bm90LWEtcmVhbC1rZXktYXQtYWxsLWF0LWFsbC14eA"}, nil),
		"basic":               authorizerRequest(map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, nil),
		"key without scheme":  authorizerRequest(map[string]string{"Authorization": secret}, nil),
		"conflicting headers": authorizerRequest(map[string]string{"Authorization": "Bearer " + secret, "authorization": "Bearer apikey:other"}, nil),
		"conflicting multi":   authorizerRequest(nil, map[string][]string{"Authorization": {"Bearer " + secret, "Bearer apikey:other"}}),
		// Issue 14: one rule everywhere, any second header is refused.
		"the same header twice":   authorizerRequest(nil, map[string][]string{"Authorization": {"Bearer " + secret, "Bearer " + secret}}),
		"two letter cases, multi": authorizerRequest(nil, map[string][]string{"Authorization": {"Bearer " + secret}, "authorization": {"Bearer " + secret}}),
		"two letter cases, same":  authorizerRequest(map[string]string{"Authorization": "Bearer " + secret, "authorization": "Bearer " + secret}, nil),
		"comma-joined values":     authorizerRequest(map[string]string{"Authorization": "Bearer " + secret + ", Bearer apikey:other"}, nil),
		"comma-joined, no space":  authorizerRequest(nil, map[string][]string{"Authorization": {"Bearer " + secret + ",Bearer"}}),
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := a.Handle(context.Background(), req)
			if err == nil || err.Error() != "Unauthorized" || !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("err %v, want exactly Unauthorized", err)
			}
			if len(resp.PolicyDocument.Statement) != 0 || resp.Context != nil {
				t.Errorf("response %+v with the error", resp)
			}
		})
	}
	if strings.Contains(e.logs.String(), secret) {
		t.Error("logs contain the key")
	}
}

func TestAuthorizerStoreUnavailable(t *testing.T) {
	e := newTestEnv(t, nil)
	secret, _ := e.keys.add(t, store.RoleWrite)
	e.keys.err = fmt.Errorf("store: GetItem: %w", store.ErrUnavailable)
	a := NewAPIGatewayAuthorizer(e.v, nil)
	_, err := a.Handle(context.Background(), authorizerRequest(map[string]string{"Authorization": "Bearer " + secret}, nil))
	if err == nil || errors.Is(err, ErrUnauthorized) || err.Error() == "Unauthorized" {
		t.Fatalf("err %v: a store outage must not be a 401", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Error("error repeats the key")
	}
}

func TestStageWildcardResource(t *testing.T) {
	for in, want := range map[string]string{
		testMethodArn: "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/*/*",
		"arn:aws:execute-api:us-east-1:123456789012:abcdef1234/Prod/GET/v0/pipelines": "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/Prod/*/*",
		"arn:aws-cn:execute-api:cn-north-1:123456789012:api/stage/GET/":               "arn:aws-cn:execute-api:cn-north-1:123456789012:api/stage/*/*",
		"arn:aws:execute-api:us-east-1:123456789012:api/stage":                        "arn:aws:execute-api:us-east-1:123456789012:api/stage/*/*",
		"arn:aws:execute-api:us-east-1:123456789012:api":                              "",
		"arn:aws:lambda:us-east-1:123456789012:function:f":                            "",
		"": "",
		"arn:aws:execute-api:us-east-1::api/stage/GET/x": "",
	} {
		got, ok := stageWildcardResource(in)
		if got != want || ok != (want != "") {
			t.Errorf("stageWildcardResource(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestPrincipalFromAuthorizerContext(t *testing.T) {
	ok := map[string]any{ContextKind: "jwt", ContextSubject: "alice", ContextRole: "write"}
	p, err := PrincipalFromAuthorizerContext(ok)
	if err != nil || p != (Principal{Kind: KindJWT, Subject: "alice", Role: store.RoleWrite}) {
		t.Errorf("%+v, %v", p, err)
	}
	for _, bad := range []map[string]any{
		nil,
		{ContextKind: "jwt", ContextSubject: "alice"},
		{ContextKind: "jwt", ContextSubject: "alice", ContextRole: "admin"},
		{ContextKind: "root", ContextSubject: "alice", ContextRole: "write"},
		{ContextKind: "jwt", ContextSubject: "alice", ContextRole: 1},
	} {
		if _, err := PrincipalFromAuthorizerContext(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// The fixture functions/authorizer/event.json (sam local invoke -e) decodes
// into the event type and is allowed once its key is stored.
func TestAuthorizerFixture(t *testing.T) {
	raw, err := os.ReadFile("../../functions/authorizer/event.json")
	if err != nil {
		t.Fatal(err)
	}
	var req events.APIGatewayCustomAuthorizerRequestTypeRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		t.Fatal(err)
	}
	if req.Type != "REQUEST" || req.MethodArn == "" || req.RequestContext.APIID == "" || req.HTTPMethod != "GET" {
		t.Fatalf("fixture decoded to %+v", req)
	}
	header, err := AuthorizationFromEvent(req.Headers, req.MultiValueHeaders)
	if err != nil || header == "" {
		t.Fatal("fixture has no Authorization header")
	}
	token, err := ParseBearer(header)
	if err != nil {
		t.Fatal(err)
	}

	e := newTestEnv(t, nil)
	e.keys.keys[HashAPIKey(token)] = store.APIKey{Hash: HashAPIKey(token), ID: "smoketest", Role: store.RoleRead}
	resp, err := NewAPIGatewayAuthorizer(e.v, nil).Handle(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Context[ContextSubject] != "smoketest" || resp.PolicyDocument.Statement[0].Resource[0] != "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/Prod/*/*" {
		t.Errorf("response %+v", resp)
	}
}

func TestAuthorizerDisabled(t *testing.T) {
	v, err := NewVerifier(Config{Disabled: true}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := NewAPIGatewayAuthorizer(v, nil).Handle(context.Background(), authorizerRequest(nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Context[ContextKind] != KindAnonymous || resp.Context[ContextRole] != "write" {
		t.Errorf("context %v", resp.Context)
	}
}

// TestAuthorizationValue: the one rule for the Authorization header, whatever
// the path (authorizer, api Lambda, local HTTP server).
func TestAuthorizationValue(t *testing.T) {
	for _, c := range []struct {
		values []string
		want   string
		ok     bool
	}{
		{nil, "", true},
		{[]string{"Bearer apikey:a"}, "Bearer apikey:a", true},
		{[]string{""}, "", true}, // empty: Verify's "missing Authorization header"
		{[]string{"Bearer apikey:a", "Bearer apikey:a"}, "", false},
		{[]string{"Bearer apikey:a", "Bearer apikey:b"}, "", false},
		{[]string{"Bearer apikey:a, Bearer apikey:b"}, "", false},
		{[]string{"Bearer apikey:a,"}, "", false},
	} {
		got, err := AuthorizationValue(c.values)
		if c.ok != (err == nil) || got != c.want {
			t.Errorf("%q: %q, %v", c.values, got, err)
		}
		if err != nil {
			de := wantCode(t, err, domain.CodeAuthenticationFailed)
			if reasonOf(de) != reasonMultipleHeaders {
				t.Errorf("%q: reason %q", c.values, reasonOf(de))
			}
		}
	}
}
