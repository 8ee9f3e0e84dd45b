package localstack

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/dynamolocal"
	"github.com/sluicehq/sluice/internal/localsfn"
	"github.com/sluicehq/sluice/internal/obs"
	"github.com/sluicehq/sluice/internal/reconciler"
)

// Defaults of `make run` (Run).
const (
	DefaultAPIAddr           = "127.0.0.1:8080"
	DefaultDynamoPort        = 8000
	DefaultSFNPort           = 8083
	DefaultLambdaPort        = 9001
	DefaultDataDirName       = ".sluice"
	DefaultReconcileInterval = 10 * time.Second
)

// Environment variables Run reads. A flag wins over its variable.
const (
	EnvAPIAddr           = "SLUICE_API_ADDR"
	EnvDynamoPort        = "SLUICE_DYNAMODB_PORT"
	EnvSFNPort           = "SLUICE_SFN_PORT"
	EnvLambdaPort        = "SLUICE_LAMBDA_PORT"
	EnvDataDir           = "SLUICE_DATA_DIR"
	EnvReconcileInterval = "SLUICE_RECONCILE_INTERVAL"
	// EnvAPIKey is the write API key to accept (any value starting with
	// "apikey:"). Unset: the key of the previous run (DataDir/api-key), else a
	// new one.
	EnvAPIKey = "SLUICE_API_KEY"
)

// Files under the data dir (Start lays out the last three).
const (
	KeyFileName  = "api-key"         // the API key, mode 0600
	PIDFileName  = "sluice.pid"      // the launcher's pid while it runs
	LockFileName = "lock"            // flock: one stack per data dir
	LogDirName   = "logs"            // JSON logs
	LogFileName  = "sluice.jsonl"    // every part's JSON log lines
	ComputeDir   = "compute"         // the local compute driver's root (runtimes, storage)
	DynamoDir    = "dynamodb"        // DynamoDB Local's files
	ExecFileName = "executions.json" // the Step Functions service's executions
	// Pid files of the supervised child processes while they run: a start
	// first ends a process a crashed launcher left behind on them.
	DynamoPIDFileName = "dynamodb.pid"
	SFNPIDFileName    = "stepfunctions.pid"
)

// Exit codes of Run.
const (
	ExitOK      = 0
	ExitFailed  = 1 // could not start (a port is taken, Java or Node missing, …) or failed while running
	ExitUsage   = 2
	progName    = "sluice-local"
	exitTimeout = 60 * time.Second
)

// RunOptions are Run's settings after flags and environment.
type RunOptions struct {
	APIAddr           string
	DynamoPort        int
	SFNPort           int
	LambdaPort        int
	DataDir           string
	ReconcileInterval time.Duration
	ReconcilerShards  int // reconciler.EnvShards, as on AWS
	APIKey            string
	Verbose           bool
}

