package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The rules of the CloudWatch embedded metric format, each with its source:
//
//   - [EMF] "Specification: Embedded metric format",
//     https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
//     (the text and JSON schema as archived in
//     awsdocs/amazon-cloudwatch-user-guide, doc_source/CloudWatch_Embedded_Metric_Format_Specification.md).
//     The archived schema limits names to 255 characters (the stricter
//     bound: a line valid under it is valid under the current page); its 9
//     dimension keys per set are now 30 ([DIM]).
//   - [DIM] CloudWatch API reference, Dimension,
//     https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_Dimension.html:
//     what a published dimension's name and value must be.
//   - [DATUM] CloudWatch API reference, MetricDatum (the valid units, which
//     [EMF] refers to), https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_MetricDatum.html.

const (
	emfMaxDimensionKeys = 30  // [DIM] "You can assign up to 30 dimensions to a metric" (the archived [EMF] text said 9 per DimensionSet; AWS's own EMF library, aws-lambda-powertools metrics, now allows 30: MAX_DIMENSION_COUNT = 29, 0-indexed)
	emfMaxMetrics       = 100 // [EMF] Metrics "MUST NOT contain more than 100 MetricDefinition objects"
	emfMaxArrayValues   = 100 // [EMF] "Numeric array metric targets MUST NOT have more than 100 members"
	emfMaxNameLength    = 255 // [EMF] schema: Namespace, DimensionReference, MetricName minLength 1, maxLength 255
	emfMaxDimValue      = 1024
	emfMaxEventBytes    = 256 << 10 // [EMF] "limited to a maximum size of 256 KB"
)

// [EMF] schema Unit pattern; [DATUM] Unit valid values.
var emfUnits = map[string]bool{}

func init() {
	for _, u := range strings.Split("Seconds|Microseconds|Milliseconds|Bytes|Kilobytes|Megabytes|Gigabytes|Terabytes|Bits|Kilobits|Megabits|Gigabits|Terabits|Percent|Count|Bytes/Second|Kilobytes/Second|Megabytes/Second|Gigabytes/Second|Terabytes/Second|Bits/Second|Kilobits/Second|Megabits/Second|Gigabits/Second|Terabits/Second|Count/Second|None", "|") {
		emfUnits[u] = true
	}
}

