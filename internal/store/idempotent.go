package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/sluicehq/sluice/internal/ctxutil"
)

// Idempotent transactions.
//
// A TransactWriteItems that times out (or is throttled, or answered with a
// 5xx, or whose connection breaks) may or may not have been committed. The
// store does not answer such a write with ErrUnavailable at once: it repeats
// exactly the same request, with the same ClientRequestToken, until DynamoDB
// gives a definitive answer or DefaultWriteAttempts are spent. The DynamoDB
// API reference (TransactWriteItems, ClientRequestToken,
// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html)
// says that a client request token makes the call idempotent: "multiple
// identical calls have the same effect as one single call"; a token "is
// valid for 10 minutes after the first request that uses it is completed";
// a repeat "with the same client token but a change in other parameters
// within the 10-minute idempotency window" is an
// IdempotentParameterMismatchException; a repeat while the first is still
// being processed is a TransactionInProgressException. So:
//
//   - success of a repeat: the write is in (the first attempt's, or this one);
//   - a TransactionCanceledException of a repeat: the write's condition is
//     false now. Every record write is conditional on the refresh version it
//     read, which only grows, so it can never land later; if the item
//     returned with the failure carries this write's write_id, it landed
//     (this also covers a repeat after the token's window, or an emulator
//     that ignores tokens);
//   - IdempotentParameterMismatchException: the token belongs to another
//     request, so this one did not land: treated as a lost race (read again);
//   - still no answer after the attempts: a strongly consistent read of the
//     record settles whether this write is in (its write_id); if it is not,
//     ErrUnavailable. Each send is
//     itself retried by the SDK with the same token, and the repeats span
//     more than a second, so "nothing was changed" (the 503 of SPEC §5) is
//     what DynamoDB last said: every definitive answer it gave was "not
//     done" (throttled, in progress elsewhere) or none came at all.
//
// The token is derived from the write itself (the key, the version the
// condition expects, the record written and its unique write_id), so it is
// the same for every repeat of one write and differs for any other write.

// DefaultWriteAttempts bounds the sends of one transaction whose answers
// were ambiguous (the first send included).
const DefaultWriteAttempts = 6

// writeRepeatBudget bounds the repeats of a write whose caller's context is
// already done (a Lambda near its deadline): they run detached for at most
// this long, so that the answer is definitive.
const writeRepeatBudget = 5 * time.Second

// repeatPause is the pause before repeat n (from 1) of an ambiguous write:
// 50 ms doubling, at most 1 s (with DefaultWriteAttempts: about 1.5 s in
// all, on top of the SDK's own retries of each send).
func repeatPause(n int) time.Duration {
	return min(50*time.Millisecond<<(n-1), time.Second)
}

// requestToken derives the ClientRequestToken of a write (at most 36
// characters, as DynamoDB requires) from parts that identify it.
func requestToken(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:])[:36]
}

// ambiguous reports an error after which the transaction may or may not have
// been committed (or was refused for a passing reason: throttling, an
// in-progress duplicate): repeating the same request is the way to know.
func ambiguous(err error) bool {
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) || errors.Is(err, context.Canceled) {
		return false
	}
	return isUnavailable(err)
}

// recordJSON is the record attribute of an encoded record item.
func recordJSON(item map[string]types.AttributeValue) string {
	if s, ok := item["record"].(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

// errTokenMismatch: DynamoDB answered IdempotentParameterMismatch.
var errTokenMismatch = errors.New("client request token used by another request")

// transact sends in with a ClientRequestToken derived from tokenParts,
// repeating it on ambiguous answers (see above). repeated reports whether it
// was sent more than once (so a condition failure may be this write's own
// earlier success). A token mismatch is returned as errTokenMismatch.
func (d *Dynamo) transact(ctx context.Context, op string, in *dynamodb.TransactWriteItemsInput, tokenParts ...string) (repeated bool, err error) {
	in.ClientRequestToken = aws.String(requestToken(append([]string{d.table}, tokenParts...)...))
	attempts := max(d.writeAttempts, 1)
	send, detached := ctx, false
	for attempt := 0; attempt < attempts; attempt++ {
		if attempt > 0 {
			repeated = true
			if !detached && ctx.Err() != nil && !errors.Is(ctx.Err(), context.Canceled) {
				detached = true
				// The caller's deadline passed with the outcome unknown:
				// finish finding out, detached and bounded.
				c, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeRepeatBudget)
				defer cancel()
				send = c
			}
			if err := ctxutil.Sleep(send, repeatPause(attempt)); err != nil {
				break
			}
		}
		_, err = d.client.TransactWriteItems(send, in)
		var apiErr smithy.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode() == "IdempotentParameterMismatchException" {
			return repeated, fmt.Errorf("store: %s: %w: %w", op, errTokenMismatch, err)
		}
		if err == nil || !ambiguous(err) {
			return repeated, err
		}
	}
	return repeated, fmt.Errorf("store: %s: no definitive answer after %d sends of the same transaction: %w", op, attempts, err)
}

// landedRecord settles a record write that got no definitive answer: a
// strongly consistent read of the item tells whether this write (writeID)
// is in. It is read detached from the caller's context (bounded), since the
// caller's deadline is the usual reason for the ambiguity.
func (d *Dynamo) landedRecord(ctx context.Context, name, writeID string) bool {
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeRepeatBudget)
	defer cancel()
	out, err := d.client.GetItem(c, &dynamodb.GetItemInput{TableName: aws.String(d.table), Key: recordKey(name), ConsistentRead: aws.Bool(true)})
	return err == nil && isOwnWrite(out.Item, writeID)
}
