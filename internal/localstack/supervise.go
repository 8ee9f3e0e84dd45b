package localstack

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"runtime/pprof"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/internal/dynamolocal"
	"github.com/sluicehq/sluice/internal/lambdalocal"
	"github.com/sluicehq/sluice/internal/localsfn"
	"github.com/sluicehq/sluice/internal/supervisor"
)

// The supervised parts of the local stack, as /healthz names them.
const (
	PartDynamo = "dynamodb"
	PartSFN    = "stepfunctions"
	PartLambda = "lambda"
)

// Supervision settings: a dead part is restarted after MinBackoff, doubling
// with every consecutive failure up to MaxBackoff (an incarnation that stays
// up a minute resets it).
var (
	MinBackoff = 250 * time.Millisecond
	MaxBackoff = 30 * time.Second
)

// Health is the local stack's /healthz document: "ok" (HTTP 200) while every
// supervised part is up, else "degraded" (HTTP 503), with each part's state.
type Health struct {
	Status string                       `json:"status"`
	Parts  map[string]supervisor.Status `json:"parts"`
}

// Health reports the supervised parts (a DynamoDB given by DynamoEndpoint
// is not one).
func (s *Stack) Health() Health {
	h := Health{Status: "ok", Parts: map[string]supervisor.Status{}}
	s.supMu.Lock()
	sups := maps.Clone(s.sups)
	s.supMu.Unlock()
	for name, sup := range sups {
		st := sup.Status()
		h.Parts[name] = st
		if st.State != supervisor.Up {
			h.Status = "degraded"
		}
	}
	return h
}

// withHealth answers GET /healthz (no query) with the stack's Health; every
// other request goes to next (the API, whose own /healthz is the Lambda's).
func (s *Stack) withHealth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" || r.Method != http.MethodGet || r.URL.RawQuery != "" {
			next.ServeHTTP(w, r)
			return
		}
		h := s.Health()
		b, _ := json.Marshal(h)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if h.Status != "ok" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = w.Write(append(b, '\n'))
	})
}

// supervise starts a part under a supervisor and registers it.
func (s *Stack) supervise(ctx context.Context, name string, logger *slog.Logger, start func(context.Context) (supervisor.Instance, error), stop func(supervisor.Instance) error) (*supervisor.Supervisor, error) {
	log := logger.With("component", "local", "part", name)
	var last supervisor.State
	var downAt time.Time
	sup := supervisor.New(supervisor.Config{
		Name: name, Start: start, Stop: stop, MinBackoff: cmp.Or(s.backoff, MinBackoff), MaxBackoff: max(MaxBackoff, s.backoff),
		OnChange: func(st supervisor.Status) {
			prev := last
			last = st.State
			switch {
			case st.State == supervisor.Down && prev == supervisor.Up:
				downAt = st.Since
				log.Warn(MsgPartDown, "error", st.LastError, "restarts", st.Restarts)
			case st.State == supervisor.Down:
				log.Warn(MsgPartRestartFailed, "error", st.LastError)
			case st.State == supervisor.Up && prev != "" && prev != supervisor.Stopped:
				log.Info(MsgPartBack, "restarts", st.Restarts, "pid", st.Pid, "down_ms", st.Since.Sub(downAt).Milliseconds())
			case st.State == supervisor.Restarting:
				log.Debug("part restarting")
			}
		},
	})
	if err := sup.Start(ctx); err != nil {
		return nil, err
	}
	s.supMu.Lock()
	if s.sups == nil {
		s.sups = map[string]*supervisor.Supervisor{}
	}
	s.sups[name] = sup
	s.supMu.Unlock()
	return sup, nil
}

// Messages of the supervision log lines (the terminal shows them).
const (
	MsgPartDown          = "part down"
	MsgPartRestartFailed = "part restart failed"
	MsgPartBack          = "part back up"
)

// superviseDynamo starts DynamoDB Local under supervision. A restart reuses
// the port and (persistent stacks) the -dbPath data; an instance some other
// caller already restarted (RestartDynamo) is adopted.
func (s *Stack) superviseDynamo(ctx context.Context, opts dynamolocal.Options, logger *slog.Logger) error {
	_, err := s.supervise(ctx, PartDynamo, logger, func(ctx context.Context) (supervisor.Instance, error) {
		if s.dynamo == nil {
			inst, err := dynamolocal.Start(ctx, opts)
			if err != nil {
				return nil, err
			}
			s.dynamo = inst
			return inst.Process(), nil
		}
		if p := s.dynamo.Process(); p != nil && !p.Exited() {
			return p, nil
		}
		if err := s.dynamo.Restart(ctx); err != nil {
			return nil, err
		}
		return s.dynamo.Process(), nil
	}, func(supervisor.Instance) error { return s.dynamo.Stop() })
	if err != nil {
		return fmt.Errorf("DynamoDB Local: %w", err)
	}
	return nil
}