// emfViolations lists every rule a log line breaks.
func emfViolations(line []byte) []string {
	var bad []string
	fail := func(f string, a ...any) { bad = append(bad, fmt.Sprintf(f, a...)) }
	if len(line) > emfMaxEventBytes {
		fail("event of %d bytes, more than 256 KB", len(line))
	}
	// [EMF] "The LogEvent message MUST be a valid JSON object with no
	// additional data at the beginning or end".
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var root map[string]any
	if err := dec.Decode(&root); err != nil {
		return []string{"not a JSON object: " + err.Error()}
	}
	if dec.More() {
		fail("data after the JSON object")
	}
	// JSON objects with repeated members are ambiguous: the root's members
	// are the targets, each must be one value.
	if dups := duplicateKeys(line); len(dups) > 0 {
		fail("repeated root members %v", dups)
	}
	// [EMF] the root "MUST contain" _aws, an object with CloudWatchMetrics
	// (an array of MetricDirective) and Timestamp (a number of milliseconds
	// after the epoch; schema: integer).
	aws, ok := root["_aws"].(map[string]any)
	if !ok {
		return append(bad, "no _aws object")
	}
	ts, ok := aws["Timestamp"].(json.Number)
	if !ok {
		fail("_aws.Timestamp is not a number")
	} else if n, err := ts.Int64(); err != nil {
		fail("_aws.Timestamp %s is not an integer", ts)
	} else if n < 1e12 || n > 1e13 { // milliseconds, not seconds or nanoseconds (2001..2286)
		fail("_aws.Timestamp %d is not in milliseconds", n)
	}
	directives, ok := aws["CloudWatchMetrics"].([]any)
	if !ok {
		return append(bad, "_aws.CloudWatchMetrics is not an array")
	}
	// [EMF] "objects defined by this specification MUST NOT contain any
	// additional members".
	for k := range aws {
		if k != "Timestamp" && k != "CloudWatchMetrics" && k != "LogGroupName" {
			fail("_aws has an unknown member %q", k)
		}
	}
	for i, raw := range directives {
		d, ok := raw.(map[string]any)
		if !ok {
			fail("directive %d is not an object", i)
			continue
		}
		for k := range d {
			if k != "Namespace" && k != "Dimensions" && k != "Metrics" {
				fail("directive %d has an unknown member %q", i, k)
			}
		}
		// [EMF] Namespace: a string, schema minLength 1, maxLength 255;
		// [DIM]-style names cannot start with ':' (CloudWatch's Namespace
		// pattern [^:].*, API_Metric).
		ns, ok := d["Namespace"].(string)
		if !ok || ns == "" || utf8.RuneCountInString(ns) > emfMaxNameLength || strings.HasPrefix(ns, ":") {
			fail("directive %d: Namespace %q", i, d["Namespace"])
		}
		// [EMF] Dimensions: an array (schema minItems 1) of DimensionSets.
		sets, ok := d["Dimensions"].([]any)
		if !ok || len(sets) == 0 {
			fail("directive %d: Dimensions %v is not a non-empty array of dimension sets", i, d["Dimensions"])
		}
		for j, rawSet := range sets {
			set, ok := rawSet.([]any)
			if !ok {
				fail("directive %d: dimension set %d is not an array", i, j)
				continue
			}
			// [EMF] at most 9 (now 30) keys; MAY be empty.
			if len(set) > emfMaxDimensionKeys {
				fail("directive %d: dimension set %d has %d keys", i, j, len(set))
			}
			for _, rawKey := range set {
				key, ok := rawKey.(string)
				// [EMF] DimensionReference: a string of 1..255; [DIM] name:
				// ASCII, not starting with ':', no control characters.
				if !ok || key == "" || len(key) > emfMaxNameLength || !asciiPrintable(key) || strings.HasPrefix(key, ":") {
					fail("directive %d: dimension name %q", i, rawKey)
					continue
				}
				// [EMF] "The values within this array MUST also be members on
				// the root-node" and "The target member MUST have a string value".
				v, present := root[key]
				s, isString := v.(string)
				switch {
				case !present:
					fail("dimension %q is not a root member", key)
				case !isString:
					fail("dimension %q is %T, not a string", key, v)
				// [DIM] Value: 1..1024 characters, ASCII only, at least one
				// non-whitespace character, no ASCII control characters.
				case s == "" || len(s) > emfMaxDimValue || !asciiPrintable(s) || strings.TrimSpace(s) == "":
					fail("dimension %q has value %q", key, s)
				}
			}
		}
		// [EMF] Metrics: an array of at most 100 MetricDefinitions.
		defs, ok := d["Metrics"].([]any)
		if !ok {
			fail("directive %d: Metrics is not an array", i)
			continue
		}
		if len(defs) > emfMaxMetrics {
			fail("directive %d: %d metrics", i, len(defs))
		}
		for _, rawDef := range defs {
			def, ok := rawDef.(map[string]any)
			if !ok {
				fail("directive %d: metric definition %v is not an object", i, rawDef)
				continue
			}
			for k := range def {
				if k != "Name" && k != "Unit" && k != "StorageResolution" {
					fail("metric definition has an unknown member %q", k)
				}
			}
			// [EMF] Name: REQUIRED string (schema 1..255).
			name, ok := def["Name"].(string)
			if !ok || name == "" || utf8.RuneCountInString(name) > emfMaxNameLength {
				fail("metric name %q", def["Name"])
				continue
			}
			// [EMF] Unit: OPTIONAL; a valid CloudWatch unit ([DATUM]).
			if u, present := def["Unit"]; present {
				if s, ok := u.(string); !ok || !emfUnits[s] {
					fail("metric %q: unit %v", name, u)
				}
			}
			// [EMF] "A metric target MUST be a numeric value or an array of
			// numeric values. Numeric array metric targets MUST NOT have more
			// than 100 members."
			switch v := root[name].(type) {
			case json.Number:
			case []any:
				if len(v) > emfMaxArrayValues {
					fail("metric %q: %d values", name, len(v))
				}
				for _, x := range v {
					if _, ok := x.(json.Number); !ok {
						fail("metric %q: value %v is not a number", name, x)
					}
				}
			case nil:
				fail("metric %q is not a root member (or is null)", name)
			default:
				fail("metric %q is %T, not a number", name, v)
			}
		}
	}
	return bad
}

func asciiPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// duplicateKeys lists the root members that occur more than once.
func duplicateKeys(line []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(line))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	seen, dups := map[string]bool{}, []string(nil)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return dups
		}
		k, _ := t.(string)
		if seen[k] {
			dups = append(dups, k)
		}
		seen[k] = true
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return dups
		}
	}
	return dups
}

// emfCheck asserts every line of buf satisfies every rule, and returns the
// number of lines.
func emfCheck(t *testing.T, what string, buf *bytes.Buffer) int {
	t.Helper()
	n := 0
	for _, line := range bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		n++
		for _, v := range emfViolations(line) {
			t.Errorf("%s: %s\n  %s", what, v, line)
		}
	}
	buf.Reset()
	return n
}

