package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/sluicehq/sluice/internal/domain"
)

// Key layout (see the package documentation).
const (
	attrPK     = "pk"
	attrSK     = "sk"
	attrGSI1PK = "gsi1pk"
	attrGSI1SK = "gsi1sk"

	attrGeneration             = "generation"
	attrRefreshVersion         = "refresh_version"
	attrResourcesStatus        = "resources_status"
	attrResourcesDesiredStatus = "resources_desired_status"
	attrStorageStatus          = "storage_status"
	attrExpiresAt              = "expires_at"

	pipelinePKPrefix = "PIPELINE#"
	recordSK         = "RECORD"
	listGSI          = "gsi1"
	listGSIPK        = "PIPELINE"
	eventSKPrefix    = "EVENT#"
	apiKeyPKPrefix   = "APIKEY#"
	apiKeySK         = "APIKEY"
	keyNamePKPrefix  = "APIKEYNAME#"
	keyNameSK        = "APIKEYNAME"
	keyListGSIPK     = "APIKEY"

	typeRecord  = "pipeline"
	typeEvent   = "event"
	typeAPIKey  = "apikey"
	typeKeyName = "apikeyname"
)

// MaxItemBytes caps a pipeline record item (DynamoDB's hard limit is 400 KB).
// The domain's own limits (runtime_config and storage details at 64 KiB each)
// keep records far below it; this is the belt-and-braces check on the
// marshalled item, made before calling DynamoDB.
const MaxItemBytes = 350 * 1024

func pipelinePK(name string) string { return pipelinePKPrefix + name }

// Partition key prefixes by what the items hold, for the IAM conditions
// (dynamodb:LeadingKeys) that confine each function to its own items.
const (
	PipelineItemsPrefix = pipelinePKPrefix
	APIKeyItemsPrefix   = apiKeyPKPrefix
	KeyNameItemsPrefix  = keyNamePKPrefix
)

// eventSKPrefixOf is the sort-key prefix of one pipeline incarnation's events.
func eventSKPrefixOf(id string) string { return eventSKPrefix + id + "#" }

func eventSK(id string, refreshVersion int64) string {
	return fmt.Sprintf("%s%020d", eventSKPrefixOf(id), refreshVersion)
}

func apiKeyPK(hash string) string { return apiKeyPKPrefix + hash }

func keyNamePK(name string) string { return keyNamePKPrefix + name }

// listedKeys are the keys and type of an item that gsi1 lists in name
// order (a pipeline record, an API key's name item).
type listedKeys struct {
	PK     string `dynamodbav:"pk"`
	SK     string `dynamodbav:"sk"`
	GSI1PK string `dynamodbav:"gsi1pk"`
	GSI1SK string `dynamodbav:"gsi1sk"`
	Type   string `dynamodbav:"type"`
}

// recordItem is the DynamoDB item of a pipeline record.
type recordItem struct {
	listedKeys

	Name           string `dynamodbav:"name"`
	PipelineID     string `dynamodbav:"pipeline_id"`
	Version        int64  `dynamodbav:"version"`
	Generation     int64  `dynamodbav:"generation"`
	RefreshVersion int64  `dynamodbav:"refresh_version"`

	ResourcesStatus         string `dynamodbav:"resources_status"`
	ResourcesDesiredStatus  string `dynamodbav:"resources_desired_status"`
	RuntimeStatus           string `dynamodbav:"runtime_status,omitempty"`
	RuntimeDesiredStatus    string `dynamodbav:"runtime_desired_status,omitempty"`
	DeploymentStatus        string `dynamodbav:"deployment_status"`
	DeploymentDesiredStatus string `dynamodbav:"deployment_desired_status"`
	StorageStatus           string `dynamodbav:"storage_status"`
	WorkflowExecution       string `dynamodbav:"workflow_execution,omitempty"`
	UpdatedAt               string `dynamodbav:"updated_at"`
	// WriteID is unique to each write: a writer that finds its own WriteID
	// in the item returned with a condition failure knows that its write
	// landed earlier (a retried request whose first answer was lost).
	WriteID string `dynamodbav:"write_id"`

	// Record is the domain.Pipeline as JSON: the source of truth of the record.
	Record string `dynamodbav:"record"`
}

// encodedRecord is a record ready to write.
type encodedRecord struct {
	item    map[string]types.AttributeValue
	writeID string
}

