package dynamolocal

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MinJavaVersion is the oldest Java major version this package runs
// DynamoDB Local with.
const MinJavaVersion = 17

const javaHint = "DynamoDB Local needs Java 17 or newer (on Debian: apt-get install openjdk-17-jre-headless), on PATH or via JAVA_HOME"

// resolveJava picks the java binary: the explicit one, else
// $JAVA_HOME/bin/java when it exists, else java on PATH.
func resolveJava(explicit string) (string, error) {
	if explicit == "" {
		if home := os.Getenv("JAVA_HOME"); home != "" {
			candidate := filepath.Join(home, "bin", "java")
			if st, err := os.Stat(candidate); err == nil && !st.IsDir() {
				explicit = candidate
			}
		}
	}
	if explicit == "" {
		explicit = "java"
	}
	p, err := exec.LookPath(explicit)
	if err != nil {
		return "", fmt.Errorf("dynamolocal: java not found (%v); %s", err, javaHint)
	}
	return p, nil
}

var javaChecked sync.Map // java path -> error (nil when fine)

// checkJava runs `java -version` once per binary and fails when it is older
// than MinJavaVersion.
func checkJava(ctx context.Context, java string) error {
	if v, ok := javaChecked.Load(java); ok {
		if v == nil {
			return nil
		}
		return v.(error)
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, java, "-version").CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("dynamolocal: %s -version: %w", java, ctx.Err())
		}
		err = fmt.Errorf("dynamolocal: %s -version failed: %v\n%s\n%s", java, err, tail(string(out), 1000), javaHint)
		javaChecked.Store(java, err)
		return err
	}
	major, err := parseJavaMajor(string(out))
	if err == nil && major < MinJavaVersion {
		err = fmt.Errorf("dynamolocal: %s is Java %d; %s", java, major, javaHint)
	} else if err != nil {
		err = fmt.Errorf("dynamolocal: %s -version: %v; %s", java, err, javaHint)
	}
	if err != nil {
		javaChecked.Store(java, err)
		return err
	}
	javaChecked.Store(java, nil)
	return nil
}

var javaVersionRE = regexp.MustCompile(`(?m)^\S+ version "([^"]+)"`)

// parseJavaMajor reads the major version from `java -version` output:
// `openjdk version "17.0.15" …` → 17, `java version "1.8.0_381"` → 8.
func parseJavaMajor(out string) (int, error) {
	m := javaVersionRE.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no version in %q", tail(out, 300))
	}
	parts := strings.FieldsFunc(m[1], func(r rune) bool { return r == '.' || r == '_' || r == '-' || r == '+' })
	if len(parts) == 0 {
		return 0, fmt.Errorf("unparsable version %q", m[1])
	}
	if parts[0] == "1" && len(parts) > 1 {
		parts = parts[1:]
	}
	major, err := strconv.Atoi(parts[0])
	if err != nil {
		return 0, fmt.Errorf("unparsable version %q", m[1])
	}
	return major, nil
}
