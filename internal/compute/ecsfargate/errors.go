package ecsfargate

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"

	"github.com/sluicehq/sluice/internal/compute"
)

// Error is a driver failure. Its message names the operation and, for AWS errors,
// the error code and message, but never the AWS request id. errors.Is(err,
// compute.ErrTemporary) tells whether retrying may help; errors.As reaches the
// underlying smithy.APIError when there is one.
type Error struct {
	// Op is the failed step, e.g. "ecs RunTask".
	Op string
	// Code is the AWS error code or failure reason, if any.
	Code string
	// Message describes the failure.
	Message string
	// Temporary: worth retrying (throttling, capacity, 5xx, network).
	Temporary bool

	cause error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": ")
	if e.Code != "" {
		b.WriteString(e.Code)
		if e.Message != "" {
			b.WriteString(": ")
		}
	}
	b.WriteString(e.Message)
	return b.String()
}

// Unwrap exposes compute.ErrTemporary (when temporary) and the cause.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Temporary {
		errs = append(errs, compute.ErrTemporary)
	}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}

var (
	retryables = retry.IsErrorRetryables(retry.DefaultRetryables)
	throttles  = retry.IsErrorThrottles(retry.DefaultThrottles)
)

// awsError turns an SDK error into an *Error, classifying it as temporary or not.
func awsError(op string, err error) error {
	if err == nil {
		return nil
	}
	e := &Error{Op: op}
	e.Temporary = throttles.IsErrorThrottle(err) == aws.TrueTernary ||
		retryables.IsErrorRetryable(err) == aws.TrueTernary
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		e.Code = apiErr.ErrorCode()
		e.Message = apiErr.ErrorMessage()
		e.cause = apiErr // the APIError's text carries no request id, unlike the operation error around it
		if apiErr.ErrorFault() == smithy.FaultServer {
			e.Temporary = true
		}
		if e.Code == "ClientException" && capacityMessage(e.Message) {
			// RunTask answers ClientException when the cluster's quota of tasks in
			// PROVISIONING is reached: a capacity error that clears by itself.
			e.Temporary = true
		}
		return e
	}
	// Transport errors (no response, hence no request id) and context errors.
	var opErr *smithy.OperationError
	inner := err
	if errors.As(err, &opErr) {
		inner = opErr.Err
	}
	e.Message = inner.Error()
	e.cause = err
	return e
}

// capacityMessage recognises ECS's wording for capacity shortages.
func capacityMessage(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "capacity") || strings.Contains(m, "provisioning") ||
		strings.Contains(m, "try again")
}

// failureError turns RunTask's failures into an *Error. RESOURCE:* (no CPU, memory,
// ENI or Fargate capacity), AGENT and capacity wording are temporary; anything else
// (MISSING, ATTRIBUTE, …) is permanent.
func failureError(op, reason, detail, arn string) error {
	e := &Error{Op: op, Code: reason}
	parts := []string{}
	if detail != "" {
		parts = append(parts, detail)
	}
	if arn != "" {
		parts = append(parts, "("+arn+")")
	}
	e.Message = strings.Join(parts, " ")
	if e.Message == "" && e.Code == "" {
		e.Message = "RunTask started no task"
	}
	r := strings.ToUpper(reason)
	e.Temporary = strings.HasPrefix(r, "RESOURCE:") || r == "AGENT" ||
		capacityMessage(reason) || capacityMessage(detail)
	return e
}

// permanent is an *Error that retrying cannot fix (bad input, bad configuration).
func permanent(op, format string, args ...any) error {
	return &Error{Op: op, Message: fmt.Sprintf(format, args...)}
}