// encodeRecord builds the item of p. now is only informational (updated_at).
func encodeRecord(p domain.Pipeline, now time.Time) (encodedRecord, error) {
	js, err := json.Marshal(p)
	if err != nil {
		return encodedRecord{}, fmt.Errorf("store: encoding pipeline %q: %w", p.Name, err)
	}
	it := recordItem{
		listedKeys: listedKeys{PK: pipelinePK(p.Name), SK: recordSK, GSI1PK: listGSIPK, GSI1SK: p.Name, Type: typeRecord},
		Name:       p.Name, PipelineID: p.ID, Version: p.Version, Generation: p.Generation, RefreshVersion: p.RefreshVersion,
		ResourcesStatus:         string(p.ResourcesStatus),
		ResourcesDesiredStatus:  string(p.ResourcesDesiredStatus),
		RuntimeStatus:           strOf(p.RuntimeStatus),
		RuntimeDesiredStatus:    strOf(p.RuntimeDesiredStatus),
		DeploymentStatus:        string(p.DeploymentStatus()),
		DeploymentDesiredStatus: string(p.DeploymentDesiredStatus()),
		StorageStatus:           string(p.StorageStatus),
		UpdatedAt:               now.UTC().Format(time.RFC3339Nano),
		Record:                  string(js),
		WriteID:                 uuid.NewString(),
	}
	if p.Workflow != nil {
		it.WorkflowExecution = p.Workflow.ExecutionName
	}
	item, err := attributevalue.MarshalMap(it)
	if err != nil {
		return encodedRecord{}, fmt.Errorf("store: marshalling pipeline %q: %w", p.Name, err)
	}
	if n := itemSize(item); n > MaxItemBytes {
		return encodedRecord{}, domain.InvalidRequestBody("runtime_config",
			fmt.Sprintf("the pipeline record would be %d bytes in the state store; at most %d are allowed (make runtime_config smaller)", n, MaxItemBytes))
	}
	return encodedRecord{item: item, writeID: it.WriteID}, nil
}

func strOf[T ~string](v *T) string {
	if v == nil {
		return ""
	}
	return string(*v)
}

// errCorrupt marks an item that does not decode; it is never the caller's
// fault (an internal error).
var errCorrupt = errors.New("store: corrupt item")

// decodeRecord decodes a record item strictly: the JSON must decode with no
// unknown field and no trailing data, every enum must be known, and the
// top-level copies the conditions rely on must agree with the JSON.
func decodeRecord(item map[string]types.AttributeValue) (domain.Pipeline, error) {
	var it recordItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return domain.Pipeline{}, fmt.Errorf("%w: record: %v", errCorrupt, err)
	}
	if it.Type != typeRecord || it.SK != recordSK || it.Record == "" {
		return domain.Pipeline{}, fmt.Errorf("%w: %q/%q is not a pipeline record", errCorrupt, it.PK, it.SK)
	}
	p, err := decodeRecordJSON(it.Record)
	if err != nil {
		return domain.Pipeline{}, fmt.Errorf("%w: record %q: %v", errCorrupt, it.PK, err)
	}
	var diffs []string
	check := func(attr, got, want string) {
		if got != want {
			diffs = append(diffs, fmt.Sprintf("%s=%q but the record says %q", attr, got, want))
		}
	}
	check(attrPK, it.PK, pipelinePK(p.Name))
	check(attrGSI1SK, it.GSI1SK, p.Name)
	check("name", it.Name, p.Name)
	check("pipeline_id", it.PipelineID, p.ID)
	check(attrGeneration, fmt.Sprint(it.Generation), fmt.Sprint(p.Generation))
	check(attrRefreshVersion, fmt.Sprint(it.RefreshVersion), fmt.Sprint(p.RefreshVersion))
	check(attrResourcesStatus, it.ResourcesStatus, string(p.ResourcesStatus))
	check(attrResourcesDesiredStatus, it.ResourcesDesiredStatus, string(p.ResourcesDesiredStatus))
	check(attrStorageStatus, it.StorageStatus, string(p.StorageStatus))
	if len(diffs) > 0 {
		return domain.Pipeline{}, fmt.Errorf("%w: record %q: %s", errCorrupt, it.PK, strings.Join(diffs, "; "))
	}
	return p, nil
}

func decodeRecordJSON(s string) (domain.Pipeline, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	var p domain.Pipeline
	if err := dec.Decode(&p); err != nil {
		return domain.Pipeline{}, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return domain.Pipeline{}, errors.New("trailing data after the record JSON")
	}
	// JSON null decodes into a json.RawMessage as the bytes "null": normalise
	// it to nil, which encodes back to null (the round trip is exact).
	p.RuntimeConfig = nullToNil(p.RuntimeConfig)
	p.StorageStatusDetails = nullToNil(p.StorageStatusDetails)
	if p.Name == "" || p.ID == "" {
		return domain.Pipeline{}, errors.New("record without name or id")
	}
	p.ProgramConfig = nullToNil(p.ProgramConfig)
	p.ProgramInfo = nullToNil(p.ProgramInfo)
	return p.Normalize(), nil
}

