package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

var fixed = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func newTest() (*Emitter, *bytes.Buffer) {
	var buf bytes.Buffer
	return New(&buf).WithClock(func() time.Time { return fixed }), &buf
}

// emfDoc is an EMF line as CloudWatch reads it.
type emfDoc struct {
	AWS struct {
		Timestamp         *int64 `json:"Timestamp"`
		CloudWatchMetrics []struct {
			Namespace  string     `json:"Namespace"`
			Dimensions [][]string `json:"Dimensions"`
			Metrics    []struct {
				Name string `json:"Name"`
				Unit string `json:"Unit"`
			} `json:"Metrics"`
		} `json:"CloudWatchMetrics"`
	} `json:"_aws"`
	root map[string]any
}

// parse reads every line and checks the rules of the EMF specification that
// CloudWatch enforces: the line is one JSON object; _aws has a millisecond
// Timestamp and CloudWatchMetrics; every directive has a Namespace, at most
// 30 dimensions per set, 1..100 metrics with a valid unit; every dimension
// named is a string member of the root; every metric named is a number
// member of the root.
func parse(t *testing.T, buf *bytes.Buffer) []emfDoc {
	t.Helper()
	var docs []emfDoc
	for _, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		if line == "" {
			t.Fatal("empty line")
		}
		var d emfDoc
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			t.Fatalf("not EMF JSON: %v: %s", err, line)
		}
		if err := json.Unmarshal([]byte(line), &d.root); err != nil {
			t.Fatal(err)
		}
		if d.AWS.Timestamp == nil || *d.AWS.Timestamp != fixed.UnixMilli() {
			t.Errorf("_aws.Timestamp = %v, want %d: %s", d.AWS.Timestamp, fixed.UnixMilli(), line)
		}
		if len(d.AWS.CloudWatchMetrics) == 0 {
			t.Errorf("no CloudWatchMetrics: %s", line)
		}
		for _, dir := range d.AWS.CloudWatchMetrics {
			if dir.Namespace != Namespace {
				t.Errorf("namespace %q: %s", dir.Namespace, line)
			}
			if dir.Dimensions == nil {
				t.Errorf("Dimensions missing (use [[]] for none): %s", line)
			}
			for _, set := range dir.Dimensions {
				if len(set) > 30 {
					t.Errorf("more than 30 dimensions: %s", line)
				}
				for _, name := range set {
					if _, ok := d.root[name].(string); !ok {
						t.Errorf("dimension %q is not a string member of the root: %s", name, line)
					}
				}
			}
			if len(dir.Metrics) == 0 || len(dir.Metrics) > 100 {
				t.Errorf("%d metrics: %s", len(dir.Metrics), line)
			}
			for _, m := range dir.Metrics {
				if _, ok := d.root[m.Name].(float64); !ok {
					t.Errorf("metric %q is not a number member of the root: %s", m.Name, line)
				}
				if m.Unit != UnitCount && m.Unit != UnitMilliseconds {
					t.Errorf("metric %q unit %q: %s", m.Name, m.Unit, line)
				}
			}
		}
		// A slog line too: Lambda's JSON log format reads level; INFO keeps it.
		if d.root["level"] != "INFO" || d.root["msg"] == nil || d.root["time"] == nil {
			t.Errorf("not a slog INFO line: %s", line)
		}
		docs = append(docs, d)
	}
	return docs
}

func dims(d emfDoc) [][]string { return d.AWS.CloudWatchMetrics[0].Dimensions }
func metricNames(d emfDoc) []string {
	var out []string
	for _, m := range d.AWS.CloudWatchMetrics[0].Metrics {
		out = append(out, m.Name+"/"+m.Unit)
	}
	return out
}

