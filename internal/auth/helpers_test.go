package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"github.com/sluicehq/sluice/internal/testkit"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/store"
)

const (
	testIssuer   = "https://issuer.example.test/"
	testAudience = "sluice-api"
)

var testHS256Secret = []byte("0123456789abcdef0123456789abcdef-test-hs256-secret")

// Keys are generated once per test binary (RSA generation is the slow part).
var (
	rsaKeyA = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	rsaKeyB = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	ecKeyA  = sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC() })
)

func mustRSA() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

func mustEC() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// mapKeys is a KeyLookup and KeyPutter over a map.
type mapKeys struct {
	mu   sync.Mutex
	keys map[string]store.APIKey
	err  error // returned by every call when set
}

func newMapKeys() *mapKeys { return &mapKeys{keys: map[string]store.APIKey{}} }

func (m *mapKeys) GetAPIKey(_ context.Context, hash string) (store.APIKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return store.APIKey{}, m.err
	}
	k, ok := m.keys[hash]
	if !ok {
		return store.APIKey{}, store.ErrNotFound
	}
	return k, nil
}

func (m *mapKeys) PutAPIKey(_ context.Context, key store.APIKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.keys[key.Hash] = key
	return nil
}

// add generates and stores a key, returning its secret.
func (m *mapKeys) add(t testing.TB, role store.Role) (string, store.APIKey) {
	t.Helper()
	secret, key, err := CreateKey(context.Background(), m, role, "test "+string(role))
	if err != nil {
		t.Fatal(err)
	}
	return secret, key
}

// fakeClock is a settable clock safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Now().Truncate(time.Second).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func jsonLogger(w *testkit.SyncBuffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// jwksServer serves a mutable JSON Web Key Set and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []map[string]any
	status  int
	delay   time.Duration
	fetches atomic.Int64
}

func newJWKSServer(t testing.TB, keys ...map[string]any) *jwksServer {
	s := &jwksServer{keys: keys}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		status, delay := s.status, s.delay
		body, _ := json.Marshal(map[string]any{"keys": s.keys})
		s.mu.Unlock()
		if delay > 0 {
			time.Sleep(delay)
		}
		if status != 0 && status != http.StatusOK {
			http.Error(w, "down", status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setKeys(keys ...map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
}

func (s *jwksServer) setStatus(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = code
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, pub *rsa.PublicKey) map[string]any {
	return map[string]any{
		"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
	}
}

func ecJWK(kid string, pub *ecdsa.PublicKey) map[string]any {
	raw, err := pub.Bytes()
	if err != nil {
		panic(err)
	}
	return map[string]any{
		"kty": "EC", "kid": kid, "use": "sig", "alg": "ES256", "crv": "P-256",
		"x": b64(raw[1:33]), "y": b64(raw[33:65]),
	}
}

// claims are valid claims at now for subject sub.
func claims(now time.Time, sub string) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": testIssuer,
		"aud": testAudience,
		"sub": sub,
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
	}
}

func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("signing: %v", err)
	}
	return s
}

// testEnv is a verifier against a JWKS test server holding RSA key A
// ("rsa-a") and EC key A ("ec-a"), with API keys in a map.
type testEnv struct {
	clock *fakeClock
	jwks  *jwksServer
	keys  *mapKeys
	logs  *testkit.SyncBuffer
	v     *ChainVerifier
}

func newTestEnv(t testing.TB, mod func(*Config)) *testEnv {
	t.Helper()
	return newTestEnvLogs(t, mod, &testkit.SyncBuffer{})
}

// newTestEnvLogs is newTestEnv logging (JSON, debug level) into logs.
func newTestEnvLogs(t testing.TB, mod func(*Config), logs *testkit.SyncBuffer) *testEnv {
	t.Helper()
	e := &testEnv{
		clock: newFakeClock(),
		jwks:  newJWKSServer(t, rsaJWK("rsa-a", &rsaKeyA().PublicKey), ecJWK("ec-a", &ecKeyA().PublicKey)),
		keys:  newMapKeys(),
		logs:  logs,
	}
	cfg := Config{Issuer: testIssuer, Audience: testAudience, JWKSURL: e.jwks.URL, Now: e.clock.Now}
	if mod != nil {
		mod(&cfg)
	}
	v, err := NewVerifier(cfg, e.keys, jsonLogger(e.logs))
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	e.v = v
	return e
}

func (e *testEnv) verify(t testing.TB, token string) (Principal, error) {
	t.Helper()
	return e.v.Verify(context.Background(), "Bearer "+token)
}

// wantCode asserts err is a *domain.Error with this code and returns it.
func wantCode(t testing.TB, err error, code domain.ErrorCode) *domain.Error {
	t.Helper()
	var de *domain.Error
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *domain.Error %s", err, err, code)
	}
	if de.Code != code {
		t.Fatalf("error code %s (%s), want %s", de.Code, de.Message, code)
	}
	return de
}

func reasonOf(de *domain.Error) string {
	if d, ok := de.Details.(domain.AuthDetails); ok {
		return d.Reason
	}
	return ""
}
