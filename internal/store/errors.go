package store

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/sluicehq/sluice/internal/domain"
)

// ErrAlreadyExists: PutAPIKey found a key with the same hash (it never
// overwrites one).
var ErrAlreadyExists = errors.New("already exists")

// StaleError is the ErrStale of a conditional write that lost because the
// record changed between read and write; Current is the record as DynamoDB
// returned it with the condition failure. (A write that lost without the
// current record, e.g. to a concurrent transaction, is a plain wrapped
// ErrStale.)
type StaleError struct {
	Current domain.Pipeline
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("%s (now at refresh version %d, generation %d)", ErrStale, e.Current.RefreshVersion, e.Current.Generation)
}

// Is makes errors.Is(err, ErrStale) hold.
func (e *StaleError) Is(target error) bool { return target == ErrStale }

// DynamoDB error codes (the API error codes and the cancellation reason
// codes of TransactWriteItems).
const (
	reasonNone                   = "None"
	reasonConditionalCheckFailed = "ConditionalCheckFailed"
	reasonTransactionConflict    = "TransactionConflict"
	reasonThrottling             = "ThrottlingError"
	reasonProvisionedThroughput  = "ProvisionedThroughputExceeded"
)

// unavailableCodes are DynamoDB error codes that mean "retry later, nothing
// was done".
var unavailableCodes = map[string]bool{
	"ProvisionedThroughputExceededException": true,
	"ThrottlingException":                    true,
	"RequestLimitExceeded":                   true,
	"InternalServerError":                    true,
	"ServiceUnavailable":                     true,
	"TransactionInProgressException":         true,
	"TransactionConflictException":           true,
	reasonThrottling:                         true,
	reasonProvisionedThroughput:              true,
}

// classify wraps an error of a DynamoDB call: ErrUnavailable for throttling,
// service errors, timeouts and connection failures; otherwise a plain error
// (an internal error to the API: validation errors are programming errors).
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	if isUnavailable(err) {
		return fmt.Errorf("store: %s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

func isUnavailable(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return unavailableCodes[apiErr.ErrorCode()]
	}
	if errors.Is(err, context.Canceled) {
		return false // the caller gave up: not the store's failure
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var sendErr *smithyhttp.RequestSendError
	var netErr net.Error
	var canceled *aws.RequestCanceledError
	return errors.As(err, &sendErr) || errors.As(err, &netErr) || (errors.As(err, &canceled) && !errors.Is(err, context.Canceled))
}

// txCancel is a TransactWriteItems that DynamoDB cancelled for a reason the
// caller handles: a failed condition (index and the ALL_OLD item, when
// requested) or a conflict with a concurrent transaction.
type txCancel struct {
	failed   int // index of the first ConditionalCheckFailed item, -1 if none
	item     map[string]types.AttributeValue
	conflict bool
}

// cancellation inspects a TransactWriteItems error. It returns the
// cancellation the caller must handle, or the error to return (classified).
func cancellation(op string, err error) (*txCancel, error) {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return nil, classify(op, err)
	}
	c := &txCancel{failed: -1}
	var unavailable, other []string
	for i, r := range tce.CancellationReasons {
		code := aws.ToString(r.Code)
		switch code {
		case "", reasonNone:
		case reasonConditionalCheckFailed:
			if c.failed < 0 {
				c.failed, c.item = i, r.Item
			}
		case reasonTransactionConflict:
			c.conflict = true
		case reasonThrottling, reasonProvisionedThroughput:
			unavailable = append(unavailable, code)
		default:
			other = append(other, fmt.Sprintf("item %d: %s %s", i, code, aws.ToString(r.Message)))
		}
	}
	switch {
	case len(other) > 0:
		return nil, fmt.Errorf("store: %s: transaction cancelled: %v: %w", op, other, err)
	case c.failed >= 0:
		return c, nil
	case len(unavailable) > 0:
		return nil, fmt.Errorf("store: %s: %w: transaction cancelled (%v): %w", op, ErrUnavailable, unavailable, err)
	case c.conflict:
		return c, nil
	}
	// No reasons we know: treat like a conflict (nothing was written).
	return &txCancel{failed: -1, conflict: true}, nil
}
