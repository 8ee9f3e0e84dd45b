package localstack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sluicehq/sluice/internal/proctree"
	"github.com/sluicehq/sluice/internal/testkit"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/dynamolocal"
	"github.com/sluicehq/sluice/internal/reconciler"
)

func mapEnv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseRunArgs(t *testing.T) {
	o, err := ParseRunArgs(nil, mapEnv(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := RunOptions{APIAddr: "127.0.0.1:8080", DynamoPort: 8000, SFNPort: 8083, LambdaPort: 9001, ReconcileInterval: 10 * time.Second, ReconcilerShards: 1}
	if o != want {
		t.Errorf("defaults %+v, want %+v", o, want)
	}
	e := mapEnv(map[string]string{EnvAPIAddr: "127.0.0.1:9090", EnvDynamoPort: "8001", EnvSFNPort: "8084", EnvLambdaPort: "9002",
		EnvDataDir: "/tmp/d", EnvReconcileInterval: "3s", EnvAPIKey: " apikey:abc ", reconciler.EnvShards: "4"})
	o, err = ParseRunArgs(nil, e, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want = RunOptions{APIAddr: "127.0.0.1:9090", DynamoPort: 8001, SFNPort: 8084, LambdaPort: 9002, DataDir: "/tmp/d", ReconcileInterval: 3 * time.Second, ReconcilerShards: 4, APIKey: "apikey:abc"}
	if o != want {
		t.Errorf("from the environment %+v, want %+v", o, want)
	}
	// Flags win over the environment.
	o, err = ParseRunArgs([]string{"--api-addr", "127.0.0.1:7070", "--dynamodb-port", "7000", "--sfn-port", "7083", "--lambda-port", "7001",
		"--data-dir", "/tmp/f", "--reconcile-interval", "1m", "--reconciler-shards", "2", "--verbose"}, e, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want = RunOptions{APIAddr: "127.0.0.1:7070", DynamoPort: 7000, SFNPort: 7083, LambdaPort: 7001, DataDir: "/tmp/f", ReconcileInterval: time.Minute, ReconcilerShards: 2, APIKey: "apikey:abc", Verbose: true}
	if o != want {
		t.Errorf("flags %+v, want %+v", o, want)
	}
	for _, bad := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, map[string]string{EnvAPIKey: "secret"}, `SLUICE_API_KEY must start with "apikey:"`},
		{nil, map[string]string{EnvAPIKey: "apikey:"}, `SLUICE_API_KEY must start with "apikey:"`},
		{nil, map[string]string{EnvDynamoPort: "eight"}, `SLUICE_DYNAMODB_PORT="eight" is not a port number`},
		{[]string{"--api-addr", "8080"}, nil, `--api-addr "8080": want host:port`},
		{[]string{"--sfn-port", "70000"}, nil, `--sfn-port 70000: want a port in 1..65535`},
		{[]string{"--reconcile-interval", "0s"}, nil, `--reconcile-interval 0s: must be positive`},
		{[]string{"--reconciler-shards", "0"}, nil, `--reconciler-shards 0: must be 1 to 100`},
		{nil, map[string]string{reconciler.EnvShards: "101"}, `SLUICE_RECONCILER_SHARDS="101": want an integer in [1, 100]`},
		{[]string{"extra"}, nil, `unexpected arguments`},
	} {
		_, err := ParseRunArgs(bad.args, mapEnv(bad.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v %v: error %v, want %q", bad.args, bad.env, err, bad.want)
		}
	}
}

func TestAPIKeyFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, KeyFileName)
	if k, src := resolveAPIKey("", file); k != "" || src != "new" {
		t.Errorf("no key anywhere: %q %q", k, src)
	}
	if err := os.WriteFile(file, []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeKeyFile(file, "apikey:one"); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	if k, src := resolveAPIKey("", file); k != "apikey:one" || src != "kept from the previous run" {
		t.Errorf("reuse: %q %q", k, src)
	}
	if k, src := resolveAPIKey("apikey:env", file); k != "apikey:env" || src != "from SLUICE_API_KEY" {
		t.Errorf("environment first: %q %q", k, src)
	}
	if err := os.WriteFile(file, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if k, _ := resolveAPIKey("", file); k != "" {
		t.Errorf("an invalid key file is ignored, got %q", k)
	}
}

func TestOneStackPerDataDir(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, PIDFileName), []byte("4242\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := lockDataDir(dir); err == nil || !strings.Contains(err.Error(), "another Sluice local stack (pid 4242) is already running on data dir") {
		t.Errorf("second lock: %v", err)
	}
	unlock()
	unlock2, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	unlock2()
}

// runInProcess runs Run with env and returns exit code, stdout, stderr.
func runInProcess(t *testing.T, args []string, env func(string) string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := Run(ctx, args, env, &out, &errb)
	return code, out.String(), errb.String()
}

func TestRunRefusesATakenPort(t *testing.T) {
	ports := ltFreePorts(t, 4)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	data := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--api-addr", busy.Addr().String(), "--dynamodb-port", ports[1], "--sfn-port", ports[2], "--lambda-port", ports[3]},
			fmt.Sprintf("port %d for the API is already in use", busyPort)},
		{[]string{"--api-addr", "127.0.0.1:" + ports[0], "--dynamodb-port", strconv.Itoa(busyPort), "--sfn-port", ports[2], "--lambda-port", ports[3]},
			fmt.Sprintf("port %d for DynamoDB Local is already in use", busyPort)},
		{[]string{"--api-addr", "127.0.0.1:" + ports[0], "--dynamodb-port", ports[1], "--sfn-port", strconv.Itoa(busyPort), "--lambda-port", ports[3]},
			fmt.Sprintf("port %d for the Step Functions service is already in use", busyPort)},
		{[]string{"--api-addr", "127.0.0.1:" + ports[0], "--dynamodb-port", ports[1], "--sfn-port", ports[2], "--lambda-port", ports[2]},
			fmt.Sprintf("port %s is configured for both the Step Functions service and the Lambda endpoint", ports[2])},
	} {
		code, out, errOut := runInProcess(t, append(tc.args, "--data-dir", data), os.Getenv)
		if code != ExitFailed || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "cannot start the local stack") {
			t.Errorf("%v: exit %d, stderr:\n%s\nwant %q", tc.args, code, errOut, tc.want)
		}
		if out != "" {
			t.Errorf("%v: started something: %q", tc.args, out)
		}
	}
	if entries, _ := os.ReadDir(data); len(entries) != 0 {
		t.Errorf("a refused start wrote to the data dir: %v", entries)
	}
}

