// Package localstack assembles the whole control plane on one machine, with
// no AWS account and no Docker: DynamoDB Local, the local Step Functions
// service running the real statemachine/*.asl.json, a local Lambda Invoke
// endpoint serving every function of template.yaml, the API on a plain HTTP
// server (the same handler as the api Lambda), the reconciler on a ticker, and
// a compute driver (local processes running the sample pipeline runtime, or
// one a test injects). `make run` (infra/localstack) and the end-to-end and
// workflow tests start it the same way.
package localstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/awswire/reconcilerlambda"
	"github.com/sluicehq/sluice/internal/compute"
	"github.com/sluicehq/sluice/internal/compute/localproc"
	"github.com/sluicehq/sluice/internal/console"
	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/dynamolocal"
	"github.com/sluicehq/sluice/internal/httpapi"
	"github.com/sluicehq/sluice/internal/lambdalocal"
	"github.com/sluicehq/sluice/internal/localsfn"
	"github.com/sluicehq/sluice/internal/reconciler"
	"github.com/sluicehq/sluice/internal/runtimeclient"
	"github.com/sluicehq/sluice/internal/steps"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/supervisor"
	"github.com/sluicehq/sluice/internal/workflow"
)

// Local names of the functions and state machines (as template.yaml's
// logical resources are named on AWS).
const (
	FunctionSteps      = "sluice-steps"
	FunctionAPI        = "sluice-api"
	FunctionAuthorizer = "sluice-authorizer"
	FunctionReconciler = "sluice-reconciler"
	StateMachinePrefix = "sluice-"
	DefaultTable       = "sluice-pipelines"
)

// Config of a local stack. Zero values give an in-memory stack on free ports.
type Config struct {
	// ModuleRoot is the repository root (found from the working directory when empty).
	ModuleRoot string
	// DataDir holds persistent state: DynamoDB's files, the workflow
	// executions, the local compute's processes and storage. Empty: a
	// temporary directory, removed on Close, and an in-memory DynamoDB.
	DataDir string
	// APIAddr is where the API listens (127.0.0.1:0 when empty).
	APIAddr string
	// Ports of the parts (0: a free port).
	DynamoPort, SFNPort, LambdaPort int
	// ExtraStateMachines are served by the local Step Functions service
	// beside the four workflows (the bench's one-state floor machine).
	ExtraStateMachines []localsfn.StateMachine
	// DynamoEndpoint: use this running DynamoDB instead of starting one.
	DynamoEndpoint string
	// Table name (DefaultTable when empty).
	Table string
	// Driver is the compute driver; nil: local processes running the sample
	// runtime (built into DataDir/bin).
	Driver compute.Driver
	// RuntimeFor dials runtimes; nil: runtimeclient.
	RuntimeFor func(location string) (steps.Runtime, error)
	// Steps tunes the workflow loops.
	Steps steps.Config
	// Overrides shorten Wait states and Retry pauses of the local engine
	// (milliseconds; tests use them, `make run` does not).
	Overrides localsfn.Overrides
	// ReconcileInterval: how often the reconciler runs (0: every 10 s;
	// negative: never, tests call Reconcile themselves).
	ReconcileInterval time.Duration
	// APIStarter, when set, wraps the workflow starter the API uses (tests:
	// a fault between the API's write and its StartExecution). Nil: the
	// stack's workflow.SFN as it is.
	APIStarter func(workflow.Starter) workflow.Starter
	// AuthDisabled turns authentication off (a warning is logged).
	AuthDisabled bool
	// APIKey is the write key to accept; empty: one is generated. Either way
	// it is stored (by hash) and returned in Stack.APIKey.
	APIKey string
	// Logger receives every part's JSON logs. Nil: discarded.
	Logger *slog.Logger
	// ServiceLog receives the output of DynamoDB Local and the Step Functions
	// service. Nil: discarded.
	ServiceLog io.Writer
	// RestartBackoff is the pause before a dead part's first restart
	// (doubling up to MaxBackoff); 0: MinBackoff.
	RestartBackoff time.Duration
	// WrapAWSHTTP, when set, wraps the HTTP client of the stack's DynamoDB
	// and Step Functions clients (shared by the API, the steps and the
	// reconciler): the bench times the API's own calls through it.
	WrapAWSHTTP func(aws.HTTPClient) aws.HTTPClient
	// ReconcilerShards > 1 shards the reconciler as on AWS: each scheduled
	// run invokes the reconciler function, which invokes itself once per
	// shard (reconciler.Entry). 0 or 1: one pass.
	ReconcilerShards int
}

