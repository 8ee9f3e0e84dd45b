package sampleruntime

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Runtime statuses (SPEC §2.2) and desired statuses, as reported on /status.
const (
	StatusInitializing = "Initializing"
	StatusRunning      = "Running"
	StatusPaused       = "Paused"
	StatusSuspending   = "Suspending"
	StatusSuspended    = "Suspended"

	DesiredRunning   = "Running"
	DesiredPaused    = "Paused"
	DesiredSuspended = "Suspended"
)

// CrashExitCode is the exit code of an injected crash.
const CrashExitCode = 3

// DefaultTickInterval is how often the ingest loop processes a batch.
const DefaultTickInterval = 10 * time.Millisecond

// Options configure a Runtime.
type Options struct {
	Config Config
	// StorageDir holds the checkpoints (required when Config.Storage).
	StorageDir string
	// Initial is "Running" (default) or "Paused".
	Initial      string
	Pipeline     string
	DeploymentID string
	Logger       *slog.Logger
	// TickInterval is the ingest period (default 10ms); each tick processes the
	// events owed at EventsPerSec since the previous one.
	TickInterval time.Duration
	// Exit is called for injected crashes (default os.Exit). If it returns (tests),
	// the runtime behaves as dead: it stops everything and drops HTTP connections.
	Exit func(code int)
}

// Stats is the answer of GET /stats: Feldera's statistics (ControllerStatus:
// global_metrics, inputs, outputs) plus the job's own fields (count, sum, …),
// which Feldera's clients ignore.
type Stats struct {
	GlobalMetrics GlobalMetrics    `json:"global_metrics"`
	Inputs        []InputEndpoint  `json:"inputs"`
	Outputs       []OutputEndpoint `json:"outputs"`

	Count              uint64 `json:"count"`
	Sum                uint64 `json:"sum"`
	LastSequenceNumber int64  `json:"last_sequence_number"`
	// RestoredFromCheckpoint is the uuid of the checkpoint this incarnation resumed
	// from, nil when it started from scratch.
	RestoredFromCheckpoint *string `json:"restored_from_checkpoint"`
	// RestoredSequenceNumber is that checkpoint's sequence number.
	RestoredSequenceNumber *int64  `json:"restored_sequence_number"`
	IncarnationUUID        string  `json:"incarnation_uuid"`
	RuntimeStatus          string  `json:"runtime_status"`
	RuntimeDesiredStatus   string  `json:"runtime_desired_status"`
	Checkpoints            int     `json:"checkpoints"`
	EventsPerSec           float64 `json:"events_per_sec"`
	Pipeline               string  `json:"pipeline,omitempty"`
	DeploymentID           string  `json:"deployment_id,omitempty"`
}

// State returns the job state the stats describe.
func (s Stats) State() State {
	return State{Count: s.Count, Sum: s.Sum, LastSequenceNumber: s.LastSequenceNumber}
}

// ErrorBody is an error answer in Feldera's shape.
type ErrorBody struct {
	Message   string         `json:"message"`
	ErrorCode string         `json:"error_code"`
	Details   map[string]any `json:"details"`
}

// APIError is a refusal or failure of a runtime action, with its HTTP status.
type APIError struct {
	StatusCode int
	Body       ErrorBody
}

func (e *APIError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.StatusCode, e.Body.ErrorCode, e.Body.Message)
}

// CheckpointFailure is the last failed checkpoint request (GET /checkpoint_status).
type CheckpointFailure struct {
	SequenceNumber uint64 `json:"sequence_number"`
	Error          string `json:"error"`
}

// Runtime is one incarnation of the sample job.
type Runtime struct {
	opts        Options
	cfg         Config
	log         *slog.Logger
	incarnation string
	exit        func(int)

	startOnce sync.Once
	bgMu      sync.Mutex // guards closed and wg.Add against Close
	closed    bool
	stop      chan struct{}
	initDone  chan struct{}
	wg        sync.WaitGroup

	ckMu sync.Mutex // serializes checkpoints (snapshot + write)

	mu           sync.Mutex
	started      time.Time
	status       string
	desired      string
	state        State
	restoredFrom *string
	restoredSeq  *int64
	failed       *ErrorBody // set when the runtime failed (suspend error, init error)
	dead         bool       // crashed in a test (Exit returned)
	store        *Store
	ckRequests   uint64
	ckSuccess    *uint64
	ckFailure    *CheckpointFailure
	ckWritten    int // checkpoints written successfully in this incarnation
	suspendAsked bool
	owed         float64
	lastTick     time.Time
	steps        uint64 // ingest ticks that processed at least one event
	initialStart int64  // initial_start_time (seconds), set by initialize
}

