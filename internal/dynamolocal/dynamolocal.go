// Package dynamolocal runs DynamoDB Local, AWS's own DynamoDB emulator, for
// Sluice's tests and local stack. It is a real emulator, not a fake: the same
// conditional writes, transactions and error codes as the service.
//
// The pieces:
//
//   - EnsureJar fetches the emulator (DynamoDBLocal.jar and DynamoDBLocal_lib/)
//     once into a cache directory, from the npm package
//     amplify-dynamodb-simulator, which ships it in package/emulator/.
//   - Start runs it with Java 17+ on a port, in memory or on a data directory,
//     and waits until it answers a real API call. Instance.Stop and
//     Instance.Restart manage the process.
//   - NewClient builds an aws-sdk-go-v2 DynamoDB client for the emulator.
//   - TableFromTemplate and EnsureTable create tables from the SAM template,
//     the single source of truth for the table schema.
//   - RunTests, Shared and SharedClient give every test binary one shared,
//     lazily started in-memory instance; each test makes its own tables.
//
// The package needs a Unix system (process groups, flock).
package dynamolocal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Environment variables read by this package.
const (
	// EnvCacheDir overrides the cache directory (default <module root>/.cache).
	EnvCacheDir = "SLUICE_CACHE_DIR"
	// EnvEndpoint, when set, makes Shared use an already running DynamoDB
	// Local at that URL instead of starting one (the instance is not
	// stopped at the end).
	EnvEndpoint = "SLUICE_DYNAMODB_ENDPOINT"
)

// ModuleRoot returns the directory holding go.mod, found by walking up from
// the working directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("dynamolocal: working directory: %w", err)
	}
	for {
		if st, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil && !st.IsDir() {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("dynamolocal: no go.mod found in the working directory or any parent")
		}
		dir = parent
	}
}

// DefaultCacheDir is $SLUICE_CACHE_DIR if set, else <module root>/.cache.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv(EnvCacheDir); d != "" {
		return filepath.Abs(d)
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".cache"), nil
}

// TemplatePath returns <module root>/template.yaml (it need not exist yet).
func TemplatePath() (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "template.yaml"), nil
}
