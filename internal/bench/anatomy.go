package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/pprof/profile"

	"github.com/sluicehq/sluice/internal/lambdalocal"
	"github.com/sluicehq/sluice/internal/localstack"
	"github.com/sluicehq/sluice/internal/proctree"
	"github.com/sluicehq/sluice/internal/supervisor"
)

// The anatomy of a series of first stops (or starts): where the time of a
// request went that the floor does not have. Two views of the same window:
//   - the API's own calls to DynamoDB Local and the Step Functions service,
//     timed as the API made them (Config.WrapAWSHTTP; the calls carry the
//     API server's pprof label), beside the same calls made raw (the floor);
//   - the CPU each part of the stack used: the Go process (API, step
//     Lambdas, the local Invoke endpoint, the bench's clients, the Go
//     runtime) from a CPU profile with pprof labels, DynamoDB Local and the
//     Step Functions service from /proc.

// Anatomy is one series' breakdown.
type Anatomy struct {
	WallSec float64 `json:"wall_sec"`
	Cores   int     `json:"cores"`
	// APICalls: the API's own calls, by operation; the others' (the
	// workflows' steps) follow with the prefix "workflows:".
	APICalls []CallDist `json:"calls"`
	// CPU in seconds by part; IdleSec is what was left of Cores × WallSec.
	CPU     []PartCPU `json:"cpu"`
	IdleSec float64   `json:"idle_sec"`
	// TopGo: the Go functions with the most CPU of their own (flat), with
	// the part they ran for.
	TopGo []TopFunc `json:"top_go,omitempty"`
}

// CallDist is the latency of one operation (X-Amz-Target's operation).
type CallDist struct {
	Op   string `json:"op"`
	Dist Dist   `json:"latency"`
}

// PartCPU is the CPU one part used.
type PartCPU struct {
	Part string  `json:"part"`
	Sec  float64 `json:"sec"`
}

// TopFunc is one Go function's own CPU.
type TopFunc struct {
	Func string  `json:"func"`
	Part string  `json:"part"`
	Sec  float64 `json:"sec"`
}

// The parts, as printed.
const (
	partAPI      = "API"
	partSteps    = "step Lambdas"
	partEndpoint = "Invoke endpoint"
	partClients  = "bench clients"
	partGo       = "Go runtime, unlabeled"
	partDynamo   = "DynamoDB Local"
	partSFN      = "Step Functions service"
	clientLabel  = "bench-client"
)

var partOrder = []string{partAPI, partSteps, partEndpoint, partClients, partGo, partDynamo, partSFN}

// partOf maps a pprof label value to its part.
func partOf(label string) string {
	switch {
	case label == localstack.ProfilePartAPI:
		return partAPI
	case strings.HasPrefix(label, lambdalocal.ProfileInvocationPrefix):
		return partSteps
	case label == localstack.ProfilePartLambdaEndpoint:
		return partEndpoint
	case label == clientLabel:
		return partClients
	}
	return partGo
}

// callTimers is the bench's Config.WrapAWSHTTP: while on, it times the
// calls whose request carries the API server's pprof label.
type callTimers struct {
	on   atomic.Bool
	mu   sync.Mutex
	took map[string][]time.Duration // by operation
}

func (t *callTimers) wrap(next aws.HTTPClient) aws.HTTPClient {
	return &timedClient{next: next, sink: t}
}

type timedClient struct {
	next aws.HTTPClient
	sink *callTimers
}

func (c *timedClient) Do(r *http.Request) (*http.Response, error) {
	if !c.sink.on.Load() {
		return c.next.Do(r)
	}
	t0 := time.Now()
	resp, err := c.next.Do(r)
	d := time.Since(t0)
	op := r.Header.Get("X-Amz-Target")
	if i := strings.LastIndexByte(op, '.'); i >= 0 {
		op = op[i+1:]
	}
	if part, _ := pprof.Label(r.Context(), lambdalocal.ProfileLabel); part != localstack.ProfilePartAPI {
		// The workflows' steps (and anything else but the API): counted.
		op = otherCaller + op
	}
	c.sink.mu.Lock()
	c.sink.took[op] = append(c.sink.took[op], d)
	c.sink.mu.Unlock()
	return resp, err
}

