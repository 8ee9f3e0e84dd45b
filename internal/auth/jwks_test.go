package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluicehq/sluice/internal/domain"
)

func TestJWKSKidRotation(t *testing.T) {
	e := newTestEnv(t, nil)
	tokA := sign(t, jwt.SigningMethodRS256, rsaKeyA(), "rsa-a", claims(e.clock.Now(), "alice"))
	if _, err := e.verify(t, tokA); err != nil {
		t.Fatal(err)
	}
	if n := e.jwks.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches after the first token, want 1", n)
	}
	// Cached: no further fetch.
	for range 5 {
		if _, err := e.verify(t, tokA); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.jwks.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for a cached kid, want 1", n)
	}

	// The issuer rotates: B appears next to A.
	e.jwks.setKeys(rsaJWK("rsa-a", &rsaKeyA().PublicKey), rsaJWK("rsa-b", &rsaKeyB().PublicKey))
	e.clock.Advance(DefaultJWKSRefreshInterval + time.Second)
	tokB := sign(t, jwt.SigningMethodRS256, rsaKeyB(), "rsa-b", claims(e.clock.Now(), "bob"))
	p, err := e.verify(t, tokB)
	if err != nil {
		t.Fatalf("new kid after refresh: %v", err)
	}
	if p.Subject != "bob" {
		t.Errorf("subject %q", p.Subject)
	}
	if n := e.jwks.fetches.Load(); n != 2 {
		t.Errorf("%d fetches, want 2", n)
	}
	if _, err := e.verify(t, tokA); err != nil {
		t.Errorf("old kid still in the set: %v", err)
	}

	// A is retired: once the set is older than its max age it is fetched
	// again and A stops verifying.
	e.jwks.setKeys(rsaJWK("rsa-b", &rsaKeyB().PublicKey))
	e.clock.Advance(DefaultJWKSMaxAge + time.Second)
	tokA = sign(t, jwt.SigningMethodRS256, rsaKeyA(), "rsa-a", claims(e.clock.Now(), "alice"))
	_, err = e.verify(t, tokA)
	if de := wantCode(t, err, domain.CodeAuthenticationFailed); reasonOf(de) != reasonUnknownKey {
		t.Errorf("reason %q", reasonOf(de))
	}
	if n := e.jwks.fetches.Load(); n != 3 {
		t.Errorf("%d fetches, want 3", n)
	}
}

func TestJWKSRefreshRateLimit(t *testing.T) {
	e := newTestEnv(t, nil)
	unknown := func() string {
		return sign(t, jwt.SigningMethodRS256, rsaKeyB(), "rsa-unknown", claims(e.clock.Now(), "mallory"))
	}
	for range 20 {
		_, err := e.verify(t, unknown())
		wantCode(t, err, domain.CodeAuthenticationFailed)
	}
	if n := e.jwks.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for 20 unknown-kid tokens within the interval, want 1", n)
	}
	e.clock.Advance(DefaultJWKSRefreshInterval - time.Second)
	_, _ = e.verify(t, unknown())
	if n := e.jwks.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches before the interval passed, want 1", n)
	}
	e.clock.Advance(2 * time.Second)
	_, _ = e.verify(t, unknown())
	if n := e.jwks.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after the interval, want 2", n)
	}
	// Known kids keep verifying while refreshes are rate-limited.
	if _, err := e.verify(t, sign(t, jwt.SigningMethodES256, ecKeyA(), "ec-a", claims(e.clock.Now(), "alice"))); err != nil {
		t.Fatal(err)
	}
}

// Concurrent callers with an unknown kid share one fetch.
func TestJWKSSingleFlight(t *testing.T) {
	e := newTestEnv(t, nil)
	e.jwks.mu.Lock()
	e.jwks.delay = 50 * time.Millisecond
	e.jwks.mu.Unlock()
	tok := sign(t, jwt.SigningMethodRS256, rsaKeyA(), "rsa-a", claims(e.clock.Now(), "alice"))
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			if _, err := e.verify(t, tok); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := e.jwks.fetches.Load(); n != 1 {
		t.Errorf("%d fetches for 32 concurrent callers, want 1", n)
	}
}