func TestHelpersEmitEMF(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		emit    func(e *Emitter)
		dims    [][]string
		metrics []string
		root    map[string]any
	}{
		{"StopRequested graceful", func(e *Emitter) { e.StopRequested(ctx, "p1", 7, false) },
			[][]string{{DimMode}}, []string{"StopRequested/Count"},
			map[string]any{DimMode: ModeGraceful, StopRequested: 1.0, PropPipeline: "p1", PropGeneration: 7.0}},
		{"StopRequested forced", func(e *Emitter) { e.StopRequested(ctx, "p1", 8, true) },
			[][]string{{DimMode}}, []string{"StopRequested/Count"},
			map[string]any{DimMode: ModeForced, StopRequested: 1.0}},
		{"StopCompleted", func(e *Emitter) { e.StopCompleted(ctx, "p1", 8, false, 48211*time.Millisecond+400*time.Microsecond) },
			[][]string{{DimMode}}, []string{"StopCompleted/Count", "StopDuration/Milliseconds"},
			map[string]any{DimMode: ModeGraceful, StopCompleted: 1.0, StopDuration: 48211.0, PropPipeline: "p1"}},
		{"StopCompleted negative duration", func(e *Emitter) { e.StopCompleted(ctx, "p1", 8, true, -time.Second) },
			[][]string{{DimMode}}, []string{"StopCompleted/Count", "StopDuration/Milliseconds"},
			map[string]any{DimMode: ModeForced, StopDuration: 0.0}},
		{"SuspendAttempts", func(e *Emitter) { e.SuspendAttempts(ctx, "p1", 8, 12) },
			[][]string{{}}, []string{"SuspendAttempts/Count"},
			map[string]any{SuspendAttempts: 12.0, PropPipeline: "p1", PropGeneration: 8.0}},
		{"ForcedStopWithError", func(e *Emitter) { e.ForcedStopWithError(ctx, "p1", 9, "RuntimeSuspendFailed") },
			[][]string{{}}, []string{"ForcedStopWithError/Count"},
			map[string]any{ForcedStopWithError: 1.0, PropErrorCode: "RuntimeSuspendFailed"}},
		{"Superseded", func(e *Emitter) { e.Superseded(ctx, "p1", 8, "suspend") },
			[][]string{{DimKind}}, []string{"Superseded/Count"},
			map[string]any{DimKind: "suspend", Superseded: 1.0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, buf := newTest()
			c.emit(e)
			docs := parse(t, buf)
			if len(docs) != 1 {
				t.Fatalf("%d lines, want 1", len(docs))
			}
			d := docs[0]
			if !reflect.DeepEqual(dims(d), c.dims) {
				t.Errorf("Dimensions = %v, want %v", dims(d), c.dims)
			}
			if got := metricNames(d); !reflect.DeepEqual(got, c.metrics) {
				t.Errorf("Metrics = %v, want %v", got, c.metrics)
			}
			for k, v := range c.root {
				if d.root[k] != v {
					t.Errorf("%s = %#v, want %#v", k, d.root[k], v)
				}
			}
		})
	}
}

// The exact line, so that a change of shape is a conscious one (the
// template's dashboard and alarms read these names).
func TestStopCompletedLine(t *testing.T) {
	e, buf := newTest()
	e.StopCompleted(context.Background(), "p1", 8, false, 1500*time.Millisecond)
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	delete(got, "time")
	want := map[string]any{
		"level": "INFO", "msg": "metric StopCompleted,StopDuration",
		"_aws": map[string]any{
			"Timestamp": float64(fixed.UnixMilli()),
			"CloudWatchMetrics": []any{map[string]any{
				"Namespace":  "Sluice",
				"Dimensions": []any{[]any{"Mode"}},
				"Metrics": []any{
					map[string]any{"Name": "StopCompleted", "Unit": "Count"},
					map[string]any{"Name": "StopDuration", "Unit": "Milliseconds"},
				},
			}},
		},
		"Mode": "graceful", "StopCompleted": 1.0, "StopDuration": 1500.0,
		"pipeline": "p1", "generation": 8.0,
	}
	if !reflect.DeepEqual(got, want) {
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		t.Errorf("line\n got %s\nwant %s", gj, wj)
	}
	if strings.Count(buf.String(), "\n") != 1 || !strings.HasSuffix(buf.String(), "}\n") {
		t.Errorf("want exactly one JSON line: %q", buf.String())
	}
}

