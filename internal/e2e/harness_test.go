package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/sluicehq/sluice/internal/testkit"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/sluicehq/sluice/functions/api/openapi"
	"github.com/sluicehq/sluice/internal/localsfn"
	"github.com/sluicehq/sluice/internal/sampleruntime"
)

// waitLimit bounds every wait for a state (generous: the test asserts on
// reaching states, never on how fast).
const waitLimit = 90 * time.Second

// stack is the local stack, started as `make run` starts it.
type stack struct {
	t                                    *testing.T
	root, cliBin, data, key              string
	apiURL, dynamoURL, sfnURL, lambdaURL string
	cmd                                  *exec.Cmd
	out                                  *testkit.SyncBuffer
	done                                 chan struct{}
	http                                 *http.Client
}

// goBuild builds a main package of the module into dir.
func goBuild(t *testing.T, root, dir, pkg, name string) string {
	t.Helper()
	bin := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// startStack builds the launcher and the CLI and runs the launcher like
// `make run` (from the repository root, with flags for free ports and a
// temporary data dir, SLUICE_API_KEY set), waiting for its banner and
// /healthz.
func startStack(t *testing.T) *stack {
	t.Helper()
	root, err := localsfn.FindModuleRoot("")
	if err != nil {
		t.Fatal(err)
	}
	binDir := t.TempDir()
	launcher := goBuild(t, root, binDir, "./infra/localstack", "sluice-local")
	s := &stack{t: t, root: root, cliBin: goBuild(t, root, binDir, "./infra/sluice", "sluice"), data: t.TempDir(),
		key: "apikey:e2e-" + strconv.FormatInt(time.Now().UnixNano(), 36), out: &testkit.SyncBuffer{}, done: make(chan struct{}),
		http: &http.Client{Timeout: 70 * time.Second}}
	p := testkit.FreePorts(t, 4)
	s.apiURL = fmt.Sprintf("http://127.0.0.1:%d", p[0])
	s.dynamoURL = fmt.Sprintf("http://127.0.0.1:%d", p[1])
	s.sfnURL = fmt.Sprintf("http://127.0.0.1:%d", p[2])
	s.lambdaURL = fmt.Sprintf("http://127.0.0.1:%d", p[3])
	s.cmd = exec.Command(launcher, "--api-addr", fmt.Sprintf("127.0.0.1:%d", p[0]), "--dynamodb-port", strconv.Itoa(p[1]),
		"--sfn-port", strconv.Itoa(p[2]), "--lambda-port", strconv.Itoa(p[3]), "--data-dir", s.data)
	s.cmd.Dir = root
	s.cmd.Env = append(os.Environ(), "SLUICE_API_KEY="+s.key)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default: // a failed test: still leave nothing behind
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.done:
			case <-time.After(60 * time.Second):
				_ = s.cmd.Process.Kill()
			}
		}
		// The stack's terminal (shown with -v, or on failure).
		out := s.out.String()
		if len(out) > 30000 {
			out = "…" + out[len(out)-30000:]
		}
		t.Logf("the stack's terminal output:\n%s", out)
	})
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			t.Fatalf("the stack exited during start (%v):\n%s", s.cmd.ProcessState, s.out.String())
		default:
		}
		if strings.Contains(s.out.String(), "Sluice local stack is up.") {
			if res, err := http.Get(s.apiURL + "/healthz"); err == nil {
				_ = res.Body.Close()
				if res.StatusCode == http.StatusOK {
					return s
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the stack did not come up in 3 minutes:\n%s", s.out.String())
	return nil
}

// ---- HTTP, every answer validated against the OpenAPI document ----

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("not a JSON object: %s", r.body)
	}
	return m
}

func (s *stack) do(t *testing.T, method, path string, body any) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.apiURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := s.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	checkResponse(t, method, path, res.StatusCode, res.Header, b)
	return response{res.StatusCode, res.Header, b}
}

func (s *stack) must(t *testing.T, method, path string, body any, want int) response {
	t.Helper()
	r := s.do(t, method, path, body)
	if r.status != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, r.status, r.body, want)
	}
	return r
}

// wantError checks an error answer's status and error_code.
func wantError(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d %s, want %d %s", r.status, r.body, status, code)
	}
	if got := r.json(t)["error_code"]; got != code {
		t.Fatalf("error_code %v (%s), want %s", got, r.body, code)
	}
}

var apiDoc struct {
	once   sync.Once
	doc    *openapi3.T
	router routers.Router
	err    error
}