// pathWith returns a directory holding symlinks to the named tools (found
// on this process's PATH), for a PATH that lacks the others.
func pathWith(t *testing.T, tools ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, tool := range tools {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("%s is not installed here: %v", tool, err)
		}
		if err := os.Symlink(p, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestRunRefusesWithoutJavaOrNode(t *testing.T) {
	ports := ltFreePorts(t, 4)
	args := []string{"--api-addr", "127.0.0.1:" + ports[0], "--dynamodb-port", ports[1], "--sfn-port", ports[2], "--lambda-port", ports[3], "--data-dir", t.TempDir()}
	noJava := pathWith(t, "node", "npm", "go")
	noNode := pathWith(t, "java", "go")
	for _, tc := range []struct {
		name      string
		path      string
		want, not []string
	}{
		{"no java", noJava, []string{"Java is missing", "apt-get install openjdk-17-jre-headless", "JAVA_HOME"}, []string{"Node.js is missing"}},
		{"no node", noNode, []string{"Node.js is missing", "Install Node.js with npm"}, []string{"Java is missing"}},
		{"nothing", t.TempDir(), []string{"Java is missing", "Node.js is missing", "Go is missing"}, nil},
	} {
		code, out, errOut := runInProcess(t, args, mapEnv(map[string]string{"PATH": tc.path}))
		if code != ExitFailed || out != "" {
			t.Errorf("%s: exit %d, stdout %q", tc.name, code, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", tc.name, w, errOut)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(errOut, n) {
				t.Errorf("%s: stderr has %q:\n%s", tc.name, n, errOut)
			}
		}
	}
}

func TestParseJavaMajor(t *testing.T) {
	for out, want := range map[string]int{
		"openjdk version \"17.0.15\" 2025-04-15\nOpenJDK Runtime": 17,
		"java version \"1.8.0_381\"\n":                            8,
		"openjdk version \"21\" 2023-09-19":                       21,
	} {
		if got, err := parseJavaMajor(out); err != nil || got != want {
			t.Errorf("%q: %d %v, want %d", out, got, err, want)
		}
	}
	if _, err := parseJavaMajor("garbage"); err == nil {
		t.Error("garbage parsed")
	}
}

// ---- the launcher binary, as `make run` starts it ----

// ltFreePorts is testkit.FreePorts as the flag values the launcher takes.
func ltFreePorts(t *testing.T, n int) []string {
	var out []string
	for _, p := range testkit.FreePorts(t, n) {
		out = append(out, strconv.Itoa(p))
	}
	return out
}

// ltBuild builds ./infra/localstack (what `make run` runs) into a temp dir.
func ltBuild(t *testing.T) string {
	t.Helper()
	root, err := dynamolocal.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "sluice-local")
	cmd := exec.Command("go", "build", "-o", bin, "./infra/localstack")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./infra/localstack: %v\n%s", err, out)
	}
	return bin
}

