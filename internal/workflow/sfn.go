package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/sluicehq/sluice/internal/domain"
)

// SFNAPI is the part of the Step Functions client that SFN uses
// (*sfn.Client satisfies it).
type SFNAPI interface {
	StartExecution(ctx context.Context, in *sfn.StartExecutionInput, optFns ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error)
	StopExecution(ctx context.Context, in *sfn.StopExecutionInput, optFns ...func(*sfn.Options)) (*sfn.StopExecutionOutput, error)
	DescribeExecution(ctx context.Context, in *sfn.DescribeExecutionInput, optFns ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error)
}

// SFNConfig configures SFN.
type SFNConfig struct {
	// Client calls Step Functions.
	Client SFNAPI
	// StateMachines maps every workflow kind to its state machine ARN
	// (arn:<partition>:states:<region>:<account>:stateMachine:<name>).
	StateMachines map[domain.WorkflowKind]string
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// SFN is the production Starter: AWS Step Functions.
type SFN struct {
	client   SFNAPI
	machines map[domain.WorkflowKind]string
	now      func() time.Time
}

var _ Starter = (*SFN)(nil)

// NewSFN checks the configuration: a client and a valid state machine ARN for
// every kind of domain.AllWorkflowKinds.
func NewSFN(cfg SFNConfig) (*SFN, error) {
	if cfg.Client == nil {
		return nil, errors.New("workflow: no Step Functions client")
	}
	machines := make(map[domain.WorkflowKind]string, len(cfg.StateMachines))
	for _, k := range domain.AllWorkflowKinds {
		arn, ok := cfg.StateMachines[k]
		if !ok || arn == "" {
			return nil, fmt.Errorf("workflow: no state machine ARN for workflow kind %q", k)
		}
		if _, err := ExecutionARN(arn, "x"); err != nil {
			return nil, fmt.Errorf("workflow: state machine of kind %q: %w", k, err)
		}
		machines[k] = arn
	}
	for k := range cfg.StateMachines {
		if _, ok := machines[k]; !ok {
			return nil, fmt.Errorf("workflow: unknown workflow kind %q", k)
		}
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &SFN{client: cfg.Client, machines: machines, now: now}, nil
}

// ExecutionARN builds the ARN of execution name of a state machine:
// arn:…:stateMachine:M (or a version/alias ARN arn:…:stateMachine:M:Q) gives
// arn:…:execution:M:name.
func ExecutionARN(stateMachineARN, name string) (string, error) {
	parts := strings.Split(stateMachineARN, ":")
	if len(parts) < 7 || len(parts) > 8 || parts[0] != "arn" || parts[1] == "" || parts[2] != "states" || parts[5] != "stateMachine" || parts[6] == "" {
		return "", fmt.Errorf("not a state machine ARN: %q", stateMachineARN)
	}
	return strings.Join(append(parts[:5:5], "execution", parts[6], name), ":"), nil
}

// Start implements Starter with StartExecution under the deterministic name.
func (s *SFN) Start(ctx context.Context, p domain.Pipeline, kind domain.WorkflowKind) (domain.WorkflowRef, error) {
	return s.StartAttempt(ctx, p, kind, 0)
}

// PendingRef implements Starter: the ARN of an execution is the state
// machine's ARN with its name (ExecutionARN), so it is known before
// StartExecution.
func (s *SFN) PendingRef(p domain.Pipeline, kind domain.WorkflowKind) (domain.WorkflowRef, error) {
	machine, ok := s.machines[kind]
	if !ok {
		return domain.WorkflowRef{}, fmt.Errorf("workflow: unknown workflow kind %q", kind)
	}
	name := ExecutionNameFor(p, kind, 0)
	arn, err := ExecutionARN(machine, name)
	if err != nil {
		return domain.WorkflowRef{}, fmt.Errorf("workflow: %w", err)
	}
	return domain.WorkflowRef{Kind: kind, Generation: p.Generation, ExecutionName: name, ExecutionArn: arn,
		StartedAt: s.now().UTC(), Status: domain.WorkflowPending}, nil
}

// Continue starts the next execution of a workflow whose wait loop reached its
// bound (steps.Continuer).
func (s *SFN) Continue(ctx context.Context, p domain.Pipeline, kind domain.WorkflowKind, continuation int) (domain.WorkflowRef, error) {
	return s.StartAttempt(ctx, p, kind, continuation)
}

// StartAttempt starts the attempt-th execution of the kind workflow of p's
// generation (the reconciler restarts a workflow whose execution ended
// without converging the pipeline with attempt+1).
func (s *SFN) StartAttempt(ctx context.Context, p domain.Pipeline, kind domain.WorkflowKind, attempt int) (domain.WorkflowRef, error) {
	machine, ok := s.machines[kind]
	if !ok {
		return domain.WorkflowRef{}, fmt.Errorf("workflow: unknown workflow kind %q", kind)
	}
	name := ExecutionNameFor(p, kind, attempt)
	input, err := json.Marshal(InputOfAttempt(p, kind, attempt))
	if err != nil {
		return domain.WorkflowRef{}, fmt.Errorf("workflow: encoding input: %w", err)
	}
	ref := domain.WorkflowRef{Kind: kind, Generation: p.Generation, ExecutionName: name, StartedAt: s.now().UTC(), Status: "RUNNING"}
	out, err := s.client.StartExecution(ctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String(machine),
		Name:            aws.String(name),
		Input:           aws.String(string(input)),
	})
	var exists *types.ExecutionAlreadyExists
	switch {
	case errors.As(err, &exists):
		// Started before (a retry, or the reconciler): that execution is this
		// workflow. Describe it, so that the reference carries its real start
		// time and status: a repeated start then records the same reference
		// (SetWorkflow writes nothing), not a new one stamped now that calls
		// an ended execution RUNNING. If it cannot be described, the
		// reference is the best guess.
		ref.ExecutionArn, _ = ExecutionARN(machine, name)
		if d, derr := s.client.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(ref.ExecutionArn)}); derr == nil {
			if d.StartDate != nil {
				ref.StartedAt = d.StartDate.UTC()
			}
			if d.Status != "" {
				ref.Status = string(d.Status)
			}
		}
		return ref, nil
	case err != nil:
		return domain.WorkflowRef{}, classify("StartExecution "+name, err)
	}
	ref.ExecutionArn = aws.ToString(out.ExecutionArn)
	if ref.ExecutionArn == "" {
		ref.ExecutionArn, _ = ExecutionARN(machine, name)
	}
	if out.StartDate != nil {
		ref.StartedAt = out.StartDate.UTC()
	}
	return ref, nil
}

