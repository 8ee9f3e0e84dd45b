package samtemplate

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/steps"
)

// Error routing as a tested rule (issue 13): a pipeline is force-stopped with
// a deployment_error only when the pipeline itself failed — its runtime
// refused or failed permanently, or its compute can never be provisioned —
// which the steps name PipelineRuntimeError or PipelineComputeError
// (steps.ForceStopErrors). Every other error a Task can raise (a control-plane
// fault, a Go panic, a Lambda timeout or crash, an exhausted retry) must end
// the execution in a Fail state without running another Task, leaving the
// pipeline as it is for the reconciler.
//
// The checker below parses a state machine and, for every Task, Parallel and
// Map state (nested ones included) and every error name the state can raise,
// follows Step Functions' rules: the retriers are tried first (a matching
// retrier, once exhausted, leaves the same error), then the first catcher
// whose ErrorEquals matches picks the next state; from there every path of
// normal transitions (Next, Choice rules, Default) is followed.

// aslMachine is a state machine, a Parallel branch or a Map item processor.
type aslMachine struct {
	StartAt string              `json:"StartAt"`
	States  map[string]*aslNode `json:"States"`
}

type aslRetrier struct {
	ErrorEquals []string `json:"ErrorEquals"`
	MaxAttempts *int     `json:"MaxAttempts"` // absent: 3
}

type aslNode struct {
	Type    string `json:"Type"`
	Next    string `json:"Next"`
	Default string `json:"Default"`
	Choices []struct {
		Next string `json:"Next"`
	} `json:"Choices"`
	Retry      []aslRetrier   `json:"Retry"`
	Catch      []aslCatch     `json:"Catch"`
	Parameters map[string]any `json:"Parameters"`
	// Fail states.
	Error string `json:"Error"`
	// Parallel and Map states.
	Branches      []aslMachine `json:"Branches"`
	Iterator      *aslMachine  `json:"Iterator"`
	ItemProcessor *aslMachine  `json:"ItemProcessor"`
}

func (n *aslNode) step() string {
	s, _ := n.Parameters["step"].(string)
	return s
}

func (n *aslNode) nested() []aslMachine {
	out := append([]aslMachine(nil), n.Branches...)
	if n.Iterator != nil {
		out = append(out, *n.Iterator)
	}
	if n.ItemProcessor != nil {
		out = append(out, *n.ItemProcessor)
	}
	return out
}

// forceStopSteps are the steps that move a pipeline to Stopping without a
// checkpoint: RecordError records the caught error as its deployment_error.
var forceStopSteps = []string{steps.StepRecordError, steps.StepMarkStopping}

// cleanEndErrors end the execution without writing (Succeed states).
var cleanEndErrors = []string{"SupersededError", "NotApplicableError"}

// Error names from the Step Functions and Lambda documentation
// (docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html,
// …/bp-lambda-serviceexception, Lambda's Invoke API errors and the errorType
// values of Lambda's own function errors).
var (
	statesErrors = []string{
		"States.ALL", // as a name: an error no catcher names
		"States.TaskFailed", "States.Timeout", "States.HeartbeatTimeout", "States.Permissions",
		"States.ResultPathMatchFailure", "States.ParameterPathFailure", "States.IntrinsicFailure",
		"States.QueryEvaluationError", "States.Runtime", "States.DataLimitExceeded",
	}
	lambdaErrors = []string{
		"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
		"Lambda.TooManyRequestsException", "Lambda.Unknown", "Lambda.EC2ThrottledException",
		"Lambda.EC2UnexpectedException", "Lambda.EC2AccessDeniedException", "Lambda.ENILimitReachedException",
		"Lambda.SubnetIPAddressLimitReachedException", "Lambda.ResourceNotFoundException",
		"Lambda.ResourceNotReadyException", "Lambda.ResourceConflictException", "Lambda.InvalidParameterValueException",
		"Lambda.InvalidRequestContentException", "Lambda.RequestTooLargeException", "Lambda.KMSAccessDeniedException",
		"Lambda.ServiceUnavailable",
	}
	functionErrors = []string{
		"Sandbox.Timedout", "Runtime.ExitError", "Runtime.OutOfMemory", "Runtime.Unknown",
		"Runtime.MarshalError", "Runtime.UnmarshalError", "Function.ResponseSizeTooLarge",
		// Go panics and unnamed errors: aws-lambda-go names them after the
		// Go type of the panic value or error.
		"string", "errorString", "wrapError", "wrapErrors", "joinError", "plainError", "boundsError", "TypeAssertionError",
		"UnmarshalTypeError", "SyntaxError",
	}
)