// ParseRunArgs reads the flags, falling back to the environment, then to the
// defaults. DataDir stays empty when neither sets it (Run uses
// <module root>/.sluice).
func ParseRunArgs(args []string, env func(string) string, usage io.Writer) (RunOptions, error) {
	o := RunOptions{APIAddr: DefaultAPIAddr, DynamoPort: DefaultDynamoPort, SFNPort: DefaultSFNPort,
		LambdaPort: DefaultLambdaPort, ReconcileInterval: DefaultReconcileInterval}
	var errs []error
	if v := env(EnvAPIAddr); v != "" {
		o.APIAddr = v
	}
	for _, p := range []struct {
		name string
		dst  *int
	}{{EnvDynamoPort, &o.DynamoPort}, {EnvSFNPort, &o.SFNPort}, {EnvLambdaPort, &o.LambdaPort}} {
		if v := env(p.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q is not a port number", p.name, v))
				continue
			}
			*p.dst = n
		}
	}
	o.DataDir = env(EnvDataDir)
	if v := env(EnvReconcileInterval); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q is not a duration (e.g. 10s)", EnvReconcileInterval, v))
		}
		o.ReconcileInterval = d
	}
	shards, err := reconciler.ShardsFromEnv(env)
	if err != nil {
		errs = append(errs, err)
	}
	o.ReconcilerShards = shards
	o.APIKey = strings.TrimSpace(env(EnvAPIKey))
	if err := errors.Join(errs...); err != nil {
		return o, err
	}

	fs := flag.NewFlagSet(progName, flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.Usage = func() {
		fmt.Fprintf(usage, `Usage: make run [RUN_FLAGS="…"]   (or: go run ./infra/localstack [flags])

Starts the whole Sluice control plane on this machine: DynamoDB Local, the
local Step Functions service, the local Lambda endpoint, the API (auth on),
the reconciler and the local process compute with the sample runtime.
Ctrl-C (or SIGTERM) stops all of it.

Flags (each also read from the environment variable shown):
`)
		fs.PrintDefaults()
		fmt.Fprintf(usage, `
%s: the API key to accept (must start with "apikey:"); unset: the key of the
previous run (<data-dir>/%s), else a new one. Either way it is printed and
written to <data-dir>/%s (mode 0600).
`, EnvAPIKey, KeyFileName, KeyFileName)
	}
	fs.StringVar(&o.APIAddr, "api-addr", o.APIAddr, "address the API listens on ("+EnvAPIAddr+")")
	fs.IntVar(&o.DynamoPort, "dynamodb-port", o.DynamoPort, "DynamoDB Local's port ("+EnvDynamoPort+")")
	fs.IntVar(&o.SFNPort, "sfn-port", o.SFNPort, "the Step Functions service's port ("+EnvSFNPort+")")
	fs.IntVar(&o.LambdaPort, "lambda-port", o.LambdaPort, "the Lambda Invoke endpoint's port ("+EnvLambdaPort+")")
	fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "where the pipelines, workflow executions, runtimes' storage, logs and the API key are kept; default <repository>/"+DefaultDataDirName+" ("+EnvDataDir+")")
	fs.DurationVar(&o.ReconcileInterval, "reconcile-interval", o.ReconcileInterval, "how often the reconciler runs ("+EnvReconcileInterval+")")
	fs.IntVar(&o.ReconcilerShards, "reconciler-shards", o.ReconcilerShards, fmt.Sprintf("shards of the reconciler pass, 1 to %d: more than 1 runs it as on AWS, one asynchronous invocation per shard (%s)", reconciler.MaxShards, reconciler.EnvShards))
	fs.BoolVar(&o.Verbose, "verbose", false, "show every log event on the terminal (reads included), not only the interesting ones")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q (see -h)", fs.Args())
	}
	if _, port, err := net.SplitHostPort(o.APIAddr); err != nil {
		errs = append(errs, fmt.Errorf("--api-addr %q: want host:port, e.g. %s", o.APIAddr, DefaultAPIAddr))
	} else if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		errs = append(errs, fmt.Errorf("--api-addr %q: the port must be 1..65535", o.APIAddr))
	}
	for _, p := range []struct {
		flag string
		v    int
	}{{"--dynamodb-port", o.DynamoPort}, {"--sfn-port", o.SFNPort}, {"--lambda-port", o.LambdaPort}} {
		if p.v <= 0 || p.v > 65535 {
			errs = append(errs, fmt.Errorf("%s %d: want a port in 1..65535", p.flag, p.v))
		}
	}
	if o.ReconcilerShards < 1 || o.ReconcilerShards > reconciler.MaxShards {
		errs = append(errs, fmt.Errorf("--reconciler-shards %d: must be 1 to %d", o.ReconcilerShards, reconciler.MaxShards))
	}
	if o.ReconcileInterval <= 0 {
		errs = append(errs, fmt.Errorf("--reconcile-interval %s: must be positive", o.ReconcileInterval))
	}
	if o.APIKey != "" && !validKey(o.APIKey) {
		errs = append(errs, fmt.Errorf("%s must start with %q followed by the secret (e.g. %smy-local-key)", EnvAPIKey, auth.APIKeyPrefix, auth.APIKeyPrefix))
	}
	return o, errors.Join(errs...)
}

func validKey(k string) bool {
	return strings.HasPrefix(k, auth.APIKeyPrefix) && len(k) > len(auth.APIKeyPrefix) && !strings.ContainsAny(k, " \t\r\n")
}

