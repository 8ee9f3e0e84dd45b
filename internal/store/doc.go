// Package store keeps pipeline records, their status history and API keys in
// DynamoDB: one table, the PipelinesTable of template.yaml (the schema's
// single source of truth), implemented by Dynamo. Every write is conditional:
// user actions on the refresh version that was read, workflow steps on the
// generation they were started for and the record they read. Every DynamoDB
// expression of the project lives in this package.
//
// # Item design
//
// All keys are strings (pk, sk; GSI gsi1 on gsi1pk/gsi1sk, projecting ALL;
// TTL attribute expires_at).
//
//	item             pk                   sk                           gsi1pk    gsi1sk
//	pipeline record  PIPELINE#<name>      RECORD                       PIPELINE  <name>
//	history event    PIPELINE#<name>      EVENT#<pipeline id>#<rv>     -         -
//	API key          APIKEY#<hex sha256>  APIKEY                       -         -
//	API key name     APIKEYNAME#<name>    APIKEYNAME                   APIKEY    <name>
//	resume point     RECONCILER#CURSOR#<shard>/<shards>  CURSOR        -         -
//
// (<rv> is the refresh version after the write, zero-padded to 20 digits.)
//
// Pipeline record. The full domain.Pipeline is stored as its JSON in the
// string attribute "record" (the domain's JSON has strict enum decoding; the
// store also rejects unknown fields and trailing data, so a record written by
// a newer version is never silently truncated by an older one). Top-level
// copies exist for the conditions (generation N, refresh_version N,
// resources_status, resources_desired_status, storage_status, pipeline_id)
// and for operators reading `aws dynamodb scan` output (type, name, version,
// runtime_status, runtime_desired_status, deployment_status,
// deployment_desired_status, workflow_execution, updated_at). A read checks
// that the copies agree with the JSON and fails on any disagreement. write_id
// is unique to each write, so that a writer whose answer was lost recognises
// its own write in the item returned with a condition failure. A record item
// is capped at MaxItemBytes (checked before calling DynamoDB). Every write of
// a record is conditional on the pipeline_id, generation and refresh_version
// it was decided on (a re-created pipeline of the same name has another id).
//
// History event. One per write of the record, in the same transaction, keyed
// by the pipeline's id and its refresh version after the write, so the
// history of a pipeline is gap-free in refresh_version and a re-created
// pipeline of the same name (a new id) never sees the old history. Attributes:
// type, name, pipeline_id, generation, refresh_version, at (RFC 3339), the
// statuses right after the write (deployment_status,
// deployment_desired_status, resources_status, resources_desired_status,
// runtime_status, runtime_desired_status, storage_status), deployment_error
// (JSON), cause_action, cause_actor, cause_request_id, cause_execution. History
// queries begins_with(sk, "EVENT#<id>#") with ScanIndexForward=false: newest
// first. Delete writes a final tombstone event with expires_at (TTL) set, then
// deletes the pipeline's events best effort (BatchWriteItem, unprocessed items
// retried); events it could not delete get expires_at set instead.
//
// API key. Only the hex SHA-256 of the key is stored (in pk), with role, id,
// name, description and created_at. Its name item (a copy of those plus the
// hash) makes the name unique and lists keys in name order on gsi1. PutAPIKey
// writes both in one transaction, each conditional on attribute_not_exists(pk):
// nothing is ever overwritten, and of concurrent puts of one name exactly one
// wins. DeleteAPIKey deletes both in one transaction, conditional on the name
// item still naming the hash it read. Keys stored before names (no name
// attribute, no name item) still authenticate; NameLegacyAPIKeys names them
// by their id (a one-off Scan, the only one in the package).
//
// Resume point. The reconciler's cursor of one shard (cursor.go): the name
// an unfinished pass stopped at (resume_from), written_at, ring_completed_at
// and expires_at (TTL, renewed by every write). In no index.
//
// # Consistency
//
// Get, Transition, SetWorkflow, History, GetAPIKey and GetAPIKeyByName read
// strongly consistently. List and ListAPIKeys query the global secondary index gsi1, which is
// eventually consistent: a pipeline just created, changed or deleted may
// appear in List as it was a moment before.
//
// # Errors
//
// Throttling, service errors, timeouts and connection errors of a read wrap
// ErrUnavailable. A TransactWriteItems that times out, is throttled, gets a
// 5xx or loses its connection is repeated within the call with the same
// ClientRequestToken, derived from the write (key, expected refresh version
// and generation, the record written, its write_id), which DynamoDB makes
// idempotent for 10 minutes (see idempotent.go). A repeat that succeeds, or
// whose condition failure returns this write's own write_id, means the write
// is in: the call succeeds. Only when no send got a definitive answer and a
// strongly consistent read shows the write is not in does the call fail with
// ErrUnavailable (retriable; transactions are all-or-nothing, so the record
// is never half-written): the API's 503 "nothing was changed" is then what
// DynamoDB last said. IdempotentParameterMismatch (the token was used by
// another request) is a lost race: the write is decided again.
//
// A condition failure of a user action is a *StaleError
// (errors.Is(err, ErrStale)) carrying the current record when DynamoDB
// returned it; a workflow write whose generation moved on is a
// *SupersededError; a transition that does not start from the current status
// is a *ConflictError.
package store