// ProfilePartAPI is the lambdalocal.ProfileLabel value of the API server's
// goroutines and request contexts.
const ProfilePartAPI = "api"

// ProfilePartLambdaEndpoint is the label value of the local Invoke
// endpoint's server goroutines (an invocation's own carry the function's).
const ProfilePartLambdaEndpoint = "lambda-endpoint"

func wrapHTTP(cfg Config, c aws.HTTPClient) aws.HTTPClient {
	if cfg.WrapAWSHTTP == nil {
		return c
	}
	return cfg.WrapAWSHTTP(c)
}

// Stack is a running local control plane.
type Stack struct {
	APIURL         string
	ConsoleURL     string // the local console (APIURL + console.Prefix)
	DynamoEndpoint string
	SFNEndpoint    string
	LambdaEndpoint string
	APIKey         string
	Table          string
	DataDir        string

	Store      *store.Dynamo
	Dynamo     *dynamodb.Client
	SFN        *sfn.Client
	Workflows  *workflow.SFN
	Steps      *steps.Steps
	Reconciler *reconciler.Reconciler
	// ReconcilerFunction is the reconciler function's handler (registered
	// as FunctionReconciler).
	ReconcilerFunction *reconciler.Entry
	Driver             compute.Driver
	Lambda             *lambdalocal.Server
	Machines           map[domain.WorkflowKind]string

	dynamo  *dynamolocal.Instance
	sfnSvc  *localsfn.Service
	supMu   sync.Mutex
	sups    map[string]*supervisor.Supervisor // the supervised parts, by name
	backoff time.Duration                     // Config.RestartBackoff
	closers []func() error
	cancel  context.CancelFunc
	tempDir string
}

