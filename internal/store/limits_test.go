package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/google/uuid"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/dynamolocal"
)

func hashOf(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := APIKey{Hash: hashOf("apikey:s3cret"), ID: "k1", Role: RoleWrite, Description: strings.Repeat("ключ", 75), CreatedAt: e.clock.Now()}
	if err := e.store.PutAPIKey(e.ctx, key); err != nil {
		t.Fatal(err)
	}
	got, err := e.store.GetAPIKey(e.ctx, key.Hash)
	want := key
	want.Name = key.ID // a key without a name is named by its id
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("get: %+v %v", got, err)
	}

	dup := key
	dup.Role, dup.ID = RoleRead, "k2"
	if err := e.store.PutAPIKey(e.ctx, dup); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if got, _ := e.store.GetAPIKey(e.ctx, key.Hash); got.Role != RoleWrite || got.ID != "k1" {
		t.Fatalf("a duplicate overwrote the key: %+v", got)
	}

	if _, err := e.store.GetAPIKey(e.ctx, hashOf("apikey:other")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	s, h := e.hooked()
	for _, bad := range []string{"", "xyz", strings.ToUpper(key.Hash), key.Hash + "0", "apikey:s3cret"} {
		if _, err := s.GetAPIKey(e.ctx, bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetAPIKey(%q): %v", bad, err)
		}
	}
	if h.calls.Load() != 0 {
		t.Errorf("%d calls for malformed hashes", h.calls.Load())
	}

	noTime := APIKey{Hash: hashOf("apikey:r"), ID: "k3", Role: RoleRead}
	if err := e.store.PutAPIKey(e.ctx, noTime); err != nil {
		t.Fatal(err)
	}
	if got, err := e.store.GetAPIKey(e.ctx, noTime.Hash); err != nil || got.CreatedAt.IsZero() || got.Description != "" {
		t.Fatalf("defaults: %+v %v", got, err)
	}

	for what, k := range map[string]APIKey{
		"bad hash":        {Hash: "abc", ID: "x", Role: RoleRead},
		"bad role":        {Hash: hashOf("a"), ID: "x", Role: "admin"},
		"no id":           {Hash: hashOf("b"), Role: RoleRead},
		"long desc":       {Hash: hashOf("c"), ID: "x", Role: RoleRead, Description: strings.Repeat("é", 301)},
		"not utf-8 desc":  {Hash: hashOf("d"), ID: "x", Role: RoleRead, Description: "\xff"},
		"upper-case hash": {Hash: strings.ToUpper(hashOf("e")), ID: "x", Role: RoleRead},
	} {
		if err := e.store.PutAPIKey(e.ctx, k); err == nil {
			t.Errorf("%s: accepted", what)
		}
	}
}

func TestNameAndDescriptionLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	longest := strings.Repeat("n", 40) + "-_" + strings.Repeat("9", 21)                    // 63
	desc := strings.Repeat("é", 100) + strings.Repeat("🚀", 100) + strings.Repeat("x", 100) // 300 characters, 700 bytes
	p, err := domain.Create(domain.Definition{Name: longest, Description: desc}, uuid.NewString(), e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.Create(e.ctx, p, Cause{Action: "create"}); err != nil {
		t.Fatal(err)
	}
	got := e.get(longest)
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("round trip at the limits:\n got %#v\nwant %#v", got, p)
	}
	if recs, _, err := e.store.List(e.ctx, "", 10); err != nil || len(recs) != 1 || recs[0].Description != desc {
		t.Fatalf("list: %v", err)
	}
	if evs := e.history(longest); len(evs) != 1 {
		t.Fatalf("history: %v", evs)
	}

	// One over: rejected by the store too (it never trusts its caller), before DynamoDB.
	s, h := e.hooked()
	tooLong := p
	tooLong.Name = longest + "x"
	if err := s.Create(e.ctx, tooLong, Cause{}); errCode(err) != domain.CodeTooLongName {
		t.Errorf("64-char name: %v", err)
	}
	badName := p
	badName.Name = "bad name"
	if err := s.Create(e.ctx, badName, Cause{}); errCode(err) != domain.CodeNameDoesNotMatchPattern {
		t.Errorf("bad name: %v", err)
	}
	longDesc := p
	longDesc.Name = "other"
	longDesc.Description = desc + "é"
	if err := s.Create(e.ctx, longDesc, Cause{}); errCode(err) != domain.CodeInvalidRequestBody {
		t.Errorf("301-char description: %v", err)
	}
	if h.calls.Load() != 0 {
		t.Errorf("%d DynamoDB calls for invalid input", h.calls.Load())
	}
}

// bigConfig is a runtime_config JSON object of about n bytes (bypassing the
// domain's 64 KiB limit, as a buggy caller could).
func bigConfig(n int) []byte {
	return []byte(fmt.Sprintf(`{"blob":"%s"}`, strings.Repeat("x", n-11)))
}

func TestItemSizeLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s, h := e.hooked()

	// Near DynamoDB's 400 KB item limit: rejected with a clear 400 before any call.
	huge, err := domain.Create(domain.Definition{Name: "huge"}, uuid.NewString(), e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	huge.RuntimeConfig = bigConfig(390 * 1000)
	err = s.Create(e.ctx, huge, Cause{})
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != domain.CodeInvalidRequestBody || de.HTTPStatus() != 400 ||
		de.Details.(domain.BodyDetails).Field != "runtime_config" || !strings.Contains(de.Message, "at most") {
		t.Fatalf("huge record: %v", err)
	}
	if h.calls.Load() != 0 {
		t.Fatalf("%d DynamoDB calls for an oversized record", h.calls.Load())
	}

	// Just under the cap: DynamoDB Local takes it and it round-trips.
	big := huge
	big.Name = "big"
	big.RuntimeConfig = bigConfig(MaxItemBytes - 4000)
	if err := e.store.Create(e.ctx, big, Cause{}); err != nil {
		t.Fatalf("a record under the cap: %v", err)
	}
	if got := e.get("big"); !reflect.DeepEqual(got, big) {
		t.Fatal("big record does not round-trip")
	}

	// A write that would grow a record over the cap is rejected before any call too.
	e.create("grow")
	before := e.get("grow")
	out, err := domain.Replace(before, domain.Definition{RuntimeConfig: []byte(`{"a":1}`)}, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	out.Pipeline.RuntimeConfig = bigConfig(380 * 1000)
	calls := h.calls.Load()
	if _, err := s.ApplyAction(e.ctx, before, out, Cause{}); errCode(err) != domain.CodeInvalidRequestBody || h.calls.Load() != calls {
		t.Fatalf("oversized action: %v", err)
	}
}

// closedEndpoint is a loopback URL where nothing listens.
func closedEndpoint(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("connection refused", func(t *testing.T) {
		client, err := dynamolocal.NewClient(ctx, closedEndpoint(t), func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
		if err != nil {
			t.Fatal(err)
		}
		s := NewDynamo(client, "nowhere")
		p, _ := domain.Create(domain.Definition{Name: "p"}, uuid.NewString(), time.Now())
		checks := map[string]error{}
		_, checks["get"] = s.Get(ctx, "p")
		checks["create"] = s.Create(ctx, p, Cause{})
		_, checks["transition"] = s.Transition(ctx, "p", 0, domain.MarkStopped(), Cause{})
		_, _, checks["list"] = s.List(ctx, "", 1)
		_, checks["get api key"] = s.GetAPIKey(ctx, hashOf("k"))
		for op, err := range checks {
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("%s: got %v, want ErrUnavailable", op, err)
			}
		}
	})

	t.Run("deadline", func(t *testing.T) {
		e := newEnv(t)
		e.create("slow")
		ctx, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
		defer cancel()
		if _, err := e.store.Get(ctx, "slow"); !errors.Is(err, ErrUnavailable) {
			t.Errorf("expired deadline: %v", err)
		}
		ctx, cancel = context.WithCancel(context.Background())
		cancel()
		if _, err := e.store.Get(ctx, "slow"); err == nil || errors.Is(err, ErrUnavailable) {
			t.Errorf("cancelled by the caller: %v, want a plain error", err)
		}
	})

	t.Run("injected service errors", func(t *testing.T) {
		e := newEnv(t)
		e.create("svc")
		before := e.get("svc")
		out, err := start(before, e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		s, h := e.hooked()
		reason := func(codes ...string) error {
			tce := &types.TransactionCanceledException{Message: aws.String("cancelled")}
			for _, c := range codes {
				tce.CancellationReasons = append(tce.CancellationReasons, types.CancellationReason{Code: aws.String(c)})
			}
			return tce
		}
		cases := []struct {
			name        string
			err         error
			unavailable bool
			stale       bool
		}{
			{"throttled transaction", reason("ThrottlingError", "None"), true, false},
			{"throughput exceeded in transaction", reason("None", "ProvisionedThroughputExceeded"), true, false},
			{"transaction conflict", reason("TransactionConflict", "None"), false, true},
			{"validation error", reason("ValidationError", "None"), false, false},
			{"throttling exception", &smithy.GenericAPIError{Code: "ThrottlingException"}, true, false},
			{"provisioned throughput exception", &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}, true, false},
			{"request limit", &types.RequestLimitExceeded{}, true, false},
			{"internal server error", &types.InternalServerError{}, true, false},
			{"validation exception", &smithy.GenericAPIError{Code: "ValidationException"}, false, false},
		}
		for _, c := range cases {
			h.beforeTransact = func(int64, *dynamodb.TransactWriteItemsInput) error { return c.err }
			_, err := s.ApplyAction(e.ctx, before, out, Cause{})
			var staleErr *StaleError
			if errors.Is(err, ErrUnavailable) != c.unavailable || errors.Is(err, ErrStale) != c.stale || errors.As(err, &staleErr) || err == nil {
				t.Errorf("%s: got %v (unavailable %t, stale %t)", c.name, err, errors.Is(err, ErrUnavailable), errors.Is(err, ErrStale))
			}
		}
		sameRecord(t, "record after failed writes", e.get("svc"), before)
	})
}
