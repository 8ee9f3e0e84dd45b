package testkit

import (
	"os"
	"path/filepath"
	"testing"
)

// FelderaReference returns the path of one of Feldera's reference documents
// (shared/reference/<name>, e.g. feldera-openapi-current.json). shared/ sits
// beside the repository (in CI beside the clone: ../shared/reference from the
// repository root), so it is searched for in every parent of the test's
// working directory. Not found: the test fails when $CI is "true" (CI must
// provide the documents) and is skipped otherwise.
func FelderaReference(t testing.TB, name string) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		p := filepath.Join(dir, "shared", "reference", name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	msg := "Feldera's reference document shared/reference/" + name +
		" was not found in any parent directory of " + wd +
		" (shared/ must sit beside the repository clone)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; CI must provide it")
	}
	t.Skip(msg + "; skipped outside CI")
	return ""
}