// Start brings the stack up. On error everything already started is stopped.
func Start(ctx context.Context, cfg Config) (st *Stack, err error) {
	s := &Stack{}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	root := cfg.ModuleRoot
	if root == "" {
		if root, err = dynamolocal.ModuleRoot(); err != nil {
			return nil, err
		}
	}
	if s.DataDir = cfg.DataDir; s.DataDir == "" {
		if s.tempDir, err = os.MkdirTemp("", "sluice-local-"); err != nil {
			return nil, err
		}
		s.DataDir = s.tempDir
	}
	if err := os.MkdirAll(s.DataDir, 0o755); err != nil {
		return nil, err
	}
	s.Table = cfg.Table
	if s.Table == "" {
		s.Table = DefaultTable
	}
	if err := checkPorts(cfg); err != nil {
		return nil, err
	}

	// State store.
	s.backoff = cfg.RestartBackoff
	if err := s.startDynamo(ctx, cfg, logger); err != nil {
		return nil, err
	}
	if s.Dynamo, err = dynamolocal.NewClient(ctx, s.DynamoEndpoint, func(o *dynamodb.Options) { o.HTTPClient = wrapHTTP(cfg, o.HTTPClient) }); err != nil {
		return nil, err
	}
	tmpl, err := dynamolocal.TemplatePath()
	if err != nil {
		return nil, err
	}
	if err := dynamolocal.EnsureTable(ctx, s.Dynamo, tmpl, s.Table); err != nil {
		return nil, fmt.Errorf("creating the table: %w", err)
	}
	s.Store = store.NewDynamo(s.Dynamo, s.Table, store.WithLogger(logger))

	// Compute.
	if s.Driver = cfg.Driver; s.Driver == nil {
		d, err := s.localDriver(ctx, root, logger)
		if err != nil {
			return nil, err
		}
		s.Driver = d
	}
	runtimeFor := cfg.RuntimeFor
	if runtimeFor == nil {
		runtimeFor = func(location string) (steps.Runtime, error) { return runtimeclient.New(location) }
	}

	// Lambda endpoint first (the state machines call it), then Step Functions.
	// Each of the three is supervised: restarted, on the same port, when it
	// dies (see supervise.go).
	s.Lambda = lambdalocal.NewServer()
	s.Lambda.Region, s.Lambda.Account = localsfn.DefaultRegion, localsfn.DefaultAccount
	lambdaURL, err := s.superviseLambda(ctx, cfg.LambdaPort, logger)
	if err != nil {
		return nil, fmt.Errorf("local Lambda endpoint: %w", err)
	}
	s.LambdaEndpoint = lambdaURL
	s.closers = append(s.closers, func() error {
		if err := s.stopPart(PartLambda); err != nil {
			return fmt.Errorf("stopping the Lambda endpoint: %w", err)
		}
		return nil
	})
	if err := localsfn.EnsureInstalled(ctx, root); err != nil {
		return nil, err
	}
	machines := make([]localsfn.StateMachine, 0, len(domain.AllWorkflowKinds))
	for _, kind := range domain.AllWorkflowKinds {
		machines = append(machines, localsfn.StateMachine{
			Name:           StateMachinePrefix + string(kind),
			DefinitionFile: filepath.Join("statemachine", string(kind)+".asl.json"),
			Substitutions:  map[string]string{"StepsFunctionArn": FunctionARN(FunctionSteps)},
		})
	}
	machines = append(machines, cfg.ExtraStateMachines...)
	err = s.superviseSFN(ctx, localsfn.Config{
		ModuleRoot: root, Port: cfg.SFNPort, StateMachines: machines, LambdaEndpoint: lambdaURL, LambdaCredentials: s.Lambda.Credentials(),
		Overrides: cfg.Overrides, StateFile: filepath.Join(s.DataDir, ExecFileName), Log: cfg.ServiceLog,
		PIDFile: filepath.Join(s.DataDir, SFNPIDFileName),
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("local Step Functions service: %w", err)
	}
	s.SFNEndpoint = s.sfnSvc.Endpoint
	if s.SFN, err = localsfn.NewClient(ctx, s.SFNEndpoint, func(o *sfn.Options) { o.HTTPClient = wrapHTTP(cfg, o.HTTPClient) }); err != nil {
		return nil, err
	}
	s.Machines = map[domain.WorkflowKind]string{}
	for _, kind := range domain.AllWorkflowKinds {
		s.Machines[kind] = s.sfnSvc.StateMachineArn(StateMachinePrefix + string(kind))
	}
	if s.Workflows, err = workflow.NewSFN(workflow.SFNConfig{Client: s.SFN, StateMachines: s.Machines}); err != nil {
		return nil, err
	}

	// The functions. Their writes go through a store that logs every status
	// change (the terminal summary of `make run` shows them).
	logged := newLoggingStore(s.Store, logger.With("component", "store"))
	s.Steps = &steps.Steps{Store: logged, Driver: s.Driver, RuntimeFor: runtimeFor, Continuer: s.Workflows,
		Config: cfg.Steps, Logger: logger.With("function", FunctionSteps)}
	s.Reconciler = &reconciler.Reconciler{Store: logged, Workflows: s.Workflows, Driver: s.Driver,
		RuntimeFor: runtimeFor, Logger: logger.With("function", FunctionReconciler)}
	verifier, err := auth.NewVerifier(auth.Config{Disabled: cfg.AuthDisabled}, s.Store, logger.With("function", FunctionAuthorizer))
	if err != nil {
		return nil, err
	}
	// The runtimes' logs (GET /v0/pipelines/{name}/logs), from a driver that has them.
	logs, _ := s.Driver.(compute.LogReader)
	var starter workflow.Starter = s.Workflows
	if cfg.APIStarter != nil {
		starter = cfg.APIStarter(starter)
	}
	api, err := httpapi.New(httpapi.Config{Store: logged, Starter: starter, Verifier: verifier, Logger: logger.With("function", FunctionAPI), Logs: logs,
		// The local console's page of the execution (s.APIURL is set before the first request).
		ExecutionLink: func(arn string) (string, bool) { return console.ExecutionURL(s.APIURL, arn), true }})
	if err != nil {
		return nil, err
	}
	// The console beside the API, checked by the API's own verifier.
	con, err := console.New(console.Config{SFN: s.SFN, Machines: s.Machines, Verifier: verifier, Logger: logger.With("component", "console")})
	if err != nil {
		return nil, err
	}
	s.Lambda.Register(FunctionSteps, lambdalocal.FromLambda(s.Steps.Handle), lambdalocal.WithTimeout(5*time.Minute))
	// Not API Gateway's invocation: a caller's authorizer context is not trusted.
	s.Lambda.Register(FunctionAPI, lambdalocal.FromLambda(api.LambdaHandlerWithoutAuthorizer))
	s.Lambda.Register(FunctionAuthorizer, lambdalocal.FromLambda(auth.NewAPIGatewayAuthorizer(verifier, logger).Handle))
	// The reconciler function as on AWS (reconciler.Entry): with
	// Config.ReconcilerShards > 1 its scheduled invocation invokes it once
	// per shard, asynchronously, through this endpoint's Invoke API.
	s.ReconcilerFunction = &reconciler.Entry{Pass: s.Reconciler, Shards: cfg.ReconcilerShards,
		Invoker: reconcilerlambda.Invoker{Function: FunctionReconciler, Client: lambda.New(lambda.Options{
			Region: localsfn.DefaultRegion, BaseEndpoint: aws.String(s.LambdaEndpoint),
			Credentials: credentials.StaticCredentialsProvider{Value: s.Lambda.Credentials()}})}}
	s.Lambda.Register(FunctionReconciler, lambdalocal.FromLambda(s.ReconcilerFunction.Handle))

	// The API key.
	if s.APIKey, err = ensureAPIKey(ctx, s.Store, cfg.APIKey); err != nil {
		return nil, err
	}

	// The API server.
	apiAddr := cfg.APIAddr
	if apiAddr == "" {
		apiAddr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", apiAddr)
	if err != nil {
		return nil, fmt.Errorf("API address %s: %w", apiAddr, err)
	}
	// Requests derive from base, cancelled on close: a followed log stream
	// ends then instead of holding Shutdown up.
	// They and the server's goroutines carry the pprof label part=api
	// (lambdalocal.ProfileLabel): a profile, and Config.WrapAWSHTTP, can tell
	// the API's work and calls from the workflows'.
	base, cancelBase := context.WithCancel(pprof.WithLabels(context.Background(), pprof.Labels(lambdalocal.ProfileLabel, ProfilePartAPI)))
	srv := &http.Server{Handler: s.withHealth(withConsole(con, api)), ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return base }}
	go pprof.Do(base, pprof.Labels(), func(context.Context) { _ = srv.Serve(ln) })
	s.APIURL = "http://" + ln.Addr().String()
	s.ConsoleURL = s.APIURL + console.Prefix
	s.closers = append(s.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cancelBase()
		if err := srv.Shutdown(ctx); err != nil {
			return fmt.Errorf("stopping the API server: %w", err)
		}
		return nil
	})

	// The schedule.
	loopCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if cfg.ReconcileInterval >= 0 {
		interval := cfg.ReconcileInterval
		if interval == 0 {
			interval = 10 * time.Second
		}
		done := make(chan struct{})
		pass := func() error { _, err := s.Reconciler.Run(loopCtx); return err }
		what := "reconciler pass failed"
		if cfg.ReconcilerShards > 1 {
			// As on AWS: the schedule invokes the function, which invokes its shards.
			pass = func() error { _, err := s.InvokeReconciler(loopCtx); return err }
			what = "reconciler invocation failed"
		}
		go func() {
			defer close(done)
			every(loopCtx, interval, func() {
				if err := pass(); err != nil && loopCtx.Err() == nil {
					logger.Error(what, "function", FunctionReconciler, "error", err.Error())
				}
			})
		}()
		s.closers = append(s.closers, func() error { cancel(); <-done; return nil })
	}
	return s, nil
}