// New prepares a runtime; Start runs it.
func New(opts Options) (*Runtime, error) {
	if opts.Initial == "" {
		opts.Initial = StatusRunning
	}
	if opts.Initial != StatusRunning && opts.Initial != StatusPaused {
		return nil, fmt.Errorf("initial state %q: want Running or Paused", opts.Initial)
	}
	if opts.Config.Storage && opts.StorageDir == "" {
		return nil, errors.New("a storage directory is required when storage is enabled")
	}
	if opts.Config.KeepCheckpoints < 1 {
		opts.Config.KeepCheckpoints = DefaultKeepCheckpoints
	}
	if opts.TickInterval <= 0 {
		opts.TickInterval = DefaultTickInterval
	}
	if opts.Exit == nil {
		opts.Exit = os.Exit
	}
	incarnation := newUUID()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("incarnation_uuid", incarnation)
	r := &Runtime{
		opts:        opts,
		cfg:         opts.Config,
		log:         log,
		incarnation: incarnation,
		exit:        opts.Exit,
		stop:        make(chan struct{}),
		initDone:    make(chan struct{}),
		status:      StatusInitializing,
		desired:     opts.Initial,
		state:       InitialState(),
	}
	return r, nil
}

// IncarnationUUID identifies this incarnation.
func (r *Runtime) IncarnationUUID() string { return r.incarnation }

// Start begins initialization (loading the newest checkpoint) in the background,
// then ingestion and periodic checkpoints. It also arms the crash fault.
func (r *Runtime) Start() {
	r.startOnce.Do(func() {
		r.mu.Lock()
		r.started = time.Now()
		r.mu.Unlock()
		r.log.Info("runtime starting", "initial", r.opts.Initial, "events_per_sec", r.cfg.EventsPerSec,
			"checkpoint_interval", r.cfg.CheckpointInterval.String(), "storage", r.cfg.Storage)
		if r.cfg.Fault.CrashAfter > 0 {
			r.goBackground(func() {
				if r.sleep(r.cfg.Fault.CrashAfter) {
					r.crash("crash_after_secs fault")
				}
			})
		}
		r.goBackground(r.initialize)
	})
}

// Close stops ingestion and every background activity and waits for them. It
// writes no checkpoint (a deprovision is a forced stop). The HTTP handler keeps
// answering.
func (r *Runtime) Close() {
	r.shutdown()
	r.wg.Wait()
}

// shutdown tells every background activity to stop.
func (r *Runtime) shutdown() {
	r.bgMu.Lock()
	defer r.bgMu.Unlock()
	if !r.closed {
		r.closed = true
		close(r.stop)
	}
}

// goBackground runs f in a goroutine that Close waits for (not after Close).
func (r *Runtime) goBackground(f func()) {
	r.bgMu.Lock()
	defer r.bgMu.Unlock()
	if r.closed {
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		f()
	}()
}

