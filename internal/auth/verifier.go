package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/store"
)

// Defaults of Config.
const (
	// DefaultRoleClaim is the JWT claim read for the role when Config.RoleClaim is empty.
	DefaultRoleClaim = "sluice_role"
	// DefaultLeeway is the clock skew allowed on exp/nbf/iat when Config.Leeway is zero.
	DefaultLeeway = 30 * time.Second
	// DefaultJWKSRefreshInterval is the minimum time between two JWKS fetches.
	DefaultJWKSRefreshInterval = 30 * time.Second
	// DefaultJWKSMaxAge is how long a fetched key set is used before it is fetched again.
	DefaultJWKSMaxAge = 15 * time.Minute
	// JWKSFetchTimeout bounds one JWKS request.
	JWKSFetchTimeout = 5 * time.Second
	// MaxJWKSBytes bounds a JWKS response body.
	MaxJWKSBytes = 1 << 20
	// MaxTokenLength bounds the bearer token (API key or JWT), in bytes.
	MaxTokenLength = 8 << 10
	// MinHS256SecretLength is the shortest HS256 secret accepted (RFC 7518 §3.2: at least the hash size).
	MinHS256SecretLength = 32
)

// APIKeyPrefix starts every API key; anything else is treated as a JWT.
const APIKeyPrefix = "apikey:"

// Principal kinds.
const (
	KindAPIKey    = "apikey"
	KindJWT       = "jwt"
	KindAnonymous = "anonymous"
)

// Config configures a ChainVerifier. The zero value verifies API keys only
// (no JWT accepted) with authentication on.
type Config struct {
	// Disabled switches authentication off: every request, with or without a
	// header, is Principal{Kind: "anonymous", Role: write}. Local development
	// only; a warning is logged once at construction.
	Disabled bool

	// Issuer is the required "iss" of JWTs. Required when JWTs are configured.
	Issuer string
	// Audience is the required "aud" (one of the token's audiences must equal
	// it). Required when JWTs are configured.
	Audience string
	// JWKSURL is the issuer's JSON Web Key Set (RS256 and ES256/P-256 keys).
	// https, or http on a loopback host only. Empty: no RS256/ES256.
	JWKSURL string
	// HS256Secret enables HS256 with this shared secret (at least 32 bytes).
	// Empty: HS256 is rejected.
	HS256Secret []byte
	// RoleClaim names the claim holding the role: a string ("read", "write",
	// or a space-separated scope list such as "openid sluice:write") or a list
	// of strings. "write"/"sluice:write" grant write, "read"/"sluice:read"
	// grant read; the strongest one present wins. A token whose claim is
	// absent or names neither gets read. A claim of another JSON type is
	// rejected (401). Default DefaultRoleClaim.
	RoleClaim string
	// Leeway is the clock skew allowed on exp, nbf and iat. Zero: DefaultLeeway.
	Leeway time.Duration
	// Now is the clock (tests). Nil: time.Now.
	Now func() time.Time

	// JWKSRefreshInterval is the minimum time between two JWKS fetches (an
	// unknown kid triggers a fetch at most this often). Zero: default.
	JWKSRefreshInterval time.Duration
	// JWKSMaxAge is how long a fetched key set is trusted before the next
	// verification fetches it again (so removed keys stop verifying). If that
	// fetch fails the old set stays in use. Zero: default.
	JWKSMaxAge time.Duration
	// HTTPClient fetches the JWKS. Nil: a client with JWKSFetchTimeout.
	HTTPClient *http.Client
}

func (c Config) jwtEnabled() bool { return c.JWKSURL != "" || len(c.HS256Secret) > 0 }

// KeyLookup finds a stored API key by the hex SHA-256 of the whole key
// string; store.Store satisfies it. Unknown keys are store.ErrNotFound.
type KeyLookup interface {
	GetAPIKey(ctx context.Context, hash string) (store.APIKey, error)
}

