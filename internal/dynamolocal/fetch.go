package dynamolocal

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/filelock"
)

// The emulator comes from this npm package, pinned. Its tarball holds
// package/emulator/DynamoDBLocal.jar (DynamoDB Local 1.25.1) and
// package/emulator/DynamoDBLocal_lib/. Bumping the version means updating
// jarSHA256 too (and infra/dynamodb-local.sh).
const (
	SimulatorPackage = "amplify-dynamodb-simulator"
	SimulatorVersion = "2.9.30"

	// jarSHA256 is the SHA-256 of DynamoDBLocal.jar inside SimulatorVersion.
	jarSHA256 = "454305e9bc3e6ebcca5b62569869e31563b8d7e346474e94557b2600702146c7"

	// JarDirName is the folder under the cache dir holding the emulator.
	JarDirName = "dynamodb-local"
	// JarName and LibDirName are the emulator's files inside the jar dir.
	JarName    = "DynamoDBLocal.jar"
	LibDirName = "DynamoDBLocal_lib"

	// markerName records which package a jar dir came from, so a version
	// bump refreshes the cache. A jar dir without it (placed by hand) is
	// reused as is.
	markerName = ".source"

	tarballPrefix = "package/emulator/"
	npmTimeout    = 5 * time.Minute
)

func simulatorSpec() string { return SimulatorPackage + "@" + SimulatorVersion }

// EnsureJar makes sure <cacheDir>/dynamodb-local holds DynamoDBLocal.jar and
// DynamoDBLocal_lib/ and returns that directory. An empty cacheDir means
// DefaultCacheDir(). When absent it runs `npm pack` of the pinned
// amplify-dynamodb-simulator in a temporary folder, extracts
// package/emulator/ next to the cache and renames it into place. Concurrent
// callers (several test binaries) serialise on a lock file, and the rename
// into place means nobody ever sees half a jar.
func EnsureJar(ctx context.Context, cacheDir string) (string, error) {
	if cacheDir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return "", err
		}
		cacheDir = d
	}
	jarDir := filepath.Join(cacheDir, JarDirName)
	if jarDirState(jarDir) == jarDirOK {
		return jarDir, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("dynamolocal: cache dir: %w", err)
	}
	unlock, err := filelock.Lock(ctx, filepath.Join(cacheDir, JarDirName+".lock"))
	if err != nil {
		return "", fmt.Errorf("dynamolocal: locking the cache: %w", err)
	}
	defer unlock()
	// Someone else may have fetched it while we waited for the lock.
	state := jarDirState(jarDir)
	if state == jarDirOK {
		return jarDir, nil
	}

	staging, err := os.MkdirTemp(cacheDir, "."+JarDirName+"-tmp-")
	if err != nil {
		return "", fmt.Errorf("dynamolocal: %w", err)
	}
	defer os.RemoveAll(staging)

	tarball, err := npmPack(ctx, staging)
	if err != nil {
		return "", err
	}
	emulator := filepath.Join(staging, "emulator")
	if err := extractEmulator(tarball, emulator); err != nil {
		return "", fmt.Errorf("dynamolocal: extracting %s: %w", filepath.Base(tarball), err)
	}
	if err := os.WriteFile(filepath.Join(emulator, markerName), []byte(simulatorSpec()+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("dynamolocal: %w", err)
	}

	if err := placeJarDir(emulator, jarDir, state); err != nil {
		return "", err
	}
	return jarDir, nil
}

// placeJarDir renames a complete emulator folder into place at jarDir,
// moving a stale jarDir aside first. Losing a race to another fetcher is
// fine: theirs is as good.
func placeJarDir(emulator, jarDir string, state jarDirStatus) error {
	if state != jarDirMissing {
		// An outdated or broken jar dir: move it aside first. A running
		// emulator keeps its open files.
		old := jarDir + ".old-" + filepath.Base(filepath.Dir(emulator))
		if err := os.Rename(jarDir, old); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("dynamolocal: replacing %s: %w", jarDir, err)
		}
		defer os.RemoveAll(old)
	}
	if err := os.Rename(emulator, jarDir); err != nil {
		// Lost a race with a fetcher that does not take the lock (the
		// shell script on a system without flock).
		if jarDirState(jarDir) == jarDirOK {
			return nil
		}
		return fmt.Errorf("dynamolocal: moving the emulator into %s: %w", jarDir, err)
	}
	return nil
}

