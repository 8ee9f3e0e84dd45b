package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/store"
)

func TestGenerateAPIKey(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		secret, key, err := GenerateAPIKey(store.RoleWrite, "ci")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(secret, APIKeyPrefix) {
			t.Fatalf("secret without prefix")
		}
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(secret, APIKeyPrefix))
		if err != nil || len(raw) != 32 {
			t.Fatalf("secret body: %d bytes, %v", len(raw), err)
		}
		sum := sha256.Sum256([]byte(secret))
		if key.Hash != hex.EncodeToString(sum[:]) || key.Hash != HashAPIKey(secret) {
			t.Fatal("hash is not the hex SHA-256 of the whole key")
		}
		if key.ID != key.Hash[:12] || strings.Contains(secret, key.ID) {
			t.Errorf("id %q", key.ID)
		}
		if key.Role != store.RoleWrite || key.Description != "ci" || key.CreatedAt.IsZero() || key.CreatedAt.Location().String() != "UTC" {
			t.Errorf("record %+v", key)
		}
		if seen[secret] {
			t.Fatal("repeated secret")
		}
		seen[secret] = true
		if _, err := ParseBearer("Bearer " + secret); err != nil {
			t.Fatalf("a generated key is not a valid bearer token: %v", err)
		}
	}
	for _, role := range []store.Role{"", "admin", "Write"} {
		if _, _, err := GenerateAPIKey(role, ""); err == nil {
			t.Errorf("role %q accepted", role)
		}
	}
	if _, _, err := GenerateAPIKey(store.RoleRead, strings.Repeat("x", MaxKeyDescriptionLength+1)); err == nil {
		t.Error("overlong description accepted")
	}
}

func TestCreateKey(t *testing.T) {
	keys := newMapKeys()
	secret, key, err := CreateKey(context.Background(), keys, store.RoleRead, "dashboard")
	if err != nil {
		t.Fatal(err)
	}
	stored, err := keys.GetAPIKey(context.Background(), HashAPIKey(secret))
	if err != nil || stored != key {
		t.Fatalf("stored %+v, %v", stored, err)
	}
	for _, k := range keys.keys {
		if strings.Contains(fmt.Sprintf("%+v", k), strings.TrimPrefix(secret, APIKeyPrefix)) {
			t.Error("the secret is stored")
		}
	}
	keys.err = fmt.Errorf("throttled: %w", store.ErrUnavailable)
	s, _, err := CreateKey(context.Background(), keys, store.RoleRead, "x")
	if !errors.Is(err, store.ErrUnavailable) || s != "" {
		t.Errorf("store failure: %q, %v", s, err)
	}
}

func TestRunAdmin(t *testing.T) {
	keys := newMapKeys()
	var gotTable, gotEndpoint string
	open := func(_ context.Context, table, endpoint string) (KeyPutter, error) {
		gotTable, gotEndpoint = table, endpoint
		return keys, nil
	}
	env := func(k string) string {
		if k == "SLUICE_TABLE" {
			return "env-table"
		}
		return ""
	}
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := RunAdmin(context.Background(), args, env, &out, &errOut, open)
		return code, out.String(), errOut.String()
	}

	code, out, errOut := run("create-key", "--role", "write", "--description", "CI deployer", "--table", "T", "--endpoint-url", "http://127.0.0.1:8000")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	secret := strings.TrimSuffix(out, "\n")
	if strings.Count(out, "\n") != 1 || !strings.HasPrefix(secret, APIKeyPrefix) {
		t.Fatalf("stdout %q: want exactly the key on one line", out)
	}
	key, err := keys.GetAPIKey(context.Background(), HashAPIKey(secret))
	if err != nil || key.Role != store.RoleWrite || key.Description != "CI deployer" {
		t.Fatalf("stored %+v, %v", key, err)
	}
	if gotTable != "T" || gotEndpoint != "http://127.0.0.1:8000" {
		t.Errorf("opened %q at %q", gotTable, gotEndpoint)
	}
	if strings.Contains(errOut, secret) || !strings.Contains(errOut, key.ID) {
		t.Errorf("stderr %q", errOut)
	}

	if code, _, _ := run("create-key", "-role=read"); code != 0 || gotTable != "env-table" {
		t.Errorf("table from the environment: exit %d, table %q", code, gotTable)
	}
	for _, args := range [][]string{
		nil,
		{"delete-key"},
		{"create-key"},
		{"create-key", "--role", "admin"},
		{"create-key", "--role", "read", "extra"},
		{"create-key", "--nope"},
	} {
		if code, out, _ := run(args...); code != 2 || out != "" {
			t.Errorf("%q: exit %d, stdout %q", args, code, out)
		}
	}
	keys.err = store.ErrUnavailable
	if code, out, errOut := run("create-key", "--role", "read"); code != 1 || out != "" || errOut == "" {
		t.Errorf("store failure: exit %d, stdout %q", code, out)
	}
}