// sleep waits d or until Close; it reports whether d elapsed.
func (r *Runtime) sleep(d time.Duration) bool {
	if d <= 0 {
		select {
		case <-r.stop:
			return false
		default:
			return true
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.stop:
		return false
	}
}

func (r *Runtime) crash(why string) {
	r.log.Error("crashing", "reason", why, "exit_code", CrashExitCode)
	r.exit(CrashExitCode)
	// Only reached when the exit hook returns (tests): behave as a dead process.
	r.mu.Lock()
	r.dead = true
	r.mu.Unlock()
	r.shutdown()
}

func (r *Runtime) initialize() {
	defer close(r.initDone)
	if !r.sleep(r.cfg.Fault.Initializing) {
		return
	}
	if r.cfg.Storage {
		store, err := OpenStore(r.opts.StorageDir, r.cfg.KeepCheckpoints, r.log)
		var cp Checkpoint
		var ok bool
		if err == nil {
			cp, ok, err = store.Latest()
		}
		if err != nil {
			r.log.Error("initialization failed", "error", err.Error())
			r.mu.Lock()
			r.failed = &ErrorBody{Message: "initialization failed: " + err.Error(), ErrorCode: "InitializationError", Details: map[string]any{}}
			r.mu.Unlock()
			return
		}
		crashAfter := r.cfg.Fault.CheckpointCrashAfter
		store.exit = func(int) { r.crash("checkpoint_crash fault") }
		if r.cfg.Fault.CheckpointCrash {
			store.crashNow = func() bool {
				r.mu.Lock()
				defer r.mu.Unlock()
				return r.ckWritten >= crashAfter
			}
		}
		r.mu.Lock()
		r.initialStart = r.started.Unix()
		if ok && cp.InitialStartTime > 0 {
			r.initialStart = cp.InitialStartTime
		}
		store.initialStart = r.initialStart
		r.store = store
		if ok {
			r.state = cp.State
			uuid, seq := cp.UUID, cp.SequenceNumber
			r.restoredFrom, r.restoredSeq = &uuid, &seq
		}
		r.mu.Unlock()
		if ok {
			r.log.Info("resumed from checkpoint", "checkpoint_uuid", cp.UUID, "sequence_number", cp.SequenceNumber, "count", cp.State.Count)
		} else {
			r.log.Info("no checkpoint found: starting from the beginning of the stream")
		}
	}

	r.mu.Lock()
	switch r.desired {
	case DesiredSuspended:
		// A suspend arrived while initializing; its goroutine takes over.
	case DesiredPaused:
		r.status = StatusPaused
	default:
		r.status = StatusRunning
	}
	status := r.status
	r.mu.Unlock()
	r.log.Info("runtime initialized", "runtime_status", status)

	r.goBackground(r.ingestLoop)
	if r.cfg.Storage && r.cfg.CheckpointInterval > 0 {
		r.goBackground(r.periodicCheckpoints)
	}
}

func (r *Runtime) ingestLoop() {
	t := time.NewTicker(r.opts.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case now := <-t.C:
			r.ingestTick(now)
		}
	}
}

// ingestTick processes the events owed since the previous tick, if Running.
func (r *Runtime) ingestTick(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status != StatusRunning || r.failed != nil || r.dead {
		r.lastTick = time.Time{}
		r.owed = 0
		return
	}
	if r.lastTick.IsZero() {
		r.lastTick = now
		return
	}
	dt := now.Sub(r.lastTick)
	r.lastTick = now
	if dt <= 0 {
		return
	}
	if dt > time.Second { // after a stall, do not burst more than a second's worth
		dt = time.Second
	}
	r.owed += r.cfg.EventsPerSec * dt.Seconds()
	n := uint64(r.owed)
	r.owed -= float64(n)
	r.state.process(n)
	if n > 0 {
		r.steps++
	}
}

func (r *Runtime) periodicCheckpoints() {
	t := time.NewTicker(r.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.mu.Lock()
			ok := (r.status == StatusRunning || r.status == StatusPaused) && r.failed == nil && !r.dead
			r.mu.Unlock()
			if !ok {
				continue
			}
			if meta, err := r.checkpoint(); err != nil {
				r.log.Error("periodic checkpoint failed", "error", err.Error())
			} else {
				r.log.Info("periodic checkpoint written", "checkpoint_uuid", meta.UUID, "sequence_number", meta.SequenceNumber)
			}
		}
	}
}

// checkpoint snapshots the state and writes it. Snapshot and write happen under
// ckMu, so checkpoint generations follow snapshot order.
func (r *Runtime) checkpoint() (CheckpointMeta, error) {
	r.ckMu.Lock()
	defer r.ckMu.Unlock()
	r.mu.Lock()
	st, store := r.state, r.store
	r.mu.Unlock()
	if store == nil {
		return CheckpointMeta{}, errors.New("storage is not initialized")
	}
	meta, err := store.Write(st, r.incarnation, r.opts.Pipeline, r.opts.DeploymentID)
	if err == nil {
		r.mu.Lock()
		r.ckWritten++
		r.mu.Unlock()
	}
	return meta, err
}