type jarDirStatus int

const (
	jarDirMissing jarDirStatus = iota
	jarDirOK
	jarDirStale
)

func jarDirState(jarDir string) jarDirStatus {
	if _, err := os.Lstat(jarDir); err != nil {
		return jarDirMissing
	}
	jar, err := os.Stat(filepath.Join(jarDir, JarName))
	if err != nil || !jar.Mode().IsRegular() {
		return jarDirStale
	}
	lib, err := os.Stat(filepath.Join(jarDir, LibDirName))
	if err != nil || !lib.IsDir() {
		return jarDirStale
	}
	marker, err := os.ReadFile(filepath.Join(jarDir, markerName))
	if err == nil && strings.TrimSpace(string(marker)) != simulatorSpec() {
		return jarDirStale
	}
	return jarDirOK
}

// npmPack runs `npm pack <pkg>@<version>` in dir and returns the tarball.
// npm prints the tarball's name (amplify-dynamodb-simulator-2.9.30.tgz) on
// stdout even with --silent; the folder is searched rather than trusting it.
func npmPack(ctx context.Context, dir string) (string, error) {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", fmt.Errorf("dynamolocal: npm is needed once to fetch DynamoDB Local (the npm package %s) and was not found on PATH: %w", simulatorSpec(), err)
	}
	ctx, cancel := context.WithTimeout(ctx, npmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "pack", simulatorSpec(), "--silent")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false", "npm_config_fund=false", "npm_config_audit=false")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return "", fmt.Errorf("dynamolocal: npm pack %s: %w\n%s", simulatorSpec(), err, tail(stderr.String(), 2000))
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "*.tgz"))
	if len(matches) != 1 {
		return "", fmt.Errorf("dynamolocal: npm pack %s made %d tarballs in %s (stdout %q)", simulatorSpec(), len(matches), dir, strings.TrimSpace(string(out)))
	}
	return matches[0], nil
}

// extractEmulator copies package/emulator/ of the npm tarball into dest,
// checking the jar against its pinned digest.
func extractEmulator(tarball, dest string) error {
	f, err := os.Open(tarball)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	defer gz.Close()
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return err
	}
	var jarSum string
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		rel, ok := strings.CutPrefix(name, tarballPrefix)
		if !ok || rel == "" {
			continue
		}
		if !filepath.IsLocal(rel) {
			return fmt.Errorf("unsafe path %q in tarball", hdr.Name)
		}
		target := filepath.Join(dest, filepath.FromSlash(rel))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			sum, err := writeFile(target, tr, os.FileMode(hdr.Mode).Perm()|0o644)
			if err != nil {
				return err
			}
			if rel == JarName {
				jarSum = sum
			}
		default:
			// npm tarballs hold only files and folders; skip anything else.
		}
	}
	if jarSum == "" {
		return fmt.Errorf("no %s%s in the tarball", tarballPrefix, JarName)
	}
	if jarSum != jarSHA256 {
		return fmt.Errorf("%s has SHA-256 %s, want %s", JarName, jarSum, jarSHA256)
	}
	if st, err := os.Stat(filepath.Join(dest, LibDirName)); err != nil || !st.IsDir() {
		return fmt.Errorf("no %s%s/ in the tarball", tarballPrefix, LibDirName)
	}
	return nil
}

func writeFile(target string, r io.Reader, mode os.FileMode) (string, error) {
	out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(out, io.TeeReader(r, h)); err != nil {
		out.Close()
		return "", err
	}
	if err := out.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// tail returns at most the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
