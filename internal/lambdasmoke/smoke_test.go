//go:build linux

package lambdasmoke

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sluicehq/sluice/internal/testkit"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RIEPackage is the emulator's command; go.mod pins its version (tool directive).
const RIEPackage = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"

// MaxBootstrapBytes bounds a linux/arm64 bootstrap built with the Makefile's
// flags (14 MiB): a larger binary means a slower cold start (Lambda loads
// the zip) and usually a dependency that does not belong in a Lambda. It
// was 12 MiB until the SDK's service clients grew (their schema packages,
// initialised at start): the steps function, which needs DynamoDB, Step
// Functions, ECS, S3 and CloudWatch Logs, is 12.3 MiB with nothing else in
// it, and the reconciler 12.7 MiB with the Lambda client its shards need.
const MaxBootstrapBytes = 14 << 20

// invocation is one event sent to a function and the check of its answer.
type invocation struct {
	name  string
	event []byte // nil: the function's functions/<dir>/event.json
	check func(t *testing.T, answer []byte)
}

type function struct {
	logicalID string
	dir       string // functions/<dir>
	memoryMB  int
	env       map[string]string
	invokes   []invocation
}

// stepErrorTypes are the error types of internal/steps that the ASL's
// Retry/Catch name.
var stepErrorTypes = []string{"TemporaryError", "PipelineRuntimeError", "PipelineComputeError", "ControlPlaneError", "SupersededError", "NotApplicableError"}

