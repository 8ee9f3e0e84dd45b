package e2e

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
)

// followLogUntil opens GET /v0/pipelines/{name}/logs (a followed stream while
// the pipeline runs) and reads lines until one contains want; then it hangs
// up. It fails when the stream ends first or waitLimit passes.
func (s *stack) followLogUntil(t *testing.T, name, want string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", s.apiURL+"/v0/pipelines/"+name+"/logs", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.key)
	res, err := s.http.Do(req)
	if err != nil {
		t.Fatalf("GET logs: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET logs: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var seen []string
	for sc.Scan() {
		if strings.Contains(sc.Text(), want) {
			return sc.Text()
		}
		seen = append(seen, sc.Text())
	}
	t.Fatalf("the log of %s ended (%v) without a line containing %q; it had %d lines: %q", name, sc.Err(), want, len(seen), seen)
	return ""
}