func nullToNil(b json.RawMessage) json.RawMessage {
	if b == nil || bytes.Equal(b, []byte("null")) {
		return nil
	}
	return b
}

// eventItem is the DynamoDB item of a history event.
type eventItem struct {
	PK   string `dynamodbav:"pk"`
	SK   string `dynamodbav:"sk"`
	Type string `dynamodbav:"type"`

	Name           string `dynamodbav:"name"`
	PipelineID     string `dynamodbav:"pipeline_id"`
	Generation     int64  `dynamodbav:"generation"`
	RefreshVersion int64  `dynamodbav:"refresh_version"`
	At             string `dynamodbav:"at"`

	DeploymentStatus        string `dynamodbav:"deployment_status"`
	DeploymentDesiredStatus string `dynamodbav:"deployment_desired_status"`
	ResourcesStatus         string `dynamodbav:"resources_status"`
	ResourcesDesiredStatus  string `dynamodbav:"resources_desired_status"`
	RuntimeStatus           string `dynamodbav:"runtime_status,omitempty"`
	RuntimeDesiredStatus    string `dynamodbav:"runtime_desired_status,omitempty"`
	StorageStatus           string `dynamodbav:"storage_status"`
	DeploymentError         string `dynamodbav:"deployment_error,omitempty"` // JSON

	CauseAction    string `dynamodbav:"cause_action"`
	CauseActor     string `dynamodbav:"cause_actor,omitempty"`
	CauseRequestID string `dynamodbav:"cause_request_id,omitempty"`
	CauseExecution string `dynamodbav:"cause_execution,omitempty"`

	ExpiresAt int64 `dynamodbav:"expires_at,omitempty"` // epoch seconds (TTL)
}

// eventOf is the history event of a write that left the record as p.
func eventOf(p domain.Pipeline, cause Cause, at time.Time) Event {
	return Event{
		At: at.UTC(), Generation: p.Generation, RefreshVersion: p.RefreshVersion, Cause: cause,
		DeploymentStatus: p.DeploymentStatus(), DeploymentDesiredStatus: p.DeploymentDesiredStatus(),
		ResourcesStatus: p.ResourcesStatus, ResourcesDesiredStatus: p.ResourcesDesiredStatus,
		RuntimeStatus: p.RuntimeStatus, RuntimeDesiredStatus: p.RuntimeDesiredStatus,
		StorageStatus: p.StorageStatus, DeploymentError: p.DeploymentError,
	}
}

func encodeEvent(name, id string, e Event, expiresAt time.Time) (map[string]types.AttributeValue, error) {
	it := eventItem{
		PK: pipelinePK(name), SK: eventSK(id, e.RefreshVersion), Type: typeEvent,
		Name: name, PipelineID: id, Generation: e.Generation, RefreshVersion: e.RefreshVersion,
		At:                      e.At.UTC().Format(time.RFC3339Nano),
		DeploymentStatus:        string(e.DeploymentStatus),
		DeploymentDesiredStatus: string(e.DeploymentDesiredStatus),
		ResourcesStatus:         string(e.ResourcesStatus),
		ResourcesDesiredStatus:  string(e.ResourcesDesiredStatus),
		RuntimeStatus:           strOf(e.RuntimeStatus),
		RuntimeDesiredStatus:    strOf(e.RuntimeDesiredStatus),
		StorageStatus:           string(e.StorageStatus),
		CauseAction:             e.Cause.Action,
		CauseActor:              e.Cause.Actor,
		CauseRequestID:          e.Cause.RequestID,
		CauseExecution:          e.Cause.Execution,
	}
	if e.DeploymentError != nil {
		b, err := json.Marshal(e.DeploymentError)
		if err != nil {
			return nil, fmt.Errorf("store: encoding deployment_error of %q: %w", name, err)
		}
		it.DeploymentError = string(b)
	}
	if !expiresAt.IsZero() {
		it.ExpiresAt = expiresAt.Unix()
	}
	// The statuses must be valid enum values (the record's JSON encoding
	// already checked them; this keeps events honest on their own).
	if _, err := json.Marshal(e); err != nil {
		return nil, fmt.Errorf("store: encoding event of %q: %w", name, err)
	}
	item, err := attributevalue.MarshalMap(it)
	if err != nil {
		return nil, fmt.Errorf("store: marshalling event of %q: %w", name, err)
	}
	if n := itemSize(item); n > MaxItemBytes {
		return nil, domain.InvalidRequestBody("", fmt.Sprintf("the history event would be %d bytes; at most %d are allowed", n, MaxItemBytes))
	}
	return item, nil
}

