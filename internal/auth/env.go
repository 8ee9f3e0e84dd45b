package auth

import (
	"fmt"
	"strings"
	"time"
)

// Environment variables read by ConfigFromEnv (the authorizer Lambda and the
// local stack). In AWS the HS256 secret belongs in Secrets Manager; for now
// it is read from the environment like the rest.
const (
	EnvAuthDisabled   = "SLUICE_AUTH_DISABLED"    // "true"/"1" switches auth off; unset, "false" or "0" keeps it on
	EnvJWTIssuer      = "SLUICE_JWT_ISSUER"       // required "iss"
	EnvJWTAudience    = "SLUICE_JWT_AUDIENCE"     // required "aud"
	EnvJWKSURL        = "SLUICE_JWKS_URL"         // issuer's JWKS (RS256/ES256)
	EnvJWTHS256Secret = "SLUICE_JWT_HS256_SECRET" // enables HS256 (≥ 32 bytes)
	EnvJWTRoleClaim   = "SLUICE_JWT_ROLE_CLAIM"   // optional, default "sluice_role"
	EnvJWTLeeway      = "SLUICE_JWT_LEEWAY"       // optional Go duration, default 30s
)

// ConfigFromEnv reads Config from the environment (pass os.Getenv). Auth is
// on unless SLUICE_AUTH_DISABLED says otherwise explicitly; a value that is
// not a recognised boolean is an error rather than a guess.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	var cfg Config
	switch v := strings.ToLower(strings.TrimSpace(getenv(EnvAuthDisabled))); v {
	case "", "0", "false", "no":
	case "1", "true", "yes":
		cfg.Disabled = true
	default:
		return Config{}, fmt.Errorf("auth: %s must be true or false", EnvAuthDisabled)
	}
	cfg.Issuer = strings.TrimSpace(getenv(EnvJWTIssuer))
	cfg.Audience = strings.TrimSpace(getenv(EnvJWTAudience))
	cfg.JWKSURL = strings.TrimSpace(getenv(EnvJWKSURL))
	if s := getenv(EnvJWTHS256Secret); s != "" {
		cfg.HS256Secret = []byte(s)
	}
	cfg.RoleClaim = strings.TrimSpace(getenv(EnvJWTRoleClaim))
	if s := strings.TrimSpace(getenv(EnvJWTLeeway)); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return Config{}, fmt.Errorf("auth: %s must be a non-negative duration such as 30s", EnvJWTLeeway)
		}
		cfg.Leeway = d
	}
	return cfg, nil
}