// stepErrorNames are the names of the error types of internal/steps: every
// type with an Error() string method, read from the package's source, so a
// new step error is checked without editing this list.
func stepErrorNames(t *testing.T) []string {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "internal", "steps")
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv == nil || fn.Name.Name != "Error" || len(fn.Type.Params.List) != 0 {
				continue
			}
			recv := fn.Recv.List[0].Type
			if star, ok := recv.(*ast.StarExpr); ok {
				recv = star.X
			}
			if id, ok := recv.(*ast.Ident); ok {
				names = append(names, id.Name)
			}
		}
	}
	sort.Strings(names)
	for _, want := range append(append([]string{}, steps.ForceStopErrors...), "ControlPlaneError", "TemporaryError") {
		if !slices.Contains(names, want) {
			t.Fatalf("internal/steps has no error type %s (found %v)", want, names)
		}
	}
	return names
}

func allTaskErrors(t *testing.T) []string {
	var all []string
	all = append(all, statesErrors...)
	all = append(all, lambdaErrors...)
	all = append(all, functionErrors...)
	all = append(all, stepErrorNames(t)...)
	return all
}

// matches tells whether an ErrorEquals list matches error name e.
// States.Runtime is caught by nothing; States.DataLimitExceeded only when
// named; States.ALL matches every other name; States.TaskFailed every other
// name but States.Timeout.
func matches(list []string, e string) bool {
	if e == "States.Runtime" {
		return false
	}
	if slices.Contains(list, e) {
		return true
	}
	if e == "States.DataLimitExceeded" {
		return false
	}
	return slices.Contains(list, "States.ALL") || slices.Contains(list, "States.TaskFailed") && e != "States.Timeout"
}

// violation is an error that can reach a state it must not.
type violation struct {
	file, state, err, path string
}

func (v violation) String() string {
	return fmt.Sprintf("%s: %s raising %s: %s", v.file, v.state, v.err, v.path)
}

// reachable lists the states reachable from start by normal transitions.
func reachable(m aslMachine, start string) []string {
	seen := map[string]bool{}
	var order []string
	var visit func(string)
	visit = func(name string) {
		if name == "" || seen[name] {
			return
		}
		seen[name] = true
		order = append(order, name)
		n := m.States[name]
		if n == nil {
			return
		}
		visit(n.Next)
		visit(n.Default)
		for _, c := range n.Choices {
			visit(c.Next)
		}
	}
	visit(start)
	return order
}

// failNames are the Error names of the Fail states of a machine and its
// nested ones: a branch ending in one fails its Parallel or Map state with it.
func failNames(m aslMachine) []string {
	var out []string
	for _, n := range m.States {
		if n.Type == "Fail" && n.Error != "" {
			out = append(out, n.Error)
		}
		for _, b := range n.nested() {
			out = append(out, failNames(b)...)
		}
	}
	return out
}

