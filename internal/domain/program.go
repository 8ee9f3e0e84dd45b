package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"
)

// ProgramStatus is Feldera's program_status. Sluice compiles nothing: the
// program is data that the operator's runtime image runs. So the status says
// whether this control plane accepted the program for deployment, decided at
// every create and edit by CheckDeployable (SPEC §1, README "Programs"):
// Success (every provisioning hands it to the runtime) or SystemError (it
// cannot be deployed here; program_error.system_error says why, and a start
// ends Stopped with deployment_error StartFailedDueToFailedCompilation, as in
// Feldera). Feldera's compiler statuses (Pending, CompilingSql, …, SqlError,
// RustError) never occur: nothing here compiles.
type ProgramStatus string

const (
	ProgramSuccess     ProgramStatus = "Success"
	ProgramSystemError ProgramStatus = "SystemError"
)

// AllProgramStatuses lists every program status Sluice sets.
var programStatusEnum, AllProgramStatuses = newEnum("program status", ProgramSuccess, ProgramSystemError)

func (s ProgramStatus) MarshalText() ([]byte, error)  { return programStatusEnum.marshal(s) }
func (s *ProgramStatus) UnmarshalText(b []byte) error { return programStatusEnum.unmarshal(b, s) }

// ProgramError is Feldera's program_error: compiler output (always null here:
// nothing compiles) and the system error of an undeployable program.
type ProgramError struct {
	SQLCompilation  *json.RawMessage `json:"sql_compilation"`
	RustCompilation *json.RawMessage `json:"rust_compilation"`
	SystemError     *string          `json:"system_error"`
}

// Limits of the program fields.
const (
	// MaxProgramBytes bounds program_code + udf_rust + udf_toml +
	// program_config together, so that a record (with runtime_config and the
	// storage details at their limits) stays under the store's item limit.
	MaxProgramBytes = 192 * 1024
	MaxTags         = 50
	MaxTagLength    = 128
)

// CompilationProfiles are Feldera's ProgramConfig.profile values.
var CompilationProfiles = []string{"dev", "unoptimized", "optimized", "optimized_symbols"}

// ValidateProgramConfig checks that program_config is null or a JSON object
// whose documented keys (Feldera's ProgramConfig) have the right types, and
// returns it compacted ({} for null or absent).
func ValidateProgramConfig(raw json.RawMessage) (json.RawMessage, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		return json.RawMessage(`{}`), nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &obj); err != nil || obj == nil {
		return nil, InvalidRequestBody("program_config", "must be a JSON object")
	}
	var known struct {
		Cache          *bool   `json:"cache"`
		Profile        *string `json:"profile"`
		RuntimeVersion *string `json:"runtime_version"`
	}
	if err := json.Unmarshal(trimmed, &known); err != nil {
		return nil, InvalidRequestBody("program_config", "a documented key has the wrong type: "+err.Error())
	}
	if known.Profile != nil && !contains(CompilationProfiles, *known.Profile) {
		return nil, InvalidRequestBody("program_config", fmt.Sprintf("profile %q is not one of %v", *known.Profile, CompilationProfiles))
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, trimmed); err != nil {
		return nil, InvalidRequestBody("program_config", "must be a JSON object")
	}
	return compact.Bytes(), nil
}

// ValidateTags checks the tags of Feldera's ClientMetadata.
func ValidateTags(tags []string) error {
	if len(tags) > MaxTags {
		return InvalidRequestBody("tags", fmt.Sprintf("has %d tags; at most %d are allowed", len(tags), MaxTags))
	}
	for _, t := range tags {
		if t == "" || utf8.RuneCountInString(t) > MaxTagLength || !utf8.ValidString(t) {
			return InvalidRequestBody("tags", fmt.Sprintf("every tag must be 1 to %d characters of valid UTF-8", MaxTagLength))
		}
	}
	return nil
}

