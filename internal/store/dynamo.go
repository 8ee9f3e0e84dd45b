package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/sluicehq/sluice/internal/ctxutil"
	"github.com/sluicehq/sluice/internal/domain"
)

// DynamoAPI is the part of the DynamoDB client that Dynamo uses
// (*dynamodb.Client implements it).
type DynamoAPI interface {
	GetItem(ctx context.Context, params *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, params *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, params *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(ctx context.Context, params *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	TransactWriteItems(ctx context.Context, params *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	BatchWriteItem(ctx context.Context, params *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

var _ DynamoAPI = (*dynamodb.Client)(nil)

var _ Store = (*Dynamo)(nil)

// Dynamo is the DynamoDB implementation of Store. It is safe for concurrent use.
type Dynamo struct {
	client        DynamoAPI
	table         string
	now           func() time.Time
	maxAttempts   int
	writeAttempts int
	deletedTTL    time.Duration
	log           *slog.Logger
}

// Defaults of the options.
const (
	// DefaultMaxAttempts bounds the read-decide-write rounds of Transition
	// and SetWorkflow that lose to concurrent writes of the same generation
	// (and the rounds of Create that lose to a transaction conflict).
	DefaultMaxAttempts = 8
	// DefaultDeletedHistoryTTL is how long the tombstone event of a deleted
	// pipeline (and any event the cleanup could not delete) is kept.
	DefaultDeletedHistoryTTL = 30 * 24 * time.Hour
)

// Option configures a Dynamo.
type Option func(*Dynamo)

// WithClock sets the clock (default time.Now) used for history event times,
// transitions and updated_at.
func WithClock(now func() time.Time) Option { return func(d *Dynamo) { d.now = now } }

// WithMaxAttempts sets DefaultMaxAttempts (at least 1).
func WithMaxAttempts(n int) Option {
	return func(d *Dynamo) { d.maxAttempts = max(n, 1) }
}

// WithWriteAttempts sets DefaultWriteAttempts (at least 1: no repeat).
func WithWriteAttempts(n int) Option {
	return func(d *Dynamo) { d.writeAttempts = max(n, 1) }
}

// WithDeletedHistoryTTL sets DefaultDeletedHistoryTTL.
func WithDeletedHistoryTTL(ttl time.Duration) Option {
	return func(d *Dynamo) { d.deletedTTL = ttl }
}

// WithLogger sets the logger of best-effort work that cannot fail the call
// (the history cleanup after Delete). Default: slog.Default().
func WithLogger(l *slog.Logger) Option { return func(d *Dynamo) { d.log = l } }

// NewDynamo returns a Store on the table (the PipelinesTable of template.yaml).
func NewDynamo(client DynamoAPI, table string, opts ...Option) *Dynamo {
	d := &Dynamo{client: client, table: table, now: time.Now, maxAttempts: DefaultMaxAttempts,
		writeAttempts: DefaultWriteAttempts, deletedTTL: DefaultDeletedHistoryTTL, log: slog.Default()}
	for _, o := range opts {
		o(d)
	}
	return d
}

func errorf(op, format string, args ...any) error {
	return fmt.Errorf("store: "+op+": "+format, args...)
}

// ---- expressions ----

func condition(c expression.ConditionBuilder) (expression.Expression, error) {
	return expression.NewBuilder().WithCondition(c).Build()
}

func eq(attr string, v any) expression.ConditionBuilder {
	return expression.Name(attr).Equal(expression.Value(v))
}

// recordIs is the condition of every write of a record: it is still the
// incarnation (pipeline id), refresh version and generation that was read.
func recordIs(p domain.Pipeline) expression.ConditionBuilder {
	return expression.And(eq("pipeline_id", p.ID), eq(attrRefreshVersion, p.RefreshVersion), eq(attrGeneration, p.Generation))
}

func (d *Dynamo) txPut(item map[string]types.AttributeValue, c expression.ConditionBuilder, allOld bool) (types.TransactWriteItem, error) {
	e, err := condition(c)
	if err != nil {
		return types.TransactWriteItem{}, err
	}
	put := &types.Put{
		TableName: aws.String(d.table), Item: item, ConditionExpression: e.Condition(),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
	}
	if allOld {
		put.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
	}
	return types.TransactWriteItem{Put: put}, nil
}

func recordKey(name string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: &types.AttributeValueMemberS{Value: pipelinePK(name)},
		attrSK: &types.AttributeValueMemberS{Value: recordSK},
	}
}

var eventIsNew = expression.AttributeNotExists(expression.Name(attrSK))

// ---- Create, Get, List ----

// Create writes a new record and its first history event in one transaction.
// The record must be a valid new record (domain.Create builds one).
func (d *Dynamo) Create(ctx context.Context, p domain.Pipeline, cause Cause) error {
	const op = "create"
	if err := domain.ValidateName(p.Name); err != nil {
		return err
	}
	if err := domain.ValidateDescription(p.Description); err != nil {
		return err
	}
	if p.ID == "" || strings.Contains(p.ID, "#") || p.RefreshVersion < 1 {
		return errorf(op, "pipeline %q: invalid id %q or refresh version %d", p.Name, p.ID, p.RefreshVersion)
	}
	if err := domain.ValidateTransition(p, p); err != nil { // the record's invariants
		return errorf(op, "pipeline %q: %w", p.Name, err)
	}
	now := d.now()
	rec, err := encodeRecord(p, now)
	if err != nil {
		return err
	}
	ev, err := encodeEvent(p.Name, p.ID, eventOf(p, cause, now), time.Time{})
	if err != nil {
		return err
	}
	putRec, err := d.txPut(rec.item, expression.AttributeNotExists(expression.Name(attrPK)), true)
	if err != nil {
		return errorf(op, "%w", err)
	}
	putEv, err := d.txPut(ev, eventIsNew, false)
	if err != nil {
		return errorf(op, "%w", err)
	}
	// A concurrent create of the same name ends as DuplicateName.
	return d.putNew(ctx, op, fmt.Sprintf("pipeline %q", p.Name), []types.TransactWriteItem{putRec, putEv},
		func(attempt string) []string { return []string{"create", p.Name, p.ID, attempt, rec.writeID} },
		func(c *txCancel, _ bool) error {
			switch {
			case c.failed == 0 && isOwnWrite(c.item, rec.writeID):
				return nil // this very create landed already (a retry whose first answer was lost)
			case c.failed == 0:
				return domain.DuplicateName(p.Name)
			}
			return errorf(op, "%w: pipeline %q: history event %d of id %s already exists", errCorrupt, p.Name, p.RefreshVersion, p.ID)
		})
}

// putNew writes items, each conditional on not existing yet, in one
// transaction, and tries again (after backoff) on a conflict with a
// concurrent transaction, up to maxAttempts. Each attempt is a new request
// with its own token, token(attempt); the sends of one attempt share it
// (transact). A failed condition ends it: conditionFailed says what the
// failed item (c.failed, c.item as it stands) means, given whether the send
// was repeated; nil when this very write had landed already. what names the
// items in the error of giving up.
func (d *Dynamo) putNew(ctx context.Context, op, what string, items []types.TransactWriteItem,
	token func(attempt string) []string, conditionFailed func(c *txCancel, repeated bool) error) error {
	for attempt := 0; attempt < d.maxAttempts; attempt++ {
		if err := d.backoff(ctx, attempt); err != nil {
			return classify(op, err)
		}
		// Through transact, as every record write: an ambiguous answer is
		// repeated with the same ClientRequestToken, so a 503 means nothing
		// was written.
		in := &dynamodb.TransactWriteItemsInput{TransactItems: items}
		repeated, err := d.transact(ctx, op, in, token(fmt.Sprint(attempt))...)
		if err == nil {
			return nil
		}
		if errors.Is(err, errTokenMismatch) {
			continue
		}
		c, err := cancellation(op, err)
		switch {
		case err != nil:
			return err
		case c.failed >= 0:
			return conditionFailed(c, repeated)
		}
		// A transaction conflict: try again.
	}
	return errorf(op, "%w: %s: gave up after %d conflicting transactions", ErrUnavailable, what, d.maxAttempts)
}

// Get reads one record, strongly consistent. A name that is not a valid
// pipeline name is unknown without a call to DynamoDB.
func (d *Dynamo) Get(ctx context.Context, name string) (domain.Pipeline, error) {
	if domain.ValidateName(name) != nil {
		return domain.Pipeline{}, domain.UnknownPipelineName(name)
	}
	out, err := d.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(d.table), Key: recordKey(name), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return domain.Pipeline{}, classify("get", err)
	}
	if len(out.Item) == 0 {
		return domain.Pipeline{}, domain.UnknownPipelineName(name)
	}
	p, err := decodeRecord(out.Item)
	if err != nil {
		return domain.Pipeline{}, errorf("get", "%w", err)
	}
	return p, nil
}

// List returns records in name order (limit <= 0: DefaultPageLimit, at most
// MaxPageLimit). It queries the global secondary index gsi1, which is
// eventually consistent: List may lag a write by a moment. next is "" exactly
// on the last page. A token that List did not return is a *domain.Error
// InvalidQueryParameter (page_token).
func (d *Dynamo) List(ctx context.Context, pageToken string, limit int) ([]domain.Pipeline, string, error) {
	return listPage(ctx, d, "list", listGSIPK, "", recordSK, pipelinePK, pageToken, limit, decodeRecord)
}

// ---- writes of the record ----

// lostWrite says why a conditional write of a record did not happen.
type lostWrite struct {
	missing  bool             // the record does not exist (deleted)
	current  *domain.Pipeline // the record that made the condition fail
	conflict bool             // a concurrent transaction; read again
}

// writeRecord writes next with its history event in one transaction,
// conditional on the record still being before (id, refresh version,
// generation). It returns nil, nil on success.
func (d *Dynamo) writeRecord(ctx context.Context, op string, before, next domain.Pipeline, cause Cause) (*lostWrite, error) {
	now := d.now()
	rec, err := encodeRecord(next, now)
	if err != nil {
		return nil, err
	}
	ev, err := encodeEvent(next.Name, next.ID, eventOf(next, cause, now), time.Time{})
	if err != nil {
		return nil, err
	}
	putRec, err := d.txPut(rec.item, recordIs(before), true)
	if err != nil {
		return nil, errorf(op, "%w", err)
	}
	putEv, err := d.txPut(ev, eventIsNew, false)
	if err != nil {
		return nil, errorf(op, "%w", err)
	}
	in := &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{putRec, putEv}}
	_, err = d.transact(ctx, op, in, "record", next.Name, before.ID, fmt.Sprint(before.RefreshVersion), fmt.Sprint(before.Generation),
		rec.writeID, recordJSON(rec.item))
	if err == nil {
		return nil, nil
	}
	if errors.Is(err, errTokenMismatch) {
		return &lostWrite{conflict: true}, nil
	}
	if ambiguous(err) && d.landedRecord(ctx, next.Name, rec.writeID) {
		return nil, nil
	}
	c, err := cancellation(op, err)
	switch {
	case err != nil:
		return nil, err
	case c.failed == 0 && len(c.item) == 0:
		return &lostWrite{missing: true}, nil
	case c.failed == 0:
		if isOwnWrite(c.item, rec.writeID) {
			// This very write landed already (an SDK retry of a
			// transaction whose answer was lost).
			return nil, nil
		}
		cur, err := decodeRecord(c.item)
		if err != nil {
			return nil, errorf(op, "%w", err)
		}
		return &lostWrite{current: &cur}, nil
	case c.failed > 0:
		return nil, errorf(op, "%w: pipeline %q: history event %d of id %s already exists", errCorrupt, next.Name, next.RefreshVersion, next.ID)
	}
	return &lostWrite{conflict: true}, nil
}

// ApplyAction writes the outcome of a user action (see Store). out.Pipeline
// must be a valid successor of before (domain.ValidateTransition, refresh
// version + 1): anything else is a programming error, returned as a plain
// error. A lost condition is a *StaleError carrying the current record (or a
// wrapped ErrStale on a transaction conflict); a deleted record is
// UnknownPipelineName.
func (d *Dynamo) ApplyAction(ctx context.Context, before domain.Pipeline, out domain.Outcome, cause Cause) (domain.Pipeline, error) {
	const op = "apply action"
	if !out.Write {
		return before, nil
	}
	next := out.Pipeline
	if err := domain.ValidateTransition(before, next); err != nil {
		return domain.Pipeline{}, errorf(op, "pipeline %q: %w", before.Name, err)
	}
	if next.RefreshVersion != before.RefreshVersion+1 {
		return domain.Pipeline{}, errorf(op, "pipeline %q: refresh version %d → %d", before.Name, before.RefreshVersion, next.RefreshVersion)
	}
	lost, err := d.writeRecord(ctx, op, before, next, cause)
	if p, done, err := settled(before.Name, next, lost, err); done {
		return p, err
	}
	if lost.current != nil {
		return domain.Pipeline{}, &StaleError{Current: *lost.current}
	}
	return domain.Pipeline{}, errorf(op, "pipeline %q: %w (a concurrent transaction)", before.Name, ErrStale)
}

// Transition applies a workflow step's transition (see Store): read
// (strongly consistent), check the generation, apply tr, write conditional on
// the generation and refresh version that were read. A write that loses to a
// concurrent write of the same generation (an observation) is decided again
// on the record DynamoDB returned with the failure, at most DefaultMaxAttempts
// times; after that the error wraps both ErrStale and ErrUnavailable
// (retriable, nothing written). A generation that moved on is a
// *SupersededError (nothing written); an *domain.UnexpectedStatusError of tr
// is a *ConflictError; any other error of tr (an illegal transition) is
// returned wrapped. A transition that changes nothing (same refresh version)
// writes nothing and returns the current record, so a repeated step is
// idempotent.
func (d *Dynamo) Transition(ctx context.Context, name string, generation int64, tr domain.Transition, cause Cause) (domain.Pipeline, error) {
	return d.fenced(ctx, "transition", name, generation, nil, cause, tr)
}

// TransitionFrom is Transition deciding first on read (see Store): one
// strongly consistent read less per step when read is current.
func (d *Dynamo) TransitionFrom(ctx context.Context, read domain.Pipeline, tr domain.Transition, cause Cause) (domain.Pipeline, error) {
	return d.fenced(ctx, "transition", read.Name, read.Generation, &read, cause, tr)
}

// SetWorkflow records the workflow execution of a generation (see Store),
// fenced by ref.Generation like Transition. Recording a different ref is a
// write of the record: it bumps the refresh version (clients see the change)
// and, like every write, appends a history event (statuses unchanged, cause
// action "SetWorkflow", execution ref.ExecutionName), which keeps the history
// gap-free. Recording the ref that is already there writes nothing, and so
// does a late report that an execution is live (RUNNING, PENDING) once the
// record says that execution ended (domain.UpdateWorkflowRef).
func (d *Dynamo) SetWorkflow(ctx context.Context, name string, ref domain.WorkflowRef) (domain.Pipeline, error) {
	cause := Cause{Action: "SetWorkflow", Actor: "workflow", Execution: ref.ExecutionName}
	return d.fenced(ctx, "set workflow", name, ref.Generation, nil, cause, func(p domain.Pipeline, _ time.Time) (domain.Pipeline, error) {
		w, changed := domain.UpdateWorkflowRef(p.Workflow, ref)
		if !changed {
			return p, nil // the same ref, or a late "live" report of an execution recorded as ended
		}
		next := p
		next.Workflow = &w
		next.RefreshVersion = p.RefreshVersion + 1
		return next, nil
	})
}

// settled is what a write of next by writeRecord settles, whoever wrote:
// it failed (err), it landed (lost nil: next), or the record is gone. done
// is false when the write lost to another one (lost.current, or a
// transaction conflict): the caller decides what that means.
func settled(name string, next domain.Pipeline, lost *lostWrite, err error) (p domain.Pipeline, done bool, _ error) {
	switch {
	case err != nil:
		return domain.Pipeline{}, true, err
	case lost == nil:
		return next, true, nil
	case lost.missing:
		return domain.Pipeline{}, true, domain.UnknownPipelineName(name)
	}
	return domain.Pipeline{}, false, nil
}

// queryDecoded is queryPage with each item decoded by decode.
func queryDecoded[T any](ctx context.Context, d *Dynamo, op string, in *dynamodb.QueryInput, limit int, attrs []string,
	decode func(map[string]types.AttributeValue) (T, error)) ([]T, string, error) {
	items, next, err := d.queryPage(ctx, op, in, limit, attrs)
	if err != nil {
		return nil, "", err
	}
	out, err := decodeAll(op, items, decode)
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// decodeAll decodes a page of items with decode; the first item that does
// not decode fails the page (wrapped as an error of op).
func decodeAll[T any](op string, items []map[string]types.AttributeValue, decode func(map[string]types.AttributeValue) (T, error)) ([]T, error) {
	out := make([]T, 0, len(items))
	for _, it := range items {
		v, err := decode(it)
		if err != nil {
			return nil, errorf(op, "%w", err)
		}
		out = append(out, v)
	}
	return out, nil
}

// isOwnWrite reports whether item was written by the write writeID.
func isOwnWrite(item map[string]types.AttributeValue, writeID string) bool {
	s, ok := item["write_id"].(*types.AttributeValueMemberS)
	return ok && s.Value == writeID
}

// fenced is the read-decide-write loop of Transition and SetWorkflow.
// read, when set, is a record of name the caller has read: decided on
// first, its staleness caught by the write's condition on its refresh
// version (recordIs), which then hands back the current record.
func (d *Dynamo) fenced(ctx context.Context, op, name string, generation int64, read *domain.Pipeline, cause Cause, tr domain.Transition) (domain.Pipeline, error) {
	cur := read // the record to decide on; nil: read it
	for attempt := 0; attempt < d.maxAttempts; attempt++ {
		if err := d.backoff(ctx, attempt); err != nil {
			return domain.Pipeline{}, classify(op, err)
		}
		if cur == nil {
			p, err := d.Get(ctx, name)
			if err != nil {
				return domain.Pipeline{}, err
			}
			cur = &p
		}
		if cur.Generation != generation {
			return domain.Pipeline{}, &SupersededError{Generation: generation, Current: *cur}
		}
		next, err := tr(*cur, d.now())
		if err != nil {
			var unexpected *domain.UnexpectedStatusError
			if errors.As(err, &unexpected) {
				return domain.Pipeline{}, &ConflictError{Current: *cur, Cause: err}
			}
			return domain.Pipeline{}, errorf(op, "pipeline %q: %w", name, err)
		}
		if next.RefreshVersion == cur.RefreshVersion {
			return *cur, nil // nothing to write: already done
		}
		if next.Generation != cur.Generation || next.RefreshVersion != cur.RefreshVersion+1 {
			return domain.Pipeline{}, errorf(op, "pipeline %q: a workflow write moved generation %d → %d, refresh version %d → %d",
				name, cur.Generation, next.Generation, cur.RefreshVersion, next.RefreshVersion)
		}
		if err := domain.ValidateTransition(*cur, next); err != nil {
			return domain.Pipeline{}, errorf(op, "pipeline %q: %w", name, err)
		}
		lost, err := d.writeRecord(ctx, op, *cur, next, cause)
		if p, done, err := settled(name, next, lost, err); done {
			return p, err
		}
		switch {
		case lost.current != nil:
			if lost.current.Generation != generation || lost.current.ID != cur.ID {
				return domain.Pipeline{}, &SupersededError{Generation: generation, Current: *lost.current}
			}
			cur = lost.current // a concurrent write of this generation: decide again
		default:
			cur = nil // a transaction conflict: read again
		}
	}
	return domain.Pipeline{}, errorf(op, "pipeline %q: %w: %w: gave up after %d attempts lost to concurrent writes",
		name, ErrStale, ErrUnavailable, d.maxAttempts)
}

// backoff waits before attempt n (none before the first): a small, jittered,
// exponentially growing pause (at most 64 ms).
func (d *Dynamo) backoff(ctx context.Context, attempt int) error {
	if attempt == 0 {
		return ctx.Err()
	}
	ceiling := time.Millisecond << min(attempt, 6)
	return ctxutil.Sleep(ctx, time.Duration(rand.Int64N(int64(ceiling)))+time.Millisecond)
}

// ---- Delete ----

// Delete removes a record that is fully stopped with storage cleared
// (domain.CheckDelete; its errors are returned as they are), conditional on
// the refresh version that was read and, again, on those statuses: a lost
// condition is a *StaleError with the current record. The same transaction
// writes a tombstone event (the cause, expiring after the deleted-history
// TTL). The pipeline's other events are then deleted best effort: failures
// are logged, never returned, and events that could not be deleted get
// expires_at set so that DynamoDB's TTL removes them.
func (d *Dynamo) Delete(ctx context.Context, p domain.Pipeline, cause Cause) error {
	const op = "delete"
	if err := domain.CheckDelete(p); err != nil {
		return err
	}
	now := d.now()
	c, err := condition(expression.And(recordIs(p),
		eq(attrResourcesStatus, string(domain.ResourcesStopped)),
		eq(attrResourcesDesiredStatus, string(domain.ResourcesDesiredStopped)),
		eq(attrStorageStatus, string(domain.StorageCleared))))
	if err != nil {
		return errorf(op, "%w", err)
	}
	tomb := eventOf(p, cause, now)
	tomb.RefreshVersion = p.RefreshVersion + 1
	ev, err := encodeEvent(p.Name, p.ID, tomb, now.Add(d.deletedTTL))
	if err != nil {
		return err
	}
	putEv, err := d.txPut(ev, eventIsNew, false)
	if err != nil {
		return errorf(op, "%w", err)
	}
	del := types.TransactWriteItem{Delete: &types.Delete{
		TableName: aws.String(d.table), Key: recordKey(p.Name),
		ConditionExpression: c.Condition(), ExpressionAttributeNames: c.Names(), ExpressionAttributeValues: c.Values(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}}
	in := &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{del, putEv}}
	repeated, err := d.transact(ctx, op, in, "delete", p.Name, p.ID, fmt.Sprint(p.RefreshVersion), fmt.Sprint(p.Generation), cause.RequestID, cause.Action)
	if errors.Is(err, errTokenMismatch) {
		return errorf(op, "pipeline %q: %w (a concurrent delete)", p.Name, ErrStale)
	}
	if err != nil && !deletedByRepeat(err, repeated) {
		tc, err := cancellation(op, err)
		switch {
		case err != nil:
			return err
		case tc.failed == 0 && len(tc.item) == 0:
			return domain.UnknownPipelineName(p.Name)
		case tc.failed == 0:
			cur, err := decodeRecord(tc.item)
			if err != nil {
				return errorf(op, "%w", err)
			}
			return &StaleError{Current: cur}
		case tc.failed > 0:
			return errorf(op, "%w: pipeline %q: history event %d of id %s already exists", errCorrupt, p.Name, tomb.RefreshVersion, p.ID)
		}
		return errorf(op, "pipeline %q: %w (a concurrent transaction)", p.Name, ErrStale)
	}
	if err := d.deleteHistory(ctx, p.Name, p.ID, p.RefreshVersion, now.Add(d.deletedTTL)); err != nil {
		d.log.WarnContext(ctx, "store: history of a deleted pipeline left for TTL expiry",
			"pipeline", p.Name, "pipeline_id", p.ID, "error", err)
	}
	return nil
}

// deletedByRepeat: a repeat of an ambiguous delete found the record gone,
// so the first send deleted it (another delete would have had to win the
// same refresh version's condition, and deleting twice is one delete).
func deletedByRepeat(err error, repeated bool) bool {
	tc, cerr := cancellation("delete", err)
	return repeated && cerr == nil && tc.failed == 0 && len(tc.item) == 0
}

// deleteHistory deletes the events of one incarnation up to refresh version
// upTo (the tombstone after it stays until its TTL). Events it cannot delete
// get expires_at.
func (d *Dynamo) deleteHistory(ctx context.Context, name, id string, upTo int64, expires time.Time) error {
	const op = "delete history"
	kc, err := expression.NewBuilder().WithKeyCondition(expression.KeyAnd(
		expression.Key(attrPK).Equal(expression.Value(pipelinePK(name))),
		expression.Key(attrSK).Between(expression.Value(eventSKPrefixOf(id)), expression.Value(eventSK(id, upTo))),
	)).WithProjection(expression.NamesList(expression.Name(attrPK), expression.Name(attrSK))).Build()
	if err != nil {
		return errorf(op, "%w", err)
	}
	in := &dynamodb.QueryInput{
		TableName: aws.String(d.table), KeyConditionExpression: kc.KeyCondition(), ProjectionExpression: kc.Projection(),
		ExpressionAttributeNames: kc.Names(), ExpressionAttributeValues: kc.Values(), ConsistentRead: aws.Bool(true),
	}
	var leftover []map[string]types.AttributeValue
	var errs []error
	for {
		out, err := d.client.Query(ctx, in)
		if err != nil {
			errs = append(errs, classify(op, err))
			break
		}
		for start := 0; start < len(out.Items); start += 25 {
			batch := out.Items[start:min(start+25, len(out.Items))]
			left, err := d.batchDelete(ctx, batch)
			if err != nil {
				errs = append(errs, err)
			}
			leftover = append(leftover, left...)
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	if len(leftover) > 0 {
		if err := d.expire(ctx, leftover, expires); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// batchDelete deletes up to 25 keys, retrying unprocessed ones a few times;
// it returns the keys it could not delete.
func (d *Dynamo) batchDelete(ctx context.Context, keys []map[string]types.AttributeValue) ([]map[string]types.AttributeValue, error) {
	reqs := make([]types.WriteRequest, len(keys))
	for i, k := range keys {
		reqs[i] = types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: k}}
	}
	const attempts = 5
	for attempt := 0; attempt < attempts && len(reqs) > 0; attempt++ {
		if err := d.backoff(ctx, attempt*2); err != nil {
			break
		}
		out, err := d.client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{d.table: reqs}})
		if err != nil {
			return keysOf(reqs), classify("delete history", err)
		}
		reqs = out.UnprocessedItems[d.table]
	}
	if len(reqs) > 0 {
		return keysOf(reqs), fmt.Errorf("store: delete history: %d events unprocessed", len(reqs))
	}
	return nil, nil
}

func keysOf(reqs []types.WriteRequest) []map[string]types.AttributeValue {
	keys := make([]map[string]types.AttributeValue, 0, len(reqs))
	for _, r := range reqs {
		if r.DeleteRequest != nil {
			keys = append(keys, r.DeleteRequest.Key)
		}
	}
	return keys
}

// expire sets expires_at on existing events (never creating one).
func (d *Dynamo) expire(ctx context.Context, keys []map[string]types.AttributeValue, at time.Time) error {
	e, err := expression.NewBuilder().
		WithUpdate(expression.Set(expression.Name(attrExpiresAt), expression.Value(at.Unix()))).
		WithCondition(expression.AttributeExists(expression.Name(attrSK))).Build()
	if err != nil {
		return errorf("expire history", "%w", err)
	}
	var errs []error
	for _, k := range keys {
		_, err := d.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(d.table), Key: k, UpdateExpression: e.Update(), ConditionExpression: e.Condition(),
			ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
		})
		var ccf *types.ConditionalCheckFailedException
		if err != nil && !errors.As(err, &ccf) {
			errs = append(errs, classify("expire history", err))
		}
	}
	return errors.Join(errs...)
}

// ---- History ----

// History returns the status-history events of the pipeline's current
// incarnation (a re-created pipeline of the same name has a new id and never
// sees the old history), newest first, limit per page (limit <= 0:
// DefaultPageLimit, at most MaxPageLimit). It reads strongly consistent. An
// unknown pipeline is UnknownPipelineName; a token History did not return for
// this pipeline is InvalidQueryParameter (page_token).
func (d *Dynamo) History(ctx context.Context, name string, pageToken string, limit int) ([]Event, string, error) {
	const op = "history"
	p, err := d.Get(ctx, name)
	if err != nil {
		return nil, "", err
	}
	prefix := eventSKPrefixOf(p.ID)
	start, err := decodeToken(pageToken, historyKeyAttrs, func(k map[string]string) bool {
		return k[attrPK] == pipelinePK(name) && strings.HasPrefix(k[attrSK], prefix)
	})
	if err != nil {
		return nil, "", err
	}
	kc, err := expression.NewBuilder().WithKeyCondition(expression.KeyAnd(
		expression.Key(attrPK).Equal(expression.Value(pipelinePK(name))),
		expression.Key(attrSK).BeginsWith(prefix),
	)).Build()
	if err != nil {
		return nil, "", errorf(op, "%w", err)
	}
	in := &dynamodb.QueryInput{
		TableName: aws.String(d.table), KeyConditionExpression: kc.KeyCondition(),
		ExpressionAttributeNames: kc.Names(), ExpressionAttributeValues: kc.Values(),
		ScanIndexForward: aws.Bool(false), ConsistentRead: aws.Bool(true), ExclusiveStartKey: start,
	}
	return queryDecoded(ctx, d, op, in, pageLimit(limit), historyKeyAttrs, decodeEvent)
}

// ---- API keys ----

// PutAPIKey stores an API key (see Store): Hash is the lowercase hex SHA-256
// of the whole key, Role read or write, ID non-empty, Name valid by the
// pipeline name rule ("" = the ID), Description at most 300 characters;
// CreatedAt defaults to now. The key item and its name item are written in
// one transaction, each conditional on not existing: an existing hash is
// ErrAlreadyExists, a taken name a *domain.Error DuplicateName (of two
// concurrent puts of one name exactly one wins), and nothing is ever
// overwritten.
func (d *Dynamo) PutAPIKey(ctx context.Context, key APIKey) error {
	const op = "put api key"
	if !validHash(key.Hash) {
		return errorf(op, "hash must be 64 lowercase hex digits (a SHA-256)")
	}
	if !validRole(key.Role) || key.ID == "" {
		return errorf(op, "key %q: invalid role %q or empty id", key.ID, key.Role)
	}
	if key.Name == "" {
		key.Name = key.ID
	}
	if err := domain.ValidateName(key.Name); err != nil {
		return err
	}
	if err := domain.ValidateDescription(key.Description); err != nil {
		return err
	}
	if key.CreatedAt.IsZero() {
		key.CreatedAt = d.now()
	}
	item, err := marshalAPIKey(key)
	if err != nil {
		return errorf(op, "%w", err)
	}
	nameItem, err := marshalKeyName(key)
	if err != nil {
		return errorf(op, "%w", err)
	}
	isNew := expression.AttributeNotExists(expression.Name(attrPK))
	putKey, err := d.txPut(item, isNew, false)
	if err != nil {
		return errorf(op, "%w", err)
	}
	putName, err := d.txPut(nameItem, isNew, false)
	if err != nil {
		return errorf(op, "%w", err)
	}
	// The token is this call's (a put of the same key by a later call must
	// not be taken for a repeat of this one).
	call := uuid.NewString()
	// A concurrent put of the same name or hash conflicts: the loser ends as
	// DuplicateName.
	return d.putNew(ctx, op, fmt.Sprintf("key %q", key.Name), []types.TransactWriteItem{putKey, putName},
		func(attempt string) []string { return []string{"put api key", key.Hash, key.Name, call, attempt} },
		func(c *txCancel, repeated bool) error {
			switch {
			case c.failed == 0 && repeated:
				// The hash is of this key's fresh secret: an item with it after
				// a repeated send is this very write, landed on an earlier send.
				return nil
			case c.failed == 0:
				return errorf(op, "key %q: %w", key.ID, ErrAlreadyExists)
			}
			return domain.DuplicateAPIKeyName(key.Name) // the name item (the second)
		})
}

// GetAPIKey finds an API key by its hash, strongly consistent; ErrNotFound
// when unknown (a string that is no SHA-256 hex is unknown without a call).
func (d *Dynamo) GetAPIKey(ctx context.Context, hash string) (APIKey, error) {
	const op = "get api key"
	if !validHash(hash) {
		return APIKey{}, errorf(op, "%w", ErrNotFound)
	}
	out, err := d.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(d.table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{
			attrPK: &types.AttributeValueMemberS{Value: apiKeyPK(hash)},
			attrSK: &types.AttributeValueMemberS{Value: apiKeySK},
		},
	})
	if err != nil {
		return APIKey{}, classify(op, err)
	}
	if len(out.Item) == 0 {
		return APIKey{}, errorf(op, "%w", ErrNotFound)
	}
	k, err := decodeAPIKey(out.Item)
	if err != nil {
		return APIKey{}, errorf(op, "%w", err)
	}
	return k, nil
}

