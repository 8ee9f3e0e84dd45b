// Package auth verifies the bearer credentials of SPEC §6: API keys
// ("apikey:…", looked up by SHA-256 hash) and JWTs (JWKS for RS256/ES256, a
// shared secret for HS256 where configured). The API Gateway authorizer Lambda
// and the local HTTP server use the same Verifier.
//
// Decisions:
//   - Header: exactly "Bearer <token>" (scheme in any case, one space,
//     printable ASCII token of at most MaxTokenLength bytes); see ParseBearer.
//   - JWT role: read from Config.RoleClaim (default "sluice_role"); a token
//     whose claim is absent or names no known role gets read. A role claim
//     of the wrong JSON type is a 401.
//   - JWTs need exp, iss, aud and sub; nbf and iat are honoured (leeway 30s).
//   - The issuer's key set unreachable (and the token's kid not cached) is a
//     503 ServiceUnavailable, not a 401: the client's credential may well be
//     good, the fault is on the server side. An unknown kid with a reachable
//     key set is a 401.
//   - An API key lookup failing in the store is propagated wrapped
//     (store.ErrUnavailable → 503), never turned into a 401.
//   - Nothing here logs a credential: only key ids, subjects, kinds and
//     fixed failure reasons.
//   - The authorizer only authenticates; the api Lambda authorizes per route
//     (RequiredRole, Authorize) with the principal read back by
//     PrincipalFromAuthorizerContext.
package auth

import (
	"context"

	"github.com/sluicehq/sluice/internal/store"
)

// Principal is who a verified credential belongs to. It never holds the secret.
type Principal struct {
	// Kind is "apikey" or "jwt".
	Kind string `json:"kind"`
	// Subject is the API key's public id or the token's "sub" claim.
	Subject string `json:"subject"`
	// Role is what the principal may do: read (GET routes) or write (everything).
	Role store.Role `json:"role"`
}

// Allows reports whether the principal holds the role required: write
// allows everything, read allows read; a principal without a valid role is
// allowed nothing.
func (p Principal) Allows(required store.Role) bool {
	switch p.Role {
	case store.RoleWrite:
		return true
	case store.RoleRead:
		return required == store.RoleRead
	default:
		return false
	}
}

// Verifier checks an Authorization header value ("Bearer <token>"). Failures
// are *domain.Error AuthenticationFailed (401) whose message never repeats the
// credential, or *domain.Error ServiceUnavailable (503) when the issuer's key
// set cannot be fetched; a failing key lookup is a store.ErrUnavailable-wrapped
// error.
type Verifier interface {
	Verify(ctx context.Context, authorizationHeader string) (Principal, error)
}
