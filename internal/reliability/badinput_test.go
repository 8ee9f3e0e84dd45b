package reliability

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/bench"
	"github.com/sluicehq/sluice/internal/compute"
	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/dynamolocal"
	"github.com/sluicehq/sluice/internal/localstack"
	"github.com/sluicehq/sluice/internal/store"
)

// fuzzInput is one input of FuzzHandler (internal/httpapi/fuzz_test.go):
// method, path, raw query, Content-Type, auth mode (0 none, 1 write key,
// 2 read key, 3 the body as bearer token) and body.
type fuzzInput struct {
	method, path, query, ct string
	auth                    uint8
	body                    []byte
}

// fuzzSeeds are FuzzHandler's seeds, as that file lists them (a _test.go
// file of another package cannot be imported).
var fuzzSeeds = []fuzzInput{
	{"POST", "/v0/pipelines/running/stop", "force=true", "", 1, nil},
	{"POST", "/v0/pipelines/running/stop", "force=false", "", 1, nil},
	{"POST", "/v0/pipelines/suspending/stop", "force=false", "", 1, nil},
	{"POST", "/v0/pipelines/stopping/stop", "", "", 1, nil},
	{"POST", "/v0/pipelines/nostore/stop", "", "", 1, nil},
	{"POST", "/v0/pipelines/p1/stop", "force=yes", "", 1, nil},
	{"POST", "/v0/pipelines/a%2Fb/stop", "force=true", "", 1, nil},
	{"POST", "/v0/pipelines/../stop", "", "", 1, nil},
	{"POST", "/v0/pipelines/caf%C3%A9/stop", "", "", 1, nil},
	{"POST", "/v0/pipelines/p1/start", "initial=paused&dismiss_error=false", "", 1, nil},
	{"POST", "/v0/pipelines/running/start", "initial=sideways", "", 1, nil},
	{"POST", "/v0/pipelines/running/pause", "", "", 1, nil},
	{"POST", "/v0/pipelines/flaky/resume", "", "", 1, nil},
	{"POST", "/v0/pipelines/running/checkpoint", "", "", 1, nil},
	{"GET", "/v0/pipelines/flaky/stats", "", "", 2, nil},
	{"GET", "/v0/pipelines/running/checkpoint_status", "", "", 2, nil},
	{"GET", "/v0/pipelines/p1/events", "limit=1", "", 2, nil},
	{"GET", "/v0/pipelines", "selector=status&limit=2", "", 2, nil},
	{"GET", "/v0/pipelines", "page_token=zz", "", 2, nil},
	{"GET", "/v0/pipelines/p1", "selector=status", "", 2, nil},
	{"POST", "/v0/pipelines", "", "application/json", 1, []byte(`{"name":"new","description":"d","runtime_config":{"storage":true}}`)},
	{"POST", "/v0/pipelines", "", "application/json", 1, []byte(`{"name":`)},
	{"POST", "/v0/pipelines", "", "text/plain", 1, []byte(`{"name":"x"}`)},
	{"PUT", "/v0/pipelines/p1", "", "application/json; charset=utf-8", 1, []byte(`{"description":"e"}`)},
	{"PUT", "/v0/pipelines/zz", "", "application/json", 1, []byte(`{"name":"other"}`)},
	{"DELETE", "/v0/pipelines/p1", "", "", 1, nil},
	{"POST", "/v0/pipelines/p1/clear", "", "", 1, nil},
	{"POST", "/v0/pipelines/p1/dismiss_error", "", "", 1, nil},
	{"PATCH", "/v0/pipelines/p1", "", "", 1, nil},
	{"TRACE", "/v0/pipelines", "", "", 0, nil},
	{"GET", "/healthz", "x=1", "", 0, nil},
	{"GET", "/v0/openapi.json", "", "", 0, nil},
	{"POST", "/v0/pipelines/running/stop", "force=true", "", 2, nil},
	{"POST", "/v0/pipelines/running/stop", "force=true", "", 3, nil},
	{"GET", "/v0/pipelines/%", "", "", 1, nil},
	{"", "", "", "", 0, nil},
}

