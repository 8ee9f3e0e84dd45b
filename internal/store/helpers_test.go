package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/uuid"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/dynamolocal"
)

// testClock is a clock that moves 1 ms on every reading, so every stamp is
// distinct and times are UTC without a monotonic reading (exact round trips).
type testClock struct{ n atomic.Int64 }

var clockBase = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func (c *testClock) Now() time.Time {
	return clockBase.Add(time.Duration(c.n.Add(1)) * time.Millisecond)
}

type env struct {
	t      testing.TB
	ctx    context.Context
	client *dynamodb.Client
	table  string
	clock  *testClock
	store  *Dynamo
}

// newEnv makes a fresh table on the shared DynamoDB Local and a store on it.
func newEnv(t testing.TB, opts ...Option) *env {
	t.Helper()
	client, table := dynamolocal.NewPipelinesTable(t)
	e := &env{t: t, ctx: context.Background(), client: client, table: table, clock: &testClock{}}
	e.store = NewDynamo(client, table, append([]Option{WithClock(e.clock.Now)}, opts...)...)
	return e
}

// create creates a Stopped/Stopped pipeline through domain.Create.
func (e *env) create(name string) domain.Pipeline {
	e.t.Helper()
	p, err := domain.Create(domain.Definition{Name: name, Description: "test pipeline", RuntimeConfig: []byte(`{}`)}, uuid.NewString(), e.clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.Create(e.ctx, p, Cause{Action: "create", Actor: "user:test"}); err != nil {
		e.t.Fatalf("create %s: %v", name, err)
	}
	return p
}

func (e *env) get(name string) domain.Pipeline {
	e.t.Helper()
	p, err := e.store.Get(e.ctx, name)
	if err != nil {
		e.t.Fatalf("get %s: %v", name, err)
	}
	return p
}

// act reads, decides with action and writes; it fails the test on any error.
func (e *env) act(name string, action func(domain.Pipeline, time.Time) (domain.Outcome, error)) domain.Pipeline {
	e.t.Helper()
	before := e.get(name)
	out, err := action(before, e.clock.Now())
	if err != nil {
		e.t.Fatalf("deciding on %s: %v", name, err)
	}
	p, err := e.store.ApplyAction(e.ctx, before, out, Cause{Action: "test", Actor: "user:test"})
	if err != nil {
		e.t.Fatalf("apply action on %s: %v", name, err)
	}
	return p
}

func (e *env) transition(name string, tr domain.Transition) domain.Pipeline {
	e.t.Helper()
	p, err := e.store.Transition(e.ctx, name, e.get(name).Generation, tr, Cause{Action: "test", Actor: "workflow"})
	if err != nil {
		e.t.Fatalf("transition on %s: %v", name, err)
	}
	return p
}

// history reads the whole history, newest first.
func (e *env) history(name string) []Event {
	e.t.Helper()
	var all []Event
	token := ""
	for {
		evs, next, err := e.store.History(e.ctx, name, token, MaxPageLimit)
		if err != nil {
			e.t.Fatalf("history of %s: %v", name, err)
		}
		all = append(all, evs...)
		if next == "" {
			return all
		}
		token = next
	}
}

func start(p domain.Pipeline, now time.Time) (domain.Outcome, error) {
	return domain.Start(p, domain.StartRequest{Initial: domain.InitialRunning, DismissError: true}, now)
}

func stop(force bool) func(domain.Pipeline, time.Time) (domain.Outcome, error) {
	return func(p domain.Pipeline, now time.Time) (domain.Outcome, error) { return domain.Stop(p, force, now) }
}

// errCode is the catalogue code of a *domain.Error ("" for another error).
func errCode(err error) domain.ErrorCode {
	var de *domain.Error
	if errors.As(err, &de) {
		return de.Code
	}
	return ""
}

func jsonOf(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sameRecord fails the test unless a and b have the same JSON form.
func sameRecord(t testing.TB, what string, got, want domain.Pipeline) {
	t.Helper()
	if g, w := jsonOf(t, got), jsonOf(t, want); g != w {
		t.Fatalf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func statusesOf(p domain.Pipeline) string {
	return fmt.Sprintf("%s/%s res=%s/%s rt=%s/%s storage=%s err=%t gen=%d rv=%d",
		p.DeploymentStatus(), p.DeploymentDesiredStatus(), p.ResourcesStatus, p.ResourcesDesiredStatus,
		strOf(p.RuntimeStatus), strOf(p.RuntimeDesiredStatus), p.StorageStatus, p.DeploymentError != nil, p.Generation, p.RefreshVersion)
}

func statusesOfEvent(e Event) string {
	return fmt.Sprintf("%s/%s res=%s/%s rt=%s/%s storage=%s err=%t gen=%d rv=%d",
		e.DeploymentStatus, e.DeploymentDesiredStatus, e.ResourcesStatus, e.ResourcesDesiredStatus,
		strOf(e.RuntimeStatus), strOf(e.RuntimeDesiredStatus), e.StorageStatus, e.DeploymentError != nil, e.Generation, e.RefreshVersion)
}

// hookClient wraps the real DynamoDB Local client: it counts calls and can
// run a hook before a TransactWriteItems (to interleave a concurrent write
// deterministically) or replace its answer (to inject a service error).
type hookClient struct {
	DynamoAPI
	calls, gets, transacts atomic.Int64
	// beforeTransact runs before the n-th (from 1) TransactWriteItems; a
	// non-nil error is returned instead of calling DynamoDB.
	beforeTransact func(n int64, in *dynamodb.TransactWriteItemsInput) error
}

func (h *hookClient) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	h.calls.Add(1)
	h.gets.Add(1)
	return h.DynamoAPI.GetItem(ctx, in, o...)
}

func (h *hookClient) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	h.calls.Add(1)
	return h.DynamoAPI.PutItem(ctx, in, o...)
}

func (h *hookClient) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	h.calls.Add(1)
	return h.DynamoAPI.UpdateItem(ctx, in, o...)
}

func (h *hookClient) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	h.calls.Add(1)
	return h.DynamoAPI.Query(ctx, in, o...)
}

func (h *hookClient) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	h.calls.Add(1)
	return h.DynamoAPI.BatchWriteItem(ctx, in, o...)
}

func (h *hookClient) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	h.calls.Add(1)
	n := h.transacts.Add(1)
	if h.beforeTransact != nil {
		if err := h.beforeTransact(n, in); err != nil {
			return nil, err
		}
	}
	return h.DynamoAPI.TransactWriteItems(ctx, in, o...)
}

// hooked returns a store on e's table whose client is wrapped by a hookClient.
func (e *env) hooked() (*Dynamo, *hookClient) {
	h := &hookClient{DynamoAPI: e.client}
	return NewDynamo(h, e.table, WithClock(e.clock.Now)), h
}
