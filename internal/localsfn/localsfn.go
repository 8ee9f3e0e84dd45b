// Package localsfn starts and stops the local Step Functions service
// (infra/local-sfn: the aws-local-stepfunctions engine behind the Step
// Functions API subset Sluice uses) and builds the production sfn client
// pointed at it.
//
// The service runs the real statemachine/*.asl.json definitions; their Lambda
// Tasks call a local Lambda Invoke endpoint (internal/lambdalocal). Typical use
// in a test:
//
//	root, _ := localsfn.FindModuleRoot("")
//	_ = localsfn.EnsureInstalled(ctx, root)
//	lam := lambdalocal.NewServer()
//	lam.Register("step", lambdalocal.Typed(step.Handle))
//	lamURL, stopLam, _ := lam.Start("127.0.0.1:0")
//	svc, _ := localsfn.Start(ctx, localsfn.Config{
//		ModuleRoot:     root,
//		LambdaEndpoint: lamURL,
//		StateMachines:  []localsfn.StateMachine{{Name: "suspend", DefinitionFile: "statemachine/suspend.asl.json", Substitutions: map[string]string{"StepFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:step"}}},
//		Overrides:      localsfn.Overrides{WaitTimeOverrides: map[string]int{"*": 0}, RetryIntervalOverrides: map[string]int{"*": 0}},
//	})
//	defer svc.Stop()
//	client, _ := localsfn.NewClient(ctx, svc.Endpoint)
package localsfn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/sluicehq/sluice/internal/supervisor"
)

// Defaults of the local stack.
const (
	DefaultRegion  = "us-east-1"
	DefaultAccount = "123456789012"
)

// StateMachine is one state machine the service serves.
type StateMachine struct {
	// Name is the state machine's name (its ARN is
	// arn:aws:states:REGION:ACCOUNT:stateMachine:NAME).
	Name string `json:"name"`
	// DefinitionFile is the ASL file, relative to the module root (or absolute).
	DefinitionFile string `json:"definitionFile,omitempty"`
	// Definition is an inline ASL definition, used when DefinitionFile is empty.
	Definition json.RawMessage `json:"definition,omitempty"`
	// Substitutions fill ${Key} placeholders, as SAM DefinitionSubstitutions
	// do. A placeholder without a value fails the start.
	Substitutions map[string]string `json:"substitutions,omitempty"`
	// RoleArn is reported by DescribeStateMachine and in ExecutionStarted.
	RoleArn string `json:"roleArn,omitempty"`
	// Overrides for this state machine, merged over Config.Overrides.
	Overrides *Overrides `json:"overrides,omitempty"`
}

// Overrides speed up Wait states and Retry pauses (aws-local-stepfunctions'
// run overrides). Keys are state names (nested states included); the key "*"
// applies to every Wait state, respectively every state with a Retry field,
// not named explicitly.
type Overrides struct {
	// WaitTimeOverrides: milliseconds a Wait state pauses, instead of its
	// Seconds/Timestamp/SecondsPath/TimestampPath.
	WaitTimeOverrides map[string]int `json:"waitTimeOverrides,omitempty"`
	// RetryIntervalOverrides: milliseconds to pause before each retry of the
	// state, for all of its retriers, instead of IntervalSeconds × BackoffRate^n
	// (MaxAttempts still applies).
	RetryIntervalOverrides map[string]int `json:"retryIntervalOverrides,omitempty"`
}

