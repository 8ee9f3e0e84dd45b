package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/compute/localproc"
	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/localstack"
	"github.com/sluicehq/sluice/internal/supervisor"
	"github.com/sluicehq/sluice/internal/workflow"
)

// healthWatch polls the stack's /healthz (as an operator would) and keeps,
// per part, every observation that was not "up" and the last one.
type healthWatch struct {
	mu    sync.Mutex
	down  map[string][]healthSeen // part → non-up observations
	last  localstack.Health
	code  int
	polls int
	stop  chan struct{}
	done  chan struct{}
}

type healthSeen struct {
	At       time.Time
	Code     int
	Status   string
	Part     supervisor.Status
	Restarts int
}

func watchHealth(t *testing.T, url string) *healthWatch {
	w := &healthWatch{down: map[string][]healthSeen{}, stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 5 * time.Second}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(15 * time.Millisecond):
			}
			res, err := client.Get(url + "/healthz")
			if err != nil {
				continue
			}
			var h localstack.Health
			err = json.NewDecoder(res.Body).Decode(&h)
			_ = res.Body.Close()
			if err != nil {
				t.Errorf("/healthz %d: %v", res.StatusCode, err)
				continue
			}
			at := time.Now()
			w.mu.Lock()
			w.polls++
			w.last, w.code = h, res.StatusCode
			for name, st := range h.Parts {
				if st.State != supervisor.Up {
					w.down[name] = append(w.down[name], healthSeen{At: at, Code: res.StatusCode, Status: h.Status, Part: st, Restarts: st.Restarts})
				}
			}
			w.mu.Unlock()
		}
	}()
	t.Cleanup(w.close)
	return w
}

func (w *healthWatch) close() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// downSince: the observations of part not up after t.
func (w *healthWatch) downSince(part string, after time.Time) []healthSeen {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []healthSeen
	for _, s := range w.down[part] {
		if s.At.After(after) {
			out = append(out, s)
		}
	}
	return out
}

func (w *healthWatch) current() (int, localstack.Health) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.code, w.last
}

// fault is one injected failure and what became of it.
type fault struct {
	Part, During, Pipeline string
	At                     time.Time
	SeenDown               int    // /healthz answers naming the part not up (503, degraded)
	FirstSeen              string // the first such answer's state, since and last error
	Restarted              bool   // the supervisor brought it back (restart count grew)
	Converged              bool   // the pipeline reached its desired state
	Outcome                string // the pipeline's final state and error
	Bystander              string // an action sent while the part was down, and its answer
}