func TestStuckPipelines(t *testing.T) {
	e, buf := newTest()
	e.StuckPipelines(context.Background(), map[string]int{"Suspending": 2, "Stopping": 1})
	docs := parse(t, buf)
	if len(docs) != 3 {
		t.Fatalf("%d lines, want total + 2 statuses", len(docs))
	}
	// The total without dimensions: what StuckPipelinesAlarm watches.
	if !reflect.DeepEqual(dims(docs[0]), [][]string{{}}) || docs[0].root[StuckPipelines] != 3.0 {
		t.Errorf("total line: dims %v value %v", dims(docs[0]), docs[0].root[StuckPipelines])
	}
	for i, want := range []struct {
		status string
		n      float64
	}{{"Stopping", 1}, {"Suspending", 2}} {
		d := docs[i+1]
		if !reflect.DeepEqual(dims(d), [][]string{{DimStatus}}) || d.root[DimStatus] != want.status || d.root[StuckPipelines] != want.n {
			t.Errorf("line %d: dims %v %s=%v value %v, want %s=%v", i+1, dims(d), DimStatus, d.root[DimStatus], d.root[StuckPipelines], want.status, want.n)
		}
	}

	// Nothing stuck still emits a zero total (the metric has data).
	e, buf = newTest()
	e.StuckPipelines(context.Background(), nil)
	docs = parse(t, buf)
	if len(docs) != 1 || docs[0].root[StuckPipelines] != 0.0 {
		t.Fatalf("nothing stuck: %s", buf.String())
	}
}

func TestEmitDefaultsAndEdges(t *testing.T) {
	e, buf := newTest()
	e.Emit(context.Background(), Record{}) // no values: dropped
	if buf.Len() != 0 {
		t.Errorf("a record without values wrote %q", buf.String())
	}
	e.Emit(context.Background(), Record{
		Dimensions: map[string]string{"B": "b", "A": "a"},
		Values:     []Value{{Name: "X", Value: math.Pi}},
	})
	d := parse(t, buf)[0]
	if !reflect.DeepEqual(dims(d), [][]string{{"A", "B"}}) {
		t.Errorf("default dimension set %v, want sorted names", dims(d))
	}
	if got := metricNames(d); !reflect.DeepEqual(got, []string{"X/Count"}) {
		t.Errorf("default unit: %v", got)
	}

	var nilEmitter *Emitter
	nilEmitter.StopRequested(context.Background(), "p", 1, true) // must not panic
	if nilEmitter.WithClock(time.Now) != nil {
		t.Error("nil.WithClock is not nil")
	}
}

func TestConcurrentLinesStayWhole(t *testing.T) {
	e, buf := newTest()
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.Superseded(context.Background(), fmt.Sprintf("p%d", i), int64(i), "stop")
		}()
	}
	wg.Wait()
	if docs := parse(t, buf); len(docs) != 50 {
		t.Fatalf("%d lines, want 50", len(docs))
	}
}

func TestStuckThreshold(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == EnvStuckThreshold {
				return v
			}
			return ""
		}
	}
	if d, err := StuckThresholdFromEnv(env("")); err != nil || d != DefaultStuckThreshold {
		t.Errorf("unset: %v %v", d, err)
	}
	if d, err := StuckThresholdFromEnv(env("45m")); err != nil || d != 45*time.Minute {
		t.Errorf("45m: %v %v", d, err)
	}
	for _, bad := range []string{"30", "-1m", "0s", "soon"} {
		if _, err := StuckThresholdFromEnv(env(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}

	now := fixed
	for _, c := range []struct {
		status string
		since  time.Time
		want   bool
	}{
		{"Stopping", now.Add(-31 * time.Minute), true},
		{"Suspending", now.Add(-31 * time.Minute), true},
		{"Stopping", now.Add(-30 * time.Minute), false}, // longer than, not equal
		{"Suspending", now.Add(-time.Minute), false},
		{"Running", now.Add(-24 * time.Hour), false},
		{"Stopped", now.Add(-24 * time.Hour), false},
		{"Stopping", time.Time{}, false},
	} {
		if got := IsStuck(c.status, c.since, now, 30*time.Minute); got != c.want {
			t.Errorf("IsStuck(%s, %v) = %v, want %v", c.status, now.Sub(c.since), got, c.want)
		}
	}
}
