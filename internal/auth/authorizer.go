package auth

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/store"
)

// Keys of the authorizer context handed to the api Lambda
// (requestContext.authorizer.<key>). API Gateway allows only string, number
// and boolean values there; these are all strings.
const (
	ContextKind    = "principal_kind"
	ContextSubject = "principal_subject"
	ContextRole    = "principal_role"
)

// ErrUnauthorized is the one error API Gateway turns into a 401: a REQUEST
// authorizer that fails with exactly the message "Unauthorized" makes the
// gateway answer 401 (its UNAUTHORIZED gateway response) without calling
// the api Lambda.
//
//nolint:staticcheck // the capitalised message is API Gateway's contract.
var ErrUnauthorized = errors.New("Unauthorized")

// errAuthorizerFailure is returned when the credential could not be checked
// (state store or key set unavailable). API Gateway answers any other
// authorizer error with 500 (gateway response AUTHORIZER_FAILURE, which the
// template may map to a 503 ServiceUnavailable body). Deliberately generic:
// the cause is in the log.
var errAuthorizerFailure = errors.New("authorizer: the credential could not be checked (a backing service is unavailable)")

// APIGatewayAuthorizer is the handler of the REST API's REQUEST authorizer
// Lambda. It only authenticates: every verified credential is allowed on all
// methods and paths of the stage (so a policy cached per Authorization header
// holds for every route), and the principal goes to the api Lambda in the
// authorizer context, where the route's role is checked (403
// InsufficientPermissions is the api Lambda's answer, never the
// authorizer's). Unverifiable credentials get ErrUnauthorized (401).
type APIGatewayAuthorizer struct {
	verifier Verifier
	log      *slog.Logger
}

// NewAPIGatewayAuthorizer builds the handler. A nil logger discards.
func NewAPIGatewayAuthorizer(v Verifier, logger *slog.Logger) *APIGatewayAuthorizer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &APIGatewayAuthorizer{verifier: v, log: logger}
}

// Handle answers one authorizer request: an Allow policy with the principal
// in the context; ErrUnauthorized for a missing, malformed, expired or
// unknown credential; another error (API Gateway: 500) when the credential
// could not be checked.
func (a *APIGatewayAuthorizer) Handle(ctx context.Context, req events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
	header, err := AuthorizationFromEvent(req.Headers, req.MultiValueHeaders)
	if err != nil {
		a.log.InfoContext(ctx, "authorizer: rejected", "reason", reasonMultipleHeaders, "request_id", req.RequestContext.RequestID)
		return events.APIGatewayCustomAuthorizerResponse{}, ErrUnauthorized
	}
	p, err := a.verifier.Verify(ctx, header)
	if err != nil {
		var de *domain.Error
		if errors.As(err, &de) && de.Code == domain.CodeAuthenticationFailed {
			return events.APIGatewayCustomAuthorizerResponse{}, ErrUnauthorized
		}
		a.log.ErrorContext(ctx, "authorizer: credential could not be checked", "request_id", req.RequestContext.RequestID, "error", err.Error())
		return events.APIGatewayCustomAuthorizerResponse{}, errAuthorizerFailure
	}
	resource, ok := stageWildcardResource(req.MethodArn)
	if !ok {
		if req.MethodArn == "" {
			a.log.ErrorContext(ctx, "authorizer: request without methodArn", "request_id", req.RequestContext.RequestID)
			return events.APIGatewayCustomAuthorizerResponse{}, errAuthorizerFailure
		}
		// Not the execute-api shape: allow exactly what was asked for.
		a.log.WarnContext(ctx, "authorizer: unexpected methodArn; allowing that method only", "method_arn", req.MethodArn)
		resource = req.MethodArn
	}
	return events.APIGatewayCustomAuthorizerResponse{
		PrincipalID: p.Kind + "/" + p.Subject,
		PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
			Version: "2012-10-17",
			Statement: []events.IAMPolicyStatement{{
				Action:   []string{"execute-api:Invoke"},
				Effect:   "Allow",
				Resource: []string{resource},
			}},
		},
		Context: map[string]any{
			ContextKind:    p.Kind,
			ContextSubject: p.Subject,
			ContextRole:    string(p.Role),
		},
	}, nil
}

// stageWildcardResource turns a method ARN
// "arn:aws:execute-api:region:account:apiId/stage/VERB/path…" into
// "arn:aws:execute-api:region:account:apiId/stage/*/*", covering every
// method and path of the stage.
func stageWildcardResource(methodArn string) (string, bool) {
	parts := strings.SplitN(methodArn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "execute-api" || parts[3] == "" || parts[4] == "" {
		return "", false
	}
	path := strings.SplitN(parts[5], "/", 3)
	if len(path) < 2 || path[0] == "" || path[1] == "" {
		return "", false
	}
	return strings.Join(parts[:5], ":") + ":" + path[0] + "/" + path[1] + "/*/*", true
}

// PrincipalFromAuthorizerContext reads the principal the authorizer put in
// the request context (events.APIGatewayProxyRequestContext.Authorizer). A
// missing or malformed context (the API reached without the authorizer) is
// a *domain.Error AuthenticationFailed, never a principal.
func PrincipalFromAuthorizerContext(authorizer map[string]any) (Principal, error) {
	str := func(k string) string {
		s, _ := authorizer[k].(string)
		return s
	}
	p := Principal{Kind: str(ContextKind), Subject: str(ContextSubject), Role: store.Role(str(ContextRole))}
	switch {
	case p.Kind != KindAPIKey && p.Kind != KindJWT && p.Kind != KindAnonymous:
		return Principal{}, domain.AuthenticationFailed("no authenticated principal")
	case p.Role != store.RoleRead && p.Role != store.RoleWrite:
		return Principal{}, domain.AuthenticationFailed("no authenticated principal")
	}
	return p, nil
}