func keyNameKey(name string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: &types.AttributeValueMemberS{Value: keyNamePK(name)},
		attrSK: &types.AttributeValueMemberS{Value: keyNameSK},
	}
}

func apiKeyKey(hash string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: &types.AttributeValueMemberS{Value: apiKeyPK(hash)},
		attrSK: &types.AttributeValueMemberS{Value: apiKeySK},
	}
}

// GetAPIKeyByName reads the name item of an API key, strongly consistent
// (see Store). A name that is not valid by the pipeline name rule is
// unknown without a call to DynamoDB.
func (d *Dynamo) GetAPIKeyByName(ctx context.Context, name string) (APIKey, error) {
	const op = "get api key by name"
	if domain.ValidateName(name) != nil {
		return APIKey{}, domain.UnknownAPIKey(name)
	}
	out, err := d.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(d.table), ConsistentRead: aws.Bool(true), Key: keyNameKey(name),
	})
	if err != nil {
		return APIKey{}, classify(op, err)
	}
	if len(out.Item) == 0 {
		return APIKey{}, domain.UnknownAPIKey(name)
	}
	k, err := decodeKeyName(out.Item)
	if err != nil {
		return APIKey{}, errorf(op, "%w", err)
	}
	return k, nil
}

// ListAPIKeys returns the named API keys in name order (see Store): a query
// of gsi1 (partition APIKEY), paged like List, eventually consistent.
func (d *Dynamo) ListAPIKeys(ctx context.Context, pageToken string, limit int) ([]APIKey, string, error) {
	return listPage(ctx, d, "list api keys", keyListGSIPK, "", keyNameSK, keyNamePK, pageToken, limit, decodeKeyName)
}