// checkRouting returns every way an error other than allowed can reach a
// force-stop state, or end the execution other than in a Fail state.
func checkRouting(file string, m aslMachine, taskErrors, allowed []string) []violation {
	var out []violation
	names := make([]string, 0, len(m.States))
	for name := range m.States {
		names = append(names, name)
	}
	sort.Strings(names)
	forceStop := func(name string) bool {
		n := m.States[name]
		return n != nil && n.Type == "Task" && slices.Contains(forceStopSteps, n.step())
	}
	for _, name := range names {
		n := m.States[name]
		for _, b := range n.nested() {
			out = append(out, checkRouting(file+" "+name+"/branch", b, taskErrors, allowed)...)
		}
		var errs []string
		switch n.Type {
		case "Task":
			errs = taskErrors
		case "Parallel", "Map":
			errs = append(append(append([]string{}, taskErrors...), "States.BranchFailed", "States.ExceedToleratedFailureThreshold",
				"States.ItemReaderFailed", "States.ResultWriterFailed"), failNames(aslMachine{States: map[string]*aslNode{name: n}})...)
		default:
			continue
		}
		if len(n.Catch) == 0 || !slices.Equal(n.Catch[len(n.Catch)-1].ErrorEquals, []string{"States.ALL"}) {
			out = append(out, violation{file, name, "*", "no final States.ALL catcher: an unexpected error would fail the execution unrouted"})
		}
		for _, e := range errs {
			path := ""
			for i, r := range n.Retry {
				if matches(r.ErrorEquals, e) {
					attempts := 3
					if r.MaxAttempts != nil {
						attempts = *r.MaxAttempts
					}
					path = fmt.Sprintf("Retry[%d] (%d attempts) exhausted → ", i, attempts)
					break
				}
			}
			target := ""
			for i, c := range n.Catch {
				if matches(c.ErrorEquals, e) {
					target = c.Next
					path += fmt.Sprintf("Catch[%d] → ", i)
					break
				}
			}
			if target == "" {
				continue // not caught: the execution fails with e
			}
			reach := reachable(m, target)
			path += strings.Join(reach, " → ")
			isAllowed := slices.Contains(allowed, e)
			if !isAllowed && slices.ContainsFunc(reach, forceStop) {
				out = append(out, violation{file, name, e, "reaches a force-stop state: " + path})
				continue
			}
			if isAllowed || slices.Contains(cleanEndErrors, e) {
				continue
			}
			// Anything else: a Fail state, reached without running a Task.
			ok := true
			for _, r := range reach {
				switch s := m.States[r]; {
				case s == nil:
					ok = false
				case s.Type == "Task" || s.Type == "Parallel" || s.Type == "Map" || s.Type == "Succeed":
					ok = false
				}
			}
			if !ok || !slices.ContainsFunc(reach, func(r string) bool { return m.States[r].Type == "Fail" }) {
				out = append(out, violation{file, name, e, "does not end in a Fail state without running another state: " + path})
			}
		}
	}
	return out
}

func loadMachine(t *testing.T, path string) aslMachine {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m aslMachine
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// TestErrorRoutingRule: in every workflow, only the pipeline's own permanent
// failures can reach a force-stop; every other error ends the execution in a
// Fail state; and a pipeline's permanent failure during a start or a suspend
// does force-stop it with the error recorded.
func TestErrorRoutingRule(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "statemachine", "*.asl.json"))
	if err != nil || len(files) != 4 {
		t.Fatalf("state machines %v: %v", files, err)
	}
	taskErrors := allTaskErrors(t)
	for _, f := range files {
		m := loadMachine(t, f)
		for _, v := range checkRouting(filepath.Base(f), m, taskErrors, steps.ForceStopErrors) {
			t.Errorf("%s", v)
		}
		// Where the workflow can record an error (start, suspend), every
		// Task before the stop routes the pipeline's failures to RecordError.
		recordError := ""
		for name, n := range m.States {
			if n.Type == "Task" && n.step() == steps.StepRecordError {
				recordError = name
			}
		}
		if recordError == "" {
			continue
		}
		afterStop := reachable(m, recordError)
		for name, n := range m.States {
			if n.Type != "Task" || slices.Contains(afterStop, name) {
				continue
			}
			for _, e := range steps.ForceStopErrors {
				var target string
				for _, c := range n.Catch {
					if matches(c.ErrorEquals, e) {
						target = c.Next
						break
					}
				}
				if target != recordError {
					t.Errorf("%s: %s raising %s goes to %q, want %s (the pipeline's permanent failure force-stops it)", filepath.Base(f), name, e, target, recordError)
				}
			}
		}
	}
}

// The rule fails the ASL as it was before issue 13 (testdata copy of
// suspend.asl.json), whose catch-all sent every other error — a Go panic, a
// Lambda timeout or crash, an unknown step — to RecordError.
func TestErrorRoutingRuleFailsTheOldASL(t *testing.T) {
	m := loadMachine(t, filepath.Join("testdata", "routing", "suspend-before-issue-13.asl.json"))
	got := map[string]bool{}
	for _, v := range checkRouting("old suspend", m, allTaskErrors(t), steps.ForceStopErrors) {
		got[v.state+" "+v.err] = true
	}
	for _, want := range []string{
		"RequestSuspend string", // a Go panic
		"RequestSuspend Runtime.ExitError",
		"WaitUntilSuspended Sandbox.Timedout",
		"WaitUntilSuspended errorString", // an unnamed Go error
		"MarkSuspending Lambda.EC2ThrottledException",
		"MarkSuspended ControlPlaneError", // e.g. an unknown step after a deploy
		"ContinueAsNew States.Permissions",
	} {
		if !got[want] {
			t.Errorf("the old ASL is not reported for %s", want)
		}
	}
	if len(got) == 0 {
		t.Fatal("the old ASL passes the rule")
	}
}