// Snapshot returns the current statistics.
func (r *Runtime) Snapshot() Stats {
	rss, cpu := processUsage()
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Stats{
		Count:                  r.state.Count,
		Sum:                    r.state.Sum,
		LastSequenceNumber:     r.state.LastSequenceNumber,
		RestoredFromCheckpoint: r.restoredFrom,
		RestoredSequenceNumber: r.restoredSeq,
		IncarnationUUID:        r.incarnation,
		RuntimeStatus:          r.status,
		RuntimeDesiredStatus:   r.desired,
		EventsPerSec:           r.cfg.EventsPerSec,
		Pipeline:               r.opts.Pipeline,
		DeploymentID:           r.opts.DeploymentID,
	}
	var storageBytes uint64
	if r.store != nil {
		list := r.store.List()
		s.Checkpoints = len(list)
		for _, m := range list {
			storageBytes += uint64(max(m.Size, 0))
		}
	}
	var start, initial int64
	var uptime uint64
	if !r.started.IsZero() {
		start, initial = r.started.Unix(), r.started.Unix()
		uptime = uint64(max(now.Sub(r.started).Milliseconds(), 0))
	}
	if r.initialStart > 0 {
		initial = r.initialStart
	}
	n := r.state.Count
	s.GlobalMetrics = GlobalMetrics{
		State:                    pipelineState(r.status),
		TransactionStatus:        "NoTransaction",
		TransactionInitiators:    TransactionInitiators{InitiatedByConnectors: map[string]any{}},
		ConcurrentBootstrapPhase: "Inactive",
		RSSBytes:                 rss,
		MemoryPressure:           "low",
		CPUMsecs:                 cpu,
		UptimeMsecs:              uptime,
		StartTime:                start,
		IncarnationUUID:          r.incarnation,
		InitialStartTime:         initial,
		StorageBytes:             storageBytes,
		TotalInputRecords:        n,
		TotalProcessedRecords:    n,
		TotalCompletedRecords:    n,
		TotalInitiatedSteps:      r.steps,
		TotalCompletedSteps:      r.steps,
	}
	s.Inputs = []InputEndpoint{{
		EndpointName: GeneratorEndpoint,
		Config:       EndpointConfig{Stream: GeneratorStream},
		Metrics:      InputEndpointMetrics{TotalRecords: n},
	}}
	s.Outputs = []OutputEndpoint{}
	return s
}

// Status returns the runtime status and desired status.
func (r *Runtime) Status() (status, desired string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status, r.desired
}

// Checkpoints lists the stored checkpoints, newest last.
func (r *Runtime) Checkpoints() []CheckpointMeta {
	r.mu.Lock()
	store := r.store
	r.mu.Unlock()
	if store == nil {
		return []CheckpointMeta{}
	}
	return store.List()
}

func newAPIError(code int, errorCode, message string, details map[string]any) *APIError {
	if details == nil {
		details = map[string]any{}
	}
	return &APIError{StatusCode: code, Body: ErrorBody{Message: message, ErrorCode: errorCode, Details: details}}
}

// failedErrorLocked is the error every action answers once the runtime failed.
func (r *Runtime) failedErrorLocked() *APIError {
	if r.failed == nil {
		return nil
	}
	return &APIError{StatusCode: 500, Body: *r.failed}
}

func (r *Runtime) illegalLocked(action string) *APIError {
	return newAPIError(400, "IllegalPipelineAction",
		fmt.Sprintf("cannot %s: the pipeline is %s (desired %s); a suspended pipeline only stops", action, r.status, r.desired),
		map[string]any{"runtime_status": r.status, "runtime_desired_status": r.desired, "action": action})
}

func featureNotAvailable(feature string) *APIError {
	return newAPIError(400, "FeatureNotAvailable",
		fmt.Sprintf("%s needs storage, which is disabled in this pipeline's runtime_config", feature),
		map[string]any{"feature": feature})
}

// Suspend asks for a suspend: ingestion stops at once, then (after the
// suspend_delay fault) the final checkpoint is written and the status becomes
// Suspended. It is idempotent. Errors are *APIError.
func (r *Runtime) Suspend() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.failedErrorLocked(); err != nil {
		return err
	}
	if !r.cfg.Storage {
		return featureNotAvailable("suspend")
	}
	if r.suspendAsked {
		return nil
	}
	r.suspendAsked = true
	r.desired = DesiredSuspended
	r.status = StatusSuspending // the ingest loop processes nothing from now on
	r.log.Info("suspend requested", "count", r.state.Count, "last_sequence_number", r.state.LastSequenceNumber)
	r.goBackground(r.suspend)
	return nil
}