func functions() []function {
	arns := map[string]string{}
	for _, k := range []string{"START", "SUSPEND", "STOP", "CLEAR"} {
		arns["SLUICE_STATE_MACHINE_ARN_"+k] = "arn:aws:states:us-east-1:123456789012:stateMachine:sluice-smoke-" + strings.ToLower(k)
	}
	compute := map[string]string{
		"SLUICE_ECS_CLUSTER":          "sluice-smoke",
		"SLUICE_ECS_TASK_DEFINITION":  "sluice-runtime:1",
		"SLUICE_ECS_CONTAINER_NAME":   "runtime",
		"SLUICE_ECS_SUBNETS":          "subnet-0123456789abcdef0",
		"SLUICE_ECS_SECURITY_GROUPS":  "sg-0123456789abcdef0",
		"SLUICE_ECS_ASSIGN_PUBLIC_IP": "false",
		"SLUICE_RUNTIME_PORT":         "8080",
		"SLUICE_STORAGE_BUCKET":       "sluice-smoke-storage",
		"SLUICE_STORAGE_PREFIX":       "sluice",
	}
	return []function{
		{
			logicalID: "ApiFunction", dir: "api", memoryMB: 512,
			env: merge(arns, map[string]string{"SLUICE_AUTH_DISABLED": "false"}),
			invokes: []invocation{
				// POST /v0/pipelines/p1/stop?force=true with the authorizer's
				// context: the record cannot be read, nothing changes: 503.
				{name: "event.json (stop, table unreachable)", check: func(t *testing.T, answer []byte) {
					status, headers, body := proxyResponse(t, answer)
					if status != http.StatusServiceUnavailable {
						t.Errorf("statusCode %d, want 503 while the table is unreachable: %s", status, answer)
					}
					if headers.Get("Retry-After") == "" {
						t.Errorf("a 503 without Retry-After (SPEC §5): %s", answer)
					}
					if code := errorCode(t, body); code != "ServiceUnavailable" {
						t.Errorf("error_code %q, want ServiceUnavailable", code)
					}
				}},
				{name: "GET /healthz", event: apiEvent("GET", "/healthz", "/healthz", false), check: func(t *testing.T, answer []byte) {
					if status, _, body := proxyResponse(t, answer); status != http.StatusOK {
						t.Errorf("GET /healthz: %d %s", status, body)
					}
				}},
				{name: "GET /v0/openapi.json", event: apiEvent("GET", "/v0/openapi.json", "/v0/openapi.json", false), check: func(t *testing.T, answer []byte) {
					status, _, body := proxyResponse(t, answer)
					var doc struct {
						OpenAPI string `json:"openapi"`
					}
					if status != http.StatusOK || json.Unmarshal(body, &doc) != nil || doc.OpenAPI == "" {
						t.Errorf("GET /v0/openapi.json: %d %.200s", status, body)
					}
				}},
				{name: "no authorizer context", event: apiEvent("GET", "/v0/pipelines", "/v0/pipelines", false), check: func(t *testing.T, answer []byte) {
					status, _, body := proxyResponse(t, answer)
					if status != http.StatusUnauthorized || errorCode(t, body) != "AuthenticationFailed" {
						t.Errorf("a request without a principal: %d %s, want 401 AuthenticationFailed", status, body)
					}
				}},
			},
		},
		{
			logicalID: "AuthorizerFunction", dir: "authorizer", memoryMB: 256,
			env: map[string]string{"SLUICE_AUTH_DISABLED": "false"},
			invokes: []invocation{
				// An API key: the key table is unreachable, so no answer can be
				// given: a function error (API Gateway: AUTHORIZER_FAILURE, 503).
				{name: "event.json (API key, table unreachable)", check: func(t *testing.T, answer []byte) {
					if policy := authorizerPolicy(answer); policy {
						return // cannot happen without a table, but a policy is a fine answer
					}
					msg, _ := functionError(t, answer)
					if msg == "Unauthorized" {
						t.Errorf("an unreachable key table must not look like a bad credential (401): %s", answer)
					}
				}},
				{name: "malformed bearer token", event: []byte(`{"type":"REQUEST","methodArn":"arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod/GET/v0/pipelines","httpMethod":"GET","path":"/v0/pipelines","headers":{"Authorization":"Bearer not-a-jwt"}}`),
					check: func(t *testing.T, answer []byte) {
						if msg, _ := functionError(t, answer); msg != "Unauthorized" {
							t.Errorf("errorMessage %q, want exactly Unauthorized (API Gateway's 401)", msg)
						}
					}},
			},
		},
		{
			logicalID: "StepsFunction", dir: "steps", memoryMB: 512,
			env: merge(arns, compute, map[string]string{"SLUICE_PROVISIONING_TIMEOUT": "10m"}),
			invokes: []invocation{
				{name: "event.json (MarkStopping, table unreachable)", check: func(t *testing.T, answer []byte) {
					if _, typ := functionError(t, answer); !slices.Contains(stepErrorTypes, typ) {
						t.Errorf("errorType %q is not one the ASL routes on %v", typ, stepErrorTypes)
					}
				}},
				// An unknown step (a state machine and a steps function of
				// different deploys) is the control plane's fault: never a
				// reason to force-stop the pipeline.
				{name: "unknown step", event: []byte(`{"step":"Explode","execution":"p-g1-stop","state":{"pipeline":"p","generation":1,"kind":"stop"}}`),
					check: func(t *testing.T, answer []byte) {
						if _, typ := functionError(t, answer); typ != "ControlPlaneError" {
							t.Errorf("errorType %q, want ControlPlaneError", typ)
						}
					}},
			},
		},
		{
			logicalID: "ReconcilerFunction", dir: "reconciler", memoryMB: 512,
			env: merge(arns, compute, map[string]string{"SLUICE_STUCK_THRESHOLD": "30m"}),
			invokes: []invocation{
				{name: "event.json (scheduled pass, table unreachable)", check: func(t *testing.T, answer []byte) {
					var v map[string]any
					if err := json.Unmarshal(answer, &v); err != nil {
						t.Fatalf("answer is not a JSON object: %v: %s", err, answer)
					}
					if _, isErr := v["errorMessage"]; isErr {
						if msg, _ := functionError(t, answer); msg == "" {
							t.Errorf("empty errorMessage: %s", answer)
						}
					}
				}},
				// A coordinator's shard request out of range is refused
				// before any pass.
				{name: "invalid shard request", event: []byte(`{"shard":5,"shards":2}`), check: func(t *testing.T, answer []byte) {
					if msg, _ := functionError(t, answer); !strings.Contains(msg, "shard 5 of 2") {
						t.Errorf("errorMessage %q, want the invalid shard named", msg)
					}
				}},
			},
		},
	}
}