// asyncDrainTimeout bounds how long Close waits for asynchronous
// invocations (a reconciler pass stops taking pipelines 10 s before its
// deadline).
const asyncDrainTimeout = 60 * time.Second

// ScheduledEvent is the payload EventBridge's schedule sends the reconciler
// function (its "Scheduled Event" shape): what InvokeReconciler sends.
const ScheduledEvent = `{"version":"0","id":"00000000-0000-0000-0000-000000000000","detail-type":"Scheduled Event","source":"aws.events",` +
	`"account":"` + localsfn.DefaultAccount + `","region":"` + localsfn.DefaultRegion + `","resources":[],"detail":{}}`

// InvokeReconciler invokes the reconciler function as its schedule does (a
// coordinator when sharded) and returns its result.
func (s *Stack) InvokeReconciler(ctx context.Context) (json.RawMessage, error) {
	res, err := s.Lambda.Invoke(FunctionReconciler, []byte(ScheduledEvent))
	if err != nil {
		return nil, err
	}
	if res.FunctionError != "" {
		return res.Payload, fmt.Errorf("reconciler: %s: %s", res.ErrorType, res.Payload)
	}
	return res.Payload, nil
}

// every runs f at once, then every interval, until ctx ends.
func every(ctx context.Context, interval time.Duration, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		f()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// FunctionARN is the ARN of a local function.
func FunctionARN(name string) string {
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", localsfn.DefaultRegion, localsfn.DefaultAccount, name)
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// checkPorts refuses to start when a configured port is taken, before
// anything is started.
func checkPorts(cfg Config) error {
	ports := map[string]int{"DynamoDB Local": cfg.DynamoPort, "Step Functions": cfg.SFNPort, "Lambda": cfg.LambdaPort}
	if cfg.DynamoEndpoint != "" {
		delete(ports, "DynamoDB Local")
	}
	for name, port := range ports {
		if port == 0 {
			continue
		}
		ln, err := net.Listen("tcp", addr(port))
		if err != nil {
			return fmt.Errorf("port %d for %s is taken (choose another): %w", port, name, err)
		}
		_ = ln.Close()
	}
	if cfg.APIAddr != "" && cfg.APIAddr != "127.0.0.1:0" {
		ln, err := net.Listen("tcp", cfg.APIAddr)
		if err != nil {
			return fmt.Errorf("API address %s is taken (choose another): %w", cfg.APIAddr, err)
		}
		_ = ln.Close()
	}
	return nil
}

func (s *Stack) startDynamo(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if cfg.DynamoEndpoint != "" {
		s.DynamoEndpoint = cfg.DynamoEndpoint
		return nil
	}
	jar, err := dynamolocal.EnsureJar(ctx, "")
	if err != nil {
		return err
	}
	opts := dynamolocal.Options{JarDir: jar, Port: cfg.DynamoPort, Stdout: cfg.ServiceLog, Stderr: cfg.ServiceLog,
		PIDFile: filepath.Join(s.DataDir, DynamoPIDFileName)}
	if cfg.DataDir != "" {
		opts.DBPath = filepath.Join(s.DataDir, DynamoDir)
		if err := os.MkdirAll(opts.DBPath, 0o755); err != nil {
			return err
		}
	}
	if err := s.superviseDynamo(ctx, opts, logger); err != nil {
		return err
	}
	s.DynamoEndpoint = s.dynamo.Endpoint
	return nil
}

// localDriver builds the sample runtime and a process driver over DataDir.
func (s *Stack) localDriver(ctx context.Context, root string, logger *slog.Logger) (*localproc.Driver, error) {
	bin := filepath.Join(s.DataDir, "bin", "sample-runtime")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./infra/sample-runtime")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the sample runtime: %v\n%s", err, out)
	}
	d, err := localproc.New(localproc.Config{Root: filepath.Join(s.DataDir, "compute"), RuntimeBinary: bin, Logger: logger.With("component", "localproc")})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return d.Shutdown(ctx)
	})
	return d, nil
}

