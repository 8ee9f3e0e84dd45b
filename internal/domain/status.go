// Package domain holds Sluice's lifecycle rules: the status enums of SPEC §1–2,
// the pipeline record, the user actions of SPEC §3–4, the workflow-side
// transitions and the error catalogue of SPEC §5. It is pure: no I/O, no AWS.
package domain

import (
	"fmt"
)

// enumValue is implemented by every status enum so that one generic helper
// gives them all strict text decoding.
type enumValue interface {
	~string
}

func parseEnum[T enumValue](kind string, s string, all []T) (T, error) {
	for _, v := range all {
		if string(v) == s {
			return v, nil
		}
	}
	var zero T
	return zero, fmt.Errorf("unknown %s %q", kind, s)
}

func marshalEnum[T enumValue](kind string, v T, all []T) ([]byte, error) {
	if _, err := parseEnum(kind, string(v), all); err != nil {
		return nil, err
	}
	return []byte(v), nil
}

func unmarshalEnum[T enumValue](kind string, b []byte, all []T, dst *T) error {
	v, err := parseEnum(kind, string(b), all)
	if err == nil {
		*dst = v
	}
	return err
}

// ResourcesStatus is the resources layer (SPEC §2.1), owned by the workflows.
type ResourcesStatus string

const (
	ResourcesStopped      ResourcesStatus = "Stopped"
	ResourcesProvisioning ResourcesStatus = "Provisioning"
	ResourcesProvisioned  ResourcesStatus = "Provisioned"
	ResourcesStopping     ResourcesStatus = "Stopping"
)

// AllResourcesStatuses lists every resources status, in lifecycle order.
var AllResourcesStatuses = []ResourcesStatus{ResourcesStopped, ResourcesProvisioning, ResourcesProvisioned, ResourcesStopping}

func (s ResourcesStatus) MarshalText() ([]byte, error) {
	return marshalEnum("resources status", s, AllResourcesStatuses)
}

func (s *ResourcesStatus) UnmarshalText(b []byte) error {
	return unmarshalEnum("resources status", b, AllResourcesStatuses, s)
}

// ResourcesDesiredStatus is what the user asked of the resources layer.
type ResourcesDesiredStatus string

const (
	ResourcesDesiredStopped     ResourcesDesiredStatus = "Stopped"
	ResourcesDesiredProvisioned ResourcesDesiredStatus = "Provisioned"
)

// AllResourcesDesiredStatuses lists every resources desired status.
var AllResourcesDesiredStatuses = []ResourcesDesiredStatus{ResourcesDesiredStopped, ResourcesDesiredProvisioned}

func (s ResourcesDesiredStatus) MarshalText() ([]byte, error) {
	return marshalEnum("resources desired status", s, AllResourcesDesiredStatuses)
}

func (s *ResourcesDesiredStatus) UnmarshalText(b []byte) error {
	return unmarshalEnum("resources desired status", b, AllResourcesDesiredStatuses, s)
}

// RuntimeStatus is the runtime layer (SPEC §2.2), meaningful while Provisioned.
type RuntimeStatus string

const (
	RuntimeInitializing RuntimeStatus = "Initializing"
	RuntimePaused       RuntimeStatus = "Paused"
	RuntimeRunning      RuntimeStatus = "Running"
	RuntimeUnavailable  RuntimeStatus = "Unavailable"
	RuntimeSuspending   RuntimeStatus = "Suspending"
	RuntimeSuspended    RuntimeStatus = "Suspended"
)

// AllRuntimeStatuses lists every runtime status.
var AllRuntimeStatuses = []RuntimeStatus{RuntimeInitializing, RuntimePaused, RuntimeRunning, RuntimeUnavailable, RuntimeSuspending, RuntimeSuspended}

func (s RuntimeStatus) MarshalText() ([]byte, error) {
	return marshalEnum("runtime status", s, AllRuntimeStatuses)
}

func (s *RuntimeStatus) UnmarshalText(b []byte) error {
	return unmarshalEnum("runtime status", b, AllRuntimeStatuses, s)
}

// ParseRuntimeStatus parses a runtime status strictly (as reported by a runtime's GET /status).
func ParseRuntimeStatus(s string) (RuntimeStatus, error) {
	return parseEnum("runtime status", s, AllRuntimeStatuses)
}

// RuntimeDesiredStatus is what the user asked of the runtime layer.
type RuntimeDesiredStatus string

const (
	RuntimeDesiredPaused    RuntimeDesiredStatus = "Paused"
	RuntimeDesiredRunning   RuntimeDesiredStatus = "Running"
	RuntimeDesiredSuspended RuntimeDesiredStatus = "Suspended"
)