// superviseSFN starts the Step Functions service under supervision. A
// restart reuses the port and the state file (executions that were running
// come back ABORTED; the reconciler starts their next attempt).
func (s *Stack) superviseSFN(ctx context.Context, cfg localsfn.Config, logger *slog.Logger) error {
	_, err := s.supervise(ctx, PartSFN, logger, func(ctx context.Context) (supervisor.Instance, error) {
		if s.sfnSvc == nil {
			svc, err := localsfn.Start(ctx, cfg)
			if err != nil {
				return nil, err
			}
			s.sfnSvc = svc
			return svc.Process(), nil
		}
		if p := s.sfnSvc.Process(); p != nil && !p.Exited() {
			return p, nil
		}
		if err := s.sfnSvc.Restart(ctx); err != nil {
			return nil, err
		}
		return s.sfnSvc.Process(), nil
	}, func(supervisor.Instance) error { return s.sfnSvc.Stop() })
	return err
}

// lambdaServer is one incarnation of the Lambda endpoint's HTTP server.
type lambdaServer struct {
	srv  *http.Server
	done chan struct{}
	err  error
}

func (l *lambdaServer) Done() <-chan struct{} { return l.done }
func (l *lambdaServer) ExitErr() error {
	if errors.Is(l.err, http.ErrServerClosed) {
		return errors.New("server closed")
	}
	return l.err
}

// superviseLambda serves the in-process Lambda endpoint under supervision:
// when its server ends (its listener failed or was closed) a new one listens
// on the same port.
func (s *Stack) superviseLambda(ctx context.Context, port int, logger *slog.Logger) (string, error) {
	addrNow := addr(port)
	var mu sync.Mutex
	_, err := s.supervise(ctx, PartLambda, logger, func(context.Context) (supervisor.Instance, error) {
		mu.Lock()
		defer mu.Unlock()
		ln, err := net.Listen("tcp", addrNow)
		if err != nil {
			return nil, fmt.Errorf("local Lambda endpoint: listen %s: %w", addrNow, err)
		}
		addrNow = ln.Addr().String() // port 0: keep the one picked first
		l := &lambdaServer{srv: &http.Server{Handler: s.Lambda, ReadHeaderTimeout: 10 * time.Second}, done: make(chan struct{})}
		go pprof.Do(context.Background(), pprof.Labels(lambdalocal.ProfileLabel, ProfilePartLambdaEndpoint), func(context.Context) {
			l.err = l.srv.Serve(ln)
			close(l.done)
		})
		return l, nil
	}, func(i supervisor.Instance) error {
		l := i.(*lambdaServer)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := l.srv.Shutdown(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			// A step still running (the Step Functions service stops after
			// this endpoint, and a step may wait out a runtime's 5 s
			// timeout) is cut off, as Lambda ends an invocation whose
			// environment goes away; the workflows are level-triggered.
			logger.Warn("local Lambda endpoint stopped with invocations in flight; they were cut off", "part", PartLambda)
			err = l.srv.Close()
		}
		<-l.done
		return err
	})
	if err != nil {
		return "", err
	}
	mu.Lock()
	defer mu.Unlock()
	return "http://" + addrNow, nil
}

// PartNames are the supervised parts of this stack, sorted.
func (s *Stack) PartNames() []string {
	s.supMu.Lock()
	defer s.supMu.Unlock()
	return slices.Sorted(maps.Keys(s.sups))
}

// CrashPart makes a part die as a crash would (chaos tests): SIGKILL to the
// DynamoDB Local or Step Functions service process, the Lambda endpoint's
// server closed with its connections. The supervisor notices and restarts it.
func (s *Stack) CrashPart(name string) error {
	s.supMu.Lock()
	sup := s.sups[name]
	s.supMu.Unlock()
	if sup == nil {
		return fmt.Errorf("no supervised part %q", name)
	}
	switch inst := sup.Current().(type) {
	case nil:
		return fmt.Errorf("%s is not up", name)
	case *lambdaServer:
		return inst.srv.Close()
	case *supervisor.Process:
		return syscall.Kill(inst.Pid(), syscall.SIGKILL)
	default:
		return fmt.Errorf("%s: cannot crash a %T", name, inst)
	}
}

// stopPart stops a part's supervisor (and so the part).
func (s *Stack) stopPart(name string) error {
	s.supMu.Lock()
	sup := s.sups[name]
	delete(s.sups, name)
	s.supMu.Unlock()
	if sup == nil {
		return nil
	}
	return sup.Stop()
}
