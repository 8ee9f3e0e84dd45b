package auth

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/sluicehq/sluice/internal/testkit"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/store"
)

// credentialOf is what must never be echoed: everything after the scheme.
func credentialOf(header string) string {
	_, rest, _ := strings.Cut(header, " ")
	return strings.TrimSpace(rest)
}

func rsaPublicPEM(t testing.TB) (pkix, pkcs1 []byte, der []byte) {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&rsaKeyA().PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pkix = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	pkcs1 = pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKeyA().PublicKey)})
	return pkix, pkcs1, der
}

// TestAttackTable: every malformed, forged, expired or unknown credential is
// a 401 AuthenticationFailed (or, when the issuer's keys cannot be fetched,
// a 503) whose body and whose log lines never contain the credential.
func TestAttackTable(t *testing.T) {
	pemPKIX, pemPKCS1, der := rsaPublicPEM(t)
	down := httptest.NewServer(nil)
	downURL := down.URL
	down.Close()

	withSecret := func(c *Config) { c.HS256Secret = testHS256Secret }
	type row struct {
		name   string
		cfg    func(*Config)
		header func(t *testing.T, e *testEnv) string
		code   domain.ErrorCode
		reason string // "" = any
	}
	fixed := func(h string) func(*testing.T, *testEnv) string {
		return func(*testing.T, *testEnv) string { return h }
	}
	bearer := func(tok func(t *testing.T, e *testEnv) string) func(*testing.T, *testEnv) string {
		return func(t *testing.T, e *testEnv) string { return "Bearer " + tok(t, e) }
	}
	rs := func(mod func(c jwt.MapClaims, now time.Time)) func(*testing.T, *testEnv) string {
		return bearer(func(t *testing.T, e *testEnv) string {
			c := claims(e.clock.Now(), "alice")
			c[DefaultRoleClaim] = "write"
			if mod != nil {
				mod(c, e.clock.Now())
			}
			return sign(t, jwt.SigningMethodRS256, rsaKeyA(), "rsa-a", c)
		})
	}
	hsWith := func(key []byte) func(*testing.T, *testEnv) string {
		return bearer(func(t *testing.T, e *testEnv) string {
			c := claims(e.clock.Now(), "mallory")
			c[DefaultRoleClaim] = "write"
			return sign(t, jwt.SigningMethodHS256, key, "rsa-a", c)
		})
	}
	auth401 := domain.CodeAuthenticationFailed

	rows := []row{
		{name: "missing header", header: fixed(""), code: auth401, reason: reasonMissingHeader},
		{name: "only spaces", header: fixed("   "), code: auth401, reason: reasonMalformedHeader},
		{name: "Basic scheme", header: fixed("Basic dXNlcjpwYXNzd29yZA=="), code: auth401, reason: reasonMalformedHeader},
		{name: "Token scheme", header: fixed("Token apikey:abcdefghijklmnop"), code: auth401, reason: reasonMalformedHeader},
		{name: "scheme only", header: fixed("Bearer"), code: auth401, reason: reasonMalformedHeader},
		{name: "Bearer without token", header: fixed("Bearer "), code: auth401, reason: reasonEmptyToken},
		{name: "scheme glued to token", header: fixed("Bearerapikey:abcdefghijklmnop"), code: auth401, reason: reasonMalformedHeader},
		{name: "two spaces", header: fixed("Bearer  apikey:abcdefghijklmnop"), code: auth401, reason: reasonTokenChars},
		{name: "tab separator", header: fixed("Bearer\tapikey:abcdefghijklmnop"), code: auth401, reason: reasonMalformedHeader},
		{name: "trailing data", header: fixed("Bearer apikey:abcdefghijklmnop extra"), code: auth401, reason: reasonTokenChars},
		{name: "control character", header: fixed("Bearer apikey:abcdefg\x00hijklmnop"), code: auth401, reason: reasonTokenChars},
		{name: "non-ASCII", header: fixed("Bearer apikey:abcdéfghijklmnop"), code: auth401, reason: reasonTokenChars},
		{name: "too long", header: fixed("Bearer apikey:" + strings.Repeat("A", MaxTokenLength)), code: auth401, reason: reasonTokenTooLong},
		{name: "unknown API key", header: fixed("Bearer apikey:c2x1aWNlLXVua25vd24ta2V5LWZvci10ZXN0aW5nLXh4eA"), code: auth401, reason: reasonUnknownAPIKey},
		{name: "API key prefix only", header: fixed("Bearer apikey:"), code: auth401, reason: reasonUnknownAPIKey},
		{name: "garbage token", header: fixed("Bearer not-a-jwt-at-all-zzzzzzzz"), code: auth401, reason: reasonMalformedToken},
		{name: "three garbage segments", header: fixed("Bearer aaaa.bbbb.cccc"), code: auth401, reason: reasonMalformedToken},
		{name: "expired", header: rs(func(c jwt.MapClaims, now time.Time) {
			c["exp"] = now.Add(-time.Hour).Unix()
			c["iat"] = now.Add(-2 * time.Hour).Unix()
			c["nbf"] = now.Add(-2 * time.Hour).Unix()
		}), code: auth401, reason: reasonExpired},
		{name: "expired beyond leeway", header: rs(func(c jwt.MapClaims, now time.Time) {
			c["exp"] = now.Add(-DefaultLeeway - time.Second).Unix()
		}), code: auth401, reason: reasonExpired},
		{name: "no exp", header: rs(func(c jwt.MapClaims, _ time.Time) { delete(c, "exp") }), code: auth401, reason: reasonMissingClaim},
		{name: "wrong aud", header: rs(func(c jwt.MapClaims, _ time.Time) { c["aud"] = "another-api" }), code: auth401, reason: reasonAudience},
		{name: "no aud", header: rs(func(c jwt.MapClaims, _ time.Time) { delete(c, "aud") }), code: auth401, reason: reasonMissingClaim},
		{name: "wrong iss", header: rs(func(c jwt.MapClaims, _ time.Time) { c["iss"] = "https://evil.example.test/" }), code: auth401, reason: reasonIssuer},
		{name: "future nbf", header: rs(func(c jwt.MapClaims, now time.Time) { c["nbf"] = now.Add(10 * time.Minute).Unix() }), code: auth401, reason: reasonNotYetValid},
		{name: "future iat", header: rs(func(c jwt.MapClaims, now time.Time) { c["iat"] = now.Add(10 * time.Minute).Unix() }), code: auth401, reason: reasonIssuedInFuture},
		{name: "no sub", header: rs(func(c jwt.MapClaims, _ time.Time) { delete(c, "sub") }), code: auth401, reason: reasonNoSubject},
		{name: "malformed role claim", header: rs(func(c jwt.MapClaims, _ time.Time) { c[DefaultRoleClaim] = 7 }), code: auth401, reason: reasonRoleClaim},
		{name: "alg none", header: bearer(func(t *testing.T, e *testEnv) string {
			c := claims(e.clock.Now(), "mallory")
			c[DefaultRoleClaim] = "write"
			return sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "rsa-a", c)
		}), code: auth401, reason: reasonAlgorithm},
		{name: "alg none with secret configured", cfg: withSecret, header: bearer(func(t *testing.T, e *testEnv) string {
			return sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims(e.clock.Now(), "mallory"))
		}), code: auth401, reason: reasonAlgorithm},
		{name: "HS256 with RSA public key PEM (PKIX)", header: hsWith(pemPKIX), code: auth401, reason: reasonAlgorithm},
		{name: "HS256 with RSA public key PEM (PKCS1)", header: hsWith(pemPKCS1), code: auth401, reason: reasonAlgorithm},
		{name: "HS256 with RSA public key DER", header: hsWith(der), code: auth401, reason: reasonAlgorithm},
		{name: "HS256 with RSA public key PEM, secret configured", cfg: withSecret, header: hsWith(pemPKIX), code: auth401, reason: reasonSignature},
		{name: "HS256 with RSA public key DER, secret configured", cfg: withSecret, header: hsWith(der), code: auth401, reason: reasonSignature},
		{name: "HS256 with a wrong secret", cfg: withSecret, header: hsWith([]byte("a-wrong-secret-of-enough-length-000000000")), code: auth401, reason: reasonSignature},
		{name: "HS384 not accepted", cfg: withSecret, header: bearer(func(t *testing.T, e *testEnv) string {
			return sign(t, jwt.SigningMethodHS384, testHS256Secret, "", claims(e.clock.Now(), "mallory"))
		}), code: auth401, reason: reasonAlgorithm},
		{name: "RS512 not accepted", header: bearer(func(t *testing.T, e *testEnv) string {
			return sign(t, jwt.SigningMethodRS512, rsaKeyA(), "rsa-a", claims(e.clock.Now(), "mallory"))
		}), code: auth401, reason: reasonAlgorithm},
		{name: "tampered payload", header: bearer(func(t *testing.T, e *testEnv) string {
			good := strings.Split(sign(t, jwt.SigningMethodRS256, rsaKeyA(), "rsa-a", claims(e.clock.Now(), "alice")), ".")
			evil := claims(e.clock.Now(), "mallory")
			evil[DefaultRoleClaim] = "write"
			other := strings.Split(sign(t, jwt.SigningMethodRS256, rsaKeyA(), "rsa-a", evil), ".")
			return good[0] + "." + other[1] + "." + good[2]
		}), code: auth401, reason: reasonSignature},
		{name: "signed by another RSA key under a known kid", header: bearer(func(t *testing.T, e *testEnv) string {
			return sign(t, jwt.SigningMethodRS256, rsaKeyB(), "rsa-a", claims(e.clock.Now(), "mallory"))
		}), code: auth401, reason: reasonSignature},
		{name: "ES256 under an RSA kid", header: bearer(func(t *testing.T, e *testEnv) string {
			return sign(t, jwt.SigningMethodES256, ecKeyA(), "rsa-a", claims(e.clock.Now(), "mallory"))
		}), code: auth401, reason: reasonUnknownKey},
		{name: "unknown kid after refresh", header: bearer(func(t *testing.T, e *testEnv) string {
			return sign(t, jwt.SigningMethodRS256, rsaKeyB(), "rsa-unknown", claims(e.clock.Now(), "mallory"))
		}), code: auth401, reason: reasonUnknownKey},
		{name: "no kid", header: bearer(func(t *testing.T, e *testEnv) string {
			return sign(t, jwt.SigningMethodRS256, rsaKeyA(), "", claims(e.clock.Now(), "alice"))
		}), code: auth401, reason: reasonUnknownKey},
		{name: "non-string kid", header: bearer(func(t *testing.T, e *testEnv) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims(e.clock.Now(), "alice"))
			tok.Header["kid"] = 12
			s, err := tok.SignedString(rsaKeyA())
			if err != nil {
				t.Fatal(err)
			}
			return s
		}), code: auth401, reason: reasonMalformedToken},
		{name: "critical header", header: bearer(func(t *testing.T, e *testEnv) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims(e.clock.Now(), "alice"))
			tok.Header["kid"] = "rsa-a"
			tok.Header["crit"] = []string{"exp"}
			s, err := tok.SignedString(rsaKeyA())
			if err != nil {
				t.Fatal(err)
			}
			return s
		}), code: auth401, reason: reasonCritical},
		{name: "JWT while only API keys are configured", cfg: func(c *Config) { c.JWKSURL = ""; c.Issuer = ""; c.Audience = "" },
			header: rs(nil), code: auth401, reason: reasonUnrecognized},
		{name: "JWKS server down", cfg: func(c *Config) { c.JWKSURL = downURL }, header: rs(nil), code: domain.CodeServiceUnavailable},
	}

	logs := &testkit.SyncBuffer{}
	var secrets []string
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			e := newTestEnvLogs(t, r.cfg, logs)
			header := r.header(t, e)
			cred := credentialOf(header)
			if len(cred) >= 4 {
				secrets = append(secrets, cred)
			}
			p, err := e.v.Verify(context.Background(), header)
			if err == nil {
				t.Fatalf("accepted: %+v", p)
			}
			if p != (Principal{}) {
				t.Errorf("principal %+v returned with an error", p)
			}
			de := wantCode(t, err, r.code)
			if r.reason != "" && reasonOf(de) != r.reason {
				t.Errorf("reason %q, want %q", reasonOf(de), r.reason)
			}
			body, _ := json.Marshal(de)
			if cred != "" && strings.Contains(string(body), cred) {
				t.Errorf("response body %s repeats the credential", body)
			}
			if r.code == domain.CodeAuthenticationFailed && de.HTTPStatus() != 401 {
				t.Errorf("HTTP status %d", de.HTTPStatus())
			}
			if r.code == domain.CodeServiceUnavailable && de.HTTPStatus() != 503 {
				t.Errorf("HTTP status %d", de.HTTPStatus())
			}
		})
	}

	out := logs.String()
	if out == "" {
		t.Fatal("no log output captured")
	}
	secrets = append(secrets, string(testHS256Secret))
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("logs contain a credential (%d bytes)", len(s))
		}
		// Also any long piece of it (e.g. a JWT's signature or payload).
		for _, part := range strings.Split(s, ".") {
			if len(part) >= 16 && strings.Contains(out, part) {
				t.Errorf("logs contain part of a credential (%d bytes)", len(part))
			}
		}
	}
	if !strings.Contains(out, reasonUnknownAPIKey) || !strings.Contains(out, reasonAlgorithm) {
		t.Errorf("failure reasons not logged:\n%s", out)
	}
}