// decodeEvent decodes an event item strictly (every enum must be known).
func decodeEvent(item map[string]types.AttributeValue) (Event, error) {
	var it eventItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return Event{}, fmt.Errorf("%w: event: %v", errCorrupt, err)
	}
	bad := func(err error) (Event, error) {
		return Event{}, fmt.Errorf("%w: event %q/%q: %v", errCorrupt, it.PK, it.SK, err)
	}
	if it.Type != typeEvent || it.SK != eventSK(it.PipelineID, it.RefreshVersion) {
		return bad(errors.New("not a history event of its pipeline"))
	}
	at, err := time.Parse(time.RFC3339Nano, it.At)
	if err != nil {
		return bad(err)
	}
	e := Event{
		At: at, Generation: it.Generation, RefreshVersion: it.RefreshVersion,
		Cause: Cause{Action: it.CauseAction, Actor: it.CauseActor, RequestID: it.CauseRequestID, Execution: it.CauseExecution},
	}
	errs := []error{
		parseText(it.DeploymentStatus, &e.DeploymentStatus),
		parseText(it.DeploymentDesiredStatus, &e.DeploymentDesiredStatus),
		parseText(it.ResourcesStatus, &e.ResourcesStatus),
		parseText(it.ResourcesDesiredStatus, &e.ResourcesDesiredStatus),
		parseText(it.StorageStatus, &e.StorageStatus),
	}
	if it.RuntimeStatus != "" {
		e.RuntimeStatus = new(domain.RuntimeStatus)
		errs = append(errs, parseText(it.RuntimeStatus, e.RuntimeStatus))
	}
	if it.RuntimeDesiredStatus != "" {
		e.RuntimeDesiredStatus = new(domain.RuntimeDesiredStatus)
		errs = append(errs, parseText(it.RuntimeDesiredStatus, e.RuntimeDesiredStatus))
	}
	if it.DeploymentError != "" {
		dec := json.NewDecoder(strings.NewReader(it.DeploymentError))
		dec.DisallowUnknownFields()
		e.DeploymentError = new(domain.ErrorBody)
		errs = append(errs, dec.Decode(e.DeploymentError))
	}
	if err := errors.Join(errs...); err != nil {
		return bad(err)
	}
	return e, nil
}

type textUnmarshaler interface{ UnmarshalText([]byte) error }

func parseText(s string, dst textUnmarshaler) error { return dst.UnmarshalText([]byte(s)) }

// apiKeyItem is the DynamoDB item of an API key.
type apiKeyItem struct {
	PK          string `dynamodbav:"pk"`
	SK          string `dynamodbav:"sk"`
	Type        string `dynamodbav:"type"`
	ID          string `dynamodbav:"id"`
	Name        string `dynamodbav:"name,omitempty"` // absent on keys stored before keys had names
	Role        string `dynamodbav:"role"`
	Description string `dynamodbav:"description"`
	CreatedAt   string `dynamodbav:"created_at"`
}

// keyNameItem is the name item of an API key: it makes the name unique (it
// is written in the same transaction as the key item, both conditional on
// not existing), lists the keys in name order on gsi1 and carries a copy of
// the key's description (keys never change, so the copy never goes stale).
type keyNameItem struct {
	listedKeys
	Name        string `dynamodbav:"name"`
	Hash        string `dynamodbav:"hash"`
	ID          string `dynamodbav:"id"`
	Role        string `dynamodbav:"role"`
	Description string `dynamodbav:"description"`
	CreatedAt   string `dynamodbav:"created_at"`
}

var hashPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

func validHash(h string) bool { return hashPattern.MatchString(h) }

func validRole(r Role) bool { return r == RoleRead || r == RoleWrite }