func TestLambdasUnderRIE(t *testing.T) {
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), testBudget(t))
	defer cancel()
	tmp := t.TempDir()

	var present []function
	for _, fn := range functions() {
		if _, err := os.Stat(filepath.Join(root, "functions", fn.dir, "main.go")); err == nil {
			present = append(present, fn)
		}
	}

	// Build the emulator, every function for this machine, and every
	// function for linux/arm64 with the Makefile's targets, at once.
	rie := filepath.Join(tmp, "aws-lambda-rie")
	var wg sync.WaitGroup
	var mu sync.Mutex
	var buildErrs []error
	build := func(name string, args ...string) {
		defer wg.Done()
		start := time.Now()
		out, err := command(ctx, root, cleanEnv(), name, args...)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			buildErrs = append(buildErrs, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out))
			return
		}
		t.Logf("built in %v: %s %s", time.Since(start).Round(time.Millisecond), name, strings.Join(args, " "))
	}
	wg.Add(1)
	go build("go", "build", "-o", rie, RIEPackage)
	if len(present) > 0 {
		// -race: the binaries then share the race-instrumented build cache
		// that `make test` fills anyway, instead of compiling every dependency
		// a second time (minutes on a fresh 2-core machine).
		args := []string{"build", "-race", "-tags", "lambda.norpc", "-o", filepath.Join(tmp, "host") + string(filepath.Separator)}
		for _, fn := range present {
			args = append(args, "./functions/"+fn.dir)
		}
		wg.Add(1)
		go build("go", args...)
	}
	// The linux/arm64 size check cross-compiles every dependency once more: it
	// runs with SLUICE_SIZE_CHECK=1 (make sizes, make bench), not in make test.
	makeCmd, makeErr := exec.LookPath("make")
	sizeCheck := os.Getenv("SLUICE_SIZE_CHECK") == "1"
	if !sizeCheck {
		makeErr = errors.New("size check not requested")
	}
	switch {
	case makeErr == nil:
		for _, fn := range present {
			wg.Add(1)
			go build(makeCmd, "--no-print-directory", "build-"+fn.logicalID, "ARTIFACTS_DIR="+filepath.Join(tmp, "arm64", fn.dir))
		}
	case sizeCheck:
		t.Errorf("make is not on PATH: cannot build the linux/arm64 bootstraps with the Makefile's targets")
	default:
		t.Logf("linux/arm64 size check skipped (run make sizes)")
	}
	wg.Wait()
	if len(buildErrs) > 0 {
		t.Fatal(errors.Join(buildErrs...))
	}

	type result struct {
		initMS, firstMS       float64
		hostBytes, armBytes   int64
		logicalID, dir, state string
	}
	var results []*result
	t.Run("functions", func(t *testing.T) {
		for _, fn := range functions() {
			r := &result{logicalID: fn.logicalID, dir: fn.dir, initMS: -1, armBytes: -1}
			results = append(results, r)
			t.Run(fn.logicalID, func(t *testing.T) {
				t.Parallel()
				if !slices.ContainsFunc(present, func(p function) bool { return p.dir == fn.dir }) {
					r.state = "missing"
					t.Fatalf("functions/%s/main.go is missing: template.yaml names function %s, so it must exist and be smoke-tested", fn.dir, fn.logicalID)
				}
				host := filepath.Join(tmp, "host", fn.dir)
				r.hostBytes = fileSize(t, host)
				if makeErr == nil {
					arm := filepath.Join(tmp, "arm64", fn.dir, "bootstrap")
					r.armBytes = fileSize(t, arm)
					if r.armBytes > MaxBootstrapBytes {
						t.Errorf("linux/arm64 bootstrap is %.1f MiB, over the %d MiB budget", mib(r.armBytes), MaxBootstrapBytes>>20)
					}
				}
				r.initMS, r.firstMS = smoke(ctx, t, rie, host, root, fn)
				r.state = "ok"
				if t.Failed() {
					r.state = "FAILED"
				}
			})
		}
	})
	t.Logf("%-20s %-8s %12s %12s %14s %14s", "function", "result", "init (ms)", "1st invoke", "host binary", "arm64 binary")
	for _, r := range results {
		arm := "-"
		if r.armBytes >= 0 {
			arm = fmt.Sprintf("%.1f MiB", mib(r.armBytes))
		}
		t.Logf("%-20s %-8s %12.1f %12.1f %14s %14s", r.logicalID, r.state, r.initMS, r.firstMS, fmt.Sprintf("%.1f MiB", mib(r.hostBytes)), arm)
	}
}

