package steps

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Environment variables that tune the workflow loops (Go durations).
const (
	EnvProvisioningTimeout = "SLUICE_PROVISIONING_TIMEOUT"
	EnvSuspendBackoffCap   = "SLUICE_SUSPEND_BACKOFF_CAP"
	EnvReadinessBackoffCap = "SLUICE_READINESS_BACKOFF_CAP"
	EnvMaxLoopIterations   = "SLUICE_MAX_LOOP_ITERATIONS"
)

// ConfigFromEnv reads Config; unset variables keep the defaults.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	var c Config
	durations := []struct {
		env string
		dst *time.Duration
	}{
		{EnvProvisioningTimeout, &c.ProvisioningTimeout},
		{EnvSuspendBackoffCap, &c.SuspendBackoffCap},
		{EnvReadinessBackoffCap, &c.ReadinessBackoffCap},
	}
	for _, d := range durations {
		v := getenv(d.env)
		if v == "" {
			continue
		}
		parsed, err := time.ParseDuration(v)
		if err != nil || parsed <= 0 {
			return c, fmt.Errorf("$%s: %q is not a positive duration", d.env, v)
		}
		*d.dst = parsed
	}
	if v := getenv(EnvMaxLoopIterations); v != "" {
		// strconv, not Sscanf: "10s" or "3e2" is a mistake to report, not 10 or 3.
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n <= 0 {
			return c, fmt.Errorf("$%s: %q is not a positive integer", EnvMaxLoopIterations, v)
		}
		c.MaxIterations = n
	}
	return c, nil
}
