package auth

import (
	"testing"
	"time"
)

func TestConfigFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	cfg, err := ConfigFromEnv(env(nil))
	if err != nil || cfg.Disabled || cfg.JWKSURL != "" || len(cfg.HS256Secret) != 0 {
		t.Fatalf("default: %+v, %v (auth must be on by default)", cfg, err)
	}
	cfg, err = ConfigFromEnv(env(map[string]string{
		EnvJWTIssuer: "https://idp.example.test/", EnvJWTAudience: "sluice", EnvJWKSURL: "https://idp.example.test/jwks",
		EnvJWTHS256Secret: "s3cret", EnvJWTRoleClaim: "scope", EnvJWTLeeway: "10s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Issuer != "https://idp.example.test/" || cfg.Audience != "sluice" || cfg.JWKSURL != "https://idp.example.test/jwks" ||
		string(cfg.HS256Secret) != "s3cret" || cfg.RoleClaim != "scope" || cfg.Leeway != 10*time.Second {
		t.Errorf("%+v", cfg)
	}
	for v, want := range map[string]bool{"true": true, "1": true, "TRUE": true, "false": false, "0": false, "": false} {
		cfg, err := ConfigFromEnv(env(map[string]string{EnvAuthDisabled: v}))
		if err != nil || cfg.Disabled != want {
			t.Errorf("%s=%q: disabled %v, %v", EnvAuthDisabled, v, cfg.Disabled, err)
		}
	}
	for _, bad := range []map[string]string{{EnvAuthDisabled: "maybe"}, {EnvJWTLeeway: "soon"}, {EnvJWTLeeway: "-1s"}} {
		if _, err := ConfigFromEnv(env(bad)); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