// smoke runs one function under its own emulator, sends every invocation,
// and returns the init duration the emulator reported and the wall time of
// the first invocation (ms).
func smoke(ctx context.Context, t *testing.T, rie, bootstrap, root string, fn function) (initMS, firstMS float64) {
	inst := startRIE(ctx, t, rie, bootstrap, fn)
	for i, inv := range fn.invokes {
		event := inv.event
		if event == nil {
			var err error
			event, err = os.ReadFile(filepath.Join(root, "functions", fn.dir, "event.json"))
			if err != nil {
				t.Fatalf("the fixture functions/%s/event.json: %v", fn.dir, err)
			}
		}
		start := time.Now()
		answer, err := inst.invoke(ctx, event)
		if err != nil {
			t.Fatalf("%s: %v\nemulator output:\n%s", inv.name, err, inst.output())
		}
		if i == 0 {
			firstMS = float64(time.Since(start).Microseconds()) / 1000
		}
		t.Run(inv.name, func(t *testing.T) {
			if !json.Valid(answer) {
				t.Fatalf("the answer is not JSON: %q", answer)
			}
			inv.check(t, answer)
			if t.Failed() {
				t.Logf("emulator and function output:\n%s", inst.output())
			}
		})
		if !inst.alive() {
			t.Fatalf("the emulator or the function exited after %s:\n%s", inv.name, inst.output())
		}
	}
	out := inst.output()
	if strings.Contains(out, "Runtime.ExitError") || strings.Contains(out, "Runtime exited") {
		t.Errorf("the function exited during the test:\n%s", out)
	}
	initMS = -1
	if m := regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`).FindStringSubmatch(out); m != nil {
		initMS, _ = strconv.ParseFloat(m[1], 64)
	} else if m := regexp.MustCompile(`Init Duration: ([0-9.]+) ms`).FindStringSubmatch(out); m != nil {
		initMS, _ = strconv.ParseFloat(m[1], 64)
	} else {
		t.Errorf("the emulator reported no init duration:\n%s", out)
	}
	t.Logf("%s: init %.1f ms (emulator's INIT REPORT), first invocation %.1f ms wall", fn.logicalID, initMS, firstMS)
	inst.stop(t)
	return initMS, firstMS
}

// rieInstance is one running emulator with its function.
type rieInstance struct {
	cmd    *exec.Cmd
	url    string
	out    *testkit.SyncBuffer
	exited chan struct{}
	once   sync.Once
}

func startRIE(ctx context.Context, t *testing.T, rie, bootstrap string, fn function) *rieInstance {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		inst, err := tryStartRIE(ctx, t, rie, bootstrap, fn)
		if err == nil {
			return inst
		}
		lastErr = err // most likely a port taken between probe and bind: retry with new ports
	}
	t.Fatalf("starting the emulator: %v", lastErr)
	return nil
}

func tryStartRIE(ctx context.Context, t *testing.T, rie, bootstrap string, fn function) (*rieInstance, error) {
	runtimeAddr, invokeAddr, closedAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	home := t.TempDir()
	env := map[string]string{
		"PATH": os.Getenv("PATH"), "HOME": home, "TMPDIR": home,
		// No AWS: dummy credentials, no shared config or IMDS, and every
		// service endpoint on a closed local port, so calls fail at once.
		"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": "AKIASLUICESMOKETEST0", "AWS_SECRET_ACCESS_KEY": "sluice-smoke-test-not-a-secret",
		"AWS_CONFIG_FILE": filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(home, "none"),
		"AWS_EC2_METADATA_DISABLED": "true",
		"AWS_ENDPOINT_URL":          "http://" + closedAddr,
		"AWS_MAX_ATTEMPTS":          "2",
		// What Lambda sets (the emulator passes its environment on).
		"AWS_LAMBDA_FUNCTION_NAME":        fn.logicalID,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(fn.memoryMB),
		"AWS_LAMBDA_FUNCTION_TIMEOUT":     "60",
		"AWS_LAMBDA_LOG_FORMAT":           "JSON",
		"SLUICE_TABLE":                    "sluice-smoke-pipelines",
		"SLUICE_LOG_LEVEL":                "info",
	}
	for _, svc := range []string{"DYNAMODB", "SFN", "ECS", "S3", "STS"} {
		env["AWS_ENDPOINT_URL_"+svc] = "http://" + closedAddr
	}
	for k, v := range fn.env {
		env[k] = v
	}
	cmd := exec.Command(rie,
		"--runtime-api-address", runtimeAddr,
		"--runtime-interface-emulator-address", invokeAddr,
		bootstrap)
	cmd.Dir = filepath.Dir(bootstrap)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out := &testkit.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	// The emulator dies with the test binary (even on a test timeout); its
	// function then loses the Runtime API and exits too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	inst := &rieInstance{cmd: cmd, url: "http://" + invokeAddr + "/2015-03-31/functions/function/invocations", out: out, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(inst.exited) }()
	t.Cleanup(func() { inst.stop(t) })

	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", invokeAddr, time.Second)
		if err == nil {
			c.Close()
			return inst, nil
		}
		select {
		case <-inst.exited:
			return nil, fmt.Errorf("the emulator exited at start:\n%s", out.String())
		case <-ctx.Done():
			inst.stop(t)
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			inst.stop(t)
			return nil, fmt.Errorf("the emulator does not listen on %s:\n%s", invokeAddr, out.String())
		}
	}
}

func (r *rieInstance) invoke(ctx context.Context, event []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(event))
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 6<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the emulator answered %s: %s", resp.Status, body)
	}
	return body, nil
}

func (r *rieInstance) alive() bool {
	select {
	case <-r.exited:
		return false
	default:
	}
	return len(descendants(r.cmd.Process.Pid)) > 0 // the function process
}

func (r *rieInstance) output() string { return r.out.String() }

// stop kills the emulator and everything it started (the function runs in
// a process group of its own), and checks that nothing is left.
func (r *rieInstance) stop(t *testing.T) {
	r.once.Do(func() {
		pids := descendants(r.cmd.Process.Pid)
		for _, pid := range pids {
			_ = syscall.Kill(-pid, syscall.SIGKILL) // its group, if it leads one
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		_ = r.cmd.Process.Kill()
		select {
		case <-r.exited:
		case <-time.After(10 * time.Second):
			t.Errorf("the emulator (pid %d) did not exit", r.cmd.Process.Pid)
		}
		deadline := time.Now().Add(10 * time.Second)
		for _, pid := range pids {
			for running(pid) {
				if time.Now().After(deadline) {
					t.Errorf("process %d started by the emulator is still running", pid)
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	})
}

// descendants lists the processes below pid (from /proc).
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, state, ok := procStat(p); ok && state != "Z" {
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// running reports whether pid exists and is not a zombie.
func running(pid int) bool {
	_, state, ok := procStat(pid)
	return ok && state != "Z"
}

// procStat reads the parent pid and the state of pid from /proc/<pid>/stat.
func procStat(pid int) (ppid int, state string, ok bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces and parentheses
	if i < 0 {
		return 0, "", false
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 2 {
		return 0, "", false
	}
	ppid, err = strconv.Atoi(fields[1])
	return ppid, fields[0], err == nil
}

// --- answers --------------------------------------------------------------

// proxyResponse decodes an API Gateway proxy response and checks its shape:
// a status, JSON content, and an error body in SPEC §5's shape for >= 400.
func proxyResponse(t *testing.T, answer []byte) (int, http.Header, []byte) {
	t.Helper()
	var resp struct {
		StatusCode        *int                `json:"statusCode"`
		Headers           map[string]string   `json:"headers"`
		MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
		Body              string              `json:"body"`
		IsBase64Encoded   bool                `json:"isBase64Encoded"`
		ErrorMessage      string              `json:"errorMessage"`
	}
	if err := json.Unmarshal(answer, &resp); err != nil || resp.StatusCode == nil {
		t.Fatalf("not an APIGatewayProxyResponse (the api function must never fail the invocation): %v: %s", err, answer)
	}
	h := http.Header{}
	for k, v := range resp.Headers {
		h.Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	if *resp.StatusCode < 100 || *resp.StatusCode > 599 {
		t.Errorf("statusCode %d", *resp.StatusCode)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if resp.IsBase64Encoded {
		t.Errorf("a JSON body should not be base64-encoded")
	}
	body := []byte(resp.Body)
	if *resp.StatusCode >= 400 {
		errorCode(t, body)
	}
	return *resp.StatusCode, h, body
}

// errorCode checks SPEC §5's error shape and returns its error_code.
func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Message   *string        `json:"message"`
		ErrorCode string         `json:"error_code"`
		Details   map[string]any `json:"details"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Message == nil || e.ErrorCode == "" || e.Details == nil {
		t.Errorf("not an error body {message, error_code, details}: %v: %s", err, body)
	}
	return e.ErrorCode
}

