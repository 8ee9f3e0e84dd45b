package workflow

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/domain"
)

// stepFunctionsAcceptsName is Step Functions' own rule for an execution name,
// written from the API reference independently of ValidExecutionName
// (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html,
// `name`; length from the API model's Name shape, min 1, max 80): 1..80
// characters and none of white space, < > { } [ ], ? *,
// " # % \ ^ | ~ ` $ & , ; : /, control characters U+0000-001F and
// U+007F-009F, U+FFFE-FFFF, surrogates or U+10FFFF.
func stepFunctionsAcceptsName(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	if n := utf8.RuneCountInString(s); n < 1 || n > 80 {
		return false
	}
	for _, r := range s {
		switch {
		case strings.ContainsRune(" \t\n\v\f\r\u0085\u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff", r), r >= 0x2000 && r <= 0x200a:
			return false // white space
		case strings.ContainsRune(`<>{}[]?*"#%\^|~`+"`"+`$&,;:/`, r):
			return false
		case r <= 0x1f, r >= 0x7f && r <= 0x9f, r == 0xfffe, r == 0xffff, r >= 0xd800 && r <= 0xdfff, r == 0x10ffff:
			return false
		}
	}
	return true
}

// FuzzExecutionNameFor: for every valid pipeline name (domain.ValidateName),
// any pipeline id, any generation, every workflow kind and any attempt, the
// execution name the starter sends is one Step Functions accepts (at most 80
// characters, and bytes: it is ASCII), is deterministic, reads its attempt
// back, and differs between attempts and kinds.
func FuzzExecutionNameFor(f *testing.F) {
	f.Add("p1", "3f2a9c1b-0000-4000-8000-000000000001", int64(8), uint8(1), uint32(0))
	f.Add(strings.Repeat("a", 63), "ffffffff-ffff-ffff-ffff-ffffffffffff", int64(1<<62), uint8(3), uint32(99999999))
	f.Add(strings.Repeat("Z", 63), "", int64(9223372036854775807), uint8(0), uint32(4294967295))
	f.Add("my_pipe-2", "not a uuid: <>/?*", int64(0), uint8(2), uint32(7))
	f.Add("-", "é😀", int64(-1), uint8(1), uint32(1))
	f.Fuzz(func(t *testing.T, name, id string, generation int64, kind uint8, attempt uint32) {
		if domain.ValidateName(name) != nil {
			t.Skip()
		}
		p := domain.Pipeline{Name: name, ID: id, Generation: generation}
		k := domain.AllWorkflowKinds[int(kind)%len(domain.AllWorkflowKinds)]
		a := int(attempt)
		got := ExecutionNameFor(p, k, a)
		if !stepFunctionsAcceptsName(got) || len(got) > MaxExecutionNameLength {
			t.Fatalf("ExecutionNameFor(%q, id %q, g%d, %s, attempt %d) = %q (%d bytes): Step Functions refuses it", name, id, generation, k, a, got, len(got))
		}
		if !ValidExecutionName(got) {
			t.Fatalf("%q: not of the form ValidExecutionName promises", got)
		}
		if got != ExecutionNameFor(p, k, a) {
			t.Fatal("not deterministic")
		}
		if generation < 0 {
			return // never a real generation: validity is all that is promised
		}
		if a <= 99999999 && AttemptOf(got) != a {
			t.Fatalf("AttemptOf(%q) = %d, want %d", got, AttemptOf(got), a)
		}
		if next := ExecutionNameFor(p, k, a+1); next == got {
			t.Fatalf("attempts %d and %d share the name %q", a, a+1, got)
		}
		for _, other := range domain.AllWorkflowKinds {
			if other != k && ExecutionNameFor(p, other, a) == got {
				t.Fatalf("kinds %s and %s share the name %q", k, other, got)
			}
		}
	})
}
