package store

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sluicehq/sluice/internal/domain"
)

// Cursors is what the reconciler needs to resume an unfinished pass: a
// listing that starts at a name, and one small resume-point item per shard.
//
// The cursor is a hint, never a fence: a pass that finds none, or one it
// cannot read or use, lists from the first name as before. Nothing else
// reads it, and no write of a pipeline depends on it.
type Cursors interface {
	// ListFrom is List restricted to the records whose name is >= from (in
	// the same UTF-8 byte order); from need not name a record (a deleted
	// pipeline's name is a valid start). from "" is List. A page token is
	// valid only with the from it was returned for.
	ListFrom(ctx context.Context, from, pageToken string, limit int) (records []domain.Pipeline, next string, err error)
	// ReconcilerCursor reads the resume point of a shard (strongly
	// consistent). None (never written, or cleared): Cursor{} and nil. An
	// item that is not a valid cursor is an error wrapping ErrCorruptCursor.
	ReconcilerCursor(ctx context.Context, key CursorKey) (Cursor, error)
	// SetReconcilerCursor records resumeFrom (a valid pipeline name) as the
	// shard's resume point, unconditionally: the last writer wins.
	SetReconcilerCursor(ctx context.Context, key CursorKey, resumeFrom string) error
	// ClearReconcilerCursor removes the shard's resume point if it still is
	// ifResumeFrom; cleared is false when it is not (another pass recorded
	// another one since, or there is none). ifResumeFrom "" clears whatever
	// is there (a corrupt item included).
	ClearReconcilerCursor(ctx context.Context, key CursorKey, ifResumeFrom string) (cleared bool, err error)
}

// CursorKey names the cursor of one shard of the reconciler's pass (see
// reconciler.Reconciler.Shards): 0 ≤ Shard < Shards. Shards ≤ 1 is the
// unsharded pass, 0/1. A cursor of another shard count is another item.
type CursorKey struct{ Shard, Shards int }

func (k CursorKey) normal() CursorKey {
	if k.Shards <= 1 {
		return CursorKey{Shard: 0, Shards: 1}
	}
	return k
}

func (k CursorKey) String() string {
	k = k.normal()
	return strconv.Itoa(k.Shard) + "/" + strconv.Itoa(k.Shards)
}

func (k CursorKey) valid() bool {
	k = k.normal()
	return k.Shard >= 0 && k.Shard < k.Shards
}

// Cursor is a shard's resume point.
type Cursor struct {
	// ResumeFrom is the name of the first pipeline an unfinished pass did
	// not take; "" when there is no resume point.
	ResumeFrom string
	// WrittenAt is when it was written (zero when there is none).
	WrittenAt time.Time
}

// ErrCorruptCursor: the cursor item is not one this package wrote (a wrong
// type, or a resume point that is not a pipeline name).
var ErrCorruptCursor = errors.New("corrupt reconciler cursor")

// The cursor item: pk RECONCILER#CURSOR#<shard>/<shards>, sk CURSOR. It has
// no gsi1pk/gsi1sk, so it is in no index (gsi1 is sparse: only items with
// both index key attributes are in it) and no pipeline or API key listing
// can return it; its partition key prefix is its own, so IAM confines it
// (dynamodb:LeadingKeys) like the other kinds of item. expires_at (TTL) is
// renewed by every write, so the cursor of a shard count no longer run
// disappears on its own; a live one is rewritten by every unfinished pass.
const (
	cursorPKPrefix = "RECONCILER#CURSOR#"
	cursorSK       = "CURSOR"
	typeCursor     = "reconciler_cursor"

	attrResumeFrom      = "resume_from"
	attrCursorWrittenAt = "written_at"
	attrRingCompletedAt = "ring_completed_at"

	// cursorTTL: how long a cursor item outlives its last write.
	cursorTTL = 7 * 24 * time.Hour
)

// ReconcilerItemsPrefix is the partition key prefix of the reconciler's own
// items (its cursors), for the IAM condition dynamodb:LeadingKeys.
const ReconcilerItemsPrefix = "RECONCILER#"

func cursorKey(k CursorKey) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: &types.AttributeValueMemberS{Value: cursorPKPrefix + k.String()},
		attrSK: &types.AttributeValueMemberS{Value: cursorSK},
	}
}

type cursorItem struct {
	Type       string `dynamodbav:"type"`
	Shard      int    `dynamodbav:"shard"`
	Shards     int    `dynamodbav:"shards"`
	ResumeFrom string `dynamodbav:"resume_from"`
	WrittenAt  string `dynamodbav:"written_at"`
}

// ListFrom queries gsi1 for gsi1pk = PIPELINE AND gsi1sk >= from. The start
// is a key condition, not an ExclusiveStartKey built from the name: an
// ExclusiveStartKey is exclusive (the pipeline named by it would be
// skipped), and on a global secondary index it must be a key the index
// returned as LastEvaluatedKey, i.e. carry the table's key attributes (pk,
// sk) as well as the index's (gsi1pk, gsi1sk) — see ExclusiveStartKey and
// KeyConditionExpression ("sortKeyName >= :sortkeyval") in
// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Query.html,
// and the sort order (UTF-8 bytes, as Go compares strings) in
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.KeyConditionExpressions.html.
// A key condition on a name that no longer exists simply starts at the next
// one. Pages after the first go on from LastEvaluatedKey (the page token) as
// List's do.
func (d *Dynamo) ListFrom(ctx context.Context, from, pageToken string, limit int) ([]domain.Pipeline, string, error) {
	const op = "list from"
	if from == "" {
		return d.List(ctx, pageToken, limit)
	}
	if domain.ValidateName(from) != nil {
		return nil, "", domain.InvalidQueryParameter("from", from, "a pipeline name")
	}
	return listPage(ctx, d, op, listGSIPK, from, recordSK, pipelinePK, pageToken, limit, decodeRecord)
}

