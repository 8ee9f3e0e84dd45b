package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Limits on a JSON Web Key Set.
const (
	maxJWKSKeys     = 100
	minRSAKeyBits   = 2048
	maxRSAKeyBits   = 8192
	p256CoordLength = 32
)

// publicKey is one usable verification key of the JWKS, bound to the one
// algorithm it may verify: an RSA key only ever verifies RS256, a P-256 key
// only ES256, so a key can never be used with another algorithm.
type publicKey struct {
	alg string // "RS256" or "ES256"
	key crypto.PublicKey
}

// jwk is the subset of RFC 7517/7518 members read.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

var (
	errKeyNotFound     = errors.New("signing key not found")
	errJWKSUnavailable = errors.New("key set unavailable")
)

// jwksCache holds the issuer's keys by kid. A lookup of an unknown kid, or of
// any kid once the set is older than maxAge, fetches the set again, at most
// once per minInterval; concurrent callers share one fetch. A failed fetch
// keeps the previous set.
type jwksCache struct {
	url         string
	client      *http.Client
	now         func() time.Time
	minInterval time.Duration
	maxAge      time.Duration
	log         *slog.Logger

	mu          sync.Mutex
	keys        map[string][]publicKey
	fetchedAt   time.Time // last successful fetch
	lastAttempt time.Time
	lastErr     error         // of the last attempt
	inflight    chan struct{} // closed when the running fetch ends
}

func newJWKSCache(cfg Config, log *slog.Logger) *jwksCache {
	return &jwksCache{
		url: cfg.JWKSURL, client: cfg.HTTPClient, now: cfg.Now,
		minInterval: cfg.JWKSRefreshInterval, maxAge: cfg.JWKSMaxAge, log: log,
	}
}

// lookup returns the key with this kid for alg: errKeyNotFound when the
// (possibly refreshed) set has none, errJWKSUnavailable when the set could
// not be fetched and holds no such key.
func (c *jwksCache) lookup(ctx context.Context, kid, alg string) (publicKey, error) {
	c.mu.Lock()
	k, found := c.find(kid, alg)
	now := c.now()
	fresh := !c.fetchedAt.IsZero() && now.Sub(c.fetchedAt) < c.maxAge && !now.Before(c.fetchedAt)
	if found && fresh {
		c.mu.Unlock()
		return k, nil
	}
	if c.inflight == nil {
		rateLimited := !c.lastAttempt.IsZero() && now.Sub(c.lastAttempt) < c.minInterval && !now.Before(c.lastAttempt)
		if rateLimited {
			defer c.mu.Unlock()
			return c.result(kid, alg)
		}
		c.lastAttempt = now
		c.inflight = make(chan struct{})
		// The fetch runs on its own so that one caller giving up does not
		// fail the others; it is bounded by the HTTP client's timeout.
		go c.refresh(context.WithoutCancel(ctx))
	}
	done := c.inflight
	c.mu.Unlock()

	select {
	case <-done:
	case <-ctx.Done():
		return publicKey{}, errJWKSUnavailable
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.result(kid, alg)
}

// result answers from the current set; c.mu is held.
func (c *jwksCache) result(kid, alg string) (publicKey, error) {
	if k, ok := c.find(kid, alg); ok {
		return k, nil
	}
	if c.lastErr != nil {
		return publicKey{}, errJWKSUnavailable
	}
	return publicKey{}, errKeyNotFound
}

func (c *jwksCache) find(kid, alg string) (publicKey, bool) {
	for _, k := range c.keys[kid] {
		if k.alg == alg {
			return k, true
		}
	}
	return publicKey{}, false
}

func (c *jwksCache) refresh(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, JWKSFetchTimeout)
	defer cancel()
	keys, err := c.fetch(ctx)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastErr = err
	if err == nil {
		c.keys = keys
		c.fetchedAt = c.now()
	}
	close(c.inflight)
	c.inflight = nil
	if err != nil {
		c.log.WarnContext(ctx, "authentication: JWKS fetch failed; keeping the previous key set",
			"jwks", redactURL(c.url), "error", err.Error())
		return
	}
	c.log.InfoContext(ctx, "authentication: JWKS fetched", "jwks", redactURL(c.url), "kids", kidList(keys))
}

