// Package workflow starts and stops the lifecycle workflows of pipelines
// (Step Functions Standard state machines, one per workflow kind).
//
// An execution is named from the pipeline, the generation it was started for
// and its kind (ExecutionName), so starting the same workflow twice — a
// retried API call, the reconciler racing the API — starts it once: Step
// Functions refuses a second execution of the same name, and Start counts that
// refusal as success.
//
// The execution input is Input, JSON-encoded; the workflows read nothing else
// from it and load the record from the store, fenced by the generation.
package workflow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/internal/domain"
)

// ErrUnavailable wraps throttling, 5xx and transport failures of the workflow
// service: retriable (the API answers 503 ServiceUnavailable when nothing was
// written, and the reconciler starts the workflow later otherwise).
var ErrUnavailable = errors.New("workflow service unavailable")

// Starter starts and stops lifecycle workflows.
type Starter interface {
	// Start starts the workflow kind for p at p.Generation, named by
	// ExecutionName. Starting an execution that already exists (same name) is
	// success and returns its reference (with its start time and status as
	// Step Functions reports them). A new execution's Status is RUNNING.
	Start(ctx context.Context, p domain.Pipeline, kind domain.WorkflowKind) (domain.WorkflowRef, error)
	// PendingRef is the reference of the execution Start(p, kind) starts,
	// before it is started: kind, generation, the deterministic name and ARN,
	// started_at now, status PENDING. The API records it in the action's own
	// conditional write (domain.RecordWorkflow), then calls Start.
	PendingRef(p domain.Pipeline, kind domain.WorkflowKind) (domain.WorkflowRef, error)
	// Stop stops a superseded execution, best effort: correctness never
	// depends on it (the execution's fenced writes already fail). An
	// execution that does not exist or already ended is success.
	Stop(ctx context.Context, ref domain.WorkflowRef, cause string) error
}

// Input is the JSON input of every workflow execution:
//
//	{"pipeline": "p1", "generation": 8, "kind": "suspend", "deployment_id": "…"}
//
// deployment_id is the deployment the pipeline had when the workflow was
// started (absent when none): the stop and suspend workflows deprovision it.
type Input struct {
	Pipeline string `json:"pipeline"`
	// PipelineID fences the steps against a deleted and re-created pipeline
	// of the same name (whose generations start over).
	PipelineID   string              `json:"pipeline_id"`
	Generation   int64               `json:"generation"`
	Kind         domain.WorkflowKind `json:"kind"`
	DeploymentID string              `json:"deployment_id,omitempty"`
	// Continuation numbers the executions of one generation's workflow: 0 for
	// the first, n for the n-th restart by the reconciler or continuation of
	// a bounded wait loop.
	Continuation int `json:"continuation,omitempty"`
}

// InputOf is the input of the kind workflow of p.
func InputOf(p domain.Pipeline, kind domain.WorkflowKind) Input {
	return InputOfAttempt(p, kind, 0)
}

// InputOfAttempt is the input of the attempt-th execution of the kind workflow of p.
func InputOfAttempt(p domain.Pipeline, kind domain.WorkflowKind, attempt int) Input {
	in := Input{Pipeline: p.Name, PipelineID: p.ID, Generation: p.Generation, Kind: kind, Continuation: attempt}
	if p.DeploymentID != nil {
		in.DeploymentID = *p.DeploymentID
	}
	return in
}

// ExecutionNameFor is the execution name of the attempt-th execution of the
// kind workflow of p's generation: "<name>-<id8>-g<generation>-<kind>" for
// attempt 0 and "…-<kind>-<attempt>" after it. The first 8 characters of the
// pipeline id keep a re-created pipeline of the same name (whose generations
// start over) from colliding with the old one's executions, whose names Step
// Functions keeps for 90 days.
func ExecutionNameFor(p domain.Pipeline, kind domain.WorkflowKind, attempt int) string {
	k := string(kind)
	if attempt > 0 {
		k += "-" + strconv.Itoa(attempt)
	}
	return ExecutionName(p.Name+idPart(p.ID), p.Generation, domain.WorkflowKind(k))
}

func idPart(id string) string {
	id = strings.ReplaceAll(id, "-", "")
	if len(id) > 8 {
		id = id[:8]
	}
	if id == "" {
		return ""
	}
	return "-" + id
}

