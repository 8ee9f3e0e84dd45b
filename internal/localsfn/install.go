package localsfn

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/filelock"
)

// Paths inside the module.
const (
	// ServiceDir is the Node side, relative to the module root.
	ServiceDir = "infra/local-sfn"
	// NodeBinaryPath is the Node 22 binary that the pinned npm package
	// `node` installs, relative to the module root.
	NodeBinaryPath = ServiceDir + "/node_modules/node/bin/node"

	stampFile = "node_modules/.sluice-install-stamp"
	lockFile  = ".install.lock"
)

// InstallTimeout bounds one npm install run.
var InstallTimeout = 10 * time.Minute

// FindModuleRoot walks up from dir (the working directory when empty) to the
// directory holding go.mod.
func FindModuleRoot(dir string) (string, error) {
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		dir = wd
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("localsfn: no go.mod above %s", dir)
		}
	}
}

// NodeBinary returns the absolute path of the Node 22 binary installed under
// moduleRoot, or an error that says how to install it.
func NodeBinary(moduleRoot string) (string, error) {
	p := filepath.Join(moduleRoot, NodeBinaryPath)
	st, err := os.Stat(p)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("localsfn: %s is missing: install the local Step Functions service with `npm ci --prefix %s` (or call localsfn.EnsureInstalled)", p, ServiceDir)
	}
	return p, nil
}

// EnsureInstalled installs infra/local-sfn's npm dependencies (the
// aws-local-stepfunctions engine and the Node 22 binary) when node_modules is
// missing or was installed from another package-lock.json: `npm ci` when a
// lock file exists, `npm install` otherwise. It is a no-op when the install is
// current, and safe to call from several processes at once (an exclusive file
// lock serialises them).
func EnsureInstalled(ctx context.Context, moduleRoot string) error {
	dir := filepath.Join(moduleRoot, ServiceDir)
	if _, err := os.Stat(filepath.Join(dir, "package.json")); err != nil {
		return fmt.Errorf("localsfn: %s/package.json not found (is %s the module root?): %w", ServiceDir, moduleRoot, err)
	}
	want, err := installStamp(dir)
	if err != nil {
		return err
	}
	if installCurrent(moduleRoot, dir, want) {
		return nil
	}
	unlock, err := filelock.Lock(ctx, filepath.Join(dir, lockFile))
	if err != nil {
		return fmt.Errorf("localsfn: waiting for the install lock (another install may be running): %w", err)
	}
	defer unlock()
	if installCurrent(moduleRoot, dir, want) { // another process installed it meanwhile
		return nil
	}

	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("localsfn: npm is not on PATH; it is needed once to install %s (Node packages aws-local-stepfunctions and node@22): %w", ServiceDir, err)
	}
	args := []string{"install", "--no-audit", "--no-fund"}
	if _, err := os.Stat(filepath.Join(dir, "package-lock.json")); err == nil {
		args = []string{"ci", "--no-audit", "--no-fund"}
	}
	ctx, cancel := context.WithTimeout(ctx, InstallTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (timeout %s)", ctx.Err(), InstallTimeout)
		}
		return fmt.Errorf("localsfn: `npm %s` in %s failed after %s: %v\n%s", strings.Join(args, " "), dir, time.Since(start).Round(time.Second), err, tail(out.String(), 4000))
	}
	if _, err := NodeBinary(moduleRoot); err != nil {
		return fmt.Errorf("localsfn: `npm %s` succeeded but did not install the Node binary (the `node` package's install script may have been blocked; see allowScripts in %s/package.json): %w\n%s", strings.Join(args, " "), ServiceDir, err, tail(out.String(), 4000))
	}
	if err := checkNodeVersion(ctx, moduleRoot); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, stampFile), []byte(want+"\n"), 0o644); err != nil {
		return fmt.Errorf("localsfn: writing the install stamp: %w", err)
	}
	return nil
}

func installCurrent(moduleRoot, dir, want string) bool {
	got, err := os.ReadFile(filepath.Join(dir, stampFile))
	if err != nil || strings.TrimSpace(string(got)) != want {
		return false
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "aws-local-stepfunctions", "package.json")); err != nil {
		return false
	}
	_, err = NodeBinary(moduleRoot)
	return err == nil
}

// installStamp identifies an install: the hash of package.json and
// package-lock.json.
func installStamp(dir string) (string, error) {
	h := sha256.New()
	for _, f := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("localsfn: %w", err)
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkNodeVersion verifies that the installed binary is Node >= 22.
func checkNodeVersion(ctx context.Context, moduleRoot string) error {
	node, err := NodeBinary(moduleRoot)
	if err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		return fmt.Errorf("localsfn: %s --version: %w", node, err)
	}
	v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	major, err := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
	if err != nil || major < 22 {
		return fmt.Errorf("localsfn: %s is Node %q; aws-local-stepfunctions needs Node >= 22", node, v)
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