// AllRuntimeDesiredStatuses lists every runtime desired status.
var AllRuntimeDesiredStatuses = []RuntimeDesiredStatus{RuntimeDesiredPaused, RuntimeDesiredRunning, RuntimeDesiredSuspended}

func (s RuntimeDesiredStatus) MarshalText() ([]byte, error) {
	return marshalEnum("runtime desired status", s, AllRuntimeDesiredStatuses)
}

func (s *RuntimeDesiredStatus) UnmarshalText(b []byte) error {
	return unmarshalEnum("runtime desired status", b, AllRuntimeDesiredStatuses, s)
}

// StorageStatus is the state of the pipeline's durable storage.
type StorageStatus string

const (
	StorageCleared  StorageStatus = "Cleared"
	StorageInUse    StorageStatus = "InUse"
	StorageClearing StorageStatus = "Clearing"
)

// AllStorageStatuses lists every storage status.
var AllStorageStatuses = []StorageStatus{StorageCleared, StorageInUse, StorageClearing}

func (s StorageStatus) MarshalText() ([]byte, error) {
	return marshalEnum("storage status", s, AllStorageStatuses)
}

func (s *StorageStatus) UnmarshalText(b []byte) error {
	return unmarshalEnum("storage status", b, AllStorageStatuses, s)
}

// InitialState is what /start asked the runtime to be in once provisioned.
type InitialState string

const (
	InitialRunning InitialState = "Running"
	InitialPaused  InitialState = "Paused"
)

// AllInitialStates lists every initial state.
var AllInitialStates = []InitialState{InitialRunning, InitialPaused}

func (s InitialState) MarshalText() ([]byte, error) {
	return marshalEnum("initial state", s, AllInitialStates)
}

func (s *InitialState) UnmarshalText(b []byte) error {
	return unmarshalEnum("initial state", b, AllInitialStates, s)
}

// DesiredRuntime is the runtime desired status that an initial state asks for.
func (s InitialState) DesiredRuntime() RuntimeDesiredStatus {
	if s == InitialPaused {
		return RuntimeDesiredPaused
	}
	return RuntimeDesiredRunning
}

// CombinedStatus is deployment_status (SPEC §2.3).
type CombinedStatus string

const (
	CombinedStopped      CombinedStatus = "Stopped"
	CombinedProvisioning CombinedStatus = "Provisioning"
	CombinedStopping     CombinedStatus = "Stopping"
	CombinedInitializing CombinedStatus = "Initializing"
	CombinedPaused       CombinedStatus = "Paused"
	CombinedRunning      CombinedStatus = "Running"
	CombinedUnavailable  CombinedStatus = "Unavailable"
	CombinedSuspending   CombinedStatus = "Suspending"
	CombinedSuspended    CombinedStatus = "Suspended"
)

// AllCombinedStatuses lists every combined status.
var AllCombinedStatuses = []CombinedStatus{CombinedStopped, CombinedProvisioning, CombinedStopping, CombinedInitializing, CombinedPaused, CombinedRunning, CombinedUnavailable, CombinedSuspending, CombinedSuspended}

func (s CombinedStatus) MarshalText() ([]byte, error) {
	return marshalEnum("deployment status", s, AllCombinedStatuses)
}

func (s *CombinedStatus) UnmarshalText(b []byte) error {
	return unmarshalEnum("deployment status", b, AllCombinedStatuses, s)
}

// CombinedDesiredStatus is deployment_desired_status (SPEC §2.3).
type CombinedDesiredStatus string

const (
	CombinedDesiredStopped   CombinedDesiredStatus = "Stopped"
	CombinedDesiredPaused    CombinedDesiredStatus = "Paused"
	CombinedDesiredRunning   CombinedDesiredStatus = "Running"
	CombinedDesiredSuspended CombinedDesiredStatus = "Suspended"
)

// AllCombinedDesiredStatuses lists every combined desired status.
var AllCombinedDesiredStatuses = []CombinedDesiredStatus{CombinedDesiredStopped, CombinedDesiredPaused, CombinedDesiredRunning, CombinedDesiredSuspended}

func (s CombinedDesiredStatus) MarshalText() ([]byte, error) {
	return marshalEnum("deployment desired status", s, AllCombinedDesiredStatuses)
}

func (s *CombinedDesiredStatus) UnmarshalText(b []byte) error {
	return unmarshalEnum("deployment desired status", b, AllCombinedDesiredStatuses, s)
}
