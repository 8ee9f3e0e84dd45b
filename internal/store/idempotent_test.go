package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/google/uuid"

	"github.com/sluicehq/sluice/internal/domain"
)

// Does DynamoDB Local honour ClientRequestToken? The same conditional
// TransactWriteItems is sent twice with one token: DynamoDB answers the
// repeat with success and changes nothing. The store is correct either way
// (a repeat that fails its condition recognises its own write_id), so this
// test only reports what the emulator does, and checks that the repeat
// changed nothing.
func TestDynamoDBLocalClientRequestToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	put := func(v string) *dynamodb.TransactWriteItemsInput {
		return &dynamodb.TransactWriteItemsInput{
			ClientRequestToken: aws.String("sluice-token-test-0001"),
			TransactItems: []types.TransactWriteItem{{Put: &types.Put{
				TableName: aws.String(e.table),
				Item: map[string]types.AttributeValue{
					attrPK: &types.AttributeValueMemberS{Value: "TOKENTEST"}, attrSK: &types.AttributeValueMemberS{Value: "X"},
					"v": &types.AttributeValueMemberS{Value: v},
				},
				ConditionExpression: aws.String("attribute_not_exists(pk)"),
			}}},
		}
	}
	if _, err := e.client.TransactWriteItems(e.ctx, put("a")); err != nil {
		t.Fatal(err)
	}
	_, err := e.client.TransactWriteItems(e.ctx, put("a"))
	var tce *types.TransactionCanceledException
	switch {
	case err == nil:
		t.Log("DynamoDB Local honours ClientRequestToken: the identical repeat succeeded without a second write")
	case errors.As(err, &tce):
		t.Log("DynamoDB Local ignores ClientRequestToken: the identical repeat failed its condition")
	default:
		t.Fatalf("repeat: %v", err)
	}
	_, err = e.client.TransactWriteItems(e.ctx, put("b"))
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		t.Logf("same token, other parameters: %s", apiErr.ErrorCode())
	} else {
		t.Logf("same token, other parameters: %v", err)
	}
}

// errTimeout is what a send whose answer never came looks like to the store.
var errTimeout = fmt.Errorf("operation error DynamoDB: TransactWriteItems: %w", context.DeadlineExceeded)

func (e *env) faulty(opts ...Option) (*Dynamo, *hookClient) {
	h := &hookClient{DynamoAPI: e.client}
	return NewDynamo(h, e.table, append([]Option{WithClock(e.clock.Now)}, opts...)...), h
}

// Issue 13: the transaction landed but its answer was lost (a timeout). The
// store repeats exactly that request (same client request token) and
// recognises the landed write: the action succeeds, written once.
func TestTimedOutWriteThatLandedIsSuccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.create("landed")
	s, h := e.faulty()
	var tokens []string
	h.beforeTransact = func(n int64, in *dynamodb.TransactWriteItemsInput) error {
		tokens = append(tokens, aws.ToString(in.ClientRequestToken))
		if n == 1 {
			if _, err := e.client.TransactWriteItems(e.ctx, in); err != nil { // committed…
				t.Errorf("first send: %v", err)
			}
			return errTimeout // …but the answer is lost
		}
		return nil
	}
	before := e.get("landed")
	out, err := start(before, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	after, err := s.ApplyAction(e.ctx, before, out, Cause{Action: "start"})
	if err != nil {
		t.Fatalf("a write that landed was answered %v", err)
	}
	sameRecord(t, "record", e.get("landed"), after)
	if n := len(e.history("landed")); n != 2 || after.RefreshVersion != 2 {
		t.Fatalf("%d events, refresh version %d: want exactly one write after the create", n, after.RefreshVersion)
	}
	if len(tokens) != 2 || tokens[0] == "" || tokens[0] != tokens[1] {
		t.Fatalf("the repeat must carry the same client request token: %q", tokens)
	}

	// The same for a workflow transition and a delete.
	h.transacts.Store(0)
	tokens = nil
	if _, err := s.Transition(e.ctx, "landed", after.Generation, domain.MarkProvisioning("dep-1"), Cause{Action: "MarkProvisioning"}); err != nil {
		t.Fatalf("transition: %v", err)
	}
	if p := e.get("landed"); p.RefreshVersion != 3 || p.ResourcesStatus != domain.ResourcesProvisioning {
		t.Fatalf("%s at %d", p.ResourcesStatus, p.RefreshVersion)
	}
	e.create("gone")
	h.transacts.Store(0)
	if err := s.Delete(e.ctx, e.get("gone"), Cause{Action: "delete"}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := e.store.Get(e.ctx, "gone"); errCode(err) != domain.CodeUnknownPipelineName {
		t.Fatalf("after delete: %v", err)
	}
}

// A throttled (or 5xx) send is repeated within the request: the action
// succeeds instead of answering 503.
func TestThrottledWriteIsRepeated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.create("throttled")
	s, h := e.faulty()
	h.beforeTransact = func(n int64, in *dynamodb.TransactWriteItemsInput) error {
		if n <= 2 {
			return &smithy.GenericAPIError{Code: "ThrottlingException", Message: "slow down"}
		}
		return nil
	}
	before := e.get("throttled")
	out, _ := start(before, e.clock.Now())
	after, err := s.ApplyAction(e.ctx, before, out, Cause{Action: "start"})
	if err != nil || h.transacts.Load() != 3 {
		t.Fatalf("%v after %d sends", err, h.transacts.Load())
	}
	sameRecord(t, "record", e.get("throttled"), after)
}