func (c *jwksCache) fetch(ctx context.Context) (map[string][]publicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("request failed: %w", stripURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the body: %w", err)
	}
	if len(body) > MaxJWKSBytes {
		return nil, fmt.Errorf("key set larger than %d bytes", MaxJWKSBytes)
	}
	return parseJWKS(body)
}

// parseJWKS reads a JSON Web Key Set, keeping the RSA (RS256) and EC P-256
// (ES256) signature keys and skipping the others. A set without one usable
// key is an error (most likely the wrong URL).
func parseJWKS(body []byte) (map[string][]publicKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, errors.New("not a JSON Web Key Set")
	}
	if len(set.Keys) > maxJWKSKeys {
		return nil, fmt.Errorf("more than %d keys", maxJWKSKeys)
	}
	keys := make(map[string][]publicKey)
	n := 0
	for _, raw := range set.Keys {
		var k jwk
		if json.Unmarshal(raw, &k) != nil {
			continue
		}
		pk, ok := parseJWK(k)
		if !ok {
			continue
		}
		keys[k.Kid] = append(keys[k.Kid], pk)
		n++
	}
	if n == 0 {
		return nil, errors.New("no usable RS256 or ES256 key in the key set")
	}
	return keys, nil
}

func parseJWK(k jwk) (publicKey, bool) {
	if k.Use != "" && k.Use != "sig" {
		return publicKey{}, false
	}
	switch k.Kty {
	case "RSA":
		if k.Alg != "" && k.Alg != "RS256" {
			return publicKey{}, false
		}
		key, err := rsaKey(k.N, k.E)
		if err != nil {
			return publicKey{}, false
		}
		return publicKey{alg: "RS256", key: key}, true
	case "EC":
		if k.Crv != "P-256" || (k.Alg != "" && k.Alg != "ES256") {
			return publicKey{}, false
		}
		key, err := p256Key(k.X, k.Y)
		if err != nil {
			return publicKey{}, false
		}
		return publicKey{alg: "ES256", key: key}, true
	}
	return publicKey{}, false
}

func b64url(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

func rsaKey(n, e string) (*rsa.PublicKey, error) {
	nb, err := b64url(n)
	if err != nil || len(nb) == 0 {
		return nil, errors.New("bad modulus")
	}
	eb, err := b64url(e)
	if err != nil || len(eb) == 0 || len(eb) > 4 {
		return nil, errors.New("bad exponent")
	}
	mod := new(big.Int).SetBytes(nb)
	if bits := mod.BitLen(); bits < minRSAKeyBits || bits > maxRSAKeyBits {
		return nil, errors.New("unsupported modulus size")
	}
	exp := 0
	for _, b := range eb {
		exp = exp<<8 | int(b)
	}
	if exp < 3 || exp%2 == 0 || exp > 1<<31-1 {
		return nil, errors.New("unsupported exponent")
	}
	return &rsa.PublicKey{N: mod, E: exp}, nil
}

func p256Key(x, y string) (*ecdsa.PublicKey, error) {
	xb, err := b64url(x)
	if err != nil || len(xb) != p256CoordLength {
		return nil, errors.New("bad x")
	}
	yb, err := b64url(y)
	if err != nil || len(yb) != p256CoordLength {
		return nil, errors.New("bad y")
	}
	point := make([]byte, 0, 1+2*p256CoordLength)
	point = append(point, 4)
	point = append(point, xb...)
	point = append(point, yb...)
	// Rejects points not on the curve (invalid-curve attacks).
	return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	return u.Scheme + "://" + u.Host + u.Path
}

// stripURL drops the URL from a client error (it may carry a query string).
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func kidList(keys map[string][]publicKey) []string {
	return slices.Sorted(maps.Keys(keys))
}
