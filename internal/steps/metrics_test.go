package steps

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/metrics"
	"github.com/sluicehq/sluice/internal/runtimeclient"
)

// emitted decodes the EMF lines written to buf: metric name → values.
func emitted(t *testing.T, buf *bytes.Buffer) map[string][]map[string]any {
	t.Helper()
	out := map[string][]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("not JSON: %s", line)
		}
		for _, name := range []string{metrics.StopCompleted, metrics.SuspendAttempts, metrics.ForcedStopWithError, metrics.Superseded} {
			if _, ok := v[name]; ok {
				out[name] = append(out[name], v)
			}
		}
	}
	return out
}

// A graceful stop emits SuspendAttempts once and StopCompleted once (with
// its duration from the stop request), even when its steps run twice.
func TestGracefulStopMetrics(t *testing.T) {
	f := newFixture(t, Config{})
	var buf bytes.Buffer
	f.steps.Metrics = metrics.New(&buf)
	f.create("m1")
	f.act("m1", startDecision)
	f.transition("m1", domain.MarkProvisioning("dep-1"))
	f.transition("m1", domain.MarkProvisioned("http://rt", domain.RuntimeRunning))
	p := f.act("m1", func(p domain.Pipeline, now time.Time) (domain.Outcome, error) { return domain.Stop(p, false, now) })
	st := f.must(StepMarkSuspending, startState(p, domain.WorkflowSuspend))
	st = f.must(StepRequestSuspend, st)
	f.rt.report = runtimeclient.StatusReport{RuntimeStatus: domain.RuntimeSuspended}
	st = f.must(StepCheckSuspend, st)
	f.clock.advance(90 * time.Second)
	st = f.must(StepMarkSuspended, st)
	f.must(StepMarkSuspended, st)
	st = f.must(StepDeprovision, st)
	f.must(StepMarkStopped, st)
	f.must(StepMarkStopped, st)

	got := emitted(t, &buf)
	if len(got[metrics.SuspendAttempts]) != 1 || got[metrics.SuspendAttempts][0][metrics.SuspendAttempts] != float64(1) {
		t.Fatalf("SuspendAttempts: %v", got[metrics.SuspendAttempts])
	}
	done := got[metrics.StopCompleted]
	if len(done) != 1 || done[0]["Mode"] != metrics.ModeGraceful {
		t.Fatalf("StopCompleted: %v", done)
	}
	if d, _ := done[0][metrics.StopDuration].(float64); d < 90_000 {
		t.Fatalf("StopDuration %v ms, want at least the 90 s the suspend took", d)
	}
}

// A failed suspend emits ForcedStopWithError once; a stale step emits Superseded.
func TestForcedStopWithErrorAndSupersededMetrics(t *testing.T) {
	f := newFixture(t, Config{})
	var buf bytes.Buffer
	f.steps.Metrics = metrics.New(&buf)
	f.create("m2")
	f.act("m2", startDecision)
	f.transition("m2", domain.MarkProvisioning("dep-1"))
	f.transition("m2", domain.MarkProvisioned("http://rt", domain.RuntimeRunning))
	p := f.act("m2", func(p domain.Pipeline, now time.Time) (domain.Outcome, error) { return domain.Stop(p, false, now) })
	st := startState(p, domain.WorkflowSuspend)
	st.Error = &CaughtError{Error: "PipelineRuntimeError", Cause: `{"errorMessage":"{\"message\":\"disk full\",\"error_code\":\"SuspendError\",\"details\":{}}","errorType":"PipelineRuntimeError"}`}
	f.must(StepRecordError, st)
	f.must(StepRecordError, st)

	stale := st
	stale.Generation--
	if _, err := f.handle(StepDeprovision, stale); err == nil {
		t.Fatal("a stale step must be superseded")
	}
	got := emitted(t, &buf)
	if n := len(got[metrics.ForcedStopWithError]); n != 1 || got[metrics.ForcedStopWithError][0]["error_code"] != "SuspendError" {
		t.Fatalf("ForcedStopWithError: %v", got[metrics.ForcedStopWithError])
	}
	if n := len(got[metrics.Superseded]); n != 1 || got[metrics.Superseded][0]["Kind"] != "suspend" {
		t.Fatalf("Superseded: %v", got[metrics.Superseded])
	}
}