// A write that never landed and never got an answer: after its repeats the
// answer is ErrUnavailable (503 "nothing was changed"), and it is true.
func TestUnansweredWriteThatDidNotLandIsUnavailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.create("lost")
	s, h := e.faulty(WithWriteAttempts(3))
	h.beforeTransact = func(int64, *dynamodb.TransactWriteItemsInput) error { return errTimeout }
	before := e.get("lost")
	out, _ := start(before, e.clock.Now())
	if _, err := s.ApplyAction(e.ctx, before, out, Cause{Action: "start"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
	if n := h.transacts.Load(); n != 3 {
		t.Fatalf("%d sends, want 3", n)
	}
	sameRecord(t, "nothing was changed", e.get("lost"), before)
}

// The token of a write is derived from the write: the same for its repeats,
// different for another write (another outcome, version or write id).
func TestRequestTokenIsDerivedFromTheWrite(t *testing.T) {
	a := requestToken("t", "record", "p", uuid.Nil.String(), "3", "1", "w1", "{}")
	if a != requestToken("t", "record", "p", uuid.Nil.String(), "3", "1", "w1", "{}") || len(a) != 36 {
		t.Fatalf("token %q", a)
	}
	for _, other := range [][]string{
		{"t", "record", "p", uuid.Nil.String(), "4", "1", "w1", "{}"},
		{"t", "record", "p", uuid.Nil.String(), "3", "1", "w2", "{}"},
		{"t", "record", "p", uuid.Nil.String(), "3", "1", "w1", `{"a":1}`},
	} {
		if requestToken(other...) == a {
			t.Fatalf("%q has the same token", other)
		}
	}
}

// Every send times out, but the first one had landed: the strongly
// consistent read after the repeats finds this write's write_id, so the
// answer is success, not a false 503.
func TestEveryAnswerLostButTheWriteLanded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.create("silent")
	s, h := e.faulty(WithWriteAttempts(3))
	h.beforeTransact = func(n int64, in *dynamodb.TransactWriteItemsInput) error {
		if n == 1 {
			if _, err := e.client.TransactWriteItems(e.ctx, in); err != nil {
				t.Errorf("first send: %v", err)
			}
		}
		return errTimeout
	}
	before := e.get("silent")
	out, _ := start(before, e.clock.Now())
	after, err := s.ApplyAction(e.ctx, before, out, Cause{Action: "start"})
	if err != nil {
		t.Fatalf("a write that landed was answered %v", err)
	}
	sameRecord(t, "record", e.get("silent"), after)
}