// The validator itself rejects what the rules reject.
func TestEMFValidatorRejects(t *testing.T) {
	ok := `{"_aws":{"Timestamp":1795694400000,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["D"]],"Metrics":[{"Name":"M","Unit":"Count"}]}]},"D":"d","M":1}`
	if v := emfViolations([]byte(ok)); len(v) != 0 {
		t.Fatalf("valid line rejected: %v", v)
	}
	for what, line := range map[string]string{
		"seconds timestamp":      strings.Replace(ok, "1795694400000", "1795694400", 1),
		"no namespace":           strings.Replace(ok, `"Namespace":"N"`, `"Namespace":""`, 1),
		"bad unit":               strings.Replace(ok, `"Count"`, `"count"`, 1),
		"missing dimension":      strings.Replace(ok, `"D":"d",`, ``, 1),
		"empty dimension":        strings.Replace(ok, `"D":"d"`, `"D":""`, 1),
		"numeric dimension":      strings.Replace(ok, `"D":"d"`, `"D":1`, 1),
		"non-ASCII value":        strings.Replace(ok, `"D":"d"`, `"D":"é"`, 1),
		"string metric":          strings.Replace(ok, `"M":1`, `"M":"1"`, 1),
		"null metric":            strings.Replace(ok, `"M":1`, `"M":null`, 1),
		"trailing data":          ok + ` {}`,
		"repeated member":        strings.Replace(ok, `"M":1`, `"M":1,"M":2`, 1),
		"31 dimensions":          strings.Replace(ok, `[["D"]]`, `[[`+strings.TrimSuffix(strings.Repeat(`"D",`, 31), ",")+`]]`, 1),
		"extra directive member": strings.Replace(ok, `"Namespace":"N"`, `"Namespace":"N","X":1`, 1),
	} {
		if len(emfViolations([]byte(line))) == 0 {
			t.Errorf("%s: accepted %s", what, line)
		}
	}
}

// Every line the emitter writes — each helper, and Emit at its edges —
// satisfies the EMF rules.
func TestEmittedLinesFollowEMF(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	e := New(&buf).WithClock(func() time.Time { return fixed })

	e.StopRequested(ctx, "p1", 3, false)
	e.StopRequested(ctx, "p1", 3, true)
	e.StopCompleted(ctx, "p1", 3, true, 48*time.Second)
	e.StopCompleted(ctx, "p1", 3, false, -time.Second)
	e.SuspendAttempts(ctx, "p1", 3, 7)
	e.ForcedStopWithError(ctx, "p1", 3, "RuntimeVanished")
	for _, kind := range []string{"start", "suspend", "stop", "clear"} {
		e.Superseded(ctx, "p1", 3, kind)
	}
	e.StuckPipelines(ctx, map[string]int{"Stopping": 2, "Suspending": 0})
	e.StuckPipelines(ctx, nil)
	if n := emfCheck(t, "helpers", &buf); n != 14 {
		t.Errorf("%d helper lines, want 14", n)
	}

	// Values the callers pass through unchecked: a workflow kind or status
	// that is empty, not ASCII, too long; a pipeline name; a value that is
	// not a finite number.
	e.Superseded(ctx, "p1", 3, "")
	e.Superseded(ctx, "p1", 3, "späť")
	e.Superseded(ctx, "p1", 3, strings.Repeat("k", 1100))
	e.StuckPipelines(ctx, map[string]int{"": 1, " ": 2, "a\tb": 3})
	e.Emit(ctx, Record{Values: []Value{{Name: "X", Value: math.NaN()}, {Name: "Y", Value: math.Inf(1)}, {Name: "Z", Value: 1}}})
	e.Emit(ctx, Record{Values: []Value{{Name: "X", Value: math.NaN()}}})
	e.Emit(ctx, Record{Values: []Value{{Name: "X", Unit: "count", Value: 1}}})
	// Names that collide with the log line's own members or with each other.
	e.Emit(ctx, Record{
		Dimensions: map[string]string{"msg": "m", "level": "l"},
		Values:     []Value{{Name: "time", Value: 1}, {Name: "X", Value: 1}, {Name: "X", Value: 2}},
		Properties: map[string]any{"_aws": "x", "X": "shadow", "msg": 1},
	})
	// More values and dimensions than one directive may hold.
	var many []Value
	for i := range 150 {
		many = append(many, Value{Name: fmt.Sprintf("V%03d", i), Value: float64(i)})
	}
	dims := map[string]string{}
	for i := range 32 {
		dims[fmt.Sprintf("D%02d", i)] = "v"
	}
	e.Emit(ctx, Record{Dimensions: dims, Values: many})
	// 3 Superseded, 4 StuckPipelines (the total and 3 statuses), the X,Y,Z
	// record (Z only; the NaN-only record writes nothing), the unit record,
	// the colliding record, and 150 values in 2 lines.
	if n := emfCheck(t, "edges", &buf); n != 12 {
		t.Errorf("%d edge lines, want 12", n)
	}
}