type ltLauncher struct {
	t      *testing.T
	cmd    *exec.Cmd
	out    *testkit.SyncBuffer
	done   chan struct{}
	apiURL string
}

// ltStart runs the launcher from the module root (as make run does) with
// args and extra environment, and waits until the API answers.
func ltStart(t *testing.T, bin string, args []string, extraEnv ...string) *ltLauncher {
	t.Helper()
	root, _ := dynamolocal.ModuleRoot()
	l := &ltLauncher{t: t, out: &testkit.SyncBuffer{}, done: make(chan struct{})}
	l.cmd = exec.Command(bin, args...)
	l.cmd.Dir = root
	l.cmd.Env = append(os.Environ(), extraEnv...)
	l.cmd.Stdout, l.cmd.Stderr = l.out, l.out
	if err := l.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = l.cmd.Wait(); close(l.done) }()
	t.Cleanup(func() {
		select {
		case <-l.done:
		default:
			_ = l.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-l.done:
			case <-time.After(60 * time.Second):
				_ = l.cmd.Process.Kill()
			}
		}
		if t.Failed() {
			t.Logf("launcher output:\n%s", l.out.String())
		}
	})
	for i, a := range args {
		if a == "--api-addr" {
			l.apiURL = "http://" + args[i+1]
		}
	}
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case <-l.done:
			t.Fatalf("the launcher exited during start (%v):\n%s", l.cmd.ProcessState, l.out.String())
		default:
		}
		if strings.Contains(l.out.String(), "Sluice local stack is up.") {
			if res, err := http.Get(l.apiURL + "/healthz"); err == nil {
				_ = res.Body.Close()
				if res.StatusCode == 200 {
					return l
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the launcher did not come up:\n%s", l.out.String())
	return nil
}

// stop signals the launcher and waits for its exit code.
func (l *ltLauncher) stop(sig syscall.Signal) int {
	l.t.Helper()
	if err := l.cmd.Process.Signal(sig); err != nil {
		l.t.Fatal(err)
	}
	select {
	case <-l.done:
	case <-time.After(90 * time.Second):
		l.t.Fatalf("the launcher did not exit within 90 s of %v:\n%s", sig, l.out.String())
	}
	return l.cmd.ProcessState.ExitCode()
}

func (l *ltLauncher) call(method, path, key string, body string) (int, []byte) {
	l.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, l.apiURL+path, rd)
	req.Header.Set("Authorization", "Bearer "+key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		l.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// waitStatus polls the pipeline until its combined statuses are as wanted.
func (l *ltLauncher) waitStatus(name, key, status, desired string) map[string]any {
	l.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var p map[string]any
	for time.Now().Before(deadline) {
		code, b := l.call("GET", "/v0/pipelines/"+name, key, "")
		p = nil
		_ = json.Unmarshal(b, &p)
		if code == 200 && p["deployment_status"] == status && p["deployment_desired_status"] == desired {
			return p
		}
		time.Sleep(50 * time.Millisecond)
	}
	l.t.Fatalf("%s never reached %s/%s; last %v", name, status, desired, p)
	return nil
}

// TestLauncherShutsDownWithoutOrphans runs the launcher binary as `make run`
// does, starts a pipeline (so a runtime process exists), sends SIGTERM and
// checks that no process of the stack is left: DynamoDB Local's JVM, the
// Node Step Functions service and the runtime. It then starts it again on the
// same data dir without SLUICE_API_KEY: the key of the first run is reused
// and the pipeline is still there; Ctrl-C (SIGINT) stops it cleanly too.
func TestLauncherShutsDownWithoutOrphans(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole stack")
	}
	bin := ltBuild(t)
	data := t.TempDir()
	ports := ltFreePorts(t, 4)
	args := []string{"--api-addr", "127.0.0.1:" + ports[0], "--dynamodb-port", ports[1], "--sfn-port", ports[2], "--lambda-port", ports[3], "--data-dir", data}
	const key = "apikey:launcher-test-key"
	l := ltStart(t, bin, args, EnvAPIKey+"="+key)

	// A second stack on the same data dir is refused (the lock).
	other := ltFreePorts(t, 4)
	code, _, errOut := runInProcess(t, []string{"--api-addr", "127.0.0.1:" + other[0], "--dynamodb-port", other[1], "--sfn-port", other[2],
		"--lambda-port", other[3], "--data-dir", data}, os.Getenv)
	if code != ExitFailed || !strings.Contains(errOut, "is already running on data dir "+data) {
		t.Errorf("second stack on the data dir: exit %d, %s", code, errOut)
	}

	if code, b := l.call("POST", "/v0/pipelines", key, `{"name":"p1","runtime_config":{"events_per_sec":1000,"checkpoint_interval_secs":1}}`); code != 201 {
		t.Fatalf("create: %d %s", code, b)
	}
	if code, b := l.call("POST", "/v0/pipelines/p1/start", key, ""); code != 202 {
		t.Fatalf("start: %d %s", code, b)
	}
	l.waitStatus("p1", key, "Running", "Running")

	tree := proctree.Descendants(l.cmd.Process.Pid)
	var kinds []string
	for _, p := range tree {
		switch {
		case strings.Contains(p.Cmd, "DynamoDBLocal.jar"):
			kinds = append(kinds, "dynamodb")
		case strings.Contains(p.Cmd, "server.js"):
			kinds = append(kinds, "stepfunctions")
		case strings.Contains(p.Cmd, filepath.Join(data, "bin", "sample-runtime")):
			kinds = append(kinds, "runtime")
		}
	}
	if got := strings.Join(kinds, ","); !strings.Contains(got, "dynamodb") || !strings.Contains(got, "stepfunctions") || !strings.Contains(got, "runtime") {
		t.Fatalf("the stack's processes: %v (%+v)", kinds, tree)
	}
	pids, _ := filepath.Glob(filepath.Join(data, ComputeDir, "deployments", "p1", "*", "pid"))
	if len(pids) != 1 {
		t.Fatalf("runtime pid files: %v", pids)
	}

	if code := l.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit code after SIGTERM: %d\n%s", code, l.out.String())
	}
	if alive := proctree.WaitGone(tree, data, 5*time.Second); len(alive) > 0 {
		t.Fatalf("left behind after SIGTERM:\n%s", strings.Join(alive, "\n"))
	}
	if out := l.out.String(); !strings.Contains(out, "Shutting down") || !strings.Contains(out, "Stopped. Pipelines, executions and checkpoints are kept in") {
		t.Errorf("shutdown output:\n%s", out)
	}
	if b, err := os.ReadFile(filepath.Join(data, KeyFileName)); err != nil || strings.TrimSpace(string(b)) != key {
		t.Errorf("key file: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(data, PIDFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left: %v", err)
	}

	// Restart on the same data dir, without SLUICE_API_KEY.
	l2 := ltStart(t, bin, args, EnvAPIKey+"=")
	if !strings.Contains(l2.out.String(), "(key kept from the previous run)") {
		t.Errorf("banner:\n%s", l2.out.String())
	}
	// The pipeline survived; its runtime ended with the first stack, which
	// the reconciler notices at once and records.
	p := l2.waitStatus("p1", key, "Stopped", "Stopped")
	if e, _ := p["deployment_error"].(map[string]any); e == nil || e["error_code"] != "ComputeVanished" {
		t.Errorf("after a restart: deployment_error %v", p["deployment_error"])
	}
	tree2 := proctree.Descendants(l2.cmd.Process.Pid)
	if code := l2.stop(syscall.SIGINT); code != 0 {
		t.Errorf("exit code after SIGINT: %d", code)
	}
	if alive := proctree.WaitGone(tree2, data, 5*time.Second); len(alive) > 0 {
		t.Fatalf("left behind after SIGINT:\n%s", strings.Join(alive, "\n"))
	}
}
