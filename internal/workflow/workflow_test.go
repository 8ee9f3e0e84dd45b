package workflow

import (
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/domain"
)

func TestExecutionName(t *testing.T) {
	long63 := strings.Repeat("a", 63)
	tests := []struct {
		name string
		pipe string
		gen  int64
		kind domain.WorkflowKind
		want string // "" = only check validity and the hashed form
	}{
		{"plain", "p1", 8, domain.WorkflowSuspend, "p1-g8-suspend"},
		{"start", "my_pipe-2", 1, domain.WorkflowStart, "my_pipe-2-g1-start"},
		{"stop", "p1", 9, domain.WorkflowStop, "p1-g9-stop"},
		{"clear", "p1", 0, domain.WorkflowClear, "p1-g0-clear"},
		{"fits exactly below 80", strings.Repeat("b", 68), 1, domain.WorkflowStop, strings.Repeat("b", 68) + "-g1-stop"}, // 76
		{"max name, small generation", long63, 3, domain.WorkflowStop, long63 + "-g3-stop"},                              // 71
		{"max name, big generation", long63, 9223372036854775807, domain.WorkflowSuspend, ""},
		{"slash", "a/b", 1, domain.WorkflowStop, ""},
		{"dots", "..", 1, domain.WorkflowStop, ""},
		{"non-ASCII", "café", 1, domain.WorkflowStop, ""},
		{"empty", "", 1, domain.WorkflowStop, ""},
		{"odd kind", "p1", 1, domain.WorkflowKind("no such kind with spaces"), "p1-g1-k" + shortHash("no such kind with spaces")},
		{"negative generation", "p1", -5, domain.WorkflowStop, "p1-g-5-stop"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ExecutionName(tc.pipe, tc.gen, tc.kind)
			if !ValidExecutionName(got) {
				t.Fatalf("ExecutionName(%q, %d, %q) = %q: not a valid execution name", tc.pipe, tc.gen, tc.kind, got)
			}
			if tc.want != "" && got != tc.want {
				t.Fatalf("ExecutionName(%q, %d, %q) = %q, want %q", tc.pipe, tc.gen, tc.kind, got, tc.want)
			}
			if tc.want == "" && len(got) != MaxExecutionNameLength {
				t.Fatalf("shortened name %q has %d characters, want exactly %d", got, len(got), MaxExecutionNameLength)
			}
			if again := ExecutionName(tc.pipe, tc.gen, tc.kind); again != got {
				t.Fatalf("not deterministic: %q then %q", got, again)
			}
		})
	}
}

func TestExecutionNameShortenedKeepsPrefix(t *testing.T) {
	long := strings.Repeat("x", 40) + strings.Repeat("y", 23)
	got := ExecutionName(long, 9223372036854775807, domain.WorkflowSuspend)
	if !strings.HasPrefix(got, strings.Repeat("x", 40)) || !strings.HasSuffix(got, "-g9223372036854775807-suspend") {
		t.Fatalf("got %q", got)
	}
	// Two long names that differ only past the cut get different names.
	other := strings.Repeat("x", 40) + strings.Repeat("z", 23)
	if ExecutionName(other, 9223372036854775807, domain.WorkflowSuspend) == got {
		t.Fatal("collision between long names differing after the cut")
	}
	// "a/b" and "a_b" must not collide: sanitizing changes the name, the hash tells them apart.
	if ExecutionName("a/b", 1, domain.WorkflowStop) == ExecutionName("a_b", 1, domain.WorkflowStop) {
		t.Fatal("a/b and a_b collide")
	}
}

