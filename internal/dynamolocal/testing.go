package dynamolocal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// sharedStartTimeout bounds fetching (first run only) plus starting.
const sharedStartTimeout = 5 * time.Minute

var shared struct {
	once   sync.Once
	inst   *Instance
	client *dynamodb.Client
	err    error
}

// RunTests is a whole TestMain for a package whose tests use the shared
// DynamoDB Local:
//
//	func TestMain(m *testing.M) { dynamolocal.RunTests(m) }
//
// It runs the tests, stops the shared instance if one was started, and exits
// with the tests' code.
func RunTests(m *testing.M) {
	code := m.Run()
	if err := StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// StopShared stops the shared instance if this process started one. RunTests
// calls it; a custom TestMain calls it after m.Run.
func StopShared() error {
	if shared.inst == nil {
		return nil
	}
	return shared.inst.Stop()
}

// Shared returns the test binary's shared in-memory DynamoDB Local, fetching
// the emulator into the cache and starting it on first use (about 4 s). If
// it cannot start — no java, no npm on a cold cache — the test fails (it
// does not skip: CI must prove the store). With $SLUICE_DYNAMODB_ENDPOINT
// set, that running emulator is used instead.
//
// Tests share the instance, so each test must use its own tables
// (UniqueTableName, NewPipelinesTable). Use RunTests as TestMain so the
// instance is stopped at the end (on Linux it also dies with the test
// binary).
func Shared(tb testing.TB) *Instance {
	tb.Helper()
	shared.once.Do(startShared)
	if shared.err != nil {
		tb.Fatalf("dynamolocal: the shared DynamoDB Local is not available: %v", shared.err)
	}
	return shared.inst
}

// SharedClient returns a client for Shared(tb).
func SharedClient(tb testing.TB) *dynamodb.Client {
	tb.Helper()
	Shared(tb)
	return shared.client
}

func startShared() {
	ctx, cancel := context.WithTimeout(context.Background(), sharedStartTimeout)
	defer cancel()
	if ep := os.Getenv(EnvEndpoint); ep != "" {
		// Not ours: Stop is a no-op and Restart fails.
		inst := &Instance{Endpoint: strings.TrimRight(ep, "/")}
		if u, err := url.Parse(inst.Endpoint); err == nil {
			inst.Port, _ = strconv.Atoi(u.Port())
		}
		shared.client, shared.err = NewClient(ctx, inst.Endpoint)
		if shared.err == nil {
			_, shared.err = shared.client.ListTables(ctx, &dynamodb.ListTablesInput{Limit: aws.Int32(1)})
			if shared.err != nil {
				shared.err = fmt.Errorf("$%s=%s does not answer: %w", EnvEndpoint, ep, shared.err)
			}
		}
		shared.inst = inst
		return
	}
	jarDir, err := EnsureJar(ctx, "")
	if err != nil {
		shared.err = err
		return
	}
	inst, err := Start(ctx, Options{JarDir: jarDir})
	if err != nil {
		shared.err = err
		return
	}
	shared.inst = inst
	shared.client, shared.err = NewClient(ctx, inst.Endpoint)
}

var tableSeq atomic.Int64

var unsafeTableChars = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// UniqueTableName returns a valid table name unique to this call, derived
// from the test's name (e.g. "TestPut-sub-3-1a2b3c4d").
func UniqueTableName(tb testing.TB) string {
	tb.Helper()
	base := unsafeTableChars.ReplaceAllString(tb.Name(), "-")
	if len(base) > 180 {
		base = base[:180]
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	return fmt.Sprintf("%s-%d-%s", base, tableSeq.Add(1), hex.EncodeToString(rnd[:]))
}

// NewPipelinesTable creates, on the shared instance, a fresh table with the
// schema of template.yaml's PipelinesTable (TTL included) and deletes it when
// the test ends. It returns the shared client and the table's name.
func NewPipelinesTable(tb testing.TB) (*dynamodb.Client, string) {
	tb.Helper()
	client := SharedClient(tb)
	tpl, err := TemplatePath()
	if err != nil {
		tb.Fatal(err)
	}
	name := UniqueTableName(tb)
	ctx, cancel := context.WithTimeout(context.Background(), TableWaitTimeout)
	defer cancel()
	if err := EnsureTable(ctx, client, tpl, name); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	return client, name
}