// ReconcilerCursor reads the cursor item (GetItem, strongly consistent).
func (d *Dynamo) ReconcilerCursor(ctx context.Context, key CursorKey) (Cursor, error) {
	const op = "read reconciler cursor"
	if !key.valid() {
		return Cursor{}, errorf(op, "invalid shard %v", key)
	}
	key = key.normal()
	out, err := d.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(d.table), Key: cursorKey(key), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Cursor{}, classify(op, err)
	}
	if len(out.Item) == 0 {
		return Cursor{}, nil
	}
	if v, ok := out.Item[attrResumeFrom]; ok {
		if _, isS := v.(*types.AttributeValueMemberS); !isS {
			return Cursor{}, errorf(op, "%w %s: resume_from is not a string", ErrCorruptCursor, key)
		}
	}
	var it cursorItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return Cursor{}, errorf(op, "%w %s: %v", ErrCorruptCursor, key, err)
	}
	if it.Type != typeCursor || it.Shard != key.Shard || it.Shards != key.Shards {
		return Cursor{}, errorf(op, "%w %s: type %q, shard %d/%d", ErrCorruptCursor, key, it.Type, it.Shard, it.Shards)
	}
	if it.ResumeFrom == "" {
		return Cursor{}, nil // cleared
	}
	if domain.ValidateName(it.ResumeFrom) != nil {
		return Cursor{}, errorf(op, "%w %s: resume point %q is not a pipeline name", ErrCorruptCursor, key, it.ResumeFrom)
	}
	c := Cursor{ResumeFrom: it.ResumeFrom}
	if t, err := time.Parse(time.RFC3339Nano, it.WrittenAt); err == nil {
		c.WrittenAt = t
	}
	return c, nil
}

// SetReconcilerCursor writes the resume point with one unconditional
// UpdateItem (it creates the item or replaces its attributes). Last writer
// wins, on purpose: a pass writes only the name where it itself stopped,
// having taken every pipeline from the start it read up to that name, so
// any value any pass writes is a safe start for the next one. Of two
// overlapping passes (a duplicate delivery, a pass that overran the
// minute), whichever writes last decides where the next pass starts: either
// that pass re-takes pipelines the other one just took (wasted work) or it
// goes on past pipelines the writer itself just took. A conditional write
// (compare-and-set on the value read) would only pick another of those safe
// values, at the cost of a read-retry loop; it would not make any pipeline
// observed sooner. A lost write leaves the previous value, which the next
// pass repeats from: the old behaviour for one pass, never a skip.
func (d *Dynamo) SetReconcilerCursor(ctx context.Context, key CursorKey, resumeFrom string) error {
	const op = "write reconciler cursor"
	if !key.valid() {
		return errorf(op, "invalid shard %v", key)
	}
	if err := domain.ValidateName(resumeFrom); err != nil {
		return errorf(op, "resume point %q: %w", resumeFrom, err)
	}
	key = key.normal()
	upd := cursorWrite(key, d.now(), expression.Set(expression.Name(attrResumeFrom), expression.Value(resumeFrom)))
	e, err := expression.NewBuilder().WithUpdate(upd).Build()
	if err != nil {
		return errorf(op, "%w", err)
	}
	_, err = d.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(d.table), Key: cursorKey(key), UpdateExpression: e.Update(),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
	})
	return classify(op, err)
}

// cursorWrite adds to upd what every write of a cursor item sets: its
// kind and shard, when it was written (now) and its TTL.
func cursorWrite(key CursorKey, now time.Time, upd expression.UpdateBuilder) expression.UpdateBuilder {
	return upd.Set(expression.Name("type"), expression.Value(typeCursor)).
		Set(expression.Name("shard"), expression.Value(key.Shard)).
		Set(expression.Name("shards"), expression.Value(key.Shards)).
		Set(expression.Name(attrCursorWrittenAt), expression.Value(now.UTC().Format(time.RFC3339Nano))).
		Set(expression.Name(attrExpiresAt), expression.Value(now.Add(cursorTTL).Unix()))
}

// ClearReconcilerCursor removes resume_from (and records ring_completed_at)
// with one UpdateItem conditional on resume_from still being ifResumeFrom.
// Conditional, unlike the write: a pass that completed its ring knows only
// that the ring from the start it read is done; a resume point another pass
// recorded since is newer news (clearing it would only cost the next pass a
// restart from the first name, but there is no reason to). A clear that
// loses the race, or is lost itself, leaves a resume point, which is always
// a safe start. The item stays (until its TTL) with ring_completed_at for
// operators; a read sees no resume point.
func (d *Dynamo) ClearReconcilerCursor(ctx context.Context, key CursorKey, ifResumeFrom string) (bool, error) {
	const op = "clear reconciler cursor"
	if !key.valid() {
		return false, errorf(op, "invalid shard %v", key)
	}
	key = key.normal()
	now := d.now()
	upd := cursorWrite(key, now, expression.Remove(expression.Name(attrResumeFrom)).
		Set(expression.Name(attrRingCompletedAt), expression.Value(now.UTC().Format(time.RFC3339Nano))))
	cond := expression.AttributeExists(expression.Name(attrPK))
	if ifResumeFrom != "" {
		cond = eq(attrResumeFrom, ifResumeFrom)
	}
	e, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return false, errorf(op, "%w", err)
	}
	_, err = d.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(d.table), Key: cursorKey(key), UpdateExpression: e.Update(),
		ConditionExpression:      e.Condition(),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false, nil
	}
	if err != nil {
		return false, classify(op, err)
	}
	return true, nil
}