// Config configures one local Step Functions service.
type Config struct {
	// ModuleRoot is the repository root (found from the working directory
	// when empty).
	ModuleRoot string
	// Host and Port to listen on; Port 0 picks a free port.
	Host string
	Port int
	// Region and Account used in ARNs (DefaultRegion, DefaultAccount when empty).
	Region, Account string
	// StateMachines to serve.
	StateMachines []StateMachine
	// LambdaEndpoint is the local Lambda Invoke API (lambdalocal) that Lambda
	// Tasks call.
	LambdaEndpoint string
	// LambdaCredentials sign (SigV4) the service's Invoke requests: the
	// local Lambda endpoint serves only callers holding its credentials
	// (lambdalocal.Server.Credentials). They reach the Node process as
	// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in its environment (never
	// in its config file), for the adapter and the engine's own Lambda
	// client alike. Empty: the requests are not signed.
	LambdaCredentials aws.Credentials
	// Overrides for all state machines.
	Overrides Overrides
	// StateFile, when set, persists executions across restarts: a snapshot
	// at this path and an append-only journal beside it (StateFile.journal.N).
	// StartExecution and StopExecution answer only once their journal record
	// is fdatasync'd, so a crash (Kill) loses no acknowledged execution.
	// Executions that were RUNNING when the service stopped come back
	// ABORTED, with error "Local.ServiceRestarted".
	StateFile string
	// JournalCompactBytes: the journal is compacted into a new snapshot once
	// it holds this many bytes and more than the last snapshot (0: the
	// service's default, 16 MiB). Tests set it small.
	JournalCompactBytes int
	// TaskInvoker: "adapter" (default) calls the Lambda endpoint from the
	// service itself, with Step Functions' error Cause (the function's error
	// document as JSON) and Task history events; "engine" lets
	// aws-local-stepfunctions' own AWS SDK Lambda client call it (Cause is
	// "errorType: errorMessage" there).
	TaskInvoker string
	// RetainFinished bounds the finished executions kept per state machine
	// (the oldest are dropped; 0: the service's default, 1000), so a
	// long-lived local stack's memory and state file stay bounded.
	RetainFinished int
	// ListExecutionsLag and DescribeExecutionLag model what the Step
	// Functions API reference documents as eventually consistent
	// (ListExecutions, DescribeExecution: "The results are best effort and
	// may not reflect very recent updates and changes"): a newly started
	// execution is left out of that many ListExecutions calls of its state
	// machine, and DescribeExecution answers ExecutionDoesNotExist for it that
	// many times. 0 (the local stack's setting) is read-your-writes.
	ListExecutionsLag, DescribeExecutionLag int
	// Log receives the service's output: one JSON object per line. Nil
	// discards it.
	Log io.Writer
	// StartTimeout bounds the wait for the service to listen (default 30 s).
	StartTimeout time.Duration
	// PIDFile, when set, records the service's pid while it runs; a start
	// first ends a service a crashed launcher left behind on it.
	PIDFile string
}

type fileConfig struct {
	Port           int            `json:"port"`
	Host           string         `json:"host"`
	Region         string         `json:"region"`
	Account        string         `json:"account"`
	BaseDir        string         `json:"baseDir"`
	StateMachines  []StateMachine `json:"stateMachines"`
	LambdaEndpoint string         `json:"lambdaEndpoint,omitempty"`
	Overrides      Overrides      `json:"overrides"`
	StateFile      string         `json:"stateFile,omitempty"`
	TaskInvoker    string         `json:"taskInvoker,omitempty"`
	RetainFinished int            `json:"retainFinished,omitempty"`

	JournalCompactBytes  int `json:"journalCompactBytes,omitempty"`
	ListExecutionsLag    int `json:"listExecutionsLag,omitempty"`
	DescribeExecutionLag int `json:"describeExecutionLag,omitempty"`
}

// Service is a running (or stopped) local Step Functions service.
type Service struct {
	// Endpoint is the service's base URL, for NewClient or
	// `aws stepfunctions --endpoint-url`. It stays the same across Restart.
	Endpoint string

	cfg Config
	mu  sync.Mutex
	run *process
}

type process struct {
	proc    *supervisor.Process
	cfgPath string
	log     *supervisor.LineWriter
}

// Start launches the service and waits until it listens.
func Start(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.ModuleRoot == "" {
		root, err := FindModuleRoot("")
		if err != nil {
			return nil, err
		}
		cfg.ModuleRoot = root
	}
	s := &Service{cfg: cfg}
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Config returns the service's configuration (with the bound port).
func (s *Service) Config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// StateMachineArn returns the ARN of the named state machine.
func (s *Service) StateMachineArn(name string) string {
	c := s.Config()
	return fmt.Sprintf("arn:aws:states:%s:%s:stateMachine:%s", or(c.Region, DefaultRegion), or(c.Account, DefaultAccount), name)
}

// ExecutionArn returns the ARN of the named execution of a state machine.
func (s *Service) ExecutionArn(stateMachine, execution string) string {
	c := s.Config()
	return fmt.Sprintf("arn:aws:states:%s:%s:execution:%s:%s", or(c.Region, DefaultRegion), or(c.Account, DefaultAccount), stateMachine, execution)
}

func (s *Service) start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.startLocked(ctx)
}