func decodeAPIKey(item map[string]types.AttributeValue) (APIKey, error) {
	var it apiKeyItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return APIKey{}, fmt.Errorf("%w: api key: %v", errCorrupt, err)
	}
	hash := strings.TrimPrefix(it.PK, apiKeyPKPrefix)
	if it.Type != typeAPIKey || it.SK != apiKeySK || !validHash(hash) || !validRole(Role(it.Role)) || it.ID == "" {
		return APIKey{}, fmt.Errorf("%w: api key %q (id %q, role %q)", errCorrupt, it.PK, it.ID, it.Role)
	}
	created, err := time.Parse(time.RFC3339Nano, it.CreatedAt)
	if err != nil {
		return APIKey{}, fmt.Errorf("%w: api key %q: created_at: %v", errCorrupt, it.PK, err)
	}
	if it.Name != "" && domain.ValidateName(it.Name) != nil {
		return APIKey{}, fmt.Errorf("%w: api key %q: invalid name", errCorrupt, it.PK)
	}
	return APIKey{Hash: hash, ID: it.ID, Name: it.Name, Role: Role(it.Role), Description: it.Description, CreatedAt: created}, nil
}

func decodeKeyName(item map[string]types.AttributeValue) (APIKey, error) {
	var it keyNameItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return APIKey{}, fmt.Errorf("%w: api key name: %v", errCorrupt, err)
	}
	if it.Type != typeKeyName || it.SK != keyNameSK || it.PK != keyNamePK(it.Name) || it.GSI1PK != keyListGSIPK ||
		it.GSI1SK != it.Name || domain.ValidateName(it.Name) != nil || !validHash(it.Hash) || !validRole(Role(it.Role)) || it.ID == "" {
		return APIKey{}, fmt.Errorf("%w: api key name item %q (id %q, role %q)", errCorrupt, it.PK, it.ID, it.Role)
	}
	created, err := time.Parse(time.RFC3339Nano, it.CreatedAt)
	if err != nil {
		return APIKey{}, fmt.Errorf("%w: api key name item %q: created_at: %v", errCorrupt, it.PK, err)
	}
	return APIKey{Hash: it.Hash, ID: it.ID, Name: it.Name, Role: Role(it.Role), Description: it.Description, CreatedAt: created}, nil
}

// itemSize approximates DynamoDB's item size: attribute names plus values
// (strings and binaries by length, numbers by significant digits, one byte
// for booleans and nulls, 3 bytes per list or map plus 1 per element).
func itemSize(item map[string]types.AttributeValue) int {
	n := 0
	for k, v := range item {
		n += len(k) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return (len(v.Value)+1)/2 + 1
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberSS:
		return sumOf(v.Value, func(s string) int { return len(s) })
	case *types.AttributeValueMemberNS:
		return sumOf(v.Value, func(s string) int { return (len(s)+1)/2 + 1 })
	case *types.AttributeValueMemberBS:
		return sumOf(v.Value, func(b []byte) int { return len(b) })
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += 1 + valueSize(e)
		}
		return n
	case *types.AttributeValueMemberM:
		n := 3
		for k, e := range v.Value {
			n += 1 + len(k) + valueSize(e)
		}
		return n
	}
	return 0
}

func marshalAPIKey(k APIKey) (map[string]types.AttributeValue, error) {
	return attributevalue.MarshalMap(apiKeyItem{
		PK: apiKeyPK(k.Hash), SK: apiKeySK, Type: typeAPIKey, ID: k.ID, Name: k.Name, Role: string(k.Role),
		Description: k.Description, CreatedAt: k.CreatedAt.UTC().Format(time.RFC3339Nano),
	})
}

func marshalKeyName(k APIKey) (map[string]types.AttributeValue, error) {
	return attributevalue.MarshalMap(keyNameItem{
		listedKeys: listedKeys{PK: keyNamePK(k.Name), SK: keyNameSK, GSI1PK: keyListGSIPK, GSI1SK: k.Name, Type: typeKeyName},
		Name:       k.Name, Hash: k.Hash, ID: k.ID, Role: string(k.Role),
		Description: k.Description, CreatedAt: k.CreatedAt.UTC().Format(time.RFC3339Nano),
	})
}

// ItemSizes are the DynamoDB item sizes (bytes, itemSize's approximation of
// DynamoDB's rule) of p's record item and of the history event a write of p
// with cause appends: what a read or a write of them costs in request units
// (the bench's cost per pipeline-month).
func ItemSizes(p domain.Pipeline, cause Cause) (record, event int, err error) {
	now := time.Now()
	rec, err := encodeRecord(p, now)
	if err != nil {
		return 0, 0, err
	}
	ev, err := encodeEvent(p.Name, p.ID, eventOf(p, cause, now), time.Time{})
	if err != nil {
		return 0, 0, err
	}
	return itemSize(rec.item), itemSize(ev), nil
}

// sumOf adds size(v) over vs (the members of a set attribute).
func sumOf[T any](vs []T, size func(T) int) int {
	n := 0
	for _, v := range vs {
		n += size(v)
	}
	return n
}
