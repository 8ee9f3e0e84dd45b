package dynamolocal

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestFetchScript checks that infra/dynamodb-local.sh pins what the Go code
// pins, and that its fetch fills a cache EnsureJar accepts as is.
func TestFetchScript(t *testing.T) {
	t.Parallel()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "infra", "dynamodb-local.sh")
	src, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"SIMULATOR_PACKAGE": SimulatorPackage,
		"SIMULATOR_VERSION": SimulatorVersion,
		"JAR_SHA256":        jarSHA256,
	} {
		m := regexp.MustCompile(`(?m)^` + name + `=(\S+)$`).FindSubmatch(src)
		if m == nil || string(m[1]) != want {
			t.Errorf("%s: %s=%s, want %s (keep it in step with fetch.go)", script, name, m, want)
		}
	}

	cache := t.TempDir()
	cmd := exec.Command("bash", script, "fetch")
	cmd.Env = append(os.Environ(), EnvCacheDir+"="+cache)
	begin := time.Now()
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("%s fetch: %v\n%s", script, err, stderr)
	}
	t.Logf("script fetch: %v", time.Since(begin))
	jarDir := filepath.Join(cache, JarDirName)
	if got := strings.TrimSpace(string(out)); got != jarDir {
		t.Errorf("script printed %q, want %q", got, jarDir)
	}
	assertJarDir(t, jarDir)
	if jarDirState(jarDir) != jarDirOK {
		t.Error("EnsureJar would not accept the script's jar dir")
	}
	assertNoLeftovers(t, cache)
}