// expiringCtx is a context whose deadline the test makes pass (no clock).
type expiringCtx struct {
	context.Context
	done chan struct{}
	once sync.Once
}

func newExpiringCtx() *expiringCtx {
	return &expiringCtx{Context: context.Background(), done: make(chan struct{})}
}
func (c *expiringCtx) expire()               { c.once.Do(func() { close(c.done) }) }
func (c *expiringCtx) Done() <-chan struct{} { return c.done }
func (c *expiringCtx) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

// The caller's deadline passes while the first send is out (a Lambda near
// its end): the write landed, and the store still finds that out (detached,
// bounded) instead of answering a false 503.
func TestDeadlinePassedAfterTheWriteLanded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.create("deadline")
	s, h := e.faulty()
	ctx := newExpiringCtx()
	h.beforeTransact = func(n int64, in *dynamodb.TransactWriteItemsInput) error {
		if n == 1 {
			if _, err := e.client.TransactWriteItems(e.ctx, in); err != nil {
				t.Errorf("first send: %v", err)
			}
			ctx.expire()
			return errTimeout
		}
		return nil
	}
	before := e.get("deadline")
	out, _ := start(before, e.clock.Now())
	after, err := s.ApplyAction(ctx, before, out, Cause{Action: "start"})
	if err != nil {
		t.Fatalf("a write that landed was answered %v", err)
	}
	sameRecord(t, "record", e.get("deadline"), after)
	if n := h.transacts.Load(); n != 2 {
		t.Fatalf("%d sends, want the repeat after the deadline", n)
	}
}

// An API key write whose first answer is lost although it landed: the repeat
// carries the same token and the key is created once, not answered as an
// existing key or a 503.
func TestTimedOutAPIKeyWriteThatLandedIsSuccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s, h := e.faulty()
	var tokens []string
	h.beforeTransact = func(n int64, in *dynamodb.TransactWriteItemsInput) error {
		tokens = append(tokens, aws.ToString(in.ClientRequestToken))
		if n == 1 {
			if _, err := e.client.TransactWriteItems(e.ctx, in); err != nil { // committed…
				t.Errorf("first send: %v", err)
			}
			return errTimeout // …but the answer is lost
		}
		return nil
	}
	key := testKey(e, "landed-key", RoleWrite)
	if err := s.PutAPIKey(e.ctx, key); err != nil {
		t.Fatalf("a key write that landed was answered %v", err)
	}
	if len(tokens) < 2 || tokens[0] == "" || tokens[0] != tokens[1] {
		t.Fatalf("the repeat must carry the same client request token: %q", tokens)
	}
	got, err := e.store.GetAPIKeyByName(e.ctx, "landed-key")
	if err != nil || got.Hash != key.Hash {
		t.Fatalf("the key by name: %+v %v", got, err)
	}
	// Putting the same key again (no lost answer) is still refused.
	h.beforeTransact = nil
	if err := s.PutAPIKey(e.ctx, key); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("a second put of the same key: %v, want ErrAlreadyExists", err)
	}
}

// An API key delete whose first answer is lost although it landed is
// success, not a 503 (and not UnknownApiKey).
func TestTimedOutAPIKeyDeleteThatLandedIsSuccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := testKey(e, "gone-key", RoleRead)
	if err := e.store.PutAPIKey(e.ctx, key); err != nil {
		t.Fatal(err)
	}
	s, h := e.faulty()
	h.beforeTransact = func(n int64, in *dynamodb.TransactWriteItemsInput) error {
		if n == 1 {
			if _, err := e.client.TransactWriteItems(e.ctx, in); err != nil { // committed…
				t.Errorf("first send: %v", err)
			}
			return errTimeout // …but the answer is lost
		}
		return nil
	}
	got, err := s.DeleteAPIKey(e.ctx, "gone-key")
	if err != nil || got.Hash != key.Hash {
		t.Fatalf("a delete that landed was answered %+v %v", got, err)
	}
	if _, err := e.store.GetAPIKey(e.ctx, key.Hash); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the key is still there: %v", err)
	}
}
