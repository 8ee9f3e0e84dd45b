// Package felderacontract checks Sluice's answers against Feldera's own
// OpenAPI documents (test support: it is imported by tests only). The
// documents are read from shared/reference beside the repository (the
// product's reference folder, present on every developer machine and in CI)
// and never copied into it.
package felderacontract

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Releases are the Feldera documents Sluice is judged against: the release
// whose status model is the seed's, and today's.
var Releases = []Release{
	{Name: "0.148", File: "feldera-openapi-0.148.json"},
	{Name: "current", File: "feldera-openapi-current.json"},
}

// Release names one Feldera OpenAPI document.
type Release struct{ Name, File string }

// Doc is a loaded Feldera document with its router.
type Doc struct {
	Release Release
	doc     *openapi3.T
	router  routers.Router
}

var (
	loadOnce sync.Once
	loaded   []*Doc
	loadErr  error
)

// ErrNotFound: no shared/reference folder above the working directory.
var ErrNotFound = errors.New("felderacontract: shared/reference with Feldera's OpenAPI documents not found above the working directory")

// ReferenceDir finds shared/reference: in a parent of the working
// directory, or beside one (the repository's sibling, as laid out for
// developers and CI).
func ReferenceDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		for _, cand := range []string{filepath.Join(dir, "shared", "reference"), filepath.Join(dir, "..", "shared", "reference")} {
			if _, err := os.Stat(filepath.Join(cand, Releases[0].File)); err == nil {
				return cand, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", ErrNotFound
		}
		dir = parent
	}
}

// Load reads both documents once.
func Load() ([]*Doc, error) {
	loadOnce.Do(func() {
		dir, err := ReferenceDir()
		if err != nil {
			loadErr = err
			return
		}
		for _, r := range Releases {
			b, err := os.ReadFile(filepath.Join(dir, r.File))
			if err != nil {
				loadErr = err
				return
			}
			loader := openapi3.NewLoader()
			doc, err := loader.LoadFromData(b)
			if err != nil {
				loadErr = fmt.Errorf("felderacontract: %s: %w", r.File, err)
				return
			}
			// Route on paths alone, whatever servers the document names.
			doc.Servers = openapi3.Servers{{URL: "/"}}
			router, err := gorillamux.NewRouter(doc)
			if err != nil {
				loadErr = fmt.Errorf("felderacontract: %s: router: %w", r.File, err)
				return
			}
			loaded = append(loaded, &Doc{Release: r, doc: doc, router: router})
		}
	})
	return loaded, loadErr
}

// ErrNotServed: the release's document has no such route or method (the
// endpoint is a Sluice addition or newer than the release).
var ErrNotServed = errors.New("not in this Feldera release")

// Check validates one answer of Sluice against the operation of the same
// method and path in d: its status must be one the operation declares (or
// its default), and its body must match that response's schema.
func (d *Doc) Check(method, rawURL string, status int, header http.Header, body []byte) error {
	req, err := http.NewRequest(method, "http://feldera.test"+rawURL, nil)
	if err != nil {
		return err
	}
	route, params, err := d.router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("%w: %s %s", ErrNotServed, method, rawURL)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status: status,
		Header: header,
		Body:   nil,
		Options: &openapi3filter.Options{IncludeResponseStatus: false, MultiError: true,
			// Feldera's schemas are closed on enums, not on extra fields:
			// Sluice's additions (generation, workflow) are allowed.
			ExcludeReadOnlyValidations: true},
	}
	in.SetBodyBytes(bytes.Clone(body))
	return openapi3filter.ValidateResponse(context.Background(), in)
}