// SupervisedParts: every part of the local stack that can die is killed
// mid-workflow, one after the other, on one persistent stack with the
// reconciler running on its schedule: the Step Functions service during a
// graceful stop, DynamoDB Local during a start, the Lambda endpoint during a
// suspend, and a pipeline's runtime. The test only injects the faults and
// watches: no action is re-sent and no workflow redriven; the supervisor and
// the reconciler repair. Asserted: /healthz reports the dead part (503,
// degraded, the part not up), the part is restarted and reported up again,
// every pipeline converges to its desired state, no acknowledged action is
// lost (the histories), no deployment_error but the runtime's
// ComputeVanished.
func chaosSupervisedParts(t *testing.T) {
	// A restart waits a second: a dead part stays visible in /healthz for
	// at least that long (the poller looks every 15 ms).
	stack, logs := startStack(t, localstack.Config{DataDir: t.TempDir(), ReconcileInterval: time.Second, Overrides: fastWaits,
		RestartBackoff: time.Second})
	c := newClient(t, stack)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("stack logs (tail):\n%s", logs.lines(250, "sup-", "part ", "supervis"))
		}
	})
	if names := stack.PartNames(); strings.Join(names, ",") != "dynamodb,lambda,stepfunctions" {
		t.Fatalf("supervised parts %v", names)
	}
	health := watchHealth(t, stack.APIURL)
	log := &actionLog{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	seq := 0
	send := func(name, action string) sent {
		seq++
		return c.act(ctx, log, name, action, fmt.Sprintf("sup-%03d", seq))
	}
	create := func(name string, rc map[string]any) {
		seq++
		id := fmt.Sprintf("sup-%03d", seq)
		s := sent{Pipeline: name, Action: "create", RequestID: id, Sent: time.Now()}
		r := c.do(ctx, "POST", "/v0/pipelines", map[string]any{"name": name, "runtime_config": rc}, id)
		s.Received, s.Status, s.Body = time.Now(), r.status, string(r.body)
		if r.err != nil {
			s.Err = r.err.Error()
		}
		log.add(s)
		if r.status != 201 {
			t.Fatalf("create %s: %d %s %v", name, r.status, r.body, r.err)
		}
	}
	mustAck := func(s sent) {
		t.Helper()
		if !s.acknowledged() {
			t.Fatalf("%s %s: %d %s %s", s.Action, s.Pipeline, s.Status, s.Body, s.Err)
		}
	}
	running := func(p domain.Pipeline) bool { return settled(p) && p.DeploymentStatus() == domain.CombinedRunning }
	restarts := func(part string) int {
		_, h := health.current()
		return h.Parts[part].Restarts
	}
	var faults []*fault
	// crash kills part, sends a bystander action meanwhile, and waits until
	// /healthz has shown it not up and then up again, restarted.
	crash := func(f *fault, bystander, action string) {
		t.Helper()
		before := stack.Health().Parts[f.Part].Restarts
		f.At = time.Now()
		if err := stack.CrashPart(f.Part); err != nil {
			t.Fatalf("killing %s: %v", f.Part, err)
		}
		if bystander != "" {
			s := send(bystander, action)
			f.Bystander = fmt.Sprintf("%s %s → %d", action, bystander, s.Status)
			if s.Err != "" {
				f.Bystander += " (" + s.Err + ")"
			}
		}
		eventually(t, f.Part+" restarted and reported up", func() bool {
			code, h := health.current()
			return code == 200 && h.Parts[f.Part].State == supervisor.Up && h.Parts[f.Part].Restarts > before
		})
		seen := health.downSince(f.Part, f.At)
		f.SeenDown, f.Restarted = len(seen), restarts(f.Part) > before
		if len(seen) > 0 {
			s := seen[0]
			f.FirstSeen = fmt.Sprintf("%d %s: %s since %s (%s)", s.Code, s.Status, s.Part.State, s.Part.Since.Format("15:04:05.000"), s.Part.LastError)
		}
		for _, s := range seen {
			if s.Code != 503 || s.Status != "degraded" {
				t.Errorf("/healthz answered %d %q while %s was %s", s.Code, s.Status, f.Part, s.Part.State)
				break
			}
		}
		if len(seen) == 0 {
			t.Errorf("/healthz never reported %s down after it was killed", f.Part)
		}
	}

	// 1. The Step Functions service, during a graceful stop (its suspend
	// waits for a slow runtime).
	sfnPipe, sfnBy := "sup-sfn", "sup-sfn-bystander"
	create(sfnPipe, map[string]any{"checkpoint_interval_secs": 1, "fault": map[string]any{"suspend_delay_secs": 4}})
	create(sfnBy, map[string]any{"checkpoint_interval_secs": 1})
	mustAck(send(sfnPipe, actStartRunning))
	waitRecord(t, stack, sfnPipe, "Running", running)
	mustAck(send(sfnPipe, actStop))
	waitRecord(t, stack, sfnPipe, "Suspending with its workflow recorded", func(p domain.Pipeline) bool {
		return p.DeploymentStatus() == domain.CombinedSuspending && p.Workflow != nil && p.Workflow.Generation == p.Generation
	})
	f := &fault{Part: localstack.PartSFN, During: "graceful stop (suspending)", Pipeline: sfnPipe}
	faults = append(faults, f)
	crash(f, sfnBy, actStartRunning)

	// 2. DynamoDB Local, during a start (the runtime initializes slowly).
	dynPipe, dynBy := "sup-dyn", "sup-dyn-bystander"
	create(dynPipe, map[string]any{"checkpoint_interval_secs": 1, "fault": map[string]any{"initializing_secs": 3}})
	create(dynBy, map[string]any{"checkpoint_interval_secs": 1})
	mustAck(send(dynPipe, actStartRunning))
	waitRecord(t, stack, dynPipe, "Provisioning with its workflow recorded", func(p domain.Pipeline) bool {
		return p.ResourcesStatus == domain.ResourcesProvisioning && p.Workflow != nil && p.Workflow.Generation == p.Generation
	})
	f = &fault{Part: localstack.PartDynamo, During: "start (provisioning)", Pipeline: dynPipe}
	faults = append(faults, f)
	crash(f, dynBy, actStartRunning)

	// 3. The Lambda endpoint, during a suspend.
	lamPipe, lamBy := "sup-lambda", "sup-lambda-bystander"
	create(lamPipe, map[string]any{"checkpoint_interval_secs": 1, "fault": map[string]any{"suspend_delay_secs": 3}})
	create(lamBy, map[string]any{"checkpoint_interval_secs": 1})
	mustAck(send(lamPipe, actStartRunning))
	waitRecord(t, stack, lamPipe, "Running", running)
	mustAck(send(lamPipe, actStop))
	waitRecord(t, stack, lamPipe, "Suspending with its workflow recorded", func(p domain.Pipeline) bool {
		return p.DeploymentStatus() == domain.CombinedSuspending && p.Workflow != nil && p.Workflow.Generation == p.Generation
	})
	f = &fault{Part: localstack.PartLambda, During: "suspend", Pipeline: lamPipe}
	faults = append(faults, f)
	crash(f, lamBy, actStartRunning)

	// 4. A runtime process: not a part of the stack, never restarted; the
	// reconciler force-stops its pipeline with ComputeVanished.
	rtPipe := "sup-runtime"
	create(rtPipe, map[string]any{"checkpoint_interval_secs": 1})
	mustAck(send(rtPipe, actStartRunning))
	rec := waitRecord(t, stack, rtPipe, "Running", running)
	driver, ok := stack.Driver.(*localproc.Driver)
	if !ok {
		t.Fatalf("the stack's driver is %T, want the local process driver", stack.Driver)
	}
	infos, err := driver.Deployments()
	if err != nil {
		t.Fatal(err)
	}
	pid := 0
	for _, i := range infos {
		if i.Pipeline == rtPipe && i.Alive && rec.DeploymentID != nil && i.DeploymentID == *rec.DeploymentID {
			pid = i.PID
		}
	}
	if pid == 0 {
		t.Fatalf("no live runtime process of %s in %+v", rtPipe, infos)
	}
	rf := &fault{Part: "runtime", During: "running", Pipeline: rtPipe, At: time.Now()}
	faults = append(faults, rf)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("killing the runtime (pid %d): %v", pid, err)
	}

	// Convergence: only the supervisor and the reconciler work now.
	want := map[string]func(domain.Pipeline) bool{
		sfnPipe: fullyStopped, dynPipe: running, lamPipe: fullyStopped, rtPipe: fullyStopped,
	}
	for _, name := range []string{sfnBy, dynBy, lamBy} {
		want[name] = settled // to whatever its acknowledged actions asked
	}
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := waitRecord(t, stack, name, "converged to its desired state", func(p domain.Pipeline) bool { return want[name](p) && settled(p) })
		for _, f := range faults {
			if f.Pipeline == name {
				f.Converged = true
				f.Outcome = fmt.Sprintf("%s/%s", p.DeploymentStatus(), p.DeploymentDesiredStatus())
				if e := p.DeploymentError; e != nil {
					f.Outcome += " error " + e.ErrorCode
				}
				if w := p.Workflow; w != nil {
					f.Outcome += ", last workflow " + w.ExecutionName
				}
			}
		}
		switch e := p.DeploymentError; {
		case name == rtPipe:
			if e == nil || e.ErrorCode != "ComputeVanished" {
				t.Errorf("%s: deployment_error %+v, want ComputeVanished", name, e)
			}
		case e != nil:
			t.Errorf("%s: deployment_error %+v (a false one: only a part of the control plane died)", name, e)
		}
	}
	// The Step Functions service came back with the suspend execution
	// ABORTED (it was running when killed): a later attempt, started by the
	// reconciler, finished the stop.
	if p := get(t, stack, sfnPipe); p.Workflow == nil || p.Workflow.Kind != domain.WorkflowSuspend || workflow.AttemptOf(p.Workflow.ExecutionName) < 1 {
		t.Errorf("%s: workflow %+v, want a later attempt of the suspend workflow", sfnPipe, p.Workflow)
	}
	// A bystander whose action was acknowledged while the part was down
	// reached what it asked for.
	for _, s := range log.all() {
		if strings.HasSuffix(s.Pipeline, "-bystander") && s.Action == actStartRunning && s.acknowledged() {
			if p := get(t, stack, s.Pipeline); p.DeploymentStatus() != domain.CombinedRunning {
				t.Errorf("%s: %s after its acknowledged start (%s)", s.Pipeline, p.DeploymentStatus(), s.RequestID)
			}
		}
	}
	if code, h := health.current(); code != 200 || h.Status != "ok" {
		t.Errorf("/healthz at the end: %d %+v", code, h)
	}

	// Histories: gap-free, fenced, and every acknowledged action in them.
	for _, name := range []string{sfnBy, dynBy, lamBy} {
		send(name, actForceStop)
		waitRecord(t, stack, name, "Stopped", fullyStopped)
	}
	requests := requestsByID(log.all())
	var total historyReport
	for _, name := range names {
		total.add(checkFinalHistory(t, stack, name, requests))
	}

	// The fault report.
	injected, detected, restarted, converged := 0, 0, 0, 0
	for _, f := range faults {
		injected++
		if f.SeenDown > 0 {
			detected++
		}
		if f.Restarted {
			restarted++
		}
		if f.Converged {
			converged++
		}
		t.Logf("fault: killed %-13s during %-26s → /healthz showed it down %d times (first: %s); restarted %v; %s converged %v: %s; bystander: %s",
			f.Part, f.During, f.SeenDown, f.FirstSeen, f.Restarted, f.Pipeline, f.Converged, f.Outcome, f.Bystander)
	}
	_, h := health.current()
	health.mu.Lock()
	polls := health.polls
	health.mu.Unlock()
	t.Logf("faults injected %d (3 parts, 1 runtime): parts detected in /healthz %d/3, restarted %d/3; pipelines converged %d/%d; "+
		"requests %d, acknowledged writes %d, no-ops %d; /healthz polled %d times; restarts now dynamodb %d, stepfunctions %d, lambda %d",
		injected, detected, restarted, converged, injected, len(log.all()), total.AckWrites, total.AckNoOps, polls,
		h.Parts[localstack.PartDynamo].Restarts, h.Parts[localstack.PartSFN].Restarts, h.Parts[localstack.PartLambda].Restarts)
}
