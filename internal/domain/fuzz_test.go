package domain

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

var namePatternOracle = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,63}$`)

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"", "a", "my-pipeline_1", strings.Repeat("x", 63), strings.Repeat("x", 64), "a/b", "../x", "%2F", "naïve", "a b", "\x00", "名前"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateName(name)
		if (err == nil) != namePatternOracle.MatchString(name) {
			t.Fatalf("ValidateName(%q) = %v disagrees with the pattern", name, err)
		}
		if err == nil {
			return
		}
		var de *Error
		if !errors.As(err, &de) || de.HTTPStatus() != 400 || !utf8.ValidString(de.Message) && utf8.ValidString(name) {
			t.Fatalf("ValidateName(%q): %v is not a 400 catalogue error", name, err)
		}
		switch {
		case name == "" && de.Code != CodeEmptyName,
			utf8.RuneCountInString(name) > MaxNameLength && de.Code != CodeTooLongName:
			t.Fatalf("ValidateName(%q): wrong code %s", name, de.Code)
		}
	})
}

func FuzzParseBoolParam(f *testing.F) {
	for _, s := range []string{"true", "false", "", "yes", "1", "TRUE", "False", "true "} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, v string, many bool) {
		values := []string{v}
		if many {
			values = append(values, v)
		}
		got, err := ParseBoolParam("force", values, false)
		switch {
		case !many && v == "true":
			if err != nil || !got {
				t.Fatalf("true: %v %v", got, err)
			}
		case !many && v == "false":
			if err != nil || got {
				t.Fatalf("false: %v %v", got, err)
			}
		default:
			if codeOf(err) != CodeInvalidQueryParameter {
				t.Fatalf("%q (many=%v) must be InvalidQueryParameter, got %v", v, many, err)
			}
		}
	})
}

func FuzzParseInitialAndSelector(f *testing.F) {
	for _, s := range []string{"running", "paused", "all", "status", "", "Running", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		initial, err := ParseInitial([]string{v})
		if (err == nil) != (v == "running" || v == "paused") {
			t.Fatalf("initial %q: %v %v", v, initial, err)
		}
		if err != nil && codeOf(err) != CodeUnsupportedPipelineAction {
			t.Fatalf("initial %q: %v", v, err)
		}
		sel, err := ParseSelector([]string{v})
		if (err == nil) != (v == "all" || v == "status") {
			t.Fatalf("selector %q: %v %v", v, sel, err)
		}
		if err != nil && codeOf(err) != CodeInvalidQueryParameter {
			t.Fatalf("selector %q: %v", v, err)
		}
	})
}

func FuzzValidateRuntimeConfig(f *testing.F) {
	for _, s := range []string{"", "null", "{}", `{"storage":false}`, `{"storage":"no"}`, "[]", "{", `{"fault":{"suspend_error":"x"}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		cfg, err := ValidateRuntimeConfig(raw)
		if err != nil {
			if codeOf(err) != CodeInvalidRequestBody {
				t.Fatalf("%q: %v", raw, err)
			}
			return
		}
		if _, err := ValidateRuntimeConfig(cfg); err != nil {
			t.Fatalf("an accepted config must stay accepted: %q → %q: %v", raw, cfg, err)
		}
	})
}
