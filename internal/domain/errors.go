package domain

import (
	"fmt"
	"net/http"
)

// ErrorCode is the error_code of an error response (SPEC §5).
type ErrorCode string

// The error catalogue. Each code has exactly one HTTP status, see HTTPStatus.
const (
	CodeUnknownPipelineName                  ErrorCode = "UnknownPipelineName"
	CodeIllegalPipelineAction                ErrorCode = "IllegalPipelineAction"
	CodeCannotStartWithUndismissedError      ErrorCode = "CannotStartWithUndismissedError"
	CodeCannotStartWhileClearingStorage      ErrorCode = "CannotStartWhileClearingStorage"
	CodeInitialImmutableUnlessStopped        ErrorCode = "InitialImmutableUnlessStopped"
	CodeUpdateRestrictedToStopped            ErrorCode = "UpdateRestrictedToStopped"
	CodeDeleteRestrictedToFullyStopped       ErrorCode = "DeleteRestrictedToFullyStopped"
	CodeDeleteRestrictedToClearedStorage     ErrorCode = "DeleteRestrictedToClearedStorage"
	CodeStorageStatusImmutableUnlessStopped  ErrorCode = "StorageStatusImmutableUnlessStopped"
	CodeDismissErrorRestrictedToFullyStopped ErrorCode = "DismissErrorRestrictedToFullyStopped"
	// CodeStartFailedDueToFailedCompilation is never an answer, only the
	// deployment_error of a start whose program cannot be deployed (Feldera's code).
	CodeStartFailedDueToFailedCompilation ErrorCode = "StartFailedDueToFailedCompilation"
	CodeUnknownAPIKey                     ErrorCode = "UnknownApiKey"
	CodeInvalidQueryParameter             ErrorCode = "InvalidQueryParameter"
	CodeInvalidRequestBody                ErrorCode = "InvalidRequestBody"
	CodeEmptyName                         ErrorCode = "EmptyName"
	CodeTooLongName                       ErrorCode = "TooLongName"
	CodeNameDoesNotMatchPattern           ErrorCode = "NameDoesNotMatchPattern"
	CodeUnsupportedPipelineAction         ErrorCode = "UnsupportedPipelineAction"
	CodeDuplicateName                     ErrorCode = "DuplicateName"
	CodeFeatureNotAvailable               ErrorCode = "FeatureNotAvailable"
	CodePipelineInteractionNotDeployed    ErrorCode = "PipelineInteractionNotDeployed"
	CodePipelineUnavailable               ErrorCode = "PipelineUnavailable"
	CodePipelineInteractionUnreachable    ErrorCode = "PipelineInteractionUnreachable"
	CodeServiceUnavailable                ErrorCode = "ServiceUnavailable"
	CodeAuthenticationFailed              ErrorCode = "AuthenticationFailed"
	CodeInsufficientPermissions           ErrorCode = "InsufficientPermissions"
	CodeInternalError                     ErrorCode = "InternalError"
	CodeNotFound                          ErrorCode = "NotFound"
	CodeMethodNotAllowed                  ErrorCode = "MethodNotAllowed"
	CodePayloadTooLarge                   ErrorCode = "PayloadTooLarge"
	CodeUnsupportedMediaType              ErrorCode = "UnsupportedMediaType"
)