// lockedWriter serialises writes of several goroutines to one writer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Run is `make run`: it starts the local stack as configured by args and env
// (os.Getenv in production), prints where every part listens, shows a
// one-line-per-event summary on stdout while the JSON logs go to
// DataDir/logs/sluice.jsonl, and stops everything when ctx ends (the caller
// cancels it on SIGINT, SIGTERM or SIGHUP). It returns the process exit code.
func Run(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) int {
	out := &lockedWriter{w: stdout}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, progName+": "+format+"\n", a...)
		return ExitFailed
	}
	opts, err := ParseRunArgs(args, env, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", progName, err)
		return ExitUsage
	}
	root, err := dynamolocal.ModuleRoot()
	if err != nil {
		return fail("run it from the Sluice repository (make run): %v", err)
	}
	if opts.DataDir == "" {
		opts.DataDir = filepath.Join(root, DefaultDataDirName)
	}
	if opts.DataDir, err = filepath.Abs(opts.DataDir); err != nil {
		return fail("data dir: %v", err)
	}

	if problems := Preflight(opts, env); len(problems) > 0 {
		fmt.Fprintf(stderr, "%s: cannot start the local stack:\n", progName)
		for _, p := range problems {
			fmt.Fprintf(stderr, "  - %s\n", p)
		}
		return ExitFailed
	}

	if err := os.MkdirAll(filepath.Join(opts.DataDir, LogDirName), 0o755); err != nil {
		return fail("data dir: %v", err)
	}
	unlock, err := lockDataDir(opts.DataDir)
	if err != nil {
		return fail("%v", err)
	}
	defer unlock()
	pidFile := filepath.Join(opts.DataDir, PIDFileName)
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fail("pid file: %v", err)
	}
	defer os.Remove(pidFile)

	keyFile := filepath.Join(opts.DataDir, KeyFileName)
	key, keySource := resolveAPIKey(opts.APIKey, keyFile)

	logPath := filepath.Join(opts.DataDir, LogDirName, LogFileName)
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fail("log file: %v", err)
	}
	defer logFile.Close()
	fileW := &lockedWriter{w: logFile}
	level, levelErr := obs.ParseLevel(env(obs.EnvLogLevel))
	logger, term := newTeeLogger(fileW, level, out, opts.Verbose)
	if levelErr != nil {
		logger.Warn("ignoring invalid log level", "variable", obs.EnvLogLevel, "error", levelErr.Error())
	}
	launcher := logger.With("component", "local")
	services := newServiceLog(fileW, term)
	defer services.Flush()

	firstRun := !fetched(root)
	fmt.Fprintf(out, "Starting the Sluice local stack (data in %s)…\n", opts.DataDir)
	if firstRun {
		fmt.Fprintln(out, "First run: fetching DynamoDB Local and the Node packages with npm (a minute or two).")
	}
	launcher.Info("starting", "data_dir", opts.DataDir, "api_addr", opts.APIAddr, "dynamodb_port", opts.DynamoPort,
		"sfn_port", opts.SFNPort, "lambda_port", opts.LambdaPort, "reconcile_interval", opts.ReconcileInterval.String(), "reconciler_shards", opts.ReconcilerShards, "pid", os.Getpid())
	started := time.Now()
	stack, err := Start(ctx, Config{
		ModuleRoot:        root,
		DataDir:           opts.DataDir,
		APIAddr:           opts.APIAddr,
		DynamoPort:        opts.DynamoPort,
		SFNPort:           opts.SFNPort,
		LambdaPort:        opts.LambdaPort,
		ReconcileInterval: opts.ReconcileInterval,
		ReconcilerShards:  opts.ReconcilerShards,
		APIKey:            key,
		Logger:            logger,
		ServiceLog:        services,
	})
	if err != nil {
		launcher.Error("start failed", "error", err.Error())
		if ctx.Err() != nil {
			return fail("interrupted while starting; everything started so far was stopped")
		}
		return fail("could not start the local stack (everything started so far was stopped): %v\n(logs: %s)", err, logPath)
	}
	if err := writeKeyFile(keyFile, stack.APIKey); err != nil {
		_ = stack.Close()
		return fail("writing the API key file: %v", err)
	}
	launcher.Info("ready", "api_url", stack.APIURL, "dynamodb_endpoint", stack.DynamoEndpoint, "sfn_endpoint", stack.SFNEndpoint,
		"lambda_endpoint", stack.LambdaEndpoint, "startup_ms", time.Since(started).Milliseconds())
	printBanner(out, stack, keySource, keyFile, logPath)

	<-ctx.Done()
	fmt.Fprintln(out, "\nShutting down: API, Lambda endpoint, reconciler, runtimes, Step Functions service, DynamoDB Local…")
	launcher.Info("shutting down")
	done := make(chan error, 1)
	go func() { done <- stack.Close() }()
	select {
	case err = <-done:
	case <-time.After(exitTimeout):
		err = fmt.Errorf("shutdown did not finish within %s", exitTimeout)
	}
	if err != nil {
		launcher.Error("shutdown incomplete", "error", err.Error())
		return fail("shutdown: %v", err)
	}
	launcher.Info("stopped")
	fmt.Fprintln(out, "Stopped. Pipelines, executions and checkpoints are kept in", opts.DataDir)
	return ExitOK
}