// Stop implements Starter with StopExecution (error "Superseded"). A missing
// execution is success; so is an execution that already ended (Step Functions
// accepts StopExecution on it).
func (s *SFN) Stop(ctx context.Context, ref domain.WorkflowRef, cause string) error {
	arn := ref.ExecutionArn
	if arn == "" {
		machine, ok := s.machines[ref.Kind]
		if !ok || ref.ExecutionName == "" {
			return fmt.Errorf("workflow: cannot stop %+v: no execution ARN", ref)
		}
		arn, _ = ExecutionARN(machine, ref.ExecutionName)
	}
	_, err := s.client.StopExecution(ctx, &sfn.StopExecutionInput{
		ExecutionArn: aws.String(arn),
		Error:        aws.String("Superseded"),
		Cause:        aws.String(truncate(cause, 32768)),
	})
	var missing *types.ExecutionDoesNotExist
	if err == nil || errors.As(err, &missing) {
		return nil
	}
	return classify("StopExecution "+ref.ExecutionName, err)
}

// DescribeGrace is how long after an execution's recorded start a
// DescribeExecution answer ExecutionDoesNotExist is taken for a stale read
// rather than for a missing execution. The Step Functions API reference
// documents DescribeExecution as "eventually consistent. The results are
// best effort and may not reflect very recent updates and changes"
// (https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html),
// and documents no bound: a reconciler pass that calls IsRunning right after
// the API started a workflow must not conclude that it is gone and start the
// next attempt beside it.
const DescribeGrace = 5 * time.Minute

// IsRunning reports whether the referenced execution is still running; an
// execution that does not exist is not, unless it was started less than
// DescribeGrace ago (DescribeExecution is eventually consistent: a newly
// started execution may not be found yet).
func (s *SFN) IsRunning(ctx context.Context, ref domain.WorkflowRef) (bool, error) {
	arn := ref.ExecutionArn
	if arn == "" {
		machine, ok := s.machines[ref.Kind]
		if !ok || ref.ExecutionName == "" {
			return false, nil
		}
		arn, _ = ExecutionARN(machine, ref.ExecutionName)
	}
	out, err := s.client.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
	var missing *types.ExecutionDoesNotExist
	switch {
	case errors.As(err, &missing):
		return !ref.StartedAt.IsZero() && s.now().Sub(ref.StartedAt) < DescribeGrace, nil
	case err != nil:
		return false, classify("DescribeExecution "+ref.ExecutionName, err)
	}
	return out.Status == types.ExecutionStatusRunning, nil
}

// Status is the referenced execution's status as Step Functions describes
// it (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, …); "" when there is
// no such execution.
func (s *SFN) Status(ctx context.Context, ref domain.WorkflowRef) (string, error) {
	arn := ref.ExecutionArn
	if arn == "" {
		machine, ok := s.machines[ref.Kind]
		if !ok || ref.ExecutionName == "" {
			return "", nil
		}
		arn, _ = ExecutionARN(machine, ref.ExecutionName)
	}
	out, err := s.client.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
	var missing *types.ExecutionDoesNotExist
	switch {
	case errors.As(err, &missing):
		return "", nil
	case err != nil:
		return "", classify("DescribeExecution "+ref.ExecutionName, err)
	}
	return string(out.Status), nil
}

// classify wraps retriable failures with ErrUnavailable.
func classify(op string, err error) error {
	if retriable(err) {
		return fmt.Errorf("workflow: %s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("workflow: %s: %w", op, err)
}

func retriable(err error) bool {
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) && (respErr.HTTPStatusCode() >= 500 || respErr.HTTPStatusCode() == 429) {
		return true
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded",
			"ServiceUnavailable", "ServiceUnavailableException", "InternalFailure", "InternalServerError",
			"ExecutionLimitExceeded":
			return true
		}
		return apiErr.ErrorFault() == smithy.FaultServer
	}
	var sendErr *smithyhttp.RequestSendError
	var netErr net.Error
	return errors.As(err, &sendErr) || errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