func validateProgram(d Definition) (Definition, error) {
	for field, s := range map[string]string{"program_code": d.ProgramCode, "udf_rust": d.UdfRust, "udf_toml": d.UdfToml} {
		if !utf8.ValidString(s) {
			return d, InvalidRequestBody(field, "must be valid UTF-8")
		}
	}
	cfg, err := ValidateProgramConfig(d.ProgramConfig)
	if err != nil {
		return d, err
	}
	d.ProgramConfig = cfg
	if n := len(d.ProgramCode) + len(d.UdfRust) + len(d.UdfToml) + len(cfg); n > MaxProgramBytes {
		return d, InvalidRequestBody("program_code", fmt.Sprintf("the program (program_code, udf_rust, udf_toml and program_config) is %d bytes; at most %d are allowed", n, MaxProgramBytes))
	}
	if err := ValidateTags(d.Tags); err != nil {
		return d, err
	}
	if d.Tags == nil {
		d.Tags = []string{}
	}
	return d, nil
}

// CheckDeployable decides program_status: the reason a valid program cannot
// be deployed by this control plane, "" when it can. The one such reason
// today: program_config.runtime_version asks for another runtime, and what a
// pipeline runs is the operator's configuration (the compute driver's
// runtime), never an API caller's choice.
func CheckDeployable(d Definition) string {
	var cfg struct {
		RuntimeVersion *string `json:"runtime_version"`
	}
	if json.Unmarshal(d.ProgramConfig, &cfg) == nil && cfg.RuntimeVersion != nil && *cfg.RuntimeVersion != "" {
		return fmt.Sprintf("program_config.runtime_version %q cannot be honoured: the runtime that runs a Sluice pipeline is the operator's configured runtime, not chosen per pipeline; remove runtime_version", *cfg.RuntimeVersion)
	}
	return ""
}

// programChanged: the program fields of next differ from p's.
func programChanged(p Pipeline, d Definition) bool {
	return p.ProgramCode != d.ProgramCode || p.UdfRust != d.UdfRust || p.UdfToml != d.UdfToml ||
		!bytes.Equal(p.ProgramConfig, d.ProgramConfig)
}

// setProgram writes d's program into next and decides its program status; a
// new program gets a new program_version and platform_version.
func setProgram(next *Pipeline, d Definition, newVersion bool, now time.Time) {
	next.ProgramCode, next.UdfRust, next.UdfToml = d.ProgramCode, d.UdfRust, d.UdfToml
	next.ProgramConfig = cloneBytes(d.ProgramConfig)
	next.Tags = append([]string{}, d.Tags...)
	if !newVersion {
		return
	}
	next.ProgramVersion++
	next.PlatformVersion = PlatformVersion
	status, perr := ProgramSuccess, ProgramError{}
	if reason := CheckDeployable(d); reason != "" {
		status, perr.SystemError = ProgramSystemError, &reason
	}
	next.ProgramStatus, next.ProgramError = status, perr
	next.ProgramStatusSince = now
}

// PlatformVersion is Sluice's platform_version, recorded with every new
// program version (set from the build in internal/version's init).
var PlatformVersion = "sluice-dev"

// normalizeProgram fills the program fields of a record written before they
// existed: the empty program, accepted, version 1.
func (p *Pipeline) normalizeProgram() {
	if p.ProgramStatus == "" {
		p.ProgramStatus = ProgramSuccess
		p.ProgramStatusSince = p.CreatedAt
	}
	if p.ProgramVersion == 0 {
		p.ProgramVersion = 1
	}
	if len(p.ProgramConfig) == 0 || string(p.ProgramConfig) == "null" {
		p.ProgramConfig = json.RawMessage(`{}`)
	}
	if p.Tags == nil {
		p.Tags = []string{}
	}
	if p.PlatformVersion == "" {
		p.PlatformVersion = PlatformVersion
	}
}

// Normalize completes a record read from the store that predates fields added
// later (their documented defaults).
func (p Pipeline) Normalize() Pipeline {
	p.normalizeProgram()
	return p
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
