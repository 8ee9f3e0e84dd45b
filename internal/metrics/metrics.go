// Package metrics emits Sluice's custom CloudWatch metrics in the Embedded
// Metric Format (EMF): one JSON line per data point, written to stdout like
// every other log line, from which CloudWatch Logs extracts the metrics.
// There is no PutMetricData call and no agent: in Lambda the line reaches
// CloudWatch Logs with the function's logs.
//
// A line is also an ordinary log/slog JSON line (time, level, msg) with the
// EMF metadata under "_aws":
//
//	{"time":"…","level":"INFO","msg":"metric StopCompleted",
//	 "_aws":{"Timestamp":1795694400000,"CloudWatchMetrics":[{"Namespace":"Sluice",
//	   "Dimensions":[["Mode"]],"Metrics":[{"Name":"StopCompleted","Unit":"Count"},
//	   {"Name":"StopDuration","Unit":"Milliseconds"}]}]},
//	 "Mode":"graceful","StopCompleted":1,"StopDuration":48211,"pipeline":"p1"}
//
// Lines are INFO: the functions' ApplicationLogLevel must stay at INFO or
// DEBUG (template.yaml allows only those), or Lambda's log-level filter would
// drop the metrics with the line.
//
// # Metrics (namespace Sluice)
//
//   - StopRequested (Count; dimension Mode = graceful|forced): an accepted
//     stop that started a workflow (the api function).
//   - StopCompleted (Count) and StopDuration (Milliseconds, from the stop
//     request to Stopped; dimension Mode): a pipeline reached Stopped after a
//     stop (the steps function, MarkStopped).
//   - SuspendAttempts (Count, no dimensions): how many suspend requests and
//     status polls one graceful stop took until the runtime was Suspended.
//   - ForcedStopWithError (Count, no dimensions; property error_code): the
//     system stopped a pipeline and recorded deployment_error.
//   - Superseded (Count; dimension Kind = the workflow kind): a workflow step
//     found a newer generation and ended its execution.
//   - StuckPipelines (Count): pipelines whose status has been Stopping or
//     Suspending for longer than the threshold ($SLUICE_STUCK_THRESHOLD, set
//     from the template's StuckThresholdMinutes). The reconciler emits it on
//     every pass, zero included: the total without dimensions (the
//     StuckPipelinesAlarm of template.yaml watches its Maximum) and one line
//     per status with dimension Status.
//
// The dashboard and alarms in template.yaml name these metrics and
// dimensions; change both together.
package metrics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"sort"
	"strings"
	"time"
)

// Namespace is the CloudWatch namespace of every Sluice metric.
const Namespace = "Sluice"

// Metric names.
const (
	StopRequested       = "StopRequested"
	StopCompleted       = "StopCompleted"
	StopDuration        = "StopDuration"
	SuspendAttempts     = "SuspendAttempts"
	ForcedStopWithError = "ForcedStopWithError"
	Superseded          = "Superseded"
	StuckPipelines      = "StuckPipelines"
)

// Dimension names.
const (
	DimMode   = "Mode"   // graceful | forced
	DimKind   = "Kind"   // workflow kind: start, suspend, stop, clear
	DimStatus = "Status" // deployment status, e.g. Stopping, Suspending
)

// Stop modes (values of DimMode).
const (
	ModeGraceful = "graceful"
	ModeForced   = "forced"
)

// Units CloudWatch accepts (the ones Sluice uses).
const (
	UnitCount        = "Count"
	UnitMilliseconds = "Milliseconds"
)

// Property names (searchable in Logs Insights, not dimensions).
const (
	PropPipeline   = "pipeline"
	PropGeneration = "generation"
	PropErrorCode  = "error_code"
)

// EnvStuckThreshold is the environment variable holding the stuck threshold
// (a Go duration such as 30m) for StuckPipelines.
const EnvStuckThreshold = "SLUICE_STUCK_THRESHOLD"

// DefaultStuckThreshold applies when EnvStuckThreshold is unset.
const DefaultStuckThreshold = 30 * time.Minute