func (s *Service) startLocked(ctx context.Context) error {
	if s.run != nil {
		if !s.run.proc.Exited() {
			return errors.New("localsfn: service already running")
		}
		s.cleanupLocked()
	}
	cfg := s.cfg
	node, err := NodeBinary(cfg.ModuleRoot)
	if err != nil {
		return err
	}
	root, err := filepath.Abs(cfg.ModuleRoot)
	if err != nil {
		return err
	}
	fc := fileConfig{
		Port:           cfg.Port,
		Host:           or(cfg.Host, "127.0.0.1"),
		Region:         or(cfg.Region, DefaultRegion),
		Account:        or(cfg.Account, DefaultAccount),
		BaseDir:        root,
		StateMachines:  cfg.StateMachines,
		LambdaEndpoint: cfg.LambdaEndpoint,
		Overrides:      cfg.Overrides,
		StateFile:      cfg.StateFile,
		TaskInvoker:    cfg.TaskInvoker,
		RetainFinished: cfg.RetainFinished,

		JournalCompactBytes:  cfg.JournalCompactBytes,
		ListExecutionsLag:    cfg.ListExecutionsLag,
		DescribeExecutionLag: cfg.DescribeExecutionLag,
	}
	if fc.StateFile != "" {
		if fc.StateFile, err = filepath.Abs(fc.StateFile); err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(fc, "", "  ")
	if err != nil {
		return fmt.Errorf("localsfn: config: %w", err)
	}
	f, err := os.CreateTemp("", "local-sfn-*.json")
	if err != nil {
		return fmt.Errorf("localsfn: config file: %w", err)
	}
	cfgPath := f.Name()
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		_ = os.Remove(cfgPath)
		return fmt.Errorf("localsfn: config file: %w", err)
	}
	_ = f.Close()

	type ready struct {
		endpoint string
		port     int
	}
	readyCh := make(chan ready, 1)
	var (
		failMu sync.Mutex
		fail   []string
	)
	announced := false
	lines := supervisor.NewLineWriter(func(line []byte) {
		if cfg.Log != nil {
			_, _ = cfg.Log.Write(append(append([]byte(nil), line...), '\n'))
		}
		if announced {
			return // only the lines before "listening" are read (a line per history event is not worth decoding)
		}
		var rec struct {
			Msg      string `json:"msg"`
			Endpoint string `json:"endpoint"`
			Port     int    `json:"port"`
			Error    string `json:"error"`
		}
		if json.Unmarshal(line, &rec) != nil {
			failMu.Lock()
			if len(fail) < 40 {
				fail = append(fail, string(line))
			}
			failMu.Unlock()
			return
		}
		switch {
		case rec.Msg == "listening" && !announced:
			announced = true
			readyCh <- ready{rec.Endpoint, rec.Port}
		case rec.Error != "" && !announced:
			failMu.Lock()
			fail = append(fail, rec.Msg+": "+rec.Error)
			failMu.Unlock()
		}
	})
	failures := func() string {
		_ = lines.Close()
		failMu.Lock()
		defer failMu.Unlock()
		return strings.Join(fail, "\n")
	}
	timeout := cfg.StartTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	// The service inherits no AWS credentials of this process; it signs its
	// Lambda calls with the stack's own (the Lambda endpoint refuses others).
	env := append(childEnv(os.Environ()), "NODE_NO_WARNINGS=1")
	if c := cfg.LambdaCredentials; c.AccessKeyID != "" {
		env = append(env, "AWS_ACCESS_KEY_ID="+c.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+c.SecretAccessKey)
	}
	var got ready
	proc, err := supervisor.Start(ctx, supervisor.Spec{
		Name: "the local Step Functions service", Path: node, Args: []string{filepath.Join(root, ServiceDir, "server.js"), cfgPath},
		Dir: root, Env: env, Stdout: lines, Stderr: lines,
		StartTimeout: timeout, PIDFile: cfg.PIDFile,
		Ready: func(rctx context.Context, p *supervisor.Process) error {
			select {
			case got = <-readyCh:
				return nil
			case <-rctx.Done():
			}
			switch cause := context.Cause(rctx); {
			case errors.Is(cause, supervisor.ErrExited):
				<-p.Done()
				return fmt.Errorf("localsfn: the local Step Functions service exited during start (%v): %s", p.ExitErr(), failures())
			case ctx.Err() != nil:
				return fmt.Errorf("localsfn: the local Step Functions service start was cancelled: %s: %s", ctx.Err(), failures())
			default:
				return fmt.Errorf("localsfn: the local Step Functions service did not listen within %s: %s", timeout, failures())
			}
		},
	})
	if err != nil {
		_ = os.Remove(cfgPath)
		if !strings.HasPrefix(err.Error(), "localsfn:") {
			err = fmt.Errorf("localsfn: %w", err)
		}
		return err
	}
	s.Endpoint = got.endpoint
	s.cfg.Port = got.port // a restart binds the same port, so Endpoint stays valid
	s.run = &process{proc: proc, cfgPath: cfgPath, log: lines}
	return nil
}