// ChainVerifier is the Verifier of SPEC §6: "apikey:…" tokens are looked up by
// hash, any other token is verified as a JWT. It is safe for concurrent use.
type ChainVerifier struct {
	cfg     Config
	keys    KeyLookup
	log     *slog.Logger
	jwt     *jwtVerifier // nil when no JWT method is configured
	enabled bool
}

var _ Verifier = (*ChainVerifier)(nil)

// NewVerifier checks cfg and builds the verifier. keys may be nil only when
// cfg.Disabled. A nil logger discards.
func NewVerifier(cfg Config, keys KeyLookup, logger *slog.Logger) (*ChainVerifier, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RoleClaim == "" {
		cfg.RoleClaim = DefaultRoleClaim
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.Leeway < 0 {
		return nil, errors.New("auth: negative leeway")
	}
	if cfg.JWKSRefreshInterval <= 0 {
		cfg.JWKSRefreshInterval = DefaultJWKSRefreshInterval
	}
	if cfg.JWKSMaxAge <= 0 {
		cfg.JWKSMaxAge = DefaultJWKSMaxAge
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: JWKSFetchTimeout}
	}
	v := &ChainVerifier{cfg: cfg, keys: keys, log: logger, enabled: !cfg.Disabled}
	if cfg.Disabled {
		logger.Warn("WARNING: authentication is DISABLED; every request is treated as an anonymous principal with the write role. Never run like this outside local development.")
		return v, nil
	}
	if keys == nil {
		return nil, errors.New("auth: no API key lookup configured")
	}
	if cfg.jwtEnabled() {
		if cfg.Issuer == "" || cfg.Audience == "" {
			return nil, errors.New("auth: JWT verification needs both an issuer and an audience")
		}
		if len(cfg.HS256Secret) > 0 && len(cfg.HS256Secret) < MinHS256SecretLength {
			return nil, fmt.Errorf("auth: the HS256 secret must be at least %d bytes", MinHS256SecretLength)
		}
		if cfg.JWKSURL != "" {
			if err := checkJWKSURL(cfg.JWKSURL); err != nil {
				return nil, err
			}
		}
		v.jwt = newJWTVerifier(cfg, logger)
	}
	return v, nil
}

func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("auth: the JWKS URL is not an absolute URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
	}
	return errors.New("auth: the JWKS URL must use https (http only on a loopback host)")
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Verify checks an Authorization header value. Failures are *domain.Error
// AuthenticationFailed (401) or, when the issuer's key set cannot be fetched,
// ServiceUnavailable (503); a failing API key lookup is returned wrapped
// (errors.Is(err, store.ErrUnavailable) when the store is unavailable).
func (v *ChainVerifier) Verify(ctx context.Context, authorizationHeader string) (Principal, error) {
	if !v.enabled {
		return Principal{Kind: KindAnonymous, Subject: KindAnonymous, Role: store.RoleWrite}, nil
	}
	token, err := ParseBearer(authorizationHeader)
	if err != nil {
		v.fail(ctx, "", err)
		return Principal{}, err
	}
	if strings.HasPrefix(token, APIKeyPrefix) {
		return v.verifyAPIKey(ctx, token)
	}
	if v.jwt == nil {
		err := domain.AuthenticationFailed(reasonUnrecognized)
		v.fail(ctx, KindJWT, err)
		return Principal{}, err
	}
	p, err := v.jwt.verify(ctx, token)
	if err != nil {
		v.fail(ctx, KindJWT, err)
		return Principal{}, err
	}
	v.log.DebugContext(ctx, "authenticated", "kind", p.Kind, "subject", p.Subject, "role", p.Role)
	return p, nil
}