// StuckThresholdFromEnv reads EnvStuckThreshold (pass os.Getenv).
func StuckThresholdFromEnv(getenv func(string) string) (time.Duration, error) {
	s := strings.TrimSpace(getenv(EnvStuckThreshold))
	if s == "" {
		return DefaultStuckThreshold, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("metrics: %s must be a positive duration such as 30m, got %q", EnvStuckThreshold, s)
	}
	return d, nil
}

// IsStuck reports whether a pipeline whose status has been status since
// `since` counts as stuck at now: Stopping or Suspending for longer than
// threshold.
func IsStuck(status string, since, now time.Time, threshold time.Duration) bool {
	if status != "Stopping" && status != "Suspending" {
		return false
	}
	return !since.IsZero() && now.Sub(since) > threshold
}

// Value is one metric value of a record.
type Value struct {
	Name  string
	Unit  string
	Value float64
}

// Record is one EMF document: metric values sharing dimensions.
type Record struct {
	// Dimensions are the dimension values (name → value).
	Dimensions map[string]string
	// DimensionSets are the sets of dimension names to publish under. Nil
	// means one set with every name of Dimensions (an empty set when there
	// are none: the metric without dimensions).
	DimensionSets [][]string
	Values        []Value
	// Properties are extra fields of the line (not dimensions).
	Properties map[string]any
}

// Emitter writes EMF lines, one whole line per write (slog's JSON handler
// serializes them), so it is safe for concurrent use. The zero value is not
// usable; use New. A nil *Emitter discards everything, so callers may leave
// metrics unwired in tests.
type Emitter struct {
	log *slog.Logger
	now func() time.Time
}

// New returns an Emitter writing JSON lines to w (os.Stdout in Lambda).
func New(w io.Writer) *Emitter {
	if w == nil {
		w = os.Stdout
	}
	return &Emitter{log: slog.New(slog.NewJSONHandler(w, nil)), now: time.Now}
}

// WithClock returns a copy of e that takes the EMF Timestamp from now (tests).
func (e *Emitter) WithClock(now func() time.Time) *Emitter {
	if e == nil {
		return nil
	}
	return &Emitter{log: e.log, now: now}
}

// EMF limits the emitter keeps to (emf_spec_test.go cites each rule).
const (
	// maxMetricsPerLine: a directive's Metrics "MUST NOT contain more than
	// 100 MetricDefinition objects" (EMF specification).
	maxMetricsPerLine = 100
	// maxDimensionsPerSet: a metric has at most 30 dimensions (CloudWatch
	// API, Dimension; the EMF specification's DimensionSet limit).
	maxDimensionsPerSet = 30
	// maxNameLength: namespace, dimension and metric names of 1..255
	// characters (the EMF specification's JSON schema).
	maxNameLength = 255
	// maxDimensionValue: a dimension value of 1..1024 ASCII characters, not
	// all white space, without control characters (CloudWatch API, Dimension).
	maxDimensionValue = 1024
)

// validUnits are the CloudWatch units (CloudWatch API, MetricDatum; the EMF
// specification's Unit pattern).
var validUnits = map[string]bool{
	"Seconds": true, "Microseconds": true, "Milliseconds": true, "Bytes": true, "Kilobytes": true,
	"Megabytes": true, "Gigabytes": true, "Terabytes": true, "Bits": true, "Kilobits": true,
	"Megabits": true, "Gigabits": true, "Terabits": true, "Percent": true, "Count": true,
	"Bytes/Second": true, "Kilobytes/Second": true, "Megabytes/Second": true, "Gigabytes/Second": true,
	"Terabytes/Second": true, "Bits/Second": true, "Kilobits/Second": true, "Megabits/Second": true,
	"Gigabits/Second": true, "Terabits/Second": true, "Count/Second": true, "None": true,
}

// reserved are the root members of every line besides the record's own: the
// log/slog fields and the EMF metadata. A dimension, value or property of
// that name would repeat the member.
var reserved = map[string]bool{slog.TimeKey: true, slog.LevelKey: true, slog.MessageKey: true, "_aws": true}

