package sampleruntime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// Defaults of the runtime_config keys.
const (
	DefaultEventsPerSec           = 1000
	DefaultCheckpointIntervalSecs = 60
	DefaultKeepCheckpoints        = 5
)

// Config is the part of runtime_config the sample runtime reads.
type Config struct {
	// EventsPerSec is the ingest rate (0: ingest nothing).
	EventsPerSec float64
	// CheckpointInterval is the period of automatic checkpoints (0: none).
	CheckpointInterval time.Duration
	// Storage enables checkpoints (default true).
	Storage bool
	// KeepCheckpoints is how many checkpoint files are kept.
	KeepCheckpoints int
	Fault           Fault
}

// Fault holds the switchable faults (see the package doc).
type Fault struct {
	Unavailable          time.Duration
	Initializing         time.Duration
	SuspendDelay         time.Duration
	SuspendError         string
	CrashAfter           time.Duration
	CheckpointCrash      bool
	CheckpointCrashAfter int
}

// DefaultConfig is the configuration of an empty runtime_config.
func DefaultConfig() Config {
	return Config{
		EventsPerSec:       DefaultEventsPerSec,
		CheckpointInterval: DefaultCheckpointIntervalSecs * time.Second,
		Storage:            true,
		KeepCheckpoints:    DefaultKeepCheckpoints,
	}
}

type rawFault struct {
	UnavailableSecs      *float64 `json:"unavailable_secs"`
	InitializingSecs     *float64 `json:"initializing_secs"`
	SuspendDelaySecs     *float64 `json:"suspend_delay_secs"`
	SuspendError         *string  `json:"suspend_error"`
	CrashAfterSecs       *float64 `json:"crash_after_secs"`
	CheckpointCrash      *bool    `json:"checkpoint_crash"`
	CheckpointCrashAfter *int     `json:"checkpoint_crash_after"`
}

type rawConfig struct {
	EventsPerSec           *float64  `json:"events_per_sec"`
	CheckpointIntervalSecs *float64  `json:"checkpoint_interval_secs"`
	Storage                *bool     `json:"storage"`
	KeepCheckpoints        *int      `json:"keep_checkpoints"`
	Fault                  *rawFault `json:"fault"`
}

// ParseConfig reads a runtime_config (empty or null means all defaults). Unknown
// keys are ignored; a known key of the wrong type or out of range is an error.
func ParseConfig(raw []byte) (Config, error) {
	cfg := DefaultConfig()
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return cfg, nil
	}
	var rc rawConfig
	if err := json.Unmarshal(raw, &rc); err != nil {
		return Config{}, fmt.Errorf("runtime_config: %w", err)
	}
	var errs []error
	if rc.EventsPerSec != nil {
		if *rc.EventsPerSec < 0 || math.IsInf(*rc.EventsPerSec, 0) {
			errs = append(errs, errors.New("events_per_sec must be ≥ 0"))
		}
		cfg.EventsPerSec = *rc.EventsPerSec
	}
	if rc.CheckpointIntervalSecs != nil {
		d, err := secs("checkpoint_interval_secs", *rc.CheckpointIntervalSecs)
		errs = append(errs, err)
		cfg.CheckpointInterval = d
	}
	if rc.Storage != nil {
		cfg.Storage = *rc.Storage
	}
	if rc.KeepCheckpoints != nil {
		if *rc.KeepCheckpoints < 1 {
			errs = append(errs, errors.New("keep_checkpoints must be ≥ 1"))
		}
		cfg.KeepCheckpoints = *rc.KeepCheckpoints
	}
	if f := rc.Fault; f != nil {
		set := func(name string, v *float64, dst *time.Duration) {
			if v != nil {
				d, err := secs("fault."+name, *v)
				errs = append(errs, err)
				*dst = d
			}
		}
		set("unavailable_secs", f.UnavailableSecs, &cfg.Fault.Unavailable)
		set("initializing_secs", f.InitializingSecs, &cfg.Fault.Initializing)
		set("suspend_delay_secs", f.SuspendDelaySecs, &cfg.Fault.SuspendDelay)
		set("crash_after_secs", f.CrashAfterSecs, &cfg.Fault.CrashAfter)
		if f.SuspendError != nil {
			cfg.Fault.SuspendError = *f.SuspendError
		}
		if f.CheckpointCrash != nil {
			cfg.Fault.CheckpointCrash = *f.CheckpointCrash
		}
		if f.CheckpointCrashAfter != nil {
			if *f.CheckpointCrashAfter < 0 {
				errs = append(errs, errors.New("fault.checkpoint_crash_after must be ≥ 0"))
			}
			cfg.Fault.CheckpointCrashAfter = *f.CheckpointCrashAfter
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("runtime_config: %w", err)
	}
	return cfg, nil
}

func secs(name string, v float64) (time.Duration, error) {
	if v < 0 || math.IsNaN(v) || v > 365*24*3600 {
		return 0, fmt.Errorf("%s must be between 0 and one year", name)
	}
	return time.Duration(v * float64(time.Second)), nil
}