// HashAPIKey is the stored form of an API key: hex SHA-256 of the whole key
// string, "apikey:" prefix included.
func HashAPIKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func (v *ChainVerifier) verifyAPIKey(ctx context.Context, token string) (Principal, error) {
	// The lookup is by hash, so no secret is compared in this process.
	key, err := v.keys.GetAPIKey(ctx, HashAPIKey(token))
	switch {
	case errors.Is(err, store.ErrNotFound):
		err := domain.AuthenticationFailed(reasonUnknownAPIKey)
		v.fail(ctx, KindAPIKey, err)
		return Principal{}, err
	case err != nil:
		// Not the client's fault: propagate (store.ErrUnavailable → 503).
		v.log.WarnContext(ctx, "authentication: API key lookup failed", "kind", KindAPIKey, "error", err.Error())
		return Principal{}, fmt.Errorf("auth: API key lookup: %w", err)
	}
	if key.Role != store.RoleRead && key.Role != store.RoleWrite {
		v.log.ErrorContext(ctx, "authentication: stored API key has no valid role", "key_id", key.ID)
		err := domain.AuthenticationFailed(reasonUnknownAPIKey)
		return Principal{}, err
	}
	p := Principal{Kind: KindAPIKey, Subject: key.ID, Role: key.Role}
	v.log.DebugContext(ctx, "authenticated", "kind", p.Kind, "subject", p.Subject, "role", p.Role)
	return p, nil
}

// fail logs an authentication failure: only the kind and the fixed reason,
// never the credential.
func (v *ChainVerifier) fail(ctx context.Context, kind string, err error) {
	var de *domain.Error
	if !errors.As(err, &de) {
		v.log.WarnContext(ctx, "authentication error", "kind", kind)
		return
	}
	reason := ""
	if d, ok := de.Details.(domain.AuthDetails); ok {
		reason = d.Reason
	}
	attrs := []any{"error_code", string(de.Code)}
	if kind != "" {
		attrs = append(attrs, "kind", kind)
	}
	if reason != "" {
		attrs = append(attrs, "reason", reason)
	}
	if de.Code == domain.CodeServiceUnavailable {
		v.log.WarnContext(ctx, "authentication unavailable", attrs...)
		return
	}
	v.log.InfoContext(ctx, "authentication failed", attrs...)
}

// Fixed failure reasons (the only text that reaches a response or a log).
const (
	reasonMissingHeader   = "missing Authorization header"
	reasonMalformedHeader = "the Authorization header must be 'Bearer <token>'"
	reasonEmptyToken      = "empty bearer token"
	reasonTokenTooLong    = "bearer token too long"
	reasonTokenChars      = "bearer token contains invalid characters"
	reasonUnknownAPIKey   = "unknown API key"
	reasonUnrecognized    = "unrecognized credential"
	reasonMalformedToken  = "malformed token"
	reasonAlgorithm       = "token signing algorithm not accepted"
	reasonSignature       = "invalid token signature"
	reasonUnknownKey      = "unknown token signing key"
	reasonExpired         = "token expired"
	reasonNotYetValid     = "token not valid yet"
	reasonIssuedInFuture  = "token issued in the future"
	reasonAudience        = "token audience not accepted"
	reasonIssuer          = "token issuer not accepted"
	reasonMissingClaim    = "token lacks a required claim"
	reasonNoSubject       = "token has no subject"
	reasonRoleClaim       = "token role claim is malformed"
	reasonCritical        = "token has unsupported critical header parameters"
	reasonInvalidToken    = "invalid token"
)

const bearerScheme = "bearer"

// ParseBearer extracts the token from an Authorization header value of the
// exact form "Bearer <token>": the scheme in any case, one space, a non-empty
// token of printable ASCII without spaces, at most MaxTokenLength bytes.
// Anything else is a *domain.Error AuthenticationFailed whose message is one
// of a fixed set and never contains the input.
func ParseBearer(header string) (string, error) {
	if header == "" {
		return "", domain.AuthenticationFailed(reasonMissingHeader)
	}
	if len(header) > len(bearerScheme)+1+MaxTokenLength {
		return "", domain.AuthenticationFailed(reasonTokenTooLong)
	}
	scheme, token, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, bearerScheme) {
		return "", domain.AuthenticationFailed(reasonMalformedHeader)
	}
	if token == "" {
		return "", domain.AuthenticationFailed(reasonEmptyToken)
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c >= 0x7f {
			return "", domain.AuthenticationFailed(reasonTokenChars)
		}
	}
	return token, nil
}
