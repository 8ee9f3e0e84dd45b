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
	keys.err = nil

	// --name: stored as the key's name; without it the name is the id.
	code, out, errOut = run("create-key", "--role", "read", "--name", "ci-reader")
	if code != 0 {
		t.Fatalf("--name: exit %d: %s", code, errOut)
	}
	named, err := keys.GetAPIKey(context.Background(), HashAPIKey(strings.TrimSpace(out)))
	if err != nil || named.Name != "ci-reader" || !strings.Contains(errOut, `"ci-reader"`) {
		t.Fatalf("named key %+v, %v; stderr %q", named, err, errOut)
	}
	if key.Name != key.ID {
		t.Errorf("unnamed key named %q, want its id %q", key.Name, key.ID)
	}
	for _, bad := range []string{"a b", "x/y", strings.Repeat("n", 64)} {
		if code, out, _ := run("create-key", "--role", "read", "--name", bad); code != 2 || out != "" {
			t.Errorf("--name %q: exit %d", bad, code)
		}
	}
	if code, _, _ := run("name-keys", "--role", "read"); code != 2 {
		t.Errorf("name-keys takes no --role: exit %d", code)
	}
	if code, _, errOut := run("name-keys"); code != 1 || !strings.Contains(errOut, "cannot name") {
		t.Errorf("name-keys on a store that cannot: exit %d %q", code, errOut)
	}
}

type namingKeys struct {
	*mapKeys
	named []store.APIKey
	err   error
}

func (n namingKeys) NameLegacyAPIKeys(context.Context) ([]store.APIKey, error) { return n.named, n.err }

func TestRunAdminNameKeys(t *testing.T) {
	nk := namingKeys{mapKeys: newMapKeys(), named: []store.APIKey{{ID: "0123456789ab", Name: "0123456789ab", Role: store.RoleRead}}}
	open := func(context.Context, string, string) (KeyPutter, error) { return nk, nil }
	var out, errOut bytes.Buffer
	if code := RunAdmin(context.Background(), []string{"name-keys", "--table", "T"}, func(string) string { return "" }, &out, &errOut, open); code != 0 || out.Len() != 0 {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	if !strings.Contains(errOut.String(), "0123456789ab") || !strings.Contains(errOut.String(), "1 API keys named") {
		t.Errorf("stderr %q", errOut.String())
	}
	nk.err = store.ErrUnavailable
	errOut.Reset()
	if code := RunAdmin(context.Background(), []string{"name-keys", "--table", "T"}, func(string) string { return "" }, &out, &errOut, open); code != 1 {
		t.Errorf("failure: exit %d", code)
	}
}