// corpusInputs reads the fuzz corpus files of FuzzHandler, if any
// ("go test fuzz v1" files of internal/httpapi/testdata/fuzz/FuzzHandler).
func corpusInputs(t *testing.T) []fuzzInput {
	root, err := dynamolocal.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "internal", "httpapi", "testdata", "fuzz", "FuzzHandler")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil // no corpus files (yet)
	}
	var out []fuzzInput
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		in, err := parseCorpusFile(b)
		if err != nil {
			t.Errorf("corpus file %s: %v", e.Name(), err)
			continue
		}
		out = append(out, in)
	}
	return out
}

// parseCorpusFile reads a "go test fuzz v1" file of FuzzHandler's
// signature (string, string, string, string, uint8, []byte).
func parseCorpusFile(b []byte) (fuzzInput, error) {
	var vals []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	first := true
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if first {
			if line != "go test fuzz v1" {
				return fuzzInput{}, fmt.Errorf("not a go test fuzz v1 file")
			}
			first = false
			continue
		}
		if line != "" {
			vals = append(vals, line)
		}
	}
	if len(vals) != 6 {
		return fuzzInput{}, fmt.Errorf("%d values, want 6", len(vals))
	}
	var in fuzzInput
	strs := make([]string, 4)
	for i := range 4 {
		v, ok := strings.CutPrefix(vals[i], "string(")
		if !ok {
			return in, fmt.Errorf("value %d is not a string", i)
		}
		s, err := strconv.Unquote(strings.TrimSuffix(v, ")"))
		if err != nil {
			return in, err
		}
		strs[i] = s
	}
	in.method, in.path, in.query, in.ct = strs[0], strs[1], strs[2], strs[3]
	n, ok := strings.CutPrefix(vals[4], "byte(")
	if !ok {
		n, ok = strings.CutPrefix(vals[4], "uint8(")
	}
	if !ok {
		return in, fmt.Errorf("value 4 is not a uint8")
	}
	n = strings.TrimSuffix(n, ")")
	if u, err := strconv.ParseUint(n, 0, 8); err == nil {
		in.auth = uint8(u)
	} else if r, err := strconv.Unquote(n); err == nil && len(r) == 1 {
		in.auth = r[0]
	} else {
		return in, fmt.Errorf("value 4: %q", n)
	}
	bv, ok := strings.CutPrefix(vals[5], "[]byte(")
	if !ok {
		return in, fmt.Errorf("value 5 is not a []byte")
	}
	body, err := strconv.Unquote(strings.TrimSuffix(bv, ")"))
	if err != nil {
		return in, err
	}
	in.body = []byte(body)
	return in, nil
}