// httpStatusOf is the catalogue's code → HTTP status mapping, in SPEC §5 order.
// The last four are transport-level answers of the router (unknown route,
// wrong method, oversized or non-JSON body), in the same error shape.
var httpStatusOf = map[ErrorCode]int{
	CodeUnknownPipelineName:                  http.StatusNotFound,
	CodeIllegalPipelineAction:                http.StatusBadRequest,
	CodeCannotStartWithUndismissedError:      http.StatusBadRequest,
	CodeCannotStartWhileClearingStorage:      http.StatusBadRequest,
	CodeInitialImmutableUnlessStopped:        http.StatusBadRequest,
	CodeUpdateRestrictedToStopped:            http.StatusBadRequest,
	CodeDeleteRestrictedToFullyStopped:       http.StatusBadRequest,
	CodeDeleteRestrictedToClearedStorage:     http.StatusBadRequest,
	CodeStorageStatusImmutableUnlessStopped:  http.StatusBadRequest,
	CodeDismissErrorRestrictedToFullyStopped: http.StatusBadRequest,
	CodeStartFailedDueToFailedCompilation:    http.StatusBadRequest,
	CodeUnknownAPIKey:                        http.StatusNotFound,
	CodeInvalidQueryParameter:                http.StatusBadRequest,
	CodeInvalidRequestBody:                   http.StatusBadRequest,
	CodeEmptyName:                            http.StatusBadRequest,
	CodeTooLongName:                          http.StatusBadRequest,
	CodeNameDoesNotMatchPattern:              http.StatusBadRequest,
	CodeUnsupportedPipelineAction:            http.StatusMethodNotAllowed,
	CodeDuplicateName:                        http.StatusConflict,
	CodeFeatureNotAvailable:                  http.StatusNotImplemented,
	CodePipelineInteractionNotDeployed:       http.StatusServiceUnavailable,
	CodePipelineUnavailable:                  http.StatusServiceUnavailable,
	CodePipelineInteractionUnreachable:       http.StatusServiceUnavailable,
	CodeServiceUnavailable:                   http.StatusServiceUnavailable,
	CodeAuthenticationFailed:                 http.StatusUnauthorized,
	CodeInsufficientPermissions:              http.StatusForbidden,
	CodeInternalError:                        http.StatusInternalServerError,
	CodeNotFound:                             http.StatusNotFound,
	CodeMethodNotAllowed:                     http.StatusMethodNotAllowed,
	CodePayloadTooLarge:                      http.StatusRequestEntityTooLarge,
	CodeUnsupportedMediaType:                 http.StatusUnsupportedMediaType,
}

// AllErrorCodes lists the catalogue.
func AllErrorCodes() []ErrorCode {
	codes := make([]ErrorCode, 0, len(httpStatusOf))
	for c := range httpStatusOf {
		codes = append(codes, c)
	}
	return codes
}