func TestAPIKeys(t *testing.T) {
	e := newTestEnv(t, nil)
	readSecret, readKey := e.keys.add(t, store.RoleRead)
	writeSecret, writeKey := e.keys.add(t, store.RoleWrite)

	for _, tc := range []struct {
		secret string
		key    store.APIKey
		role   store.Role
	}{{readSecret, readKey, store.RoleRead}, {writeSecret, writeKey, store.RoleWrite}} {
		p, err := e.verify(t, tc.secret)
		if err != nil {
			t.Fatalf("%s key: %v", tc.role, err)
		}
		want := Principal{Kind: KindAPIKey, Subject: tc.key.ID, Role: tc.role}
		if p != want {
			t.Errorf("principal %+v, want %+v", p, want)
		}
		// The scheme is case-insensitive.
		if _, err := e.v.Verify(context.Background(), "bEaReR "+tc.secret); err != nil {
			t.Errorf("lower/mixed-case scheme: %v", err)
		}
	}

	// A read key on a POST: 403 with details {required: write, actual: read}.
	p, _ := e.verify(t, readSecret)
	err := Authorize(p, RequiredRole("POST"))
	de := wantCode(t, err, domain.CodeInsufficientPermissions)
	if de.HTTPStatus() != 403 {
		t.Errorf("status %d", de.HTTPStatus())
	}
	body, _ := json.Marshal(de)
	var decoded struct {
		Details map[string]string `json:"details"`
	}
	if err := json.Unmarshal(body, &decoded); err != nil {
		t.Fatal(err)
	}
	if decoded.Details["required"] != "write" || decoded.Details["actual"] != "read" {
		t.Errorf("details %v", decoded.Details)
	}
	if err := Authorize(p, RequiredRole("GET")); err != nil {
		t.Errorf("read key on GET: %v", err)
	}

	out := e.logs.String()
	for _, s := range []string{readSecret, writeSecret, strings.TrimPrefix(readSecret, APIKeyPrefix), strings.TrimPrefix(writeSecret, APIKeyPrefix)} {
		if strings.Contains(out, s) {
			t.Error("logs contain an API key")
		}
	}
	if !strings.Contains(out, readKey.ID) {
		t.Errorf("logs do not name the key id: %s", out)
	}
}

