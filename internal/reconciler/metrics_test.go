package reconciler

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/metrics"
)

// Every pass emits StuckPipelines (zero included); a pipeline Suspending for
// longer than the threshold counts.
func TestStuckPipelinesMetric(t *testing.T) {
	f := newFixture(t)
	var buf bytes.Buffer
	f.rec.Metrics = metrics.New(&buf)
	f.rec.StuckThreshold = 10 * time.Minute

	f.running("ok")
	f.running("slow")
	f.act("slow", stopDecision(false))
	f.transition("slow", domain.MarkSuspending())

	f.rec.Now = func() time.Time { return time.Now().Add(time.Minute) }
	if rep := f.run(); rep.Stuck != 0 {
		t.Fatalf("nothing is stuck yet: %+v", rep)
	}
	f.rec.Now = func() time.Time { return time.Now().Add(time.Hour) }
	if rep := f.run(); rep.Stuck != 1 {
		t.Fatalf("the suspending pipeline is stuck: %+v", rep)
	}
	var totals []float64
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("not JSON: %s", line)
		}
		if n, ok := v[metrics.StuckPipelines].(float64); ok {
			if _, perStatus := v["Status"]; !perStatus {
				totals = append(totals, n)
			}
		}
	}
	if len(totals) != 2 || totals[0] != 0 || totals[1] != 1 {
		t.Fatalf("StuckPipelines totals per pass: %v", totals)
	}
}