// checkResponse validates one answer against functions/api/openapi (as the
// API's own tests do, internal/httpapi/openapi_test.go).
func checkResponse(t *testing.T, method, path string, status int, header http.Header, body []byte) {
	t.Helper()
	apiDoc.once.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromData(openapi.YAML())
		if err == nil {
			err = doc.Validate(context.Background())
		}
		if err != nil {
			apiDoc.err = err
			return
		}
		apiDoc.doc = doc
		apiDoc.router, apiDoc.err = gorillamux.NewRouter(doc)
	})
	if apiDoc.err != nil {
		t.Fatalf("the OpenAPI document: %v", apiDoc.err)
	}
	if status >= 400 {
		if ct := header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: %d with Content-Type %q", method, path, status, ct)
		}
		var e map[string]any
		if err := json.Unmarshal(body, &e); err != nil {
			t.Errorf("%s %s: %d body is not JSON: %q", method, path, status, body)
		} else if err := apiDoc.doc.Components.Schemas["Error"].Value.VisitJSON(e); err != nil {
			t.Errorf("%s %s: %d body is not in the error shape: %v", method, path, status, err)
		}
	}
	req, err := http.NewRequest(method, "http://sluice.test"+path, nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	route, params, err := apiDoc.router.FindRoute(req)
	if err != nil {
		t.Errorf("%s %s: the OpenAPI document does not describe this request: %v", method, path, err)
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status:  status,
		Header:  header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s %s: the %d answer does not match the OpenAPI document: %v\nbody: %.2000s", method, path, status, err, body)
	}
}

// ---- pipelines ----

// pipeline is the part of the record the test reads.
type pipeline struct {
	Name                    string    `json:"name"`
	ID                      string    `json:"id"`
	Generation              int64     `json:"generation"`
	RefreshVersion          int64     `json:"refresh_version"`
	DeploymentStatus        string    `json:"deployment_status"`
	DeploymentDesiredStatus string    `json:"deployment_desired_status"`
	DeploymentError         *apiError `json:"deployment_error"`
	StorageStatus           string    `json:"storage_status"`
	StorageStatusDetails    *struct {
		Checkpoints []sampleruntime.CheckpointMeta `json:"checkpoints"`
	} `json:"storage_status_details"`
	Workflow *struct {
		Kind          string `json:"kind"`
		ExecutionName string `json:"execution_name"`
		ExecutionArn  string `json:"execution_arn"`
	} `json:"workflow"`
}

type apiError struct {
	Message   string         `json:"message"`
	ErrorCode string         `json:"error_code"`
	Details   map[string]any `json:"details"`
}

func (p pipeline) pair() pair { return pair{p.DeploymentStatus, p.DeploymentDesiredStatus} }

// pair is (deployment_status, deployment_desired_status).
type pair struct{ status, desired string }

func (p pair) String() string { return "(" + p.status + "," + p.desired + ")" }

