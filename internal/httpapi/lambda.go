package httpapi

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/obs"
)

// LambdaHandler adapts an API Gateway REST proxy event. It always returns a
// response and a nil error: a Go error (or a panic) would make API Gateway
// answer 502 with its own body; here it is a 500 InternalError in the API's
// error shape.
//
// The principal comes from the REQUEST authorizer's context
// (auth.PrincipalFromAuthorizerContext); the role check
// per route happens in Handle, as for ServeHTTP. An event without authorizer
// context is verified with the configured Verifier (nil: 401).
func (h *Handler) LambdaHandler(ctx context.Context, ev events.APIGatewayProxyRequest) (resp events.APIGatewayProxyResponse, err error) {
	requestID := ev.RequestContext.RequestID
	defer func() {
		if v := recover(); v != nil {
			if requestID == "" {
				requestID = obs.LambdaRequestID(ctx)
			}
			obs.Logger(obs.WithLogger(ctx, h.log)).Error("panic in the Lambda adapter", "panic", fmt.Sprint(v), "stack", string(debug.Stack()), obs.RequestID(requestID))
			r := errorBody(http.StatusInternalServerError, http.Header{}, domain.InternalError(requestID))
			resp, err = toProxyResponse(r), nil
		}
	}()
	if requestID == "" {
		requestID = obs.LambdaRequestID(ctx)
	}
	req := Request{
		Method:         ev.HTTPMethod,
		Path:           ev.Path,
		Resource:       ev.Resource,
		PathParameters: ev.PathParameters,
		Header:         proxyHeaders(ev),
		RequestID:      requestID,
		Principal:      principalOf(ev.RequestContext.Authorizer),
	}
	req.Query = proxyQuery(ev)
	if ev.IsBase64Encoded {
		b, derr := base64.StdEncoding.DecodeString(ev.Body)
		if derr != nil {
			req.BodyErr = domain.InvalidRequestBody("", "the body is not valid base64")
		}
		req.Body = b
	} else {
		req.Body = []byte(ev.Body)
	}
	if len(req.Body) > MaxBodyBytes {
		req.Body, req.BodyTooLarge = nil, true
	}
	return toProxyResponse(h.Handle(ctx, req)), nil
}

// LambdaHandlerWithoutAuthorizer is LambdaHandler for an invocation that
// does not come from API Gateway (the local stack's Lambda endpoint, whose
// callers write the whole event): requestContext.authorizer is dropped, never
// trusted, so the principal always comes from verifying the event's
// Authorization header with the configured Verifier (none: 401). On AWS only
// API Gateway invokes the api function (its resource policy), and only API
// Gateway writes requestContext.
func (h *Handler) LambdaHandlerWithoutAuthorizer(ctx context.Context, ev events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	ev.RequestContext.Authorizer = nil
	return h.LambdaHandler(ctx, ev)
}

func proxyHeaders(ev events.APIGatewayProxyRequest) http.Header {
	hd := http.Header{}
	if len(ev.MultiValueHeaders) > 0 {
		for k, vs := range ev.MultiValueHeaders {
			for _, v := range vs {
				hd.Add(k, v)
			}
		}
		return hd
	}
	for k, v := range ev.Headers {
		hd.Add(k, v) // "authorization" and "Authorization" are two headers
	}
	return hd
}

// proxyQuery prefers the multi-value parameters, so a repeated parameter
// (force=true&force=false) is seen and refused, as by ServeHTTP.
func proxyQuery(ev events.APIGatewayProxyRequest) map[string][]string {
	q := map[string][]string{}
	if len(ev.MultiValueQueryStringParameters) > 0 {
		for k, vs := range ev.MultiValueQueryStringParameters {
			q[k] = append([]string(nil), vs...)
		}
		return q
	}
	for k, v := range ev.QueryStringParameters {
		q[k] = []string{v}
	}
	return q
}

// principalOf reads the principal the REQUEST authorizer put in the context
// (auth.ContextKind, auth.ContextSubject, auth.ContextRole); nil when there
// is none or it is malformed.
func principalOf(authz map[string]any) *auth.Principal {
	if len(authz) == 0 {
		return nil
	}
	p, err := auth.PrincipalFromAuthorizerContext(authz)
	if err != nil {
		return nil
	}
	return &p
}

func toProxyResponse(r Response) events.APIGatewayProxyResponse {
	if r.Stream != nil { // never asked for (CanStream is false): buffer a bounded part
		b, _ := io.ReadAll(io.LimitReader(r.Stream, LambdaLogTail))
		_ = r.Stream.Close()
		r.Body = append(r.Body, b...)
	}
	out := events.APIGatewayProxyResponse{StatusCode: r.Status, Body: string(r.Body), Headers: map[string]string{}}
	for k, vs := range r.Header {
		if len(vs) == 1 {
			out.Headers[k] = vs[0]
			continue
		}
		if out.MultiValueHeaders == nil {
			out.MultiValueHeaders = map[string][]string{}
		}
		out.MultiValueHeaders[k] = append([]string(nil), vs...)
	}
	return out
}