// ensureAPIKey stores the given key (or a new one) with the write role.
func ensureAPIKey(ctx context.Context, st *store.Dynamo, key string) (string, error) {
	if key == "" {
		secret, _, err := auth.CreateKey(ctx, st, store.RoleWrite, "local stack")
		return secret, err
	}
	if len(key) <= len(auth.APIKeyPrefix) || key[:len(auth.APIKeyPrefix)] != auth.APIKeyPrefix {
		return "", fmt.Errorf("SLUICE_API_KEY must start with %q", auth.APIKeyPrefix)
	}
	hash := auth.HashAPIKey(key)
	if existing, err := st.GetAPIKey(ctx, hash); err == nil {
		if existing.Role != store.RoleWrite {
			return "", fmt.Errorf("the given API key exists with role %q; the local stack needs a write key", existing.Role)
		}
		return key, nil
	}
	err := st.PutAPIKey(ctx, store.APIKey{Hash: hash, ID: hash[:12], Role: store.RoleWrite, Description: "local stack (SLUICE_API_KEY)", CreatedAt: time.Now().UTC()})
	if err != nil && !errors.Is(err, store.ErrAlreadyExists) {
		return "", err
	}
	return key, nil
}

// Reconcile runs one reconciler pass now.
func (s *Stack) Reconcile(ctx context.Context) (reconciler.Report, error) {
	return s.Reconciler.Run(ctx)
}

