package steps

import (
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigFromEnv(t *testing.T) {
	c, err := ConfigFromEnv(envOf(nil))
	if err != nil || c != (Config{}) {
		t.Fatalf("unset: %+v %v", c, err)
	}
	c, err = ConfigFromEnv(envOf(map[string]string{
		EnvProvisioningTimeout: "15m",
		EnvSuspendBackoffCap:   "1m30s",
		EnvReadinessBackoffCap: "5s",
		EnvMaxLoopIterations:   " 250 ",
	}))
	want := Config{ProvisioningTimeout: 15 * time.Minute, SuspendBackoffCap: 90 * time.Second, ReadinessBackoffCap: 5 * time.Second, MaxIterations: 250}
	if err != nil || c != want {
		t.Fatalf("got %+v %v, want %+v", c, err, want)
	}
	// Unset values keep their defaults.
	if d := c.withDefaults(); d.SuspendBackoffBase != time.Second || d.ReadinessBackoffBase != time.Second {
		t.Fatalf("defaults %+v", d)
	}

	for _, tc := range []struct{ env, value string }{
		{EnvProvisioningTimeout, "10"},
		{EnvProvisioningTimeout, "0s"},
		{EnvProvisioningTimeout, "-1m"},
		{EnvSuspendBackoffCap, "soon"},
		{EnvReadinessBackoffCap, "1x"},
		{EnvMaxLoopIterations, "0"},
		{EnvMaxLoopIterations, "-3"},
		{EnvMaxLoopIterations, "many"},
		{EnvMaxLoopIterations, "10s"},
		{EnvMaxLoopIterations, "3e2"},
		{EnvMaxLoopIterations, "1.5"},
	} {
		_, err := ConfigFromEnv(envOf(map[string]string{tc.env: tc.value}))
		if err == nil || !strings.Contains(err.Error(), tc.env) {
			t.Fatalf("%s=%q: %v, want an error naming the variable", tc.env, tc.value, err)
		}
	}
}