// A fetch failure keeps the previous set (known kids verify) and turns
// unknown kids into 503 until a fetch succeeds again.
func TestJWKSOutage(t *testing.T) {
	e := newTestEnv(t, nil)
	tokA := sign(t, jwt.SigningMethodRS256, rsaKeyA(), "rsa-a", claims(e.clock.Now(), "alice"))
	if _, err := e.verify(t, tokA); err != nil {
		t.Fatal(err)
	}
	e.jwks.setStatus(http.StatusInternalServerError)
	e.clock.Advance(DefaultJWKSMaxAge + time.Second)
	tokA = sign(t, jwt.SigningMethodRS256, rsaKeyA(), "rsa-a", claims(e.clock.Now(), "alice"))
	if _, err := e.verify(t, tokA); err != nil {
		t.Fatalf("stale key during an outage: %v", err)
	}
	tokB := sign(t, jwt.SigningMethodRS256, rsaKeyB(), "rsa-b", claims(e.clock.Now(), "bob"))
	_, err := e.verify(t, tokB)
	wantCode(t, err, domain.CodeServiceUnavailable)

	e.jwks.setStatus(0)
	e.jwks.setKeys(rsaJWK("rsa-a", &rsaKeyA().PublicKey), rsaJWK("rsa-b", &rsaKeyB().PublicKey))
	e.clock.Advance(DefaultJWKSRefreshInterval + time.Second)
	if _, err := e.verify(t, tokB); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	if !strings.Contains(e.logs.String(), "JWKS fetch failed") {
		t.Error("the outage was not logged")
	}
}

// A caller whose context ends while the shared fetch runs gets 503; the
// fetch itself completes for the others.
func TestJWKSCallerCancelled(t *testing.T) {
	e := newTestEnv(t, nil)
	e.jwks.mu.Lock()
	e.jwks.delay = 200 * time.Millisecond
	e.jwks.mu.Unlock()
	tok := sign(t, jwt.SigningMethodRS256, rsaKeyA(), "rsa-a", claims(e.clock.Now(), "alice"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := e.v.Verify(ctx, "Bearer "+tok)
	wantCode(t, err, domain.CodeServiceUnavailable)
	if _, err := e.verify(t, tok); err != nil {
		t.Fatalf("after the shared fetch: %v", err)
	}
	if n := e.jwks.fetches.Load(); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}
}

func TestJWKSResponseLimits(t *testing.T) {
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"keys":[`))
		_, _ = w.Write([]byte(strings.Repeat(" ", MaxJWKSBytes)))
		_, _ = w.Write([]byte(`]}`))
	}))
	defer huge.Close()
	e := newTestEnv(t, func(c *Config) { c.JWKSURL = huge.URL })
	_, err := e.verify(t, sign(t, jwt.SigningMethodRS256, rsaKeyA(), "rsa-a", claims(e.clock.Now(), "alice")))
	wantCode(t, err, domain.CodeServiceUnavailable)
	if !strings.Contains(e.logs.String(), "larger than") {
		t.Errorf("size limit not logged: %s", e.logs.String())
	}
}

func TestParseJWKS(t *testing.T) {
	rsaA := rsaJWK("rsa-a", &rsaKeyA().PublicKey)
	ecA := ecJWK("ec-a", &ecKeyA().PublicKey)
	with := func(base map[string]any, k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range base {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	smallRSA := map[string]any{"kty": "RSA", "kid": "small", "n": b64(make([]byte, 128)), "e": "AQAB"}
	smallRSA["n"] = b64(append([]byte{0xff}, make([]byte, 127)...)) // 1024 bits
	offCurve := with(ecA, "y", b64(make([]byte, 32)))

	for _, tc := range []struct {
		name   string
		keys   []map[string]any
		usable int // -1: error
	}{
		{"rsa and ec", []map[string]any{rsaA, ecA}, 2},
		{"rsa without alg", []map[string]any{with(rsaA, "alg", nil)}, 1},
		{"encryption key skipped", []map[string]any{with(rsaA, "use", "enc"), ecA}, 1},
		{"RS512 key skipped", []map[string]any{with(rsaA, "alg", "RS512"), ecA}, 1},
		{"P-384 skipped", []map[string]any{with(ecA, "crv", "P-384"), rsaA}, 1},
		{"small RSA skipped", []map[string]any{smallRSA, ecA}, 1},
		{"off-curve point skipped", []map[string]any{offCurve, rsaA}, 1},
		{"even exponent skipped", []map[string]any{with(rsaA, "e", "Ag"), ecA}, 1},
		{"symmetric key skipped", []map[string]any{{"kty": "oct", "kid": "h", "k": b64(testHS256Secret)}, ecA}, 1},
		{"only unusable keys", []map[string]any{{"kty": "oct", "kid": "h", "k": b64(testHS256Secret)}}, -1},
		{"empty", nil, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{"keys": tc.keys})
			keys, err := parseJWKS(body)
			if tc.usable < 0 {
				if err == nil {
					t.Fatalf("accepted: %v", keys)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, ks := range keys {
				n += len(ks)
			}
			if n != tc.usable {
				t.Errorf("%d usable keys, want %d", n, tc.usable)
			}
		})
	}
	for _, bad := range []string{"", "null", "[]", `{"keys":"x"}`, "{"} {
		if _, err := parseJWKS([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