// generatedInputs are n bad (and a few good) requests, deterministic.
func generatedInputs(n int) []fuzzInput {
	r := rand.New(rand.NewPCG(7, 11))
	names := []string{"p1", "running", "flaky", "suspending", "stopping", "nostore", "", "a b", strings.Repeat("x", 64), strings.Repeat("y", 300),
		"..", "%00", "%2e%2e", "ünïcödé", "name;drop", "名字", "-", "_", "%ZZ", "a%2Fb", "🙂", "a\tb", "p1%20", "new"}
	actions := []string{"stop", "start", "pause", "resume", "checkpoint", "clear", "dismiss_error", "stats", "events", "checkpoint_status", "explode", "", "stop/extra"}
	queries := []string{"", "force=yes", "force=TRUE", "force=1", "force=true&force=false", "force=", "initial=sideways", "initial=", "initial=PAUSED",
		"dismiss_error=maybe", "selector=bogus", "selector=all&selector=status", "limit=0", "limit=-1", "limit=99999999999999999999", "limit=abc",
		"page_token=garbage", "page_token=" + strings.Repeat("A", 3000), "unknown=1", "force=true&unknown=2", "%zz=1", "a=%", strings.Repeat("q=1&", 500)}
	bodies := [][]byte{nil, []byte(`{`), []byte(`{"name":1}`), []byte(`{"name":"x","runtime_config":"str"}`), []byte(`null`), []byte(`[]`), []byte(`"str"`),
		[]byte(`{"name":"ok-1","description":"` + strings.Repeat("d", 400) + `"}`), []byte(`{"name":"` + strings.Repeat("n", 64) + `"}`),
		[]byte(`{"name":"bad name!"}`), []byte(`{"name":"x","extra":true}`), []byte(`{"name":"x","name":"y"}`), []byte(`{"name":"x"}{"name":"y"}`),
		[]byte(`{"name":"x","runtime_config":{"checkpoint_interval_secs":1e309}}`), []byte(strings.Repeat("[", 10000) + strings.Repeat("]", 10000)),
		[]byte("{\"name\":\"x\",\"description\":\"\xff\xfe\"}"), []byte(`{"description":"only"}`), []byte{0, 1, 2, 3, 0xff}}
	methods := []string{"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "POST", "POST", "GET"}
	cts := []string{"", "application/json", "text/plain", "application/json; charset=latin1", "multipart/form-data; boundary=x", "application/xml"}
	out := make([]fuzzInput, 0, n)
	for i := range n {
		in := fuzzInput{method: methods[r.IntN(len(methods))], query: queries[r.IntN(len(queries))], ct: cts[r.IntN(len(cts))], auth: uint8(r.IntN(4))}
		switch r.IntN(5) {
		case 0:
			in.path = "/v0/pipelines"
			in.body = bodies[r.IntN(len(bodies))]
			if r.IntN(6) == 0 {
				in.body = fmt.Appendf(nil, `{"name":"gen-%d","runtime_config":{"checkpoint_interval_secs":1}}`, i)
				in.ct = "application/json"
			}
		case 1:
			in.path = "/v0/pipelines/" + names[r.IntN(len(names))]
			in.body = bodies[r.IntN(len(bodies))]
		case 2, 3:
			in.path = "/v0/pipelines/" + names[r.IntN(len(names))] + "/" + actions[r.IntN(len(actions))]
			if r.IntN(4) == 0 {
				in.body = bodies[r.IntN(len(bodies))]
			}
		default:
			paths := []string{"/", "/v0", "/v1/pipelines", "/v0/pipelines/", "//v0//pipelines", "/v0/pipelines/p1/stop/", "/healthz/", "/v0/openapi.json", "/v0/pipelines/p1/../p1/stop"}
			in.path = paths[r.IntN(len(paths))]
		}
		if in.auth == 0 && r.IntN(2) == 0 {
			in.auth = 4 + uint8(r.IntN(len(badTokens))) // a bad Authorization header
		}
		out = append(out, in)
	}
	// One body over the 1 MiB limit.
	out = append(out, fuzzInput{method: "POST", path: "/v0/pipelines", ct: "application/json", auth: 1, body: bytes.Repeat([]byte("x"), (1<<20)+10)})
	return out
}

// badTokens are the Authorization headers of auth modes 4…
var badTokens = []string{"", "Bearer", "Bearer ", "Bearer apikey:", "Bearer apikey:wrong", "Basic dXNlcjpwYXNz", "Bearer a.b.c",
	"Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "bearer apikey:" + strings.Repeat("k", 5000)}

// escapeFor percent-encodes what an HTTP client cannot send in a request
// target, keeping valid %XX escapes, so that the server gets as much of the
// fuzz input as HTTP can carry.
func escapeFor(s string, keep string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("-._~!$'()*+,;:@"+keep, c) >= 0:
			b.WriteByte(c)
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// headerSafe drops the bytes a header value cannot carry.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range m {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?={}`, c) {
			return false
		}
	}
	return true
}

// allowed5xx are the 5xx codes SPEC gives requests the server cannot
// fulfil for the pipeline's sake (its runtime), never for bad input: the
// rule of FuzzHandler.
var allowed5xx = map[string]bool{
	string(domain.CodeFeatureNotAvailable):            true,
	string(domain.CodePipelineInteractionNotDeployed): true,
	string(domain.CodePipelineUnavailable):            true,
	string(domain.CodePipelineInteractionUnreachable): true,
}

// checkAnswer returns what is wrong with an answer ("" when nothing).
func checkAnswer(method string, status int, header http.Header, body []byte) string {
	if status < 200 || status > 599 {
		return fmt.Sprintf("status %d", status)
	}
	if method == http.MethodHead {
		return ""
	}
	if ct := header.Get("Content-Type"); ct != "application/json" {
		return fmt.Sprintf("%d with Content-Type %q", status, ct)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Sprintf("%d body is not JSON: %.200q", status, body)
	}
	if status < 400 {
		return ""
	}
	e, ok := v.(map[string]any)
	if !ok {
		return fmt.Sprintf("%d body is not an object: %.200s", status, body)
	}
	msg, _ := e["message"].(string)
	code, _ := e["error_code"].(string)
	_, detailsOK := e["details"].(map[string]any)
	if msg == "" || code == "" || !detailsOK || len(e) != 3 {
		return fmt.Sprintf("%d body is not the error shape: %.300s", status, body)
	}
	if status >= 500 && !allowed5xx[code] {
		return fmt.Sprintf("%d %s: %.300s", status, code, body)
	}
	if status == 503 && header.Get("Retry-After") == "" {
		return "503 without Retry-After"
	}
	return ""
}

