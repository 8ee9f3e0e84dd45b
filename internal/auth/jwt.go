package auth

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/store"
)

// maxSubjectLength bounds the "sub" claim carried into logs and the
// authorizer context.
const maxSubjectLength = 256

// jwtVerifier checks JWTs: signature (RS256/ES256 by kid from the JWKS,
// HS256 with the configured secret), exp (required), nbf, iat, iss, aud.
type jwtVerifier struct {
	cfg     Config
	parser  *jwt.Parser
	allowed map[string]bool
	jwks    *jwksCache // nil without JWKSURL
	log     *slog.Logger
}

func newJWTVerifier(cfg Config, log *slog.Logger) *jwtVerifier {
	v := &jwtVerifier{cfg: cfg, allowed: map[string]bool{}, log: log}
	var methods []string
	if cfg.JWKSURL != "" {
		methods = append(methods, jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg())
		v.jwks = newJWKSCache(cfg, log)
	}
	if len(cfg.HS256Secret) > 0 {
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	for _, m := range methods {
		v.allowed[m] = true
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(methods),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
		jwt.WithStrictDecoding(),
	)
	return v
}

// keyfunc errors.
var (
	errAlgorithm = errors.New("algorithm not accepted")
	errCritical  = errors.New("critical header")
	errKid       = errors.New("malformed kid")
)

func (v *jwtVerifier) verify(ctx context.Context, token string) (Principal, error) {
	claims := jwt.MapClaims{}
	tok, err := v.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		return v.key(ctx, t)
	})
	if err != nil {
		return Principal{}, v.classify(tok, err)
	}
	sub, err := claims.GetSubject()
	if err != nil || sub == "" || len(sub) > maxSubjectLength {
		return Principal{}, domain.AuthenticationFailed(reasonNoSubject)
	}
	role, err := roleFromClaim(claims, v.cfg.RoleClaim)
	if err != nil {
		return Principal{}, domain.AuthenticationFailed(reasonRoleClaim)
	}
	return Principal{Kind: KindJWT, Subject: sub, Role: role}, nil
}

// key selects the verification key. The key's type is tied to the token's
// alg: HS256 only ever gets the configured secret, RS256 only an RSA key and
// ES256 only a P-256 key from the JWKS. The JWKS is never consulted for HS256,
// so a token "signed" with an RSA public key's bytes cannot verify.
func (v *jwtVerifier) key(ctx context.Context, t *jwt.Token) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		return nil, errCritical
	}
	alg := t.Method.Alg()
	if !v.allowed[alg] {
		return nil, errAlgorithm
	}
	switch alg {
	case jwt.SigningMethodHS256.Alg():
		return v.cfg.HS256Secret, nil
	case jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg():
		if v.jwks == nil {
			return nil, errAlgorithm
		}
		kid := ""
		if raw, ok := t.Header["kid"]; ok {
			s, isString := raw.(string)
			if !isString || len(s) > 256 {
				return nil, errKid
			}
			kid = s
		}
		k, err := v.jwks.lookup(ctx, kid, alg)
		if err != nil {
			return nil, err
		}
		return k.key, nil
	}
	return nil, errAlgorithm
}

// classify turns a parse error into the response error: a fixed reason,
// never the library's text (which may quote parts of the token).
func (v *jwtVerifier) classify(tok *jwt.Token, err error) error {
	switch {
	case errors.Is(err, errJWKSUnavailable):
		return domain.ServiceUnavailable("identity provider's key set")
	case errors.Is(err, errKeyNotFound):
		return domain.AuthenticationFailed(reasonUnknownKey)
	case errors.Is(err, errCritical):
		return domain.AuthenticationFailed(reasonCritical)
	case errors.Is(err, errKid):
		return domain.AuthenticationFailed(reasonMalformedToken)
	case errors.Is(err, errAlgorithm):
		return domain.AuthenticationFailed(reasonAlgorithm)
	case tok != nil && tok.Method != nil && !v.allowed[tok.Method.Alg()]:
		// alg "none" and anything not configured end here.
		return domain.AuthenticationFailed(reasonAlgorithm)
	case errors.Is(err, jwt.ErrTokenUnverifiable) && (tok == nil || tok.Method == nil):
		return domain.AuthenticationFailed(reasonAlgorithm)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return domain.AuthenticationFailed(reasonMalformedToken)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return domain.AuthenticationFailed(reasonSignature)
	case errors.Is(err, jwt.ErrTokenExpired):
		return domain.AuthenticationFailed(reasonExpired)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return domain.AuthenticationFailed(reasonNotYetValid)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return domain.AuthenticationFailed(reasonIssuedInFuture)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return domain.AuthenticationFailed(reasonAudience)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return domain.AuthenticationFailed(reasonIssuer)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return domain.AuthenticationFailed(reasonMissingClaim)
	}
	return domain.AuthenticationFailed(reasonInvalidToken)
}

// Role names accepted in the role claim.
var roleNames = map[string]store.Role{
	"read":         store.RoleRead,
	"sluice:read":  store.RoleRead,
	"write":        store.RoleWrite,
	"sluice:write": store.RoleWrite,
}

// roleFromClaim reads the role claim (see Config.RoleClaim): write when any
// value names write, otherwise read (also when the claim is absent or names
// neither). A claim that is neither a string nor a list of strings is an error.
func roleFromClaim(claims jwt.MapClaims, name string) (store.Role, error) {
	var values []string
	switch raw := claims[name].(type) {
	case nil:
	case string:
		values = strings.Fields(raw)
	case []any:
		for _, item := range raw {
			s, ok := item.(string)
			if !ok {
				return "", errors.New("role claim list holds a non-string")
			}
			values = append(values, s)
		}
	default:
		return "", errors.New("role claim is neither a string nor a list of strings")
	}
	role := store.RoleRead
	for _, s := range values {
		if roleNames[s] == store.RoleWrite {
			role = store.RoleWrite
		}
	}
	return role, nil
}