func TestAPIKeyStoreErrors(t *testing.T) {
	e := newTestEnv(t, nil)
	secret, _ := e.keys.add(t, store.RoleWrite)

	e.keys.err = fmt.Errorf("store: GetItem: %w", store.ErrUnavailable)
	_, err := e.verify(t, secret)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("store unavailable became %v", err)
	}
	var de *domain.Error
	if errors.As(err, &de) {
		t.Fatalf("store unavailable became a catalogue error %s", de.Code)
	}

	e.keys.err = nil
	e.keys.keys[HashAPIKey(secret)] = store.APIKey{Hash: HashAPIKey(secret), ID: "broken", Role: "admin"}
	_, err = e.verify(t, secret)
	wantCode(t, err, domain.CodeAuthenticationFailed)
	if strings.Contains(e.logs.String(), secret) {
		t.Error("logs contain the key")
	}
}

func TestJWTHappyPaths(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.HS256Secret = testHS256Secret })
	now := e.clock.Now()
	withRole := func(role any) jwt.MapClaims {
		c := claims(now, "alice@example.test")
		if role != nil {
			c[DefaultRoleClaim] = role
		}
		return c
	}
	for _, tc := range []struct {
		name  string
		token string
		role  store.Role
	}{
		{"RS256 write", sign(t, jwt.SigningMethodRS256, rsaKeyA(), "rsa-a", withRole("write")), store.RoleWrite},
		{"RS256 read", sign(t, jwt.SigningMethodRS256, rsaKeyA(), "rsa-a", withRole("read")), store.RoleRead},
		{"ES256 write", sign(t, jwt.SigningMethodES256, ecKeyA(), "ec-a", withRole("write")), store.RoleWrite},
		{"HS256 write", sign(t, jwt.SigningMethodHS256, testHS256Secret, "", withRole("write")), store.RoleWrite},
		{"HS256 ignores kid", sign(t, jwt.SigningMethodHS256, testHS256Secret, "rsa-a", withRole("write")), store.RoleWrite},
		{"no role claim gets read", sign(t, jwt.SigningMethodRS256, rsaKeyA(), "rsa-a", withRole(nil)), store.RoleRead},
		{"unknown role name gets read", sign(t, jwt.SigningMethodRS256, rsaKeyA(), "rsa-a", withRole("admin")), store.RoleRead},
		{"role list", sign(t, jwt.SigningMethodRS256, rsaKeyA(), "rsa-a", withRole([]string{"read", "write"})), store.RoleWrite},
		{"scope string", sign(t, jwt.SigningMethodES256, ecKeyA(), "ec-a", withRole("openid sluice:write")), store.RoleWrite},
		{"scope read", sign(t, jwt.SigningMethodES256, ecKeyA(), "ec-a", withRole("sluice:read profile")), store.RoleRead},
		{"audience list", sign(t, jwt.SigningMethodRS256, rsaKeyA(), "rsa-a", func() jwt.MapClaims {
			c := withRole("write")
			c["aud"] = []string{"other", testAudience}
			return c
		}()), store.RoleWrite},
		{"expired within leeway", sign(t, jwt.SigningMethodRS256, rsaKeyA(), "rsa-a", func() jwt.MapClaims {
			c := withRole("write")
			c["exp"] = now.Add(-10 * time.Second).Unix()
			return c
		}()), store.RoleWrite},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := e.verify(t, tc.token)
			if err != nil {
				t.Fatal(err)
			}
			want := Principal{Kind: KindJWT, Subject: "alice@example.test", Role: tc.role}
			if p != want {
				t.Errorf("principal %+v, want %+v", p, want)
			}
		})
	}
	if strings.Contains(e.logs.String(), string(testHS256Secret)) {
		t.Error("logs contain the HS256 secret")
	}
}