// Emit writes one record. Records without values are dropped. So that every
// line is valid EMF whatever the caller passes, Emit drops values that are
// not finite numbers, names that are empty, too long or would repeat a root
// member (the first of duplicates stays), and properties that would shadow a
// dimension or value; replaces an unknown unit with None and an invalid
// dimension value with a valid one (dimensionValue); keeps at most 30
// dimensions per set; and writes more than 100 values as several lines.
func (e *Emitter) Emit(ctx context.Context, r Record) {
	if e == nil || len(r.Values) == 0 {
		return
	}
	taken := map[string]bool{}
	dimensions := map[string]string{}
	for _, k := range sortedKeys(r.Dimensions) {
		if validName(k) && !reserved[k] {
			dimensions[k] = dimensionValue(r.Dimensions[k])
			taken[k] = true
		}
	}
	var values []Value
	for _, v := range r.Values {
		if !validName(v.Name) || reserved[v.Name] || taken[v.Name] || math.IsNaN(v.Value) || math.IsInf(v.Value, 0) {
			continue
		}
		if v.Unit == "" {
			v.Unit = UnitCount
		} else if !validUnits[v.Unit] {
			v.Unit = "None"
		}
		taken[v.Name] = true
		values = append(values, v)
	}
	if len(values) == 0 {
		return
	}
	sets := r.DimensionSets
	if sets == nil {
		names := sortedKeys(dimensions)
		sets = [][]string{names}
	}
	var kept [][]string
	for _, set := range sets {
		ks := []string{} // an empty set is [], not null
		for _, k := range set {
			if _, ok := dimensions[k]; ok && len(ks) < maxDimensionsPerSet {
				ks = append(ks, k)
			}
		}
		kept = append(kept, ks)
	}
	for len(values) > 0 {
		n := min(len(values), maxMetricsPerLine)
		e.emit(ctx, kept, dimensions, values[:n], r.Properties, taken)
		values = values[n:]
	}
}

func (e *Emitter) emit(ctx context.Context, sets [][]string, dimensions map[string]string, values []Value, properties map[string]any, taken map[string]bool) {
	defs := make([]metricDefinition, 0, len(values))
	attrs := make([]slog.Attr, 0, 1+len(dimensions)+len(values)+len(properties))
	for _, v := range values {
		defs = append(defs, metricDefinition{Name: v.Name, Unit: v.Unit})
	}
	attrs = append(attrs, slog.Any("_aws", metadata{
		Timestamp: e.now().UnixMilli(),
		CloudWatchMetrics: []metricDirective{{
			Namespace:  Namespace,
			Dimensions: sets,
			Metrics:    defs,
		}},
	}))
	for _, k := range sortedKeys(dimensions) {
		attrs = append(attrs, slog.String(k, dimensions[k]))
	}
	for _, v := range values {
		attrs = append(attrs, slog.Float64(v.Name, v.Value))
	}
	for _, k := range sortedKeys(properties) {
		if !taken[k] && !reserved[k] {
			attrs = append(attrs, slog.Any(k, properties[k]))
		}
	}
	msg := "metric"
	for i, v := range values {
		if i == 0 {
			msg += " " + v.Name
		} else {
			msg += "," + v.Name
		}
	}
	e.log.LogAttrs(ctx, slog.LevelInfo, msg, attrs...)
}

