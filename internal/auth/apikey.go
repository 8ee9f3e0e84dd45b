package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/store"
)

// apiKeySecretBytes is the entropy of a generated API key.
const apiKeySecretBytes = 32

// apiKeyIDLength is the length of a key's public id: a prefix of the hex
// hash, so an operator holding a key can tell which stored key it is.
const apiKeyIDLength = 12

// MaxKeyDescriptionLength bounds an API key's description, in bytes.
const MaxKeyDescriptionLength = 256

// GenerateAPIKey makes a new API key: the secret ("apikey:" + 32 random bytes,
// base64url without padding) for the caller to hand out once, and the record
// to store (its SHA-256 hash, a short public id, role, description, creation
// time). The secret itself is never stored.
func GenerateAPIKey(role store.Role, description string) (secret string, key store.APIKey, err error) {
	if role != store.RoleRead && role != store.RoleWrite {
		return "", store.APIKey{}, fmt.Errorf("auth: role must be %q or %q", store.RoleRead, store.RoleWrite)
	}
	if len(description) > MaxKeyDescriptionLength || !utf8.ValidString(description) {
		return "", store.APIKey{}, fmt.Errorf("auth: the description must be valid UTF-8 of at most %d bytes", MaxKeyDescriptionLength)
	}
	buf := make([]byte, apiKeySecretBytes)
	if _, err := rand.Read(buf); err != nil {
		return "", store.APIKey{}, fmt.Errorf("auth: reading random bytes: %w", err)
	}
	secret = APIKeyPrefix + base64.RawURLEncoding.EncodeToString(buf)
	hash := HashAPIKey(secret)
	key = store.APIKey{
		Hash:        hash,
		ID:          hash[:apiKeyIDLength],
		Role:        role,
		Description: description,
		CreatedAt:   time.Now().UTC().Truncate(time.Second),
	}
	return secret, key, nil
}

// KeyPutter stores API key records; store.Store satisfies it.
type KeyPutter interface {
	PutAPIKey(ctx context.Context, key store.APIKey) error
}

// CreateKey generates an API key and stores its record, named by its id.
// The secret is returned only here; it cannot be recovered later.
func CreateKey(ctx context.Context, keys KeyPutter, role store.Role, description string) (secret string, key store.APIKey, err error) {
	return CreateNamedKey(ctx, keys, "", role, description)
}

// CreateNamedKey is CreateKey with a unique name ("" = the key's id); a
// taken name is the store's *domain.Error DuplicateName.
func CreateNamedKey(ctx context.Context, keys KeyPutter, name string, role store.Role, description string) (secret string, key store.APIKey, err error) {
	if keys == nil {
		return "", store.APIKey{}, errors.New("auth: no key store")
	}
	secret, key, err = GenerateAPIKey(role, description)
	if err != nil {
		return "", store.APIKey{}, err
	}
	key.Name = name
	if key.Name == "" {
		key.Name = key.ID
	}
	if err := keys.PutAPIKey(ctx, key); err != nil {
		return "", store.APIKey{}, fmt.Errorf("auth: storing API key %s: %w", key.ID, err)
	}
	return secret, key, nil
}