func TestCustomRoleClaim(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.RoleClaim = "scope" })
	c := claims(e.clock.Now(), "svc")
	c["scope"] = "pipelines sluice:write"
	c[DefaultRoleClaim] = "read" // ignored: another claim is configured
	p, err := e.verify(t, sign(t, jwt.SigningMethodRS256, rsaKeyA(), "rsa-a", c))
	if err != nil {
		t.Fatal(err)
	}
	if p.Role != store.RoleWrite {
		t.Errorf("role %s", p.Role)
	}
}

func TestDisabled(t *testing.T) {
	logs := &testkit.SyncBuffer{}
	v, err := NewVerifier(Config{Disabled: true}, nil, jsonLogger(logs))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"", "Basic eA==", "Bearer apikey:whatever"} {
		p, err := v.Verify(context.Background(), h)
		if err != nil {
			t.Fatal(err)
		}
		if p.Kind != KindAnonymous || p.Role != store.RoleWrite {
			t.Errorf("principal %+v", p)
		}
	}
	out := logs.String()
	if strings.Count(out, "DISABLED") != 1 || !strings.Contains(out, `"level":"WARN"`) {
		t.Errorf("want exactly one warning at construction, got:\n%s", out)
	}
}

func TestNewVerifierConfig(t *testing.T) {
	keys := newMapKeys()
	for _, tc := range []struct {
		name string
		cfg  Config
		keys KeyLookup
		ok   bool
	}{
		{"API keys only", Config{}, keys, true},
		{"no key lookup", Config{}, nil, false},
		{"JWKS without issuer", Config{JWKSURL: "https://idp.example.test/jwks", Audience: "a"}, keys, false},
		{"JWKS without audience", Config{JWKSURL: "https://idp.example.test/jwks", Issuer: "i"}, keys, false},
		{"secret without issuer", Config{HS256Secret: testHS256Secret, Audience: "a"}, keys, false},
		{"short secret", Config{HS256Secret: []byte("short"), Issuer: "i", Audience: "a"}, keys, false},
		{"plain http JWKS", Config{JWKSURL: "http://idp.example.test/jwks", Issuer: "i", Audience: "a"}, keys, false},
		{"loopback http JWKS", Config{JWKSURL: "http://127.0.0.1:9/jwks", Issuer: "i", Audience: "a"}, keys, true},
		{"relative JWKS", Config{JWKSURL: "/jwks", Issuer: "i", Audience: "a"}, keys, false},
		{"negative leeway", Config{Leeway: -time.Second}, keys, false},
		{"https JWKS and secret", Config{JWKSURL: "https://idp.example.test/jwks", HS256Secret: testHS256Secret, Issuer: "i", Audience: "a"}, keys, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewVerifier(tc.cfg, tc.keys, nil)
			if (err == nil) != tc.ok {
				t.Errorf("err %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestRolesAndAuthorize(t *testing.T) {
	for method, want := range map[string]store.Role{
		"GET": store.RoleRead, "HEAD": store.RoleRead,
		"POST": store.RoleWrite, "PUT": store.RoleWrite, "PATCH": store.RoleWrite, "DELETE": store.RoleWrite,
		"OPTIONS": store.RoleWrite, "get": store.RoleWrite, "": store.RoleWrite,
	} {
		if got := RequiredRole(method); got != want {
			t.Errorf("RequiredRole(%q) = %s, want %s", method, got, want)
		}
	}
	read := Principal{Kind: KindAPIKey, Subject: "k", Role: store.RoleRead}
	write := Principal{Kind: KindAPIKey, Subject: "k", Role: store.RoleWrite}
	none := Principal{Kind: KindAPIKey, Subject: "k"}
	if Authorize(read, store.RoleRead) != nil || Authorize(write, store.RoleRead) != nil || Authorize(write, store.RoleWrite) != nil {
		t.Error("allowed combination refused")
	}
	wantCode(t, Authorize(read, store.RoleWrite), domain.CodeInsufficientPermissions)
	de := wantCode(t, Authorize(none, store.RoleRead), domain.CodeInsufficientPermissions)
	if d := de.Details.(domain.PermissionDetails); d.Actual != "none" || d.Required != "read" {
		t.Errorf("details %+v", d)
	}
}