// fetched reports whether DynamoDB Local and the Node packages are already
// installed (only decides whether to announce a first-run download).
func fetched(root string) bool {
	cache, err := dynamolocal.DefaultCacheDir()
	if err != nil {
		return false
	}
	if _, err := os.Stat(filepath.Join(cache, dynamolocal.JarDirName, dynamolocal.JarName)); err != nil {
		return false
	}
	_, err = localsfn.NodeBinary(root)
	return err == nil
}

// resolveAPIKey picks the key to accept: SLUICE_API_KEY when set, else the
// one in keyFile (kept from the previous run), else "" (Start generates one).
// source says which, for the banner.
func resolveAPIKey(envKey, keyFile string) (key, source string) {
	if envKey != "" {
		return envKey, "from " + EnvAPIKey
	}
	if b, err := os.ReadFile(keyFile); err == nil {
		if k := strings.TrimSpace(string(b)); validKey(k) {
			return k, "kept from the previous run"
		}
	}
	return "", "new"
}

// writeKeyFile writes the key with mode 0600 (a temp file renamed into place,
// so an older file's mode does not survive).
func writeKeyFile(path, key string) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+KeyFileName+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return err
	}
	if _, err := f.WriteString(key + "\n"); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// lockDataDir takes an exclusive, non-blocking flock on DataDir/lock: two
// stacks on one data dir would fight over DynamoDB's files and the runtimes.
func lockDataDir(dir string) (func(), error) {
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data dir lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		who := "another Sluice local stack"
		if b, err := os.ReadFile(filepath.Join(dir, PIDFileName)); err == nil {
			who += " (pid " + strings.TrimSpace(string(b)) + ")"
		}
		return nil, fmt.Errorf("%s is already running on data dir %s: stop it first (Ctrl-C in its terminal), or pass --data-dir", who, dir)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}

func printBanner(w io.Writer, s *Stack, keySource, keyFile, logPath string) {
	arn := func(kind domain.WorkflowKind) string { return s.Machines[kind] }
	fmt.Fprintf(w, `
Sluice local stack is up.

  API               %s   (auth on; GET /healthz, GET /v0/openapi.json)
  Console           %s   (open it in a browser; enter the API key below)
  DynamoDB Local    %s   (table %s)
  Step Functions    %s   (state machines sluice-start, sluice-suspend, sluice-stop, sluice-clear)
  Lambda (Invoke)   %s
  data dir          %s
  JSON log          %s
  API key file      %s   (key %s)
  API key           %s

Copy-paste into another shell:

  export SLUICE_URL=%s SLUICE_API_KEY=%s
  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_DEFAULT_REGION=us-east-1

  curl -H "Authorization: Bearer $SLUICE_API_KEY" $SLUICE_URL/v0/pipelines
  aws stepfunctions list-executions --endpoint-url %s --state-machine-arn %s
  aws dynamodb scan --endpoint-url %s --table-name %s

Ctrl-C stops everything (the pipelines' runtimes too; their checkpoints stay).

`, s.APIURL, s.ConsoleURL, s.DynamoEndpoint, s.Table, s.SFNEndpoint, s.LambdaEndpoint, s.DataDir, logPath, keyFile, keySource, s.APIKey,
		s.APIURL, s.APIKey, s.SFNEndpoint, arn(domain.WorkflowSuspend), s.DynamoEndpoint, s.Table)
}
