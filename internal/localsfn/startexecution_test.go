package localsfn_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
)

// StartExecution's rules as the Step Functions API reference states them
// (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html,
// and the API model botocore/data/stepfunctions/2016-11-23/service-2.json it
// is generated from), checked with the production client: each error is a
// 400 in the awsJson1_0 shape that aws-sdk-go-v2 decodes into its type.

// apiError asserts err is a *T answered with HTTP 400.
func apiError[T error](t *testing.T, what string, err error) {
	t.Helper()
	var want T
	if !errors.As(err, &want) {
		t.Fatalf("%s: %v, want %T", what, err, want)
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusBadRequest {
		t.Fatalf("%s: %v, want HTTP 400", what, err)
	}
}

func startRaw(name *string, input string) (*sfn.StartExecutionOutput, error) {
	return client.StartExecution(context.Background(), &sfn.StartExecutionInput{
		StateMachineArn: aws.String(shared.StateMachineArn("workflow")), Name: name, Input: aws.String(input),
	})
}

// stopNow aborts a started execution (the tests start the "long" mode, which
// waits an hour before its first Task).
func stopNow(t *testing.T, out *sfn.StartExecutionOutput) {
	t.Helper()
	if _, err := client.StopExecution(context.Background(), &sfn.StopExecutionInput{ExecutionArn: out.ExecutionArn}); err != nil {
		t.Fatalf("StopExecution: %v", err)
	}
}

// Name: 1..80 characters (the model's Name shape: min 1, max 80), counted as
// characters, not bytes; none of white space, < > { } [ ], ? *,
// " # % \ ^ | ~ ` $ & , ; : /, or control characters U+0000-001F and
// U+007F-009F (and, in the current reference, U+FFFE-FFFF and U+10FFFF):
// InvalidName.
func TestStartExecutionNameLimits(t *testing.T) {
	t.Parallel()
	input := `{"mode":"long"}`
	var bad []string
	for _, c := range ` <>{}[]?*"#%\^|~` + "`" + `$&,;:/` {
		bad = append(bad, "a"+string(c)+"b")
	}
	for _, r := range []rune{'\t', '\n', '\r', '\v', '\f', 0x00, 0x01, 0x1f, 0x7f, 0x80, 0x85, 0x9f, 0xa0, 0x2028, 0x3000, 0xfffe, 0xffff, 0x10ffff} {
		bad = append(bad, "a"+string(r)+"b")
	}
	bad = append(bad, "", strings.Repeat("n", 81), strings.Repeat("é", 81), strings.Repeat("😀", 81))
	for _, name := range bad {
		_, err := startRaw(aws.String(name), input)
		apiError[*types.InvalidName](t, fmt.Sprintf("name %q", name), err)
	}

	// At the limits, and characters the rules allow.
	u := uniq("")[1:] // 8 hex characters, so that repeated runs do not collide
	for _, name := range []string{
		u + strings.Repeat("n", 80-len(u)),
		u + strings.Repeat("é", 80-len(u)), // 80 characters, 152 bytes
		u + strings.Repeat("😀", 80-len(u)), // 80 characters, 296 bytes
		u,
		u + "-_.=+@!'()",
		u + "日本語",
	} {
		out, err := startRaw(aws.String(name), input)
		if err != nil {
			t.Fatalf("name %q (%d characters): %v", name, len([]rune(name)), err)
		}
		if want := shared.ExecutionArn("workflow", name); aws.ToString(out.ExecutionArn) != want {
			t.Fatalf("ARN %s, want %s", aws.ToString(out.ExecutionArn), want)
		}
		stopNow(t, out)
	}
}

// Input: at most 262144 bytes of UTF-8 (the model's SensitiveData shape: max
// 262144; "Length constraints apply to the payload size, and are expressed as
// bytes in UTF-8 encoding"), and valid JSON ("InvalidExecutionInput: The
// provided JSON input data is invalid"); otherwise InvalidExecutionInput.
func TestStartExecutionInputLimits(t *testing.T) {
	t.Parallel()
	// padded is {"mode":"long","pad":"<pad>"} of exactly n bytes, padded
	// with r (1 or 2 bytes in UTF-8).
	padded := func(n int, r string) string {
		prefix, suffix := `{"mode":"long","pad":"`, `"}`
		room := n - len(prefix) - len(suffix)
		pad := strings.Repeat(r, room/len(r)) + strings.Repeat("x", room%len(r))
		s := prefix + pad + suffix
		if len(s) != n || !json.Valid([]byte(s)) {
			t.Fatalf("padded(%d) is %d bytes", n, len(s))
		}
		return s
	}
	for _, in := range []string{padded(262144, "x"), padded(262144, "é"), `{}`, ` {"mode" : "long"} `} {
		out, err := startRaw(aws.String(uniq("input")), in)
		if err != nil {
			t.Fatalf("input of %d bytes %.40q: %v", len(in), in, err)
		}
		stopNow(t, out)
	}
	// The exactly-at-the-limit input is kept whole.
	name := uniq("input-max")
	max := padded(262144, "é")
	out, err := startRaw(aws.String(name), max)
	if err != nil {
		t.Fatal(err)
	}
	d, err := client.DescribeExecution(context.Background(), &sfn.DescribeExecutionInput{ExecutionArn: out.ExecutionArn})
	if err != nil || aws.ToString(d.Input) != max {
		t.Fatalf("describe: input of %d bytes (%v), want %d", len(aws.ToString(d.Input)), err, len(max))
	}
	stopNow(t, out)

	// 262145 bytes, and a 2-byte character that fits in 262144 UTF-16 units
	// but not in 262144 bytes.
	tooLong := []string{padded(262145, "x"), padded(262145, "é"), `{"pad":"` + strings.Repeat("é", 131070) + `"}`}
	for _, in := range tooLong {
		_, err := startRaw(aws.String(uniq("input-big")), in)
		apiError[*types.InvalidExecutionInput](t, fmt.Sprintf("input of %d bytes", len(in)), err)
	}
	for _, in := range []string{`{not json`, `{"a":`, `{'a':1}`, `undefined`, `{"a":1}}`, `NaN`} {
		_, err := startRaw(aws.String(uniq("input-bad")), in)
		apiError[*types.InvalidExecutionInput](t, fmt.Sprintf("input %q", in), err)
	}
}

// For a Standard state machine: "if you call StartExecution with the same
// name and input as a running execution, the call succeeds and return the
// same response as the original request. If the execution is closed or if the
// input is different, it returns a 400 ExecutionAlreadyExists error."
func TestStartExecutionIdempotency(t *testing.T) {
	t.Parallel()
	name := uniq("idem")
	input := `{"mode":"long","id":"` + name + `"}`
	first, err := startRaw(aws.String(name), input)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		again, err := startRaw(aws.String(name), input)
		if err != nil {
			t.Fatalf("same name and input while RUNNING: %v", err)
		}
		if aws.ToString(again.ExecutionArn) != aws.ToString(first.ExecutionArn) || !again.StartDate.Equal(*first.StartDate) {
			t.Fatalf("repeat answered %s %v, want the original %s %v", aws.ToString(again.ExecutionArn), again.StartDate,
				aws.ToString(first.ExecutionArn), first.StartDate)
		}
	}
	// A different input while it runs.
	_, err = startRaw(aws.String(name), `{"mode":"long"}`)
	apiError[*types.ExecutionAlreadyExists](t, "different input while RUNNING", err)
	ls, err := client.ListExecutions(context.Background(), &sfn.ListExecutionsInput{StateMachineArn: aws.String(shared.StateMachineArn("workflow"))})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ls.Executions {
		if aws.ToString(e.Name) == name {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d executions named %s, want 1", n, name)
	}
	stopNow(t, first)
	// Closed: the name is taken, whatever the input.
	for _, in := range []string{input, `{}`} {
		_, err := startRaw(aws.String(name), in)
		apiError[*types.ExecutionAlreadyExists](t, "same name after the execution closed", err)
	}
}
