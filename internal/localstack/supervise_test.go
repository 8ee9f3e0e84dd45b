package localstack

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/sluicehq/sluice/functions/api/openapi"
	"github.com/sluicehq/sluice/internal/supervisor"
)

// chanPart is an in-process part ended by closing its channel.
type chanPart chan struct{}

func (c chanPart) Done() <-chan struct{} { return c }

// A part that dies is reported on the terminal and in /healthz (503,
// degraded, which part, since when), then restarted and reported back.
func TestSupervisedPartHealthAndTerminal(t *testing.T) {
	var file, term bytes.Buffer
	termW := &lockedWriter{w: &term}
	logger, _ := newTeeLogger(&lockedWriter{w: &file}, slog.LevelInfo, termW, false)
	s := &Stack{}
	gate := make(chan struct{}) // the restart waits for it
	starts := 0
	var mu sync.Mutex
	var cur chanPart
	_, err := s.supervise(context.Background(), PartSFN, logger, func(ctx context.Context) (supervisor.Instance, error) {
		starts++
		if starts > 1 {
			select {
			case <-gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		mu.Lock()
		defer mu.Unlock()
		cur = make(chanPart)
		return cur, nil
	}, func(i supervisor.Instance) error { close(i.(chanPart)); return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer s.stopPart(PartSFN)
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) })
	h := s.withHealth(api)
	spec, err := openapi3.NewLoader().LoadFromData(openapi.YAML())
	if err != nil {
		t.Fatal(err)
	}
	schema := spec.Components.Schemas["Health"].Value
	get := func(path string) (int, Health) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		var doc Health
		_ = json.Unmarshal(rec.Body.Bytes(), &doc)
		if rec.Code == 200 || rec.Code == 503 {
			// The answer is what the OpenAPI document describes.
			var v any
			_ = json.Unmarshal(rec.Body.Bytes(), &v)
			if err := schema.VisitJSON(v); err != nil {
				t.Errorf("/healthz %d %s: not a Health document: %v", rec.Code, rec.Body, err)
			}
		}
		return rec.Code, doc
	}
	if code, doc := get("/healthz"); code != 200 || doc.Status != "ok" || doc.Parts[PartSFN].State != supervisor.Up {
		t.Fatalf("healthz while up: %d %+v", code, doc)
	}
	if code, _ := get("/healthz?x=1"); code != 299 {
		t.Errorf("/healthz with a query went to %d, want the API's", code)
	}
	mu.Lock()
	close(cur) // the part dies
	mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	var doc Health
	code := 0
	for time.Now().Before(deadline) {
		if code, doc = get("/healthz"); code == 503 && doc.Parts[PartSFN].State == supervisor.Restarting {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if code != 503 || doc.Status != "degraded" || doc.Parts[PartSFN].Since.IsZero() || doc.Parts[PartSFN].LastError == "" {
		t.Fatalf("healthz while restarting: %d %+v", code, doc)
	}
	close(gate)
	for time.Now().Before(deadline) {
		if code, doc = get("/healthz"); code == 200 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if doc.Status != "ok" || doc.Parts[PartSFN].Restarts != 1 {
		t.Fatalf("healthz after the restart: %d %+v", code, doc)
	}
	// The line follows the state change.
	lines := ""
	for time.Now().Before(deadline) {
		termW.mu.Lock()
		lines = term.String()
		termW.mu.Unlock()
		if strings.Contains(lines, "back up") {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !strings.Contains(lines, "WARN  stepfunctions is down (ended); restarting it with back-off") ||
		!strings.Contains(lines, "stepfunctions is back up (restart 1, down ") {
		t.Errorf("terminal:\n%s", lines)
	}
}