// validName: 1..255 characters, ASCII without control characters, not
// starting with ':' (CloudWatch API, Dimension).
func validName(s string) bool {
	if s == "" || len(s) > maxNameLength || s[0] == ':' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// dimensionValue makes v a valid dimension value: characters outside
// printable ASCII become '?', at most 1024 of them are kept, and a value
// that is empty or only white space becomes "none".
func dimensionValue(v string) string {
	b := make([]byte, 0, len(v))
	for _, r := range v {
		if len(b) == maxDimensionValue {
			break
		}
		if r < 0x20 || r > 0x7e {
			r = '?'
		}
		b = append(b, byte(r))
	}
	if strings.TrimSpace(string(b)) == "" {
		return "none"
	}
	return string(b)
}

// StopRequested records an accepted stop (force selects the mode).
func (e *Emitter) StopRequested(ctx context.Context, pipeline string, generation int64, force bool) {
	e.Emit(ctx, Record{
		Dimensions: map[string]string{DimMode: mode(force)},
		Values:     []Value{{Name: StopRequested, Unit: UnitCount, Value: 1}},
		Properties: map[string]any{PropPipeline: pipeline, PropGeneration: generation},
	})
}

// StopCompleted records a pipeline that reached Stopped after a stop, and
// how long it took from the stop request (d).
func (e *Emitter) StopCompleted(ctx context.Context, pipeline string, generation int64, force bool, d time.Duration) {
	if d < 0 {
		d = 0
	}
	e.Emit(ctx, Record{
		Dimensions: map[string]string{DimMode: mode(force)},
		Values: []Value{
			{Name: StopCompleted, Unit: UnitCount, Value: 1},
			{Name: StopDuration, Unit: UnitMilliseconds, Value: float64(d.Milliseconds())},
		},
		Properties: map[string]any{PropPipeline: pipeline, PropGeneration: generation},
	})
}

// SuspendAttempts records how many attempts one graceful stop's suspend took.
func (e *Emitter) SuspendAttempts(ctx context.Context, pipeline string, generation int64, attempts int) {
	e.Emit(ctx, Record{
		Values:     []Value{{Name: SuspendAttempts, Unit: UnitCount, Value: float64(attempts)}},
		Properties: map[string]any{PropPipeline: pipeline, PropGeneration: generation},
	})
}

// ForcedStopWithError records a stop the system forced with deployment_error
// set (errorCode is the error's error_code).
func (e *Emitter) ForcedStopWithError(ctx context.Context, pipeline string, generation int64, errorCode string) {
	e.Emit(ctx, Record{
		Values:     []Value{{Name: ForcedStopWithError, Unit: UnitCount, Value: 1}},
		Properties: map[string]any{PropPipeline: pipeline, PropGeneration: generation, PropErrorCode: errorCode},
	})
}

// Superseded records a workflow of kind that found a newer generation.
func (e *Emitter) Superseded(ctx context.Context, pipeline string, generation int64, kind string) {
	e.Emit(ctx, Record{
		Dimensions: map[string]string{DimKind: kind},
		Values:     []Value{{Name: Superseded, Unit: UnitCount, Value: 1}},
		Properties: map[string]any{PropPipeline: pipeline, PropGeneration: generation},
	})
}

// StuckPipelines records one reconciler pass's count of stuck pipelines by
// status (Stopping, Suspending): the total without dimensions, then one line
// per status (every status given, zeros included, so that the per-status
// series have data too). Call it on every pass, also with nothing stuck.
func (e *Emitter) StuckPipelines(ctx context.Context, byStatus map[string]int) {
	total := 0
	for _, n := range byStatus {
		total += n
	}
	e.Emit(ctx, Record{
		DimensionSets: [][]string{{}},
		Values:        []Value{{Name: StuckPipelines, Unit: UnitCount, Value: float64(total)}},
	})
	for _, status := range sortedKeys(byStatus) {
		e.Emit(ctx, Record{
			Dimensions: map[string]string{DimStatus: status},
			Values:     []Value{{Name: StuckPipelines, Unit: UnitCount, Value: float64(byStatus[status])}},
		})
	}
}

func mode(force bool) string {
	if force {
		return ModeForced
	}
	return ModeGraceful
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// The EMF metadata ("_aws").
type metadata struct {
	Timestamp         int64             `json:"Timestamp"`
	CloudWatchMetrics []metricDirective `json:"CloudWatchMetrics"`
}

type metricDirective struct {
	Namespace  string             `json:"Namespace"`
	Dimensions [][]string         `json:"Dimensions"`
	Metrics    []metricDefinition `json:"Metrics"`
}

type metricDefinition struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}