// DeleteAPIKey deletes the API key of that name (see Store): it reads the
// name item (strongly consistent), then deletes it, conditional on still
// naming the same hash, together with the key item in one transaction. A
// lost condition or a transaction conflict reads again (at most
// DefaultMaxAttempts rounds).
func (d *Dynamo) DeleteAPIKey(ctx context.Context, name string) (APIKey, error) {
	const op = "delete api key"
	call := uuid.NewString() // this call's token (see PutAPIKey)
	for attempt := 0; attempt < d.maxAttempts; attempt++ {
		if err := d.backoff(ctx, attempt); err != nil {
			return APIKey{}, classify(op, err)
		}
		k, err := d.GetAPIKeyByName(ctx, name)
		if err != nil {
			return APIKey{}, err
		}
		c, err := condition(eq("hash", k.Hash))
		if err != nil {
			return APIKey{}, errorf(op, "%w", err)
		}
		in := &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
			{Delete: &types.Delete{
				TableName: aws.String(d.table), Key: keyNameKey(name),
				ConditionExpression: c.Condition(), ExpressionAttributeNames: c.Names(), ExpressionAttributeValues: c.Values(),
			}},
			{Delete: &types.Delete{TableName: aws.String(d.table), Key: apiKeyKey(k.Hash)}},
		}}
		// Through transact, as every write: an ambiguous answer is repeated
		// with the same token, so a 503 means nothing was deleted.
		repeated, err := d.transact(ctx, op, in, "delete api key", name, k.Hash, call, fmt.Sprint(attempt))
		if err == nil {
			return k, nil
		}
		if errors.Is(err, errTokenMismatch) {
			continue
		}
		tc, err := cancellation(op, err)
		if err != nil {
			return APIKey{}, err
		}
		if tc.failed == 0 && repeated {
			if _, gerr := d.GetAPIKey(ctx, k.Hash); errors.Is(gerr, ErrNotFound) {
				return k, nil // this delete landed on an earlier send
			}
		}
		// Deleted (or replaced) concurrently, or a conflict: read again.
	}
	return APIKey{}, errorf(op, "%w: key %q: gave up after %d attempts lost to concurrent writes", ErrUnavailable, name, d.maxAttempts)
}