// Stop ends the service: SIGTERM (it persists its state and exits), then
// SIGKILL after 5 s. Stopping a stopped service does nothing.
func (s *Service) Stop() error {
	return s.stop(syscall.SIGTERM, 5*time.Second)
}

// Kill ends the service at once with SIGKILL, as a crash would (chaos tests).
// Executions it was running come back ABORTED after a restart with the same
// StateFile. No acknowledged StartExecution or StopExecution is lost; history
// events of the last milliseconds may be.
func (s *Service) Kill() error {
	return s.stop(syscall.SIGKILL, 0)
}

func (s *Service) stop(sig syscall.Signal, grace time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopLocked(sig, grace)
}

func (s *Service) stopLocked(sig syscall.Signal, grace time.Duration) error {
	p := s.run
	if p == nil {
		return nil
	}
	var err error
	if sig == syscall.SIGKILL {
		err = p.proc.Kill()
	} else {
		err = p.proc.Stop(grace)
	}
	s.cleanupLocked()
	return err
}

// cleanupLocked forgets an exited process (its config file, a last log line).
func (s *Service) cleanupLocked() {
	_ = s.run.log.Close()
	_ = os.Remove(s.run.cfgPath)
	s.run = nil
}

// Exited is closed when the current service process has exited (nil when
// none runs).
func (s *Service) Exited() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run == nil {
		return nil
	}
	return s.run.proc.Done()
}

// Process is the current service process (nil when stopped).
func (s *Service) Process() *supervisor.Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run == nil {
		return nil
	}
	return s.run.proc
}

// Restart stops the service if it runs (gracefully) and starts it again with
// the same configuration and port; with a StateFile, the executions survive.
// It is atomic: Process and Exited see the old process or the new one.
func (s *Service) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.stopLocked(syscall.SIGTERM, 5*time.Second); err != nil {
		return err
	}
	return s.startLocked(ctx)
}

// Running reports whether the service process is alive.
func (s *Service) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.run != nil && !s.run.proc.Exited()
}

// Healthy asks the service's health path.
func (s *Service) Healthy(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("localsfn: health check: HTTP %d", resp.StatusCode)
	}
	return nil
}

// NewClient returns the production Step Functions client (aws-sdk-go-v2
// service/sfn) pointed at endpoint, with dummy static credentials in
// us-east-1. It reads no AWS configuration from the environment.
func NewClient(ctx context.Context, endpoint string, optFns ...func(*sfn.Options)) (*sfn.Client, error) {
	_ = ctx
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("localsfn: invalid endpoint %q", endpoint)
	}
	cfg := aws.Config{
		Region:      DefaultRegion,
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	}
	return sfn.NewFromConfig(cfg, append([]func(*sfn.Options){func(o *sfn.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	}}, optFns...)...), nil
}

// childEnv is the environment the Node process inherits, without any AWS
// credentials of the caller's: it signs only with LambdaCredentials.
func childEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE":
			continue
		}
		out = append(out, kv)
	}
	return out
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
