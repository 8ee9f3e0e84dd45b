package dynamolocal

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestEnsureJarReusesCache fetches into the default cache (a no-op when
// warm) and checks that a second call reuses it at once.
func TestEnsureJarReusesCache(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	first, err := EnsureJar(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(first)
	if err != nil {
		t.Fatal(err)
	}
	second, err := EnsureJar(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	// A cache hit leaves the cached jar as it was (a fetch would unpack it anew).
	if after, err := os.Stat(second); err != nil || !after.ModTime().Equal(before.ModTime()) || !os.SameFile(before, after) {
		t.Errorf("second EnsureJar rewrote the cached jar (%v, %v): want a cache hit", err, after)
	}
	if first != second {
		t.Errorf("EnsureJar returned %q then %q", first, second)
	}
	wantCache, err := DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(wantCache, JarDirName); first != want {
		t.Errorf("jar dir = %q, want %q", first, want)
	}
	assertJarDir(t, first)
}

// TestEnsureJarFetchesConcurrently fetches for real (npm pack) into an
// empty cache from two goroutines at once, as two test binaries would.
func TestEnsureJarFetchesConcurrently(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cache := t.TempDir()
	var wg sync.WaitGroup
	dirs := make([]string, 2)
	errs := make([]error, 2)
	begin := time.Now()
	for i := range dirs {
		wg.Go(func() { dirs[i], errs[i] = EnsureJar(ctx, cache) })
	}
	wg.Wait()
	t.Logf("cold fetch (npm pack + extract, two racing callers): %v", time.Since(begin))
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
	}
	if dirs[0] != dirs[1] || dirs[0] != filepath.Join(cache, JarDirName) {
		t.Fatalf("jar dirs %q, %q", dirs[0], dirs[1])
	}
	assertJarDir(t, dirs[0])
	marker, err := os.ReadFile(filepath.Join(dirs[0], markerName))
	if err != nil || strings.TrimSpace(string(marker)) != SimulatorPackage+"@"+SimulatorVersion {
		t.Errorf("marker = %q, %v", marker, err)
	}
	assertNoLeftovers(t, cache)

}

// TestPlaceJarDir covers the rename into place: fresh, replacing a stale
// (other version) jar dir, and losing the race to another fetcher.
func TestPlaceJarDir(t *testing.T) {
	t.Parallel()
	cache := t.TempDir()
	jarDir := filepath.Join(cache, JarDirName)
	fake := func(marker string) string {
		staging, err := os.MkdirTemp(cache, "."+JarDirName+"-tmp-")
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(staging, "emulator")
		if err := os.MkdirAll(filepath.Join(dir, LibDirName), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, JarName), []byte("jar"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, markerName), []byte(marker+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	if jarDirState(jarDir) != jarDirMissing {
		t.Fatal("empty cache not missing")
	}
	if err := placeJarDir(fake(SimulatorPackage+"@0.0.1"), jarDir, jarDirMissing); err != nil {
		t.Fatal(err)
	}
	if jarDirState(jarDir) != jarDirStale {
		t.Fatal("a jar dir with another version's marker is not stale")
	}
	if err := placeJarDir(fake(simulatorSpec()), jarDir, jarDirStale); err != nil {
		t.Fatal(err)
	}
	if jarDirState(jarDir) != jarDirOK {
		t.Fatal("the replaced jar dir is not OK")
	}
	// Another fetcher got there first: no error, theirs stays.
	if err := placeJarDir(fake(simulatorSpec()), jarDir, jarDirMissing); err != nil {
		t.Fatalf("losing the race: %v", err)
	}
	if jarDirState(jarDir) != jarDirOK {
		t.Fatal("jar dir not OK after a lost race")
	}
	// A jar dir placed by hand (no marker) is reused.
	if err := os.Remove(filepath.Join(jarDir, markerName)); err != nil {
		t.Fatal(err)
	}
	if jarDirState(jarDir) != jarDirOK {
		t.Fatal("a jar dir without marker is not reused")
	}
	if err := os.Remove(filepath.Join(jarDir, JarName)); err != nil {
		t.Fatal(err)
	}
	if jarDirState(jarDir) != jarDirStale {
		t.Fatal("a jar dir without jar is not stale")
	}
}

func assertJarDir(t *testing.T, dir string) {
	t.Helper()
	for _, name := range []string{JarName, filepath.Join(LibDirName, "libsqlite4java-linux-amd64.so"), filepath.Join(LibDirName, "sqlite4java.jar")} {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func assertNoLeftovers(t *testing.T, cache string) {
	t.Helper()
	entries, err := os.ReadDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != JarDirName && e.Name() != JarDirName+".lock" {
			t.Errorf("leftover in cache: %s", e.Name())
		}
	}
}

func TestExtractRejectsWrongPackage(t *testing.T) {
	t.Parallel()
	// An empty gzip tarball has no emulator in it.
	path := filepath.Join(t.TempDir(), "x.tgz")
	if err := os.WriteFile(path, emptyTarGz(t), 0o644); err != nil {
		t.Fatal(err)
	}
	err := extractEmulator(path, filepath.Join(t.TempDir(), "out"))
	if err == nil || !strings.Contains(err.Error(), "no package/emulator/DynamoDBLocal.jar") {
		t.Fatalf("err = %v", err)
	}
}