// otherCaller prefixes the operation of a call the API did not make.
const otherCaller = "workflows:"

// start begins a window.
func (t *callTimers) start() {
	t.mu.Lock()
	t.took = map[string][]time.Duration{}
	t.mu.Unlock()
	t.on.Store(true)
}

// stop ends the window and returns its calls by operation.
func (t *callTimers) stop() []CallDist {
	t.on.Store(false)
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]CallDist, 0, len(t.took))
	for op, d := range t.took {
		out = append(out, CallDist{Op: op, Dist: distOf(d)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Op < out[j].Op })
	return out
}

// anatomy runs f (one series) and returns its breakdown. The CPU profile
// is the process's only one: a profile already running is an error.
func (e *env) anatomy(f func() error) (*Anatomy, error) {
	procs := map[string]string{partDynamo: localstack.DynamoPIDFileName, partSFN: localstack.SFNPIDFileName}
	pids := map[string]int{}
	for part, file := range procs {
		pid, _, err := supervisor.ReadPIDFile(filepath.Join(e.stack.DataDir, file))
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		pids[part] = pid
	}
	before := map[string]float64{}
	for part, pid := range pids {
		before[part] = procCPU(pid)
	}
	var prof bytes.Buffer
	if err := pprof.StartCPUProfile(&prof); err != nil {
		return nil, fmt.Errorf("bench: CPU profile: %w", err)
	}
	e.calls.start()
	t0 := time.Now()
	err := f()
	wall := time.Since(t0)
	calls := e.calls.stop()
	pprof.StopCPUProfile()
	if err != nil {
		return nil, err
	}
	a := &Anatomy{WallSec: wall.Seconds(), Cores: runtime.NumCPU(), APICalls: calls}
	sec := map[string]float64{}
	for part, pid := range pids {
		sec[part] = procCPU(pid) - before[part]
	}
	top, err := attribute(prof.Bytes(), sec)
	if err != nil {
		return nil, err
	}
	a.TopGo = top
	used := 0.0
	for _, part := range partOrder {
		a.CPU = append(a.CPU, PartCPU{Part: part, Sec: sec[part]})
		used += sec[part]
	}
	a.IdleSec = max(0, float64(a.Cores)*a.WallSec-used)
	return a, nil
}

// attribute adds the profile's CPU by part into sec and returns the top
// functions by their own CPU.
func attribute(raw []byte, sec map[string]float64) ([]TopFunc, error) {
	p, err := profile.Parse(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("bench: reading the CPU profile: %w", err)
	}
	vi := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" && st.Unit == "nanoseconds" {
			vi = i
		}
	}
	if vi < 0 {
		return nil, fmt.Errorf("bench: the CPU profile has no cpu/nanoseconds values")
	}
	flat := map[[2]string]float64{}
	for _, s := range p.Sample {
		v := float64(s.Value[vi]) / 1e9
		label := ""
		if l := s.Label[lambdalocal.ProfileLabel]; len(l) > 0 {
			label = l[0]
		}
		part := partOf(label)
		sec[part] += v
		if len(s.Location) > 0 && len(s.Location[0].Line) > 0 && s.Location[0].Line[0].Function != nil {
			flat[[2]string{s.Location[0].Line[0].Function.Name, part}] += v
		}
	}
	top := make([]TopFunc, 0, len(flat))
	for k, v := range flat {
		top = append(top, TopFunc{Func: k[0], Part: k[1], Sec: v})
	}
	sort.Slice(top, func(i, j int) bool { return top[i].Sec > top[j].Sec })
	return top[:min(len(top), 8)], nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on
// every Linux architecture the bench runs on (proc(5)).
const clockTicks = 100