// functionError decodes the Lambda function error a Go runtime reports.
func functionError(t *testing.T, answer []byte) (message, errorType string) {
	t.Helper()
	var e struct {
		ErrorMessage *string `json:"errorMessage"`
		ErrorType    string  `json:"errorType"`
	}
	if err := json.Unmarshal(answer, &e); err != nil || e.ErrorMessage == nil || e.ErrorType == "" {
		t.Fatalf("want a function error {errorMessage, errorType}, got %s", answer)
	}
	return *e.ErrorMessage, e.ErrorType
}

// authorizerPolicy reports whether the answer is an authorizer policy.
func authorizerPolicy(answer []byte) bool {
	var p struct {
		PrincipalID    string          `json:"principalId"`
		PolicyDocument json.RawMessage `json:"policyDocument"`
	}
	return json.Unmarshal(answer, &p) == nil && p.PrincipalID != "" && len(p.PolicyDocument) > 0
}

// apiEvent is an API Gateway REST proxy event, with the authorizer's
// context when authorized.
func apiEvent(method, resource, path string, authorized bool) []byte {
	ev := map[string]any{
		"resource": resource, "path": path, "httpMethod": method,
		"headers":           map[string]string{"Accept": "application/json", "Host": "abcdef1234.execute-api.us-east-1.amazonaws.com"},
		"multiValueHeaders": map[string][]string{"Accept": {"application/json"}, "Host": {"abcdef1234.execute-api.us-east-1.amazonaws.com"}},
		"requestContext": map[string]any{
			"resourcePath": resource, "httpMethod": method, "path": "/prod" + path, "stage": "prod",
			"accountId": "123456789012", "apiId": "abcdef1234", "requestId": "3f1c0e2a-smoke",
			"identity": map[string]any{"sourceIp": "127.0.0.1"},
		},
		"body": nil, "isBase64Encoded": false,
	}
	if authorized {
		ev["requestContext"].(map[string]any)["authorizer"] = map[string]any{
			"principalId": "apikey/smoke", "principal_kind": "apikey", "principal_subject": "smoke", "principal_role": "write",
		}
	}
	b, _ := json.Marshal(ev)
	return b
}

// --- helpers --------------------------------------------------------------

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found at %s: %v", root, err)
	}
	return root
}

// testBudget bounds the whole test: generous for cold builds, and within
// the go test -timeout when one is set.
func testBudget(t *testing.T) time.Duration {
	budget := 10 * time.Minute
	if d, ok := t.Deadline(); ok {
		if left := time.Until(d) - 15*time.Second; left < budget {
			budget = left
		}
	}
	return budget
}

func command(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = env
	}
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// cleanEnv is this process's environment without what an enclosing make
// (`make test`) passes to its children, so the builds below behave as if
// run from a shell.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != "MAKEFLAGS" && k != "MFLAGS" && k != "MAKELEVEL" && k != "MAKEOVERRIDES" {
			env = append(env, kv)
		}
	}
	return env
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