// AttemptOf reads the attempt number back from an execution name made by
// ExecutionNameFor (0 when it has none).
func AttemptOf(executionName string) int {
	i := strings.LastIndexByte(executionName, '-')
	if i < 0 || i == len(executionName)-1 {
		return 0
	}
	n, err := strconv.Atoi(executionName[i+1:])
	if err != nil || n < 0 {
		return 0
	}
	// "-g<generation>-<kind>-<n>": the part before the number is a kind.
	before := executionName[:i]
	j := strings.LastIndexByte(before, '-')
	if j < 0 {
		return 0
	}
	kind := before[j+1:]
	if kind == "" || kind[0] < 'a' || kind[0] > 'z' || isGenerationPart(kind) {
		return 0
	}
	return n
}

// Step Functions' limit on execution names.
const MaxExecutionNameLength = 80

const (
	hashLen     = 10 // hex characters of SHA-256 kept when a part is shortened
	maxKindPart = 16
)

// ExecutionName is the deterministic execution name of the kind workflow of a
// pipeline's generation: "<name>-g<generation>-<kind>", e.g. "p1-g8-suspend".
//
// It is always a valid Step Functions execution name: 1..80 characters, only
// letters, digits, '-' and '_' (the subset that also keeps CloudWatch logging
// of executions working). When the plain form would be too long, or the name
// holds other characters (never the case for a validated pipeline name), the
// name part is shortened (other characters become '_') and a hash of the whole
// name is appended: "<prefix>-<10 hex>-g<generation>-<kind>", exactly 80
// characters. A plain name is always shorter than 80, so the two forms never
// collide; for the real kinds and non-negative generations distinct inputs
// give distinct names.
func ExecutionName(pipeline string, generation int64, kind domain.WorkflowKind) string {
	k := string(kind)
	if k == "" || len(k) > maxKindPart || !clean(k) {
		k = "k" + shortHash(k)
	}
	suffix := "-g" + strconv.FormatInt(generation, 10) + "-" + k
	budget := MaxExecutionNameLength - len(suffix)
	if clean(pipeline) && len(pipeline) < budget {
		return pipeline + suffix
	}
	prefixLen := budget - hashLen - 1
	prefix := []byte(sanitize(pipeline))
	if len(prefix) > prefixLen {
		prefix = prefix[:prefixLen]
	}
	for len(prefix) < prefixLen {
		prefix = append(prefix, '_')
	}
	return string(prefix) + "-" + shortHash(pipeline) + suffix
}

func cleanByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

func clean(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !cleanByte(s[i]) {
			return false
		}
	}
	return true
}

func sanitize(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if cleanByte(s[i]) {
			b.WriteByte(s[i])
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:hashLen]
}

// ValidExecutionName reports whether s is a name ExecutionName may produce:
// 1..80 characters of letters, digits, '-' and '_'.
func ValidExecutionName(s string) bool {
	return len(s) >= 1 && len(s) <= MaxExecutionNameLength && clean(s)
}

// isGenerationPart matches "g<digits>".
func isGenerationPart(s string) bool {
	if len(s) < 2 || s[0] != 'g' {
		return false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// IsExecutionOf reports whether executionName is one that ExecutionNameFor
// gives the pipeline of that name and id, for some generation, kind and
// attempt: the name is rebuilt from its own "-g<generation>-<kind>" tail, so
// the shortened, hashed form of a long pipeline name is recognised too, and
// another pipeline whose name merely starts the same is not.
func IsExecutionOf(executionName, pipeline, pipelineID string) bool {
	base := pipeline + idPart(pipelineID)
	for i := strings.Index(executionName, "-g"); i >= 0; {
		rest := executionName[i+2:]
		if dash := strings.IndexByte(rest, '-'); dash > 0 {
			if gen, err := strconv.ParseInt(rest[:dash], 10, 64); err == nil && gen >= 0 &&
				ExecutionName(base, gen, domain.WorkflowKind(rest[dash+1:])) == executionName {
				return true
			}
		}
		next := strings.Index(executionName[i+2:], "-g")
		if next < 0 {
			break
		}
		i += 2 + next
	}
	return false
}
