package bench

import (
	"bytes"
	"context"
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
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ColdStartResult is one Lambda's init time under the Runtime Interface
// Emulator and its binary sizes.
type ColdStartResult struct {
	Function string `json:"function"`
	// InitMs: the emulator's INIT REPORT (durationMs) of a fresh start of the
	// bootstrap built for this machine with the Makefile's flags; median
	// and all runs.
	InitMedianMs float64   `json:"init_median_ms"`
	InitRunsMs   []float64 `json:"init_runs_ms"`
	// FirstInvokeMs: wall time of the first invocation (no AWS behind it:
	// every endpoint is a closed local port, so it fails fast).
	FirstInvokeMedianMs float64 `json:"first_invoke_median_ms"`
	HostArch            string  `json:"host_arch"`
	HostBytes           int64   `json:"host_bootstrap_bytes"`
	Arm64Bytes          int64   `json:"linux_arm64_bootstrap_bytes"`
}

// RIEPackage is the emulator (a tool dependency in go.mod).
const RIEPackage = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"

type lambdaFunction struct {
	logicalID, dir string
	memoryMB       int
	env            map[string]string
}

// lambdaFunctions are template.yaml's functions with the environment the
// smoke test (internal/lambdasmoke) gives them.
func lambdaFunctions() []lambdaFunction {
	arns := map[string]string{}
	for _, k := range []string{"START", "SUSPEND", "STOP", "CLEAR"} {
		arns["SLUICE_STATE_MACHINE_ARN_"+k] = "arn:aws:states:us-east-1:123456789012:stateMachine:sluice-bench-" + strings.ToLower(k)
	}
	compute := map[string]string{
		"SLUICE_ECS_CLUSTER": "sluice-bench", "SLUICE_ECS_TASK_DEFINITION": "sluice-runtime:1", "SLUICE_ECS_CONTAINER_NAME": "runtime",
		"SLUICE_ECS_SUBNETS": "subnet-0123456789abcdef0", "SLUICE_ECS_SECURITY_GROUPS": "sg-0123456789abcdef0", "SLUICE_ECS_ASSIGN_PUBLIC_IP": "false",
		"SLUICE_RUNTIME_PORT": "8080", "SLUICE_STORAGE_BUCKET": "sluice-bench-storage", "SLUICE_STORAGE_PREFIX": "sluice",
	}
	merge := func(ms ...map[string]string) map[string]string {
		out := map[string]string{}
		for _, m := range ms {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	return []lambdaFunction{
		{"ApiFunction", "api", 512, merge(arns, map[string]string{"SLUICE_AUTH_DISABLED": "false"})},
		{"AuthorizerFunction", "authorizer", 256, map[string]string{"SLUICE_AUTH_DISABLED": "false"}},
		{"StepsFunction", "steps", 512, merge(arns, compute, map[string]string{"SLUICE_PROVISIONING_TIMEOUT": "10m"})},
		{"ReconcilerFunction", "reconciler", 512, merge(arns, compute, map[string]string{"SLUICE_STUCK_THRESHOLD": "30m"})},
	}
}

func runCmd(ctx context.Context, dir string, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func runColdStart(ctx context.Context, e *env, root string, opts Options, res *Results) error {
	tmp, err := os.MkdirTemp("", "sluice-bench-lambda-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	rie := filepath.Join(tmp, "aws-lambda-rie")
	if err := runCmd(ctx, root, nil, "go", "build", "-o", rie, RIEPackage); err != nil {
		return err
	}
	for _, fn := range lambdaFunctions() {
		r := ColdStartResult{Function: fn.logicalID, HostArch: runtime.GOOS + "/" + runtime.GOARCH}
		// For this machine, with the Makefile's LAMBDA_BUILD flags.
		host := filepath.Join(tmp, "host", fn.dir, "bootstrap")
		if err := runCmd(ctx, root, []string{"CGO_ENABLED=0"}, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", host, "./functions/"+fn.dir); err != nil {
			return err
		}
		// linux/arm64 with the Makefile's own target (what sam build runs).
		arm := filepath.Join(tmp, "arm64", fn.dir)
		if err := runCmd(ctx, root, nil, "make", "--no-print-directory", "build-"+fn.logicalID, "ARTIFACTS_DIR="+arm); err != nil {
			return err
		}
		r.HostBytes, r.Arm64Bytes = fileSize(host), fileSize(filepath.Join(arm, "bootstrap"))
		event, err := os.ReadFile(filepath.Join(root, "functions", fn.dir, "event.json"))
		if err != nil {
			return err
		}
		var firsts []float64
		for range opts.ColdStartRuns {
			initMS, firstMS, err := coldStartOnce(ctx, rie, host, fn, event)
			if err != nil {
				return fmt.Errorf("%s: %w", fn.logicalID, err)
			}
			r.InitRunsMs = append(r.InitRunsMs, initMS)
			firsts = append(firsts, firstMS)
		}
		r.InitMedianMs, r.FirstInvokeMedianMs = median(r.InitRunsMs), median(firsts)
		res.ColdStart = append(res.ColdStart, r)
		e.logf("cold start: %s init %.1f ms (median of %d), host %.1f MiB, arm64 %.1f MiB", fn.logicalID, r.InitMedianMs, len(r.InitRunsMs), mib(r.HostBytes), mib(r.Arm64Bytes))
	}
	return nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return st.Size()
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

var (
	initReport   = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)
	initDuration = regexp.MustCompile(`Init Duration: ([0-9.]+) ms`)
)

// coldStartOnce starts the emulator with a fresh bootstrap process, invokes
// it once, reads the init duration it reports, and stops both.
func coldStartOnce(ctx context.Context, rie, bootstrap string, fn lambdaFunction, event []byte) (initMS, firstMS float64, err error) {
	runtimeAddr, err1 := freeAddr()
	invokeAddr, err2 := freeAddr()
	closedAddr, err3 := freeAddr()
	if err := errors.Join(err1, err2, err3); err != nil {
		return 0, 0, err
	}
	home, err := os.MkdirTemp("", "sluice-bench-rie-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(home)
	env := map[string]string{
		"PATH": os.Getenv("PATH"), "HOME": home, "TMPDIR": home,
		"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": "AKIASLUICEBENCHTEST0", "AWS_SECRET_ACCESS_KEY": "sluice-bench-not-a-secret",
		"AWS_CONFIG_FILE": filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(home, "none"),
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": "http://" + closedAddr, "AWS_MAX_ATTEMPTS": "1",
		"AWS_LAMBDA_FUNCTION_NAME": fn.logicalID, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(fn.memoryMB),
		"AWS_LAMBDA_FUNCTION_TIMEOUT": "60", "AWS_LAMBDA_LOG_FORMAT": "JSON",
		"SLUICE_TABLE": "sluice-bench-pipelines", "SLUICE_LOG_LEVEL": "info",
	}
	for _, svc := range []string{"DYNAMODB", "SFN", "ECS", "S3", "STS"} {
		env["AWS_ENDPOINT_URL_"+svc] = "http://" + closedAddr
	}
	for k, v := range fn.env {
		env[k] = v
	}
	cmd := exec.Command(rie, "--runtime-api-address", runtimeAddr, "--runtime-interface-emulator-address", invokeAddr, bootstrap)
	cmd.Dir = filepath.Dir(bootstrap)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out := &testkit.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer stopProcessTree(cmd.Process.Pid, exited)

	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", invokeAddr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			return 0, 0, fmt.Errorf("the emulator exited:\n%s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("the emulator does not listen:\n%s", out.String())
		}
	}
	ictx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ictx, http.MethodPost, "http://"+invokeAddr+"/2015-03-31/functions/function/invocations", bytes.NewReader(event))
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	firstMS = float64(time.Since(start).Microseconds()) / 1000
	// The report line may follow the answer by a moment.
	for range 100 {
		s := out.String()
		if m := initReport.FindStringSubmatch(s); m != nil {
			initMS, _ = strconv.ParseFloat(m[1], 64)
			return initMS, firstMS, nil
		}
		if m := initDuration.FindStringSubmatch(s); m != nil {
			initMS, _ = strconv.ParseFloat(m[1], 64)
			return initMS, firstMS, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, firstMS, fmt.Errorf("the emulator reported no init duration:\n%s", out.String())
}

// stopProcessTree kills the emulator and the processes it started (by pid,
// from /proc), and waits for the emulator.
func stopProcessTree(pid int, exited <-chan struct{}) {
	for _, p := range descendants(pid) {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
	}
}

// descendants lists the processes below pid.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		out = append(out, children[p]...)
		queue = append(queue, children[p]...)
	}
	return out
}