func FuzzExecutionName(f *testing.F) {
	f.Add("p1", int64(8), "suspend", "p2", int64(8))
	f.Add(strings.Repeat("a", 63), int64(1<<62), "stop", strings.Repeat("a", 62), int64(1<<62))
	f.Add("a/b", int64(1), "start", "a_b", int64(1))
	f.Add("", int64(0), "", "-", int64(0))
	f.Add("a-g1", int64(2), "stop", "a", int64(12))
	f.Fuzz(func(t *testing.T, a string, ga int64, kind string, b string, gb int64) {
		na := ExecutionName(a, ga, domain.WorkflowKind(kind))
		if !ValidExecutionName(na) {
			t.Fatalf("ExecutionName(%q, %d, %q) = %q: invalid", a, ga, kind, na)
		}
		if na != ExecutionName(a, ga, domain.WorkflowKind(kind)) {
			t.Fatal("not deterministic")
		}
		// Injective over real kinds and non-negative generations.
		if ga < 0 || gb < 0 {
			return
		}
		for _, ka := range domain.AllWorkflowKinds {
			for _, kb := range domain.AllWorkflowKinds {
				if a == b && ga == gb && ka == kb {
					continue
				}
				if x, y := ExecutionName(a, ga, ka), ExecutionName(b, gb, kb); x == y {
					t.Fatalf("collision: (%q,%d,%s) and (%q,%d,%s) both give %q", a, ga, ka, b, gb, kb, x)
				}
			}
		}
	})
}

func TestStateMachinesFromEnv(t *testing.T) {
	arn := func(k string) string { return "arn:aws:states:eu-west-1:123456789012:stateMachine:sluice-" + k }
	env := map[string]string{
		EnvStateMachineARNs:                  `{"start":"` + arn("start") + `","suspend":"` + arn("suspend") + `"}`,
		EnvStateMachineARNPrefix + "STOP":    arn("stop"),
		EnvStateMachineARNPrefix + "CLEAR":   arn("clear"),
		EnvStateMachineARNPrefix + "SUSPEND": arn("suspend2"),
		"SLUICE_STATE_MACHINE_ARN_UNRELATED": "x",
	}
	got, err := StateMachinesFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := map[domain.WorkflowKind]string{"start": arn("start"), "suspend": arn("suspend2"), "stop": arn("stop"), "clear": arn("clear")}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	list := map[string]string{EnvStateMachineARNs: "start=" + arn("start") + ", stop=" + arn("stop")}
	got, err = StateMachinesFromEnv(func(k string) string { return list[k] })
	if err != nil || got["start"] != arn("start") || got["stop"] != arn("stop") {
		t.Fatalf("list form: %v, %v", got, err)
	}
	for _, bad := range []string{`{"start": 1}`, "start", "bogus=" + arn("x")} {
		if _, err := StateMachinesFromEnv(func(k string) string {
			if k == EnvStateMachineARNs {
				return bad
			}
			return ""
		}); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestExecutionNameForAttemptsAndRecreatedPipelines(t *testing.T) {
	p := domain.Pipeline{Name: "p1", ID: "3f2a9c1b-0000-4000-8000-000000000001", Generation: 8}
	first := ExecutionNameFor(p, domain.WorkflowSuspend, 0)
	if first != "p1-3f2a9c1b-g8-suspend" || AttemptOf(first) != 0 {
		t.Fatalf("first attempt: %q (attempt %d)", first, AttemptOf(first))
	}
	third := ExecutionNameFor(p, domain.WorkflowSuspend, 3)
	if third != "p1-3f2a9c1b-g8-suspend-3" || AttemptOf(third) != 3 {
		t.Fatalf("third attempt: %q (attempt %d)", third, AttemptOf(third))
	}
	recreated := p
	recreated.ID = "9d00aa77-0000-4000-8000-000000000002"
	if ExecutionNameFor(recreated, domain.WorkflowSuspend, 0) == first {
		t.Fatal("a re-created pipeline of the same name must not reuse the old executions' names")
	}
	long := domain.Pipeline{Name: strings.Repeat("x", 63), ID: p.ID, Generation: 1 << 40}
	for a := 0; a < 1000; a += 97 {
		n := ExecutionNameFor(long, domain.WorkflowSuspend, a)
		if !ValidExecutionName(n) || AttemptOf(n) != a {
			t.Fatalf("long name attempt %d: %q valid=%v attempt=%d", a, n, ValidExecutionName(n), AttemptOf(n))
		}
	}
	for _, n := range []string{"", "x", "p1-g8-stop", "p1-g8-", "p1-g8-12"} {
		if AttemptOf(n) != 0 {
			t.Errorf("AttemptOf(%q) = %d", n, AttemptOf(n))
		}
	}
}