// scanAPI is the Scan of the DynamoDB client, used only by the one-off
// NameLegacyAPIKeys (never on a request path, so not in DynamoAPI).
type scanAPI interface {
	Scan(ctx context.Context, params *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// NameLegacyAPIKeys gives every API key stored before keys had names (a key
// item without a name attribute, e.g. made by `admin create-key` before
// GET /v0/api_keys existed) its ID as name: it sets the name on the key item
// and writes the name item, in one transaction, so that the key can be
// listed, read and deleted by name. Such keys authenticate with or without
// it. It scans the whole table (an operator's one-off migration, run by
// `admin name-keys`; the request paths never scan) and is idempotent: a run
// after a complete one names nothing. A key whose ID is already taken as a
// name by another key is left unnamed and reported in the error.
func (d *Dynamo) NameLegacyAPIKeys(ctx context.Context) (named []APIKey, err error) {
	const op = "name legacy api keys"
	scanner, ok := d.client.(scanAPI)
	if !ok {
		return nil, errorf(op, "the DynamoDB client cannot scan")
	}
	filter, err := expression.NewBuilder().WithFilter(expression.And(
		eq("type", typeAPIKey), expression.AttributeNotExists(expression.Name("name")))).Build()
	if err != nil {
		return nil, errorf(op, "%w", err)
	}
	in := &dynamodb.ScanInput{
		TableName: aws.String(d.table), FilterExpression: filter.Filter(), ConsistentRead: aws.Bool(true),
		ExpressionAttributeNames: filter.Names(), ExpressionAttributeValues: filter.Values(),
	}
	var errs []error
	for {
		out, err := scanner.Scan(ctx, in)
		if err != nil {
			return named, classify(op, err)
		}
		for _, it := range out.Items {
			k, err := decodeAPIKey(it)
			if err != nil {
				errs = append(errs, errorf(op, "%w", err))
				continue
			}
			k.Name = k.ID
			if err := d.nameAPIKey(ctx, k); err != nil {
				errs = append(errs, err)
				continue
			}
			named = append(named, k)
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	return named, errors.Join(errs...)
}

// nameAPIKey sets k.Name on an unnamed key item and writes its name item.
func (d *Dynamo) nameAPIKey(ctx context.Context, k APIKey) error {
	const op = "name api key"
	if err := domain.ValidateName(k.Name); err != nil {
		return errorf(op, "key %q: its id is no valid name: %w", k.ID, err)
	}
	upd, err := expression.NewBuilder().
		WithUpdate(expression.Set(expression.Name("name"), expression.Value(k.Name))).
		WithCondition(expression.And(expression.AttributeExists(expression.Name(attrPK)), expression.AttributeNotExists(expression.Name("name")))).
		Build()
	if err != nil {
		return errorf(op, "%w", err)
	}
	nameItem, err := marshalKeyName(k)
	if err != nil {
		return errorf(op, "%w", err)
	}
	putName, err := d.txPut(nameItem, expression.AttributeNotExists(expression.Name(attrPK)), false)
	if err != nil {
		return errorf(op, "%w", err)
	}
	_, err = d.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Update: &types.Update{
			TableName: aws.String(d.table), Key: apiKeyKey(k.Hash), UpdateExpression: upd.Update(),
			ConditionExpression: upd.Condition(), ExpressionAttributeNames: upd.Names(), ExpressionAttributeValues: upd.Values(),
		}},
		putName,
	}})
	if err == nil {
		return nil
	}
	c, err := cancellation(op, err)
	switch {
	case err != nil:
		return err
	case c.failed == 0:
		return nil // deleted or named meanwhile: nothing to do
	case c.failed == 1:
		return errorf(op, "key %q: %w", k.ID, domain.DuplicateAPIKeyName(k.Name))
	}
	return errorf(op, "key %q: %w (a concurrent transaction; run again)", k.ID, ErrUnavailable)
}

