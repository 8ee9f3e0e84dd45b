package localstack

import (
	"net/http"
	"strings"

	"github.com/sluicehq/sluice/internal/console"
)

// withConsole serves the local console (internal/console) under
// console.Prefix beside the API; everything else goes to api.
func withConsole(con http.Handler, api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == strings.TrimSuffix(console.Prefix, "/"):
			http.Redirect(w, r, console.Prefix, http.StatusMovedPermanently)
		case strings.HasPrefix(r.URL.Path, console.Prefix):
			con.ServeHTTP(w, r)
		default:
			api.ServeHTTP(w, r)
		}
	})
}
