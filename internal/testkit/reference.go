package testkit

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/internal/felderacontract"
)

// FelderaReference returns the path of one of Feldera's reference documents
// (shared/reference/<name>, e.g. feldera-openapi-current.json), found as
// felderacontract finds them (shared/ beside the repository). Not found: the
// test fails in CI ($CI set: CI must provide the documents) and is skipped
// otherwise.
func FelderaReference(t testing.TB, name string) string {
	t.Helper()
	dir, err := felderacontract.ReferenceDir()
	if err == nil {
		p := filepath.Join(dir, name)
		if fi, serr := os.Stat(p); serr == nil && !fi.IsDir() {
			return p
		}
		err = os.ErrNotExist
	}
	msg := "Feldera's reference document shared/reference/" + name + " was not found (shared/ must sit beside the repository clone): " + err.Error()
	if os.Getenv("CI") != "" {
		t.Fatal(msg + "; CI must provide it")
	}
	t.Skip(msg + "; skipped outside CI")
	return ""
}