// listPage reads one page of the items listed under partition gsiPK of
// gsi1 (pipeline records or API key names), in gsi1sk (name) order, from
// the first name >= from ("": from the first), each decoded by decode. A
// page token is accepted only if it is one such a listing returned: its
// keys must be of an item of that kind (sort key sk, partition key
// pkOf(name)) at or after from.
func listPage[T any](ctx context.Context, d *Dynamo, op, gsiPK, from, sk string, pkOf func(string) string, pageToken string, limit int,
	decode func(map[string]types.AttributeValue) (T, error)) ([]T, string, error) {
	start, err := decodeToken(pageToken, listKeyAttrs, func(k map[string]string) bool {
		return k[attrGSI1PK] == gsiPK && k[attrSK] == sk && k[attrGSI1SK] >= from &&
			domain.ValidateName(k[attrGSI1SK]) == nil && k[attrPK] == pkOf(k[attrGSI1SK])
	})
	if err != nil {
		return nil, "", err
	}
	cond := expression.Key(attrGSI1PK).Equal(expression.Value(gsiPK))
	if from != "" {
		// gsi1sk >= from: a start that need not be a name that exists (a
		// deleted pipeline's); ExclusiveStartKey would skip it and must name
		// an item's full key on a GSI (API_Query).
		cond = expression.KeyAnd(cond, expression.Key(attrGSI1SK).GreaterThanEqual(expression.Value(from)))
	}
	kc, err := expression.NewBuilder().WithKeyCondition(cond).Build()
	if err != nil {
		return nil, "", errorf(op, "%w", err)
	}
	in := &dynamodb.QueryInput{
		TableName: aws.String(d.table), IndexName: aws.String(listGSI),
		KeyConditionExpression: kc.KeyCondition(), ExpressionAttributeNames: kc.Names(), ExpressionAttributeValues: kc.Values(),
		ExclusiveStartKey: start,
	}
	return queryDecoded(ctx, d, op, in, pageLimit(limit), listKeyAttrs, decode)
}
