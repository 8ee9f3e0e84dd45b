//go:build unix

package samtemplate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireTool finds a command on PATH. Missing, it skips the test locally
// and fails it in CI ($CI set), where the project's own files must provide
// every tool.
func requireTool(t *testing.T, name, why string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not on PATH (%s); CI must have it", name, why)
	}
	t.Skipf("%s is not on PATH (%s); skipped outside CI", name, why)
	return ""
}

func run(t *testing.T, dir string, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = errors.Join(err, ctx.Err())
	}
	return out.String(), err
}

// cfn-lint (with the SAM transform) reports nothing, warnings included.
func TestCfnLint(t *testing.T) {
	t.Parallel()
	cfnLint := requireTool(t, "cfn-lint", "preinstalled on the project's machines")
	out, err := run(t, repoRoot(t), 5*time.Minute, cfnLint, "--", "template.yaml")
	if err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("cfn-lint template.yaml: %v\n%s", err, out)
	}
}

// asl-validator accepts every state machine definition. Placeholders such
// as ${StepsFunctionArn} pass its ARN check as they are.
func TestASLValidator(t *testing.T) {
	t.Parallel()
	bin := aslValidator(t)
	files := aslFiles(t)
	args := []string{}
	for _, f := range files {
		args = append(args, "--json-path", f)
	}
	out, err := run(t, repoRoot(t), 2*time.Minute, bin, args...)
	if err != nil {
		t.Fatalf("asl-validator: %v\n%s", err, out)
	}
	for _, f := range files {
		if !strings.Contains(out, `"`+f+`" is valid`) {
			t.Errorf("asl-validator did not report %s valid:\n%s", f, out)
		}
	}

	// And it does reject a broken definition (the tool is really checking).
	bad := filepath.Join(t.TempDir(), "bad.asl.json")
	if err := os.WriteFile(bad, []byte(`{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"${StepsFunctionArn}","Nxt":"B"}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, repoRoot(t), 2*time.Minute, bin, "--json-path", bad); err == nil {
		t.Errorf("asl-validator accepted a broken definition:\n%s", out)
	}
}

// aslValidator installs the pinned asl-validator (testdata/asl-validator,
// npm ci) unless the installed one already has the pinned version, and
// returns its command. An exclusive lock serializes concurrent installs
// (`make lint` uses the same folder).
func aslValidator(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "asl-validator"))
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &pkg); err != nil {
		t.Fatal(err)
	}
	want := pkg.Dependencies["asl-validator"]
	if want == "" || strings.ContainsAny(want, "^~*<>=x ") {
		t.Fatalf("testdata/asl-validator/package.json must pin an exact asl-validator version, has %q", want)
	}
	bin := filepath.Join(dir, "node_modules", ".bin", "asl-validator")
	installed := func() bool {
		var got struct {
			Version string `json:"version"`
		}
		data, err := os.ReadFile(filepath.Join(dir, "node_modules", "asl-validator", "package.json"))
		if err != nil || json.Unmarshal(data, &got) != nil {
			return false
		}
		_, err = os.Stat(bin)
		return got.Version == want && err == nil
	}

	requireTool(t, "node", "runs asl-validator")
	unlock := lockFile(t, filepath.Join(os.TempDir(), "sluice-asl-validator.lock"))
	defer unlock()
	if installed() {
		return bin
	}
	npm := requireTool(t, "npm", "installs asl-validator")
	out, err := run(t, dir, 5*time.Minute, npm, "ci", "--no-audit", "--no-fund")
	if err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
	if !installed() {
		t.Fatalf("npm ci did not install asl-validator %s:\n%s", want, out)
	}
	return bin
}

func lockFile(t *testing.T, path string) (unlock func()) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatal(err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}
}