// procCPU is a process's user + system CPU seconds so far (utime and
// stime, proctree.Stat); 0 where /proc does not have it.
func procCPU(pid int) float64 {
	f, ok := proctree.Stat(pid)
	if !ok {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / clockTicks
}

// printAnatomy writes the breakdown of every series that has one.
func printAnatomy(w io.Writer, res *Results) {
	floor := map[string]map[int]Dist{}
	for _, f := range res.Floor {
		if floor[f.Op] == nil {
			floor[f.Op] = map[int]Dist{}
		}
		floor[f.Op][f.Concurrency] = f.Dist
	}
	var rows []LatencyResult
	for _, l := range res.Latency {
		if l.Anatomy != nil {
			rows = append(rows, l)
		}
	}
	if s := res.Scale; s != nil && s.StopAnatomy != nil {
		rows = append(rows, LatencyResult{Request: fmt.Sprintf("%d × POST /stop?force=true released at once (Scale)", s.Pipelines),
			Concurrency: s.Pipelines, Dist: s.StopLatency, Anatomy: s.StopAnatomy})
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "Anatomy of the first stops and starts: the API's own calls while the series ran (p50 / p99 ms; the floor's raw call at the same clients in brackets), and the workflows' DynamoDB calls in the same window\n\n| request | clients | API p50 | GetItem | TransactWriteItems | StartExecution | workflows' TransactWriteItems / GetItem |\n|---|---|---|---|---|---|---|\n")
	for _, l := range rows {
		cell := func(op string) string {
			for _, c := range l.Anatomy.APICalls {
				if c.Op == op {
					s := fmt.Sprintf("%.1f / %.1f (n %d)", c.Dist.P50, c.Dist.P99, c.Dist.N)
					if f, ok := floor[op][l.Concurrency]; ok {
						s += fmt.Sprintf(" [%.1f / %.1f]", f.P50, f.P99)
					}
					return s
				}
			}
			return "–"
		}
		count := func(op string) int {
			for _, c := range l.Anatomy.APICalls {
				if c.Op == op {
					return c.Dist.N
				}
			}
			return 0
		}
		fmt.Fprintf(w, "| %s | %d | %.1f | %s | %s | %s | %d / %d |\n", l.Request, l.Concurrency, l.Dist.P50, cell("GetItem"), cell("TransactWriteItems"), cell("StartExecution"),
			count(otherCaller+"TransactWriteItems"), count(otherCaller+"GetItem"))
	}
	fmt.Fprintf(w, "\nCPU while the series ran, seconds (share of cores × wall)\n\n| request | clients | wall s | %s | rest (idle, other processes) |\n|%s---|---|---|---|\n", strings.Join(partOrder, " | "), strings.Repeat("---|", len(partOrder)))
	for _, l := range rows {
		a := l.Anatomy
		total := float64(a.Cores) * a.WallSec
		cells := make([]string, 0, len(a.CPU))
		for _, c := range a.CPU {
			cells = append(cells, fmt.Sprintf("%.2f (%.0f%%)", c.Sec, 100*c.Sec/total))
		}
		fmt.Fprintf(w, "| %s | %d | %.2f | %s | %.2f (%.0f%%) |\n", l.Request, l.Concurrency, a.WallSec, strings.Join(cells, " | "), a.IdleSec, 100*a.IdleSec/total)
	}
	fmt.Fprintf(w, "\nGo functions with the most CPU of their own (first forced stops at %d clients)\n\n| function | part | s |\n|---|---|---|\n", concurrencies[len(concurrencies)-1])
	for _, l := range rows {
		if l.Request == firstForcedStop && l.Concurrency == concurrencies[len(concurrencies)-1] {
			for _, t := range l.Anatomy.TopGo {
				fmt.Fprintf(w, "| `%s` | %s | %.2f |\n", t.Func, t.Part, t.Sec)
			}
		}
	}
	fmt.Fprintln(w)
}

// labelled runs f with the bench clients' pprof label (goroutines it starts
// inherit it).
func labelled(f func()) {
	pprof.Do(context.Background(), pprof.Labels(lambdalocal.ProfileLabel, clientLabel), func(context.Context) { f() })
}
