package supervisor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// State of a supervised part.
type State string

const (
	// Up: the part is running and passed its readiness probe.
	Up State = "up"
	// Down: the part died (or its restart failed); a restart is scheduled
	// after the back-off.
	Down State = "down"
	// Restarting: a new incarnation is being started (waiting for readiness).
	Restarting State = "restarting"
	// Stopped: Stop was called (or the part never started).
	Stopped State = "stopped"
)

// Status is what a Supervisor reports about its part.
type Status struct {
	Part  string `json:"-"`
	State State  `json:"state"`
	// Since is when the part came up (Up), or when it stopped being up
	// (Down and Restarting: the outage began then), or was stopped.
	Since time.Time `json:"since"`
	// LastError is how the last incarnation ended, or why the last restart
	// failed (kept after the part is back up).
	LastError string `json:"last_error,omitempty"`
	// Restarts counts the incarnations started after the first.
	Restarts int `json:"restarts"`
	// Pid of the running incarnation (child processes only).
	Pid int `json:"pid,omitempty"`
}

// Instance is one incarnation of a part: Done is closed when it has ended.
// It may also have `Pid() int` and `ExitErr() error` (Process has both).
type Instance interface {
	Done() <-chan struct{}
}

// Defaults of Config.
const (
	DefaultMinBackoff = 250 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
	DefaultResetAfter = time.Minute
)

// Config of a Supervisor.
type Config struct {
	// Name of the part ("dynamodb", "stepfunctions", "lambda").
	Name string
	// Start starts one incarnation and returns once it is ready (it keeps
	// the same port, data and state file every time).
	Start func(ctx context.Context) (Instance, error)
	// Stop ends an incarnation on Supervisor.Stop (nil: nothing to do, the
	// instance ends by itself).
	Stop func(Instance) error
	// MinBackoff is the pause before the first restart; it doubles with
	// every consecutive failure (a restart that fails, or an incarnation
	// that dies within ResetAfter of its start) up to MaxBackoff.
	MinBackoff, MaxBackoff, ResetAfter time.Duration
	// OnChange is called (one call at a time, in order) on every state
	// change, with the new status.
	OnChange func(Status)
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Supervisor keeps one part running.
type Supervisor struct {
	cfg Config

	mu     sync.Mutex
	status Status
	cur    Instance

	notifyMu sync.Mutex
	stop     context.CancelFunc
	done     chan struct{}
}

// New returns a supervisor; Start starts the part.
func New(cfg Config) *Supervisor {
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	if cfg.ResetAfter <= 0 {
		cfg.ResetAfter = DefaultResetAfter
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Supervisor{cfg: cfg, status: Status{Part: cfg.Name, State: Stopped, Since: cfg.Now()}}
}

// Start starts the first incarnation (synchronously: its error is returned
// and nothing is supervised then), then watches it in the background.
func (s *Supervisor) Start(ctx context.Context) error {
	if s.cfg.Start == nil {
		return errors.New("supervisor: Config.Start is nil")
	}
	inst, err := s.cfg.Start(ctx)
	if err != nil {
		return err
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	s.mu.Lock()
	s.cur, s.stop, s.done = inst, cancel, make(chan struct{})
	s.mu.Unlock()
	s.set(func(st *Status) { st.State, st.Since, st.Pid = Up, s.cfg.Now(), pidOf(inst) })
	go s.loop(loopCtx, inst)
	return nil
}

// Status is the part's current status.
func (s *Supervisor) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// Current is the running incarnation (nil while down).
func (s *Supervisor) Current() Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status.State != Up {
		return nil
	}
	return s.cur
}

// Stop stops supervising and ends the current incarnation (via Config.Stop).
// It waits for a restart in progress to give up first.
func (s *Supervisor) Stop() error {
	s.mu.Lock()
	cancel, done := s.stop, s.done
	s.stop = nil
	s.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	<-done
	s.mu.Lock()
	inst := s.cur
	s.cur = nil
	s.mu.Unlock()
	var err error
	if inst != nil && s.cfg.Stop != nil {
		err = s.cfg.Stop(inst)
	}
	s.set(func(st *Status) { st.State, st.Since, st.Pid = Stopped, s.cfg.Now(), 0 })
	return err
}

func (s *Supervisor) loop(ctx context.Context, inst Instance) {
	defer close(s.done)
	failures := 0
	for {
		began := s.cfg.Now()
		select {
		case <-ctx.Done():
			return
		case <-inst.Done():
		}
		if ctx.Err() != nil {
			return // ended by Stop
		}
		if s.cfg.Now().Sub(began) >= s.cfg.ResetAfter {
			failures = 0
		}
		s.set(func(st *Status) {
			st.State, st.Since, st.Pid = Down, s.cfg.Now(), 0
			st.LastError = exitText(inst)
		})
		for {
			delay := backoff(s.cfg.MinBackoff, s.cfg.MaxBackoff, failures)
			failures++
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			s.set(func(st *Status) { st.State = Restarting })
			next, err := s.cfg.Start(ctx)
			if ctx.Err() != nil {
				if err == nil && s.cfg.Stop != nil {
					_ = s.cfg.Stop(next)
				}
				return
			}
			if err != nil {
				s.set(func(st *Status) { st.State, st.LastError = Down, err.Error() })
				continue
			}
			inst = next
			s.mu.Lock()
			s.cur = inst
			s.mu.Unlock()
			s.set(func(st *Status) { st.State, st.Since, st.Pid = Up, s.cfg.Now(), pidOf(inst); st.Restarts++ })
			break
		}
	}
}

// set changes the status and calls OnChange with it (in order).
func (s *Supervisor) set(change func(*Status)) {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	s.mu.Lock()
	change(&s.status)
	st := s.status
	s.mu.Unlock()
	if s.cfg.OnChange != nil {
		s.cfg.OnChange(st)
	}
}

// backoff is min·2^n, capped at max.
func backoff(minD, maxD time.Duration, n int) time.Duration {
	d := minD
	for i := 0; i < n && d < maxD; i++ {
		d *= 2
	}
	return min(d, maxD)
}

func pidOf(inst Instance) int {
	if p, ok := inst.(interface{ Pid() int }); ok {
		return p.Pid()
	}
	return 0
}

func exitText(inst Instance) string {
	e, ok := inst.(interface{ ExitErr() error })
	if !ok {
		return "ended"
	}
	if err := e.ExitErr(); err != nil {
		return fmt.Sprintf("exited: %v", err)
	}
	return "exited with status 0"
}
