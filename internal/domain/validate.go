package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Limits of the pipeline definition (SPEC §1).
const (
	MaxNameLength        = 63
	MaxDescriptionLength = 300
	// MaxRuntimeConfigBytes keeps a record well under DynamoDB's 400 KB item
	// limit, leaving room for status details and the workflow reference.
	MaxRuntimeConfigBytes = 64 * 1024
	// MaxStorageDetailsBytes bounds the checkpoint list recorded from a runtime.
	MaxStorageDetailsBytes = 64 * 1024
)

// NamePattern is the rule a pipeline name must match.
const NamePattern = `^[a-zA-Z0-9_-]+$`

var nameRegexp = regexp.MustCompile(NamePattern)

// ValidateName checks a pipeline name: 1..63 characters of [a-zA-Z0-9_-].
func ValidateName(name string) error {
	switch {
	case name == "":
		return newError(CodeEmptyName, NameDetails{Name: name}, "Name must not be empty.")
	case utf8.RuneCountInString(name) > MaxNameLength:
		return newError(CodeTooLongName, NameDetails{Name: truncate(name, MaxNameLength), MaxLength: MaxNameLength},
			"Name is %d characters long; at most %d are allowed.", utf8.RuneCountInString(name), MaxNameLength)
	case !nameRegexp.MatchString(name):
		return newError(CodeNameDoesNotMatchPattern, NameDetails{Name: truncate(name, MaxNameLength), Pattern: NamePattern},
			"Name '%s' does not match the pattern %s: use only letters, digits, '_' and '-'.", truncate(name, MaxNameLength), NamePattern)
	}
	return nil
}

// ValidateDescription checks the description length (at most 300 characters).
func ValidateDescription(d string) error {
	if !utf8.ValidString(d) {
		return InvalidRequestBody("description", "must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(d); n > MaxDescriptionLength {
		return InvalidRequestBody("description", fmt.Sprintf("is %d characters long; at most %d are allowed", n, MaxDescriptionLength))
	}
	return nil
}

// ValidateRuntimeConfig checks that runtime_config is a JSON object within the
// size limit and that the keys the control plane reads have the right types.
func ValidateRuntimeConfig(raw json.RawMessage) (json.RawMessage, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		return json.RawMessage(`{}`), nil
	}
	if len(trimmed) > MaxRuntimeConfigBytes {
		return nil, InvalidRequestBody("runtime_config", fmt.Sprintf("is %d bytes; at most %d are allowed", len(trimmed), MaxRuntimeConfigBytes))
	}
	var known struct {
		Storage                *bool            `json:"storage"`
		CheckpointIntervalSecs *uint32          `json:"checkpoint_interval_secs"`
		Fault                  *json.RawMessage `json:"fault"`
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &obj); err != nil || obj == nil {
		return nil, InvalidRequestBody("runtime_config", "must be a JSON object")
	}
	// What a pipeline runs is the operator's configuration (the compute
	// driver's runtime), never an API caller's: a command line here would
	// let any write key run code on the host.
	// In any letter case: a runtime reading its configuration with a
	// case-insensitive decoder (encoding/json's) would take "Command" for
	// "command".
	for k := range obj {
		for _, key := range []string{"command", "image", "entrypoint"} {
			if strings.EqualFold(k, key) {
				return nil, InvalidRequestBody("runtime_config", fmt.Sprintf("%q is not accepted: what a pipeline runs is the operator's configuration (the compute driver's runtime), never set through the API", k))
			}
		}
		// The documented keys are case-sensitive: encoding/json would
		// read "STORAGE" as storage, the runtime might not.
		for _, key := range []string{"storage", "checkpoint_interval_secs", "fault"} {
			if k != key && strings.EqualFold(k, key) {
				return nil, InvalidRequestBody("runtime_config", fmt.Sprintf("unknown key %q (keys are case-sensitive: did you mean %q?)", k, key))
			}
		}
	}
	if err := json.Unmarshal(trimmed, &known); err != nil {
		return nil, InvalidRequestBody("runtime_config", "a documented key has the wrong type: "+err.Error())
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, trimmed); err != nil {
		return nil, InvalidRequestBody("runtime_config", "must be a JSON object")
	}
	return compact.Bytes(), nil
}

// ParseBoolParam parses a boolean query flag strictly: absent gives def, and
// the only accepted values are exactly "true" and "false".
func ParseBoolParam(name string, values []string, def bool) (bool, error) {
	switch {
	case len(values) == 0:
		return def, nil
	case len(values) > 1:
		return false, InvalidQueryParameter(name, fmt.Sprint(values), "a single value, true or false")
	}
	switch values[0] {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, InvalidQueryParameter(name, values[0], "true or false")
}

// ParseInitial parses start's initial parameter: running (default) or paused.
// Any other value is an unsupported action (405), as in Feldera.
func ParseInitial(values []string) (InitialState, error) {
	supported := []string{"running", "paused"}
	switch {
	case len(values) == 0:
		return InitialRunning, nil
	case len(values) > 1:
		return "", UnsupportedPipelineAction("initial", fmt.Sprint(values), supported)
	}
	switch values[0] {
	case "running":
		return InitialRunning, nil
	case "paused":
		return InitialPaused, nil
	}
	return "", UnsupportedPipelineAction("initial", values[0], supported)
}

// Selector chooses how much of a record a GET returns.
type Selector string

const (
	SelectorAll    Selector = "all"
	SelectorStatus Selector = "status"
)

// ParseSelector parses the selector query parameter (default all).
func ParseSelector(values []string) (Selector, error) {
	switch {
	case len(values) == 0:
		return SelectorAll, nil
	case len(values) == 1 && values[0] == "all":
		return SelectorAll, nil
	case len(values) == 1 && (values[0] == "status" || values[0] == "status_with_connectors"):
		// status_with_connectors (today's Feldera) adds connector statistics;
		// a Sluice pipeline has no connectors the control plane knows of.
		return SelectorStatus, nil
	}
	if len(values) == 1 {
		return "", InvalidQueryParameter("selector", values[0], "all, status or status_with_connectors")
	}
	return "", InvalidQueryParameter("selector", fmt.Sprint(values), "all, status or status_with_connectors")
}