func (r *Runtime) suspend() {
	select {
	case <-r.initDone:
	case <-r.stop:
		return
	}
	if !r.sleep(r.cfg.Fault.SuspendDelay) {
		return
	}
	r.mu.Lock()
	if r.failed != nil || r.dead {
		r.mu.Unlock()
		return
	}
	if msg := r.cfg.Fault.SuspendError; msg != "" {
		r.failed = &ErrorBody{Message: msg, ErrorCode: "SuspendError", Details: map[string]any{"fault": "suspend_error"}}
		r.mu.Unlock()
		r.log.Error("suspend failed (suspend_error fault)", "error", msg)
		return
	}
	r.mu.Unlock()

	meta, err := r.checkpoint()
	r.mu.Lock()
	defer r.mu.Unlock()
	if errors.Is(err, ErrCrashed) || r.dead {
		return
	}
	if err != nil {
		r.failed = &ErrorBody{Message: "suspend failed: " + err.Error(), ErrorCode: "SuspendError", Details: map[string]any{}}
		r.log.Error("suspend failed", "error", err.Error())
		return
	}
	r.status = StatusSuspended
	r.log.Info("suspended", "checkpoint_uuid", meta.UUID, "sequence_number", meta.SequenceNumber, "count", r.state.Count)
}

// RequestCheckpoint writes a checkpoint now and answers its request sequence
// number. Errors are *APIError.
func (r *Runtime) RequestCheckpoint() (uint64, error) {
	r.mu.Lock()
	if err := r.failedErrorLocked(); err != nil {
		r.mu.Unlock()
		return 0, err
	}
	if !r.cfg.Storage {
		r.mu.Unlock()
		return 0, featureNotAvailable("checkpoint")
	}
	if r.suspendAsked {
		err := r.illegalLocked("checkpoint")
		r.mu.Unlock()
		return 0, err
	}
	if r.status == StatusInitializing {
		r.mu.Unlock()
		e := newAPIError(503, "PipelineInitializing", "the pipeline is still initializing; try again", nil)
		return 0, e
	}
	r.ckRequests++
	seq := r.ckRequests
	r.mu.Unlock()

	meta, err := r.checkpoint()

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dead {
		return 0, nil // crashed (tests only): the handler drops the connection
	}
	if err != nil {
		r.ckFailure = &CheckpointFailure{SequenceNumber: seq, Error: err.Error()}
		r.log.Error("checkpoint failed", "checkpoint_sequence_number", seq, "error", err.Error())
		return 0, newAPIError(500, "CheckpointFailed", "checkpoint failed: "+err.Error(), map[string]any{"checkpoint_sequence_number": seq})
	}
	if r.ckSuccess == nil || *r.ckSuccess < seq {
		s := seq
		r.ckSuccess = &s
	}
	r.log.Info("checkpoint written", "checkpoint_sequence_number", seq, "checkpoint_uuid", meta.UUID, "sequence_number", meta.SequenceNumber)
	return seq, nil
}

// CheckpointStatus returns the last successful and failed checkpoint requests.
func (r *Runtime) CheckpointStatus() (success *uint64, failure *CheckpointFailure) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ckSuccess != nil {
		s := *r.ckSuccess
		success = &s
	}
	if r.ckFailure != nil {
		f := *r.ckFailure
		failure = &f
	}
	return success, failure
}

// Pause moves Running to Paused (or records the wish while Initializing).
// Errors are *APIError.
func (r *Runtime) Pause() error { return r.setDesired("pause", DesiredPaused) }

// Resume moves Paused to Running (or records the wish while Initializing).
// Errors are *APIError.
func (r *Runtime) Resume() error { return r.setDesired("start", DesiredRunning) }

func (r *Runtime) setDesired(action, desired string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.failedErrorLocked(); err != nil {
		return err
	}
	if r.suspendAsked {
		return r.illegalLocked(action)
	}
	if r.desired != desired {
		r.log.Info("runtime desired status changed", "from", r.desired, "to", desired)
	}
	r.desired = desired
	if r.status != StatusInitializing {
		r.status = desired // Running and Paused are both statuses and desired statuses
	}
	return nil
}

// unavailableFor reports how long the unavailable_secs fault still lasts.
func (r *Runtime) unavailableFor(now time.Time) time.Duration {
	if r.cfg.Fault.Unavailable <= 0 {
		return 0
	}
	r.mu.Lock()
	started := r.started
	r.mu.Unlock()
	if started.IsZero() {
		return 0
	}
	if left := r.cfg.Fault.Unavailable - now.Sub(started); left > 0 {
		return left
	}
	return 0
}

func (r *Runtime) isDead() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dead
}