func (s *stack) get(t *testing.T, name string) pipeline {
	t.Helper()
	r := s.must(t, "GET", "/v0/pipelines/"+name, nil, 200)
	var p pipeline
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// poll reads the pipeline until cond holds, recording every distinct pair a
// poller sees on the way.
func (s *stack) poll(t *testing.T, name, what string, cond func(pipeline) bool) (pipeline, []pair) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	var seen []pair
	var p pipeline
	for time.Now().Before(deadline) {
		p = s.get(t, name)
		if len(seen) == 0 || seen[len(seen)-1] != p.pair() {
			seen = append(seen, p.pair())
		}
		if cond(p) {
			return p, seen
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s never became %s; seen %v, last %+v", name, what, seen, p)
	return p, nil
}

func is(status, desired string) func(pipeline) bool {
	return func(p pipeline) bool { return p.DeploymentStatus == status && p.DeploymentDesiredStatus == desired }
}

// checkWalk: every pair of seen is in walk, in walk's order (a poller may
// miss some), and the last is walk's last.
func checkWalk(t *testing.T, what string, seen, walk []pair) {
	t.Helper()
	at := -1
	for _, p := range seen {
		i := slices.Index(walk, p)
		if i < 0 || i <= at {
			t.Fatalf("%s: the poller saw %v, not a walk along %v (%v is out of place)", what, seen, walk, p)
		}
		at = i
	}
	if len(seen) == 0 || seen[len(seen)-1] != walk[len(walk)-1] {
		t.Fatalf("%s: the poller saw %v, which does not end at %v", what, seen, walk[len(walk)-1])
	}
}

// historySince returns the distinct pairs of the status history written after
// refresh version rv, oldest first.
func (s *stack) historySince(t *testing.T, name string, rv int64) []pair {
	t.Helper()
	r := s.must(t, "GET", "/v0/pipelines/"+name+"/events?limit=100", nil, 200)
	var evs []struct {
		RefreshVersion          int64  `json:"refresh_version"`
		DeploymentStatus        string `json:"deployment_status"`
		DeploymentDesiredStatus string `json:"deployment_desired_status"`
	}
	if err := json.Unmarshal(r.body, &evs); err != nil {
		t.Fatal(err)
	}
	var out []pair
	for i := len(evs) - 1; i >= 0; i-- {
		e := evs[i]
		if e.RefreshVersion <= rv {
			continue
		}
		p := pair{e.DeploymentStatus, e.DeploymentDesiredStatus}
		if len(out) == 0 || out[len(out)-1] != p {
			out = append(out, p)
		}
	}
	return out
}

// ---- the sample runtime's statistics ----

type stats struct {
	Count                  uint64  `json:"count"`
	Sum                    uint64  `json:"sum"`
	Last                   int64   `json:"last_sequence_number"`
	RestoredFromCheckpoint *string `json:"restored_from_checkpoint"`
	RestoredSequenceNumber *int64  `json:"restored_sequence_number"`
	IncarnationUUID        string  `json:"incarnation_uuid"`
	// GlobalMetrics is the Feldera part (ControllerStatus.global_metrics).
	GlobalMetrics struct {
		State                 string `json:"state"`
		IncarnationUUID       string `json:"incarnation_uuid"`
		TotalProcessedRecords uint64 `json:"total_processed_records"`
	} `json:"global_metrics"`
}

// exact is the sample job's invariant: nothing lost, nothing counted twice;
// and Feldera's global_metrics say the same.
func (st stats) exact() bool {
	g := st.GlobalMetrics
	return st.Last >= -1 && st.Count == uint64(st.Last+1) && st.Sum == sampleruntime.TriangularSum(st.Last) &&
		g.TotalProcessedRecords == st.Count && g.IncarnationUUID == st.IncarnationUUID && (g.State == "Running" || g.State == "Paused")
}

// waitStats polls GET /stats until cond holds.
func (s *stack) waitStats(t *testing.T, name, what string, cond func(stats) bool) stats {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	var st stats
	var last response
	for time.Now().Before(deadline) {
		last = s.do(t, "GET", "/v0/pipelines/"+name+"/stats", nil)
		if last.status == 200 {
			st = stats{}
			if err := json.Unmarshal(last.body, &st); err != nil {
				t.Fatal(err)
			}
			if !st.exact() {
				t.Fatalf("%s: the invariant count == last+1, sum == last*(last+1)/2 is broken: %+v", name, st)
			}
			if cond(st) {
				return st
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: stats never showed %s; last %d %s", name, what, last.status, last.body)
	return st
}

// newestCheckpoint reads the newest checkpoint file of a pipeline's storage
// directory in the stack's compute root (only while no runtime writes it).
func (s *stack) newestCheckpoint(t *testing.T, p pipeline) sampleruntime.Checkpoint {
	t.Helper()
	dir := filepath.Join(s.data, "compute", "storage", p.Name+"-"+p.ID)
	files, err := filepath.Glob(filepath.Join(dir, "checkpoint-*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no checkpoint in %s (%v)", dir, err)
	}
	slices.Sort(files) // the generation is zero-padded in the name
	cp, err := sampleruntime.ReadCheckpoint(files[len(files)-1])
	if err != nil {
		t.Fatalf("reading %s: %v", files[len(files)-1], err)
	}
	return cp
}

// ---- the CLI ----

type cliResult struct {
	code           int
	stdout, stderr string
}

// sluice runs the CLI binary against the stack (URL and key from the
// environment, as the banner's export line sets them).
func (s *stack) sluice(t *testing.T, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.cliBin, args...)
	cmd.Env = append(os.Environ(), "SLUICE_URL="+s.apiURL, "SLUICE_API_KEY="+s.key)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("sluice %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return cliResult{code, out.String(), errb.String()}
}

func (s *stack) sluiceOK(t *testing.T, args ...string) cliResult {
	t.Helper()
	r := s.sluice(t, args...)
	if r.code != 0 {
		t.Fatalf("sluice %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}