// HTTPStatus is the status code every error of this code is answered with.
func (c ErrorCode) HTTPStatus() int {
	if s, ok := httpStatusOf[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// DefaultRetryAfterSeconds is sent in Retry-After with every 503.
const DefaultRetryAfterSeconds = 5

// Error is an error of the catalogue. Its JSON form is the response body
// {message, error_code, details} of SPEC §5 and of the seed document.
type Error struct {
	Code    ErrorCode `json:"error_code"`
	Message string    `json:"message"`
	// Details is one of the *Details types below (or a map for runtime-reported errors).
	Details any `json:"details"`
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// newError is the body of every constructor of the catalogue: the code, its
// details (one typed *Details struct per code, so each variant's fields are
// fixed by its constructor) and the message, formatted.
func newError[D any](code ErrorCode, details D, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Details: details}
}

// HTTPStatus is the HTTP status of the response that carries this error.
func (e *Error) HTTPStatus() int { return e.Code.HTTPStatus() }

// ErrorBody is an error as stored and sent: also the shape of deployment_error.
type ErrorBody struct {
	Message   string         `json:"message"`
	ErrorCode string         `json:"error_code"`
	Details   map[string]any `json:"details"`
}

// Layer names which status layer a conflict is in.
type Layer string

const (
	LayerResources Layer = "resources"
	LayerRuntime   Layer = "runtime"
)

// IllegalActionDetails are the details of IllegalPipelineAction, as in the seed.
type IllegalActionDetails struct {
	Status               string `json:"status"`
	CurrentDesiredStatus string `json:"current_desired_status"`
	NewDesiredStatus     string `json:"new_desired_status"`
	Hint                 string `json:"hint"`
}

// IllegalPipelineAction builds the seed's error: "Deployment resources status
// (current: 'Stopping', desired: 'Stopped') cannot have desired changed to
// 'Provisioned'. <hint>".
func IllegalPipelineAction(layer Layer, status, currentDesired, newDesired, hint string) *Error {
	return newError(CodeIllegalPipelineAction, IllegalActionDetails{Status: status, CurrentDesiredStatus: currentDesired, NewDesiredStatus: newDesired, Hint: hint},
		"Deployment %s status (current: '%s', desired: '%s') cannot have desired changed to '%s'. %s",
		layer, status, currentDesired, newDesired, hint)
}

// PipelineNameDetails name the pipeline an error is about.
type PipelineNameDetails struct {
	PipelineName string `json:"pipeline_name"`
}

// UnknownPipelineName: no pipeline has that name.
func UnknownPipelineName(name string) *Error {
	return newError(CodeUnknownPipelineName, PipelineNameDetails{name}, "Unknown pipeline name '%s'", name)
}

// DuplicateName: create with a taken name.
func DuplicateName(name string) *Error {
	return newError(CodeDuplicateName, PipelineNameDetails{name}, "A pipeline named '%s' already exists", name)
}

// StatusDetails carry the statuses a restriction was checked against.
type StatusDetails struct {
	PipelineName  string `json:"pipeline_name"`
	Status        string `json:"status"`
	DesiredStatus string `json:"desired_status"`
	StorageStatus string `json:"storage_status,omitempty"`
}

func statusDetails(p Pipeline) StatusDetails {
	return StatusDetails{PipelineName: p.Name, Status: string(p.DeploymentStatus()), DesiredStatus: string(p.DeploymentDesiredStatus()), StorageStatus: string(p.StorageStatus)}
}

func restricted(code ErrorCode, p Pipeline, message string) *Error {
	return newError(code, statusDetails(p), "%s", message)
}

// CannotStartWithUndismissedError: start with dismiss_error=false while an error is set.
func CannotStartWithUndismissedError(p Pipeline) *Error {
	return restricted(CodeCannotStartWithUndismissedError, p,
		"Cannot start the pipeline while its deployment error is not dismissed. Dismiss it first (POST /dismiss_error) or start with dismiss_error=true.")
}

// CannotStartWhileClearingStorage: start while storage is being cleared.
func CannotStartWhileClearingStorage(p Pipeline) *Error {
	return restricted(CodeCannotStartWhileClearingStorage, p, "Cannot start the pipeline while its storage is being cleared. Wait for storage status Cleared.")
}

// InitialDetails carry the two initial states in conflict.
type InitialDetails struct {
	CurrentInitial   string `json:"current_initial"`
	RequestedInitial string `json:"requested_initial"`
}

// InitialImmutableUnlessStopped: a start with another initial state while not stopped.
func InitialImmutableUnlessStopped(current, requested InitialState) *Error {
	return newError(CodeInitialImmutableUnlessStopped, InitialDetails{CurrentInitial: string(current), RequestedInitial: string(requested)},
		"The pipeline was started with initial '%s'; it cannot be changed to '%s' until the pipeline is stopped.", current, requested)
}

// UpdateRestrictedToStopped: an edit while not Stopped/Stopped.
func UpdateRestrictedToStopped(p Pipeline) *Error {
	return restricted(CodeUpdateRestrictedToStopped, p, "The pipeline can only be edited while it is fully stopped (status and desired status Stopped).")
}

// DeleteRestrictedToFullyStopped: delete while not Stopped/Stopped.
func DeleteRestrictedToFullyStopped(p Pipeline) *Error {
	return restricted(CodeDeleteRestrictedToFullyStopped, p, "The pipeline can only be deleted while it is fully stopped (status and desired status Stopped).")
}

// DeleteRestrictedToClearedStorage: delete while storage is not Cleared.
func DeleteRestrictedToClearedStorage(p Pipeline) *Error {
	return restricted(CodeDeleteRestrictedToClearedStorage, p, "The pipeline can only be deleted once its storage is cleared (POST /clear).")
}

// StorageStatusImmutableUnlessStopped: clear while not Stopped/Stopped.
func StorageStatusImmutableUnlessStopped(p Pipeline) *Error {
	return restricted(CodeStorageStatusImmutableUnlessStopped, p, "Storage can only be cleared while the pipeline is fully stopped (status and desired status Stopped).")
}

// DismissErrorRestrictedToFullyStopped: dismiss_error while not Stopped/Stopped or without an error.
func DismissErrorRestrictedToFullyStopped(p Pipeline) *Error {
	return restricted(CodeDismissErrorRestrictedToFullyStopped, p, "A deployment error can only be dismissed while the pipeline is fully stopped.")
}

// StartFailedDueToFailedCompilation is the deployment_error of a start of a
// pipeline whose program_status is not Success.
func StartFailedDueToFailedCompilation(p Pipeline) *ErrorBody {
	reason := "the program cannot be deployed"
	if p.ProgramError.SystemError != nil {
		reason = *p.ProgramError.SystemError
	}
	return &ErrorBody{
		Message:   "Pipeline could not be started: " + reason + " (see program_error).",
		ErrorCode: string(CodeStartFailedDueToFailedCompilation),
		Details:   map[string]any{"compiler_error": reason},
	}
}

// APIKeyDetails names an API key.
type APIKeyDetails struct {
	Name string `json:"name"`
}

// DuplicateAPIKeyName: an API key of that name exists (Feldera's DuplicateName).
func DuplicateAPIKeyName(name string) *Error {
	return newError(CodeDuplicateName, APIKeyDetails{Name: truncate(name, MaxNameLength)},
		"An API key named '%s' already exists", truncate(name, MaxNameLength))
}

// UnknownAPIKey: no API key of that name (Feldera's UnknownApiKey).
func UnknownAPIKey(name string) *Error {
	return newError(CodeUnknownAPIKey, APIKeyDetails{Name: truncate(name, MaxNameLength)},
		"Unknown API key '%s'", truncate(name, MaxNameLength))
}

// ParameterDetails name the offending parameter and value.
type ParameterDetails struct {
	Parameter string `json:"parameter"`
	Value     string `json:"value"`
	Expected  string `json:"expected,omitempty"`
}

// InvalidQueryParameter: a query parameter has a value outside its documented set.
func InvalidQueryParameter(name, value, expected string) *Error {
	return newError(CodeInvalidQueryParameter, ParameterDetails{Parameter: name, Value: truncate(value, 100), Expected: expected},
		"Invalid value '%s' for query parameter '%s': expected %s.", truncate(value, 100), name, expected)
}

// BodyDetails say what is wrong with the request body.
type BodyDetails struct {
	Reason string `json:"reason"`
	Field  string `json:"field,omitempty"`
}

// InvalidRequestBody: malformed JSON, wrong field types, a field out of its limits.
func InvalidRequestBody(field, reason string) *Error {
	msg := "Invalid request body: " + reason
	if field != "" {
		msg = fmt.Sprintf("Invalid request body: field '%s': %s", field, reason)
	}
	return newError(CodeInvalidRequestBody, BodyDetails{Reason: reason, Field: field}, "%s", msg)
}

// NameDetails carry the rejected name and the rule it broke.
type NameDetails struct {
	Name      string `json:"name"`
	MaxLength int    `json:"max_length,omitempty"`
	Pattern   string `json:"pattern,omitempty"`
}

// ActionDetails name an action the endpoint does not support.
type ActionDetails struct {
	Action    string   `json:"action"`
	Supported []string `json:"supported"`
}

// UnsupportedPipelineAction: an action value the endpoint does not support (405).
func UnsupportedPipelineAction(parameter, value string, supported []string) *Error {
	return newError(CodeUnsupportedPipelineAction, ActionDetails{Action: truncate(value, 100), Supported: supported},
		"Unsupported value '%s' for '%s': supported values are %v.", truncate(value, 100), parameter, supported)
}

// FeatureDetails name the unavailable feature.
type FeatureDetails struct {
	Feature string `json:"feature"`
	Reason  string `json:"reason"`
}

// FeatureNotAvailable: the pipeline's runtime or compute cannot do it (501).
func FeatureNotAvailable(feature, reason string) *Error {
	return newError(CodeFeatureNotAvailable, FeatureDetails{Feature: feature, Reason: reason},
		"Feature '%s' is not available for this pipeline: %s", feature, reason)
}

// PipelineInteractionNotDeployed: a forwarded action while no runtime is provisioned.
func PipelineInteractionNotDeployed(p Pipeline) *Error {
	return restricted(CodePipelineInteractionNotDeployed, p,
		fmt.Sprintf("Cannot interact with pipeline '%s': it is not deployed (status %s).", p.Name, p.DeploymentStatus()))
}

// RuntimeDetails say why a forwarded action failed.
type RuntimeDetails struct {
	PipelineName string `json:"pipeline_name"`
	Reason       string `json:"reason"`
}

// PipelineUnavailable: the runtime answered that it is temporarily unavailable.
func PipelineUnavailable(name, reason string) *Error {
	return newError(CodePipelineUnavailable, RuntimeDetails{PipelineName: name, Reason: reason},
		"Pipeline '%s' is temporarily unavailable; retry later.", name)
}

// PipelineInteractionUnreachable: the runtime did not answer.
func PipelineInteractionUnreachable(name, reason string) *Error {
	return newError(CodePipelineInteractionUnreachable, RuntimeDetails{PipelineName: name, Reason: reason},
		"Pipeline '%s' could not be reached; retry later.", name)
}

// ServiceDetails name the backing service that failed.
type ServiceDetails struct {
	Service string `json:"service"`
}

// ServiceUnavailable: the state store or workflow service throttles or is down; nothing changed.
func ServiceUnavailable(service string) *Error {
	return newError(CodeServiceUnavailable, ServiceDetails{Service: service},
		"The %s is temporarily unavailable; nothing was changed. Retry later.", service)
}

// AuthDetails say which part of authentication failed (never the credential itself).
type AuthDetails struct {
	Reason string `json:"reason"`
}

// AuthenticationFailed: missing, malformed, expired or unknown credentials.
func AuthenticationFailed(reason string) *Error {
	return newError(CodeAuthenticationFailed, AuthDetails{Reason: reason}, "Authentication failed: %s", reason)
}

// PermissionDetails name the role needed and the role held.
type PermissionDetails struct {
	Required string `json:"required"`
	Actual   string `json:"actual"`
}

// InsufficientPermissions: the credential lacks the role.
func InsufficientPermissions(required, actual string) *Error {
	return newError(CodeInsufficientPermissions, PermissionDetails{Required: required, Actual: actual},
		"This action needs the '%s' role; the credential has '%s'.", required, actual)
}

// RequestDetails carry the request id under which the failure was logged.
type RequestDetails struct {
	RequestID string `json:"request_id"`
}

// InternalError: anything unexpected. The body repeats the request id the log carries.
func InternalError(requestID string) *Error {
	return newError(CodeInternalError, RequestDetails{RequestID: requestID}, "Internal error; it was logged with request id %s.", requestID)
}

// RouteDetails describe a request that matched no route.
type RouteDetails struct {
	Method string   `json:"method"`
	Path   string   `json:"path"`
	Allow  []string `json:"allow,omitempty"`
}

// NotFound: no such route.
func NotFound(method, path string) *Error {
	return newError(CodeNotFound, RouteDetails{Method: method, Path: truncate(path, 200)}, "No route for %s %s.", method, truncate(path, 200))
}

// MethodNotAllowed: the route exists, the method does not.
func MethodNotAllowed(method, path string, allow []string) *Error {
	return newError(CodeMethodNotAllowed, RouteDetails{Method: truncate(method, 20), Path: truncate(path, 200), Allow: allow},
		"Method %s is not allowed on %s.", truncate(method, 20), truncate(path, 200))
}

// LimitDetails name a limit that was exceeded.
type LimitDetails struct {
	Limit int `json:"limit_bytes"`
}

// PayloadTooLarge: the body exceeds the limit.
func PayloadTooLarge(limit int) *Error {
	return newError(CodePayloadTooLarge, LimitDetails{Limit: limit}, "Request body exceeds %d bytes.", limit)
}

// MediaTypeDetails name the content type received.
type MediaTypeDetails struct {
	ContentType string `json:"content_type"`
	Expected    string `json:"expected"`
}

// UnsupportedMediaType: a body that is not JSON.
func UnsupportedMediaType(contentType string) *Error {
	return newError(CodeUnsupportedMediaType, MediaTypeDetails{ContentType: truncate(contentType, 100), Expected: "application/json"},
		"Content type '%s' is not supported; send application/json.", truncate(contentType, 100))
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