// RestartDynamo restarts DynamoDB Local (persistent stacks keep their data).
func (s *Stack) RestartDynamo(ctx context.Context) error {
	if s.dynamo == nil {
		return errors.New("DynamoDB is external to this stack")
	}
	return s.dynamo.Restart(ctx)
}

// Close stops everything, in reverse order, and waits for it.
func (s *Stack) Close() error {
	if s.cancel != nil {
		s.cancel()
	}
	var errs []error
	if s.Lambda != nil {
		// The asynchronous invocations queued (a sharded reconciler's
		// shards) end before the parts they call stop.
		ctx, cancel := context.WithTimeout(context.Background(), asyncDrainTimeout)
		if err := s.Lambda.WaitAsync(ctx); err != nil {
			errs = append(errs, fmt.Errorf("asynchronous invocations still running after %s: %w", asyncDrainTimeout, err))
		}
		cancel()
	}
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	s.closers = nil
	errs = append(errs, s.stopPart(PartSFN))
	if s.sfnSvc != nil {
		errs = append(errs, s.sfnSvc.Stop())
		s.sfnSvc = nil
	}
	errs = append(errs, s.stopPart(PartDynamo))
	if s.dynamo != nil {
		errs = append(errs, s.dynamo.Stop())
		s.dynamo = nil
	}
	if s.tempDir != "" {
		errs = append(errs, os.RemoveAll(s.tempDir))
		s.tempDir = ""
	}
	return errors.Join(errs...)
}
