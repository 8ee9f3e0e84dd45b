// Package domain holds Sluice's lifecycle rules: the status enums of SPEC §1–2,
// the pipeline record, the user actions of SPEC §3–4, the workflow-side
// transitions and the error catalogue of SPEC §5. It is pure: no I/O, no AWS.
package domain

import (
	"fmt"
)

// enum is one status enum: its name in error messages and its values. Every
// enum's text methods delegate to it, so decoding is strict in one place.
type enum[T ~string] struct {
	kind string
	all  []T
}

// newEnum declares an enum from its name and its values in order: its
// descriptor, and the values again as the exported AllX list.
func newEnum[T ~string](kind string, values ...T) (enum[T], []T) {
	return enum[T]{kind, values}, values
}

func (e enum[T]) parse(s string) (T, error) {
	for _, v := range e.all {
		if string(v) == s {
			return v, nil
		}
	}
	var zero T
	return zero, fmt.Errorf("unknown %s %q", e.kind, s)
}

func (e enum[T]) marshal(v T) ([]byte, error) {
	if _, err := e.parse(string(v)); err != nil {
		return nil, err
	}
	return []byte(v), nil
}

func (e enum[T]) unmarshal(b []byte, dst *T) error {
	v, err := e.parse(string(b))
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
var resourcesStatusEnum, AllResourcesStatuses = newEnum("resources status", ResourcesStopped, ResourcesProvisioning, ResourcesProvisioned, ResourcesStopping)

func (s ResourcesStatus) MarshalText() ([]byte, error)  { return resourcesStatusEnum.marshal(s) }
func (s *ResourcesStatus) UnmarshalText(b []byte) error { return resourcesStatusEnum.unmarshal(b, s) }

// ResourcesDesiredStatus is what the user asked of the resources layer.
type ResourcesDesiredStatus string

const (
	ResourcesDesiredStopped     ResourcesDesiredStatus = "Stopped"
	ResourcesDesiredProvisioned ResourcesDesiredStatus = "Provisioned"
)

// AllResourcesDesiredStatuses lists every resources desired status.
var resourcesDesiredStatusEnum, AllResourcesDesiredStatuses = newEnum("resources desired status", ResourcesDesiredStopped, ResourcesDesiredProvisioned)

func (s ResourcesDesiredStatus) MarshalText() ([]byte, error) {
	return resourcesDesiredStatusEnum.marshal(s)
}
func (s *ResourcesDesiredStatus) UnmarshalText(b []byte) error {
	return resourcesDesiredStatusEnum.unmarshal(b, s)
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
var runtimeStatusEnum, AllRuntimeStatuses = newEnum("runtime status", RuntimeInitializing, RuntimePaused, RuntimeRunning, RuntimeUnavailable, RuntimeSuspending, RuntimeSuspended)

func (s RuntimeStatus) MarshalText() ([]byte, error)  { return runtimeStatusEnum.marshal(s) }
func (s *RuntimeStatus) UnmarshalText(b []byte) error { return runtimeStatusEnum.unmarshal(b, s) }

// ParseRuntimeStatus parses a runtime status strictly (as reported by a runtime's GET /status).
func ParseRuntimeStatus(s string) (RuntimeStatus, error) {
	return runtimeStatusEnum.parse(s)
}

// RuntimeDesiredStatus is what the user asked of the runtime layer.
type RuntimeDesiredStatus string

const (
	RuntimeDesiredPaused    RuntimeDesiredStatus = "Paused"
	RuntimeDesiredRunning   RuntimeDesiredStatus = "Running"
	RuntimeDesiredSuspended RuntimeDesiredStatus = "Suspended"
)

// AllRuntimeDesiredStatuses lists every runtime desired status.
var runtimeDesiredStatusEnum, AllRuntimeDesiredStatuses = newEnum("runtime desired status", RuntimeDesiredPaused, RuntimeDesiredRunning, RuntimeDesiredSuspended)

func (s RuntimeDesiredStatus) MarshalText() ([]byte, error) {
	return runtimeDesiredStatusEnum.marshal(s)
}
func (s *RuntimeDesiredStatus) UnmarshalText(b []byte) error {
	return runtimeDesiredStatusEnum.unmarshal(b, s)
}

// StorageStatus is the state of the pipeline's durable storage.
type StorageStatus string

const (
	StorageCleared  StorageStatus = "Cleared"
	StorageInUse    StorageStatus = "InUse"
	StorageClearing StorageStatus = "Clearing"
)

// AllStorageStatuses lists every storage status.
var storageStatusEnum, AllStorageStatuses = newEnum("storage status", StorageCleared, StorageInUse, StorageClearing)

func (s StorageStatus) MarshalText() ([]byte, error)  { return storageStatusEnum.marshal(s) }
func (s *StorageStatus) UnmarshalText(b []byte) error { return storageStatusEnum.unmarshal(b, s) }

// InitialState is what /start asked the runtime to be in once provisioned.
type InitialState string

const (
	InitialRunning InitialState = "Running"
	InitialPaused  InitialState = "Paused"
)

// AllInitialStates lists every initial state.
var initialStateEnum, AllInitialStates = newEnum("initial state", InitialRunning, InitialPaused)

func (s InitialState) MarshalText() ([]byte, error)  { return initialStateEnum.marshal(s) }
func (s *InitialState) UnmarshalText(b []byte) error { return initialStateEnum.unmarshal(b, s) }

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
var combinedStatusEnum, AllCombinedStatuses = newEnum("deployment status", CombinedStopped, CombinedProvisioning, CombinedStopping, CombinedInitializing, CombinedPaused, CombinedRunning, CombinedUnavailable, CombinedSuspending, CombinedSuspended)

func (s CombinedStatus) MarshalText() ([]byte, error)  { return combinedStatusEnum.marshal(s) }
func (s *CombinedStatus) UnmarshalText(b []byte) error { return combinedStatusEnum.unmarshal(b, s) }

// CombinedDesiredStatus is deployment_desired_status (SPEC §2.3).
type CombinedDesiredStatus string

const (
	CombinedDesiredStopped   CombinedDesiredStatus = "Stopped"
	CombinedDesiredPaused    CombinedDesiredStatus = "Paused"
	CombinedDesiredRunning   CombinedDesiredStatus = "Running"
	CombinedDesiredSuspended CombinedDesiredStatus = "Suspended"
)

// AllCombinedDesiredStatuses lists every combined desired status.
var combinedDesiredStatusEnum, AllCombinedDesiredStatuses = newEnum("deployment desired status", CombinedDesiredStopped, CombinedDesiredPaused, CombinedDesiredRunning, CombinedDesiredSuspended)

func (s CombinedDesiredStatus) MarshalText() ([]byte, error) {
	return combinedDesiredStatusEnum.marshal(s)
}
func (s *CombinedDesiredStatus) UnmarshalText(b []byte) error {
	return combinedDesiredStatusEnum.unmarshal(b, s)
}