// The checker itself: errors are followed through Choice and Pass states and
// into Parallel branches and Map item processors.
func TestErrorRoutingChecker(t *testing.T) {
	task := func(step string, catch ...aslCatch) *aslNode {
		return &aslNode{Type: "Task", Parameters: map[string]any{"step": step}, Catch: catch, Next: "Done"}
	}
	all := func(next string) aslCatch { return aslCatch{ErrorEquals: []string{"States.ALL"}, Next: next} }
	record := task(steps.StepRecordError, all("Failed"))
	record.Next = "Done"
	base := func(states map[string]*aslNode) aslMachine {
		states["Done"] = &aslNode{Type: "Succeed"}
		states["Failed"] = &aslNode{Type: "Fail", Error: "Failed"}
		return aslMachine{StartAt: "A", States: states}
	}
	errs := []string{"string", "PipelineRuntimeError", "Sandbox.Timedout", "States.Runtime"}
	allowed := []string{"PipelineRuntimeError"}
	tests := []struct {
		name string
		m    aslMachine
		want []string
	}{
		{"direct", base(map[string]*aslNode{"A": task("X", all("RecordError")), "RecordError": record}),
			[]string{"A string", "A Sandbox.Timedout"}},
		{"through a Pass and a Choice", base(map[string]*aslNode{
			"A": task("X", aslCatch{ErrorEquals: []string{"Sandbox.Timedout"}, Next: "Failed"}, all("P")),
			"P": {Type: "Pass", Next: "C"},
			"C": {Type: "Choice", Choices: []struct {
				Next string `json:"Next"`
			}{{Next: "Failed"}}, Default: "RecordError"},
			"RecordError": record}),
			[]string{"A string"}},
		{"into a Task that is no force-stop", base(map[string]*aslNode{
			"A": task("X", aslCatch{ErrorEquals: []string{"PipelineRuntimeError"}, Next: "RecordError"}, all("B")),
			"B": task("Y", all("Failed")), "RecordError": record}),
			[]string{"A string", "A Sandbox.Timedout"}},
		{"allowed only", base(map[string]*aslNode{
			"A": task("X", aslCatch{ErrorEquals: []string{"PipelineRuntimeError"}, Next: "RecordError"}, all("Failed")), "RecordError": record}),
			nil},
		{"inside a Parallel branch", base(map[string]*aslNode{
			"A": {Type: "Parallel", Next: "Done", Catch: []aslCatch{all("Failed")}, Branches: []aslMachine{base(map[string]*aslNode{
				"A": task("X", all("RecordError")), "RecordError": record})}}}),
			[]string{"A string", "A Sandbox.Timedout"}},
		{"a Parallel failing into RecordError", base(map[string]*aslNode{
			"A":           {Type: "Parallel", Next: "Done", Catch: []aslCatch{all("RecordError")}, Branches: []aslMachine{base(map[string]*aslNode{"A": task("X", all("Failed"))})}},
			"RecordError": record}),
			[]string{"A string", "A Sandbox.Timedout", "A States.BranchFailed", "A Failed"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, v := range checkRouting("test", tc.m, errs, allowed) {
				if v.err == "*" {
					continue
				}
				got = append(got, v.state+" "+v.err)
			}
			for _, w := range tc.want {
				if !slices.Contains(got, w) {
					t.Errorf("not reported: %s (got %v)", w, got)
				}
			}
			if tc.want == nil && len(got) > 0 {
				t.Errorf("reported %v, want nothing", got)
			}
			for _, g := range got {
				if strings.HasSuffix(g, " States.Runtime") {
					t.Errorf("States.Runtime is caught by nothing, yet reported: %s", g)
				}
			}
		})
	}
}