// setupFuzzPipelines puts the pipelines the fuzz seeds name into the states
// FuzzHandler's in-memory setup has, through the store (no workflow runs for
// them: the reconciler does not run in this test).
func setupFuzzPipelines(t *testing.T, stack *localstack.Stack, fake *bench.InstantCompute) (readKey string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st := stack.Store
	act := func(name, what string, decide func(domain.Pipeline, time.Time) (domain.Outcome, error)) {
		p, err := st.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		out, err := decide(p, time.Now().UTC())
		if err != nil {
			t.Fatalf("%s %s: %v", what, name, err)
		}
		if _, err := st.ApplyAction(ctx, p, out, store.Cause{Action: what, Actor: "user:setup"}); err != nil {
			t.Fatal(err)
		}
	}
	tr := func(name string, tr domain.Transition) {
		p, err := st.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Transition(ctx, name, p.Generation, tr, store.Cause{Action: "setup", Actor: "workflow"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"p1", "running", "flaky", "suspending", "stopping", "nostore"} {
		cfg := `{"checkpoint_interval_secs":1}`
		if name == "nostore" {
			cfg = `{"storage":false}`
		}
		p, err := domain.Create(domain.Definition{Name: name, RuntimeConfig: []byte(cfg)}, uuid.NewString(), time.Now().UTC())
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Create(ctx, p, store.Cause{Action: "create", Actor: "user:setup"}); err != nil {
			t.Fatal(err)
		}
		if name == "p1" {
			continue
		}
		switch name {
		case "flaky":
			fake.SetBehaviour(name, bench.Behaviour{ForwardedUnavailable: true})
		case "suspending":
			fake.SetBehaviour(name, bench.Behaviour{NeverSuspends: true})
		}
		act(name, "start?initial=running", func(p domain.Pipeline, now time.Time) (domain.Outcome, error) {
			return domain.Start(p, domain.StartRequest{Initial: domain.InitialRunning, DismissError: true}, now)
		})
		dep := uuid.NewString()
		d, err := fake.Provision(ctx, compute.ProvisionRequest{Pipeline: name, PipelineID: p.ID, DeploymentID: dep, Initial: "Running"})
		if err != nil {
			t.Fatal(err)
		}
		tr(name, domain.MarkProvisioning(dep))
		tr(name, domain.MarkProvisioned(d.Location, domain.RuntimeRunning))
		switch name {
		case "suspending":
			act(name, "stop?force=false", func(p domain.Pipeline, now time.Time) (domain.Outcome, error) { return domain.Stop(p, false, now) })
			tr(name, domain.MarkSuspending())
		case "stopping":
			act(name, "stop?force=true", func(p domain.Pipeline, now time.Time) (domain.Outcome, error) { return domain.Stop(p, true, now) })
			tr(name, domain.MarkStopping())
		}
	}
	key, _, err := auth.CreateKey(ctx, st, store.RoleRead, "read key (bad input test)")
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// TestBadInputUnderLoad is not parallel: it measures the heap of the test
// process, so it runs before the parallel tests start.
func TestBadInputUnderLoad(t *testing.T) {
	fake, err := bench.NewInstantCompute()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fake.Close() })
	stack, _ := startStack(t, localstack.Config{Driver: fake, ReconcileInterval: -1, Overrides: fastWaits,
		Logger: slog.New(slog.DiscardHandler)})
	readKey := setupFuzzPipelines(t, stack, fake)

	inputs := append(append([]fuzzInput(nil), fuzzSeeds...), corpusInputs(t)...)
	corpus := len(inputs) - len(fuzzSeeds)
	inputs = append(inputs, generatedInputs(400)...)
	const rounds = 8
	var queue []fuzzInput
	for range rounds {
		queue = append(queue, inputs...)
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(queue), func(i, j int) { queue[i], queue[j] = queue[j], queue[i] })

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	t.Cleanup(tr.CloseIdleConnections) // before the stack closes (see newClient)
	client := &http.Client{Timeout: 60 * time.Second, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	health := func() error {
		req, _ := http.NewRequestWithContext(ctx, "GET", stack.APIURL+"/healthz", nil)
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		_, _ = io.Copy(io.Discard, res.Body)
		if res.StatusCode != 200 {
			return fmt.Errorf("/healthz answered %d", res.StatusCode)
		}
		return nil
	}
	// Warm up (connections, caches), then the baseline heap.
	for range 3 {
		if err := health(); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	var mu sync.Mutex
	var failures []string
	statuses := map[int]int{}
	skipped, sentCount := 0, 0
	send := func(in fuzzInput) {
		method := in.method
		if method == "" {
			method = "GET"
		}
		if !validMethod(method) {
			mu.Lock()
			skipped++
			mu.Unlock()
			return
		}
		path := in.path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		target := stack.APIURL + escapeFor(path, "/&=")
		if in.query != "" {
			target += "?" + escapeFor(in.query, "/&=?")
		}
		req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(in.body))
		if err != nil {
			mu.Lock()
			failures = append(failures, fmt.Sprintf("cannot build %s %q: %v", method, target, err))
			mu.Unlock()
			return
		}
		if in.ct != "" {
			req.Header.Set("Content-Type", headerSafe(in.ct))
		}
		switch in.auth % 4 {
		case 1:
			req.Header.Set("Authorization", "Bearer "+stack.APIKey)
		case 2:
			req.Header.Set("Authorization", "Bearer "+readKey)
		case 3:
			req.Header.Set("Authorization", headerSafe("Bearer "+string(in.body)))
		}
		if in.auth >= 4 {
			req.Header.Set("Authorization", badTokens[int(in.auth-4)%len(badTokens)])
		}
		res, err := client.Do(req)
		if err != nil {
			mu.Lock()
			failures = append(failures, fmt.Sprintf("%s %s: transport error (the server dropped the request?): %v", method, target, err))
			mu.Unlock()
			return
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		problem := checkAnswer(method, res.StatusCode, res.Header, body)
		mu.Lock()
		defer mu.Unlock()
		sentCount++
		statuses[res.StatusCode]++
		if problem != "" {
			failures = append(failures, fmt.Sprintf("%s %.200s (auth %d): %s", method, target, in.auth, problem))
		}
	}

	work := make(chan fuzzInput)
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for in := range work {
				send(in)
			}
		}()
	}
	// /healthz keeps answering while the load runs.
	healthDone := make(chan struct{})
	var healthChecks, healthFailures int
	go func() {
		defer close(healthDone)
		for i := 0; i < 10000; i++ {
			select {
			case <-ctx.Done():
				return
			default:
			}
			err := health()
			mu.Lock()
			healthChecks++
			if err != nil {
				healthFailures++
				failures = append(failures, "healthz during the load: "+err.Error())
			}
			done := sentCount+skipped >= len(queue)
			mu.Unlock()
			if done {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	start := time.Now()
	for _, in := range queue {
		work <- in
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)
	<-healthDone
	if err := health(); err != nil {
		t.Errorf("/healthz after the load: %v", err)
	}

	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)

	var codes []string
	for code, n := range statuses {
		codes = append(codes, fmt.Sprintf("%d×%d", n, code))
	}
	sort.Strings(codes)
	t.Logf("%d inputs (%d FuzzHandler seeds, %d corpus files, %d generated) × %d rounds at 64 clients in %s: %d answered (%s), %d skipped (a method HTTP cannot carry); "+
		"/healthz %d checks, %d failed; heap %.1f MiB → %.1f MiB after GC (growth %.1f MiB)",
		len(inputs), len(fuzzSeeds), corpus, len(inputs)-len(fuzzSeeds)-corpus, rounds, elapsed.Round(time.Millisecond), sentCount, strings.Join(codes, " "), skipped,
		healthChecks, healthFailures, float64(before.HeapAlloc)/(1<<20), float64(after.HeapAlloc)/(1<<20), float64(growth)/(1<<20))
	sort.Strings(failures)
	for i, f := range failures {
		if i == 40 {
			t.Errorf("… and %d more", len(failures)-40)
			break
		}
		t.Error(f)
	}
	if growth > 64<<20 {
		t.Errorf("the heap grew by %.1f MiB (bound 64 MiB)", float64(growth)/(1<<20))
	}
}
