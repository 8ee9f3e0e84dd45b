package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/internal/domain"
)

// Store is what the API Lambda, the workflow steps and the reconciler need.
type Store interface {
	// Create writes a new record (and its first history event). A taken name
	// is a *domain.Error DuplicateName.
	Create(ctx context.Context, p domain.Pipeline, cause Cause) error
	// Get reads one record (strongly consistent). A missing one is a
	// *domain.Error UnknownPipelineName.
	Get(ctx context.Context, name string) (domain.Pipeline, error)
	// List returns records in name order, at most limit, from an opaque page
	// token ("" = first page); next is "" on the last page.
	List(ctx context.Context, pageToken string, limit int) (records []domain.Pipeline, next string, err error)
	// Delete removes a record, conditional on the refresh version that was
	// read and on it being fully stopped with storage cleared (ErrStale, or
	// the domain's Delete* errors); its history is removed after it, best
	// effort (a tombstone event with the cause stays until its TTL).
	Delete(ctx context.Context, p domain.Pipeline, cause Cause) error
	// ApplyAction writes the outcome of a user action, conditional on the
	// refresh version of before, with its history event, in one transaction.
	// ErrStale: the record changed since it was read (read again, decide again).
	ApplyAction(ctx context.Context, before domain.Pipeline, out domain.Outcome, cause Cause) (domain.Pipeline, error)
	// Transition applies a workflow step's transition to the current record,
	// fenced by generation: *SupersededError when the generation moved on,
	// *ConflictError when the record is not in a status the transition starts
	// from. A transition that changes nothing writes nothing.
	Transition(ctx context.Context, name string, generation int64, tr domain.Transition, cause Cause) (domain.Pipeline, error)
	// TransitionFrom is Transition of read.Name fenced by read.Generation,
	// deciding first on read, the record the caller has just read, instead
	// of reading it again: the write is conditional on read's refresh
	// version, so when read is no longer current the write loses and the
	// transition is decided again on the current record, as Transition does.
	TransitionFrom(ctx context.Context, read domain.Pipeline, tr domain.Transition, cause Cause) (domain.Pipeline, error)
	// SetWorkflow records the workflow execution of a generation. Fenced by
	// generation like Transition. Recording a new ref is a write of the
	// record: it bumps the refresh version and appends a history event (the
	// statuses unchanged, cause action "SetWorkflow"), so that the history
	// stays gap-free and no concurrent write can lose it; recording the same
	// ref again writes nothing.
	SetWorkflow(ctx context.Context, name string, ref domain.WorkflowRef) (domain.Pipeline, error)
	// History returns status-history events, newest first, paginated.
	History(ctx context.Context, name string, pageToken string, limit int) (events []Event, next string, err error)
	// PutAPIKey stores an API key by its SHA-256 hash (the key itself is never
	// stored) under a unique name (key.Name; "" names it by its ID). It never
	// overwrites: a known hash is ErrAlreadyExists, a taken name a
	// *domain.Error DuplicateName.
	PutAPIKey(ctx context.Context, key APIKey) error
	// GetAPIKey finds an API key by its hash; ErrNotFound when unknown.
	GetAPIKey(ctx context.Context, hash string) (APIKey, error)
	// GetAPIKeyByName finds an API key by its name (strongly consistent); a
	// *domain.Error UnknownApiKey when there is none.
	GetAPIKeyByName(ctx context.Context, name string) (APIKey, error)
	// ListAPIKeys returns the named API keys in name order, paginated like
	// List (eventually consistent).
	ListAPIKeys(ctx context.Context, pageToken string, limit int) (keys []APIKey, next string, err error)
	// DeleteAPIKey deletes the API key of that name (its hash item and its
	// name item, in one transaction) and returns what was deleted; a
	// *domain.Error UnknownApiKey when there is none. A deleted key no longer
	// authenticates: GetAPIKey answers ErrNotFound right after.
	DeleteAPIKey(ctx context.Context, name string) (APIKey, error)
	// Cursors: the reconciler's listing from a name and its resume points
	// (cursor.go).
	Cursors
}

// Cause says who made a write and why; it is recorded in the history event.
type Cause struct {
	// Action is the user action ("stop?force=true") or workflow step ("MarkStopping").
	Action string `json:"action"`
	// Actor is "user:<key id or token subject>", "workflow" or "reconciler".
	Actor string `json:"actor,omitempty"`
	// RequestID is the API request or Lambda request id.
	RequestID string `json:"request_id,omitempty"`
	// Execution is the workflow execution name, for workflow writes.
	Execution string `json:"execution,omitempty"`
}

// Event is one status-history item: the statuses right after a write.
type Event struct {
	At                      time.Time                     `json:"at"`
	Generation              int64                         `json:"generation"`
	RefreshVersion          int64                         `json:"refresh_version"`
	Cause                   Cause                         `json:"cause"`
	DeploymentStatus        domain.CombinedStatus         `json:"deployment_status"`
	DeploymentDesiredStatus domain.CombinedDesiredStatus  `json:"deployment_desired_status"`
	ResourcesStatus         domain.ResourcesStatus        `json:"deployment_resources_status"`
	ResourcesDesiredStatus  domain.ResourcesDesiredStatus `json:"deployment_resources_desired_status"`
	RuntimeStatus           *domain.RuntimeStatus         `json:"deployment_runtime_status"`
	RuntimeDesiredStatus    *domain.RuntimeDesiredStatus  `json:"deployment_runtime_desired_status"`
	StorageStatus           domain.StorageStatus          `json:"storage_status"`
	DeploymentError         *domain.ErrorBody             `json:"deployment_error"`
}

// Role is what an API key may do.
type Role string

const (
	RoleRead  Role = "read"
	RoleWrite Role = "write"
)

// APIKey is a stored API key: only the hash of the secret is kept.
type APIKey struct {
	Hash string `json:"hash"` // hex SHA-256 of the whole key string, "apikey:" prefix included
	ID   string `json:"id"`   // a short public id for logs (never the secret)
	// Name is the unique name the API manages the key by (the pipeline name
	// rule, domain.ValidateName). PutAPIKey names a key without one by its
	// ID; keys stored before keys had names read back with Name "" (until
	// NameLegacyAPIKeys names them).
	Name        string    `json:"name"`
	Role        Role      `json:"role"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
}

// UUID is the key's identifier in Feldera's API shape (ApiKeyId, a UUID):
// the first 128 bits of the hash laid out as an RFC 9562 version 4 UUID
// (version and variant bits set). It is stable, needs no storage, and
// starts with the key's ID (12 hex digits, a dash after the eighth), so a
// key seen in the API can be matched with the principal in the logs.
func (k APIKey) UUID() string {
	if !validHash(k.Hash) {
		return "00000000-0000-0000-0000-000000000000"
	}
	b := []byte(k.Hash[:32])
	b[12] = '4'                     // version 4
	b[16] = "89ab"[hexVal(b[16])&3] // variant 10xx
	return string(b[0:8]) + "-" + string(b[8:12]) + "-" + string(b[12:16]) + "-" + string(b[16:20]) + "-" + string(b[20:32])
}

func hexVal(c byte) byte {
	if c >= 'a' {
		return c - 'a' + 10
	}
	return c - '0'
}

// ErrStale: the record changed between read and conditional write.
var ErrStale = errors.New("record changed since it was read")

// ErrNotFound: no such item (API keys).
var ErrNotFound = errors.New("not found")

// ErrUnavailable wraps throttling and service errors of DynamoDB: retriable,
// and nothing was written (the API answers 503 ServiceUnavailable).
var ErrUnavailable = errors.New("state store unavailable")

// SupersededError: the generation moved on; the step's intent is stale and it
// must end without writing.
type SupersededError struct {
	Generation int64 // the step's generation
	Current    domain.Pipeline
}

func (e *SupersededError) Error() string {
	return fmt.Sprintf("superseded: step generation %d, pipeline generation %d", e.Generation, e.Current.Generation)
}

// ConflictError: the record is in a status the transition does not start from.
type ConflictError struct {
	Current domain.Pipeline
	Cause   error
}

func (e *ConflictError) Error() string { return "conflict: " + e.Cause.Error() }
func (e *ConflictError) Unwrap() error { return e.Cause }
