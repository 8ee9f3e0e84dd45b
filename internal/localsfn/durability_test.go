package localsfn_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/sluicehq/sluice/internal/localsfn"
	"github.com/sluicehq/sluice/internal/testkit"
)

// The state file's durability: an acknowledged StartExecution or
// StopExecution survives a SIGKILL of the service (its journal record is
// fdatasync'd before the answer), a torn journal tail is skipped, compaction
// keeps everything, and names stay taken across restarts.

// durableService starts a service of its own on a state file in a fresh folder.
func durableService(t *testing.T, edit func(*localsfn.Config)) (*localsfn.Service, *sfn.Client, string) {
	t.Helper()
	var log testkit.SyncBuffer
	cfg := testConfig()
	cfg.StateFile = filepath.Join(t.TempDir(), "executions.json")
	cfg.Log = &log
	if edit != nil {
		edit(&cfg)
	}
	svc, err := localsfn.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out := log.String()
			if len(out) > 16000 {
				out = out[len(out)-16000:]
			}
			t.Logf("service log (tail):\n%s", out)
		}
		_ = svc.Stop()
	})
	c, err := localsfn.NewClient(context.Background(), svc.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	return svc, c, cfg.StateFile
}

// acked is one acknowledged StartExecution and what the test did with it.
type acked struct {
	arn, machine, name, input string
	stopped                   bool // StopExecution acknowledged, with stopError
}

const stopError = "Test.Stopped"

// startMany starts n executions from 8 clients, alternating the "hold"
// machine (stays RUNNING) and "paging" (succeeds at once), and stops every
// fourth hold execution; it returns the acknowledged ones.
func startMany(t *testing.T, c *sfn.Client, svc *localsfn.Service, prefix string, n int) []acked {
	t.Helper()
	ctx := context.Background()
	out := make([]acked, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			a := acked{machine: "hold", name: fmt.Sprintf("%s-%03d", prefix, i), input: fmt.Sprintf(`{"i":%d}`, i)}
			if i%2 == 1 {
				a.machine = "paging"
			}
			res, err := c.StartExecution(ctx, &sfn.StartExecutionInput{
				StateMachineArn: aws.String(svc.StateMachineArn(a.machine)), Name: aws.String(a.name), Input: aws.String(a.input),
			})
			if err != nil {
				errs[i] = err
				return
			}
			a.arn = aws.ToString(res.ExecutionArn)
			if i%4 == 0 {
				if _, err := c.StopExecution(ctx, &sfn.StopExecutionInput{ExecutionArn: res.ExecutionArn, Error: aws.String(stopError)}); err != nil {
					errs[i] = err
					return
				}
				a.stopped = true
			}
			out[i] = a
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkAcked asserts every acknowledged execution is there after a restart,
// closed: a stopped one ABORTED with the stop's error, one that was running
// ABORTED with Local.ServiceRestarted, a "paging" one SUCCEEDED or (if the
// kill came first) ABORTED by the restart; and its name is still taken.
func checkAcked(t *testing.T, c *sfn.Client, svc *localsfn.Service, all []acked) {
	t.Helper()
	ctx := context.Background()
	for _, a := range all {
		d, err := c.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(a.arn)})
		if err != nil {
			t.Fatalf("%s after the restart: %v", a.name, err)
		}
		restarted := d.Status == types.ExecutionStatusAborted && aws.ToString(d.Error) == "Local.ServiceRestarted"
		switch {
		case a.stopped:
			if d.Status != types.ExecutionStatusAborted || aws.ToString(d.Error) != stopError {
				t.Fatalf("%s was stopped before the kill; after the restart: %s %q", a.name, d.Status, aws.ToString(d.Error))
			}
		case a.machine == "hold":
			if !restarted {
				t.Fatalf("%s was running; after the restart: %s %q", a.name, d.Status, aws.ToString(d.Error))
			}
		default:
			if d.Status != types.ExecutionStatusSucceeded && !restarted {
				t.Fatalf("%s after the restart: %s %q", a.name, d.Status, aws.ToString(d.Error))
			}
		}
		if aws.ToString(d.Input) != a.input {
			t.Fatalf("%s: input %q after the restart, want %q", a.name, aws.ToString(d.Input), a.input)
		}
		ev := history(t, c, a.arn, 0)
		if len(ev) < 2 || ev[0].Type != types.HistoryEventTypeExecutionStarted {
			t.Fatalf("%s: history after the restart %v", a.name, eventTypes(ev))
		}
		// Closed now: the same name and input is no longer idempotent.
		_, err = c.StartExecution(ctx, &sfn.StartExecutionInput{
			StateMachineArn: aws.String(svc.StateMachineArn(a.machine)), Name: aws.String(a.name), Input: aws.String(a.input),
		})
		var exists *types.ExecutionAlreadyExists
		if !errors.As(err, &exists) {
			t.Fatalf("%s: StartExecution after the restart: %v, want ExecutionAlreadyExists", a.name, err)
		}
	}
}

func journals(t *testing.T, stateFile string) []string {
	t.Helper()
	files, err := filepath.Glob(stateFile + ".journal.*")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

// TestKillKeepsAcknowledgedExecutions: SIGKILL right after the last answer;
// every acknowledged start and stop is there after the restart, twice over
// (the second kill lands on the journal the first restart began).
func TestKillKeepsAcknowledgedExecutions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, c, _ := durableService(t, nil)
	first := startMany(t, c, svc, "first", 60)
	if err := svc.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := svc.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	checkAcked(t, c, svc, first)
	second := startMany(t, c, svc, "second", 60)
	if err := svc.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := svc.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	checkAcked(t, c, svc, append(first, second...))
}

// TestTornJournalTail: a crash in the middle of a journal write leaves a
// partial last line; the restart skips it and keeps everything before it.
func TestTornJournalTail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, c, stateFile := durableService(t, nil)
	all := startMany(t, c, svc, "torn", 20)
	if err := svc.Kill(); err != nil {
		t.Fatal(err)
	}
	files := journals(t, stateFile)
	if len(files) == 0 {
		t.Fatal("no journal beside the state file")
	}
	f, err := os.OpenFile(files[len(files)-1], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	torn := fmt.Sprintf(`{"k":"start","x":{"executionArn":"%s","stateMachineArn":"%s","name":"torn-x","sta`,
		svc.ExecutionArn("hold", "torn-x"), svc.StateMachineArn("hold"))
	if _, err := f.WriteString(torn); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := svc.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	checkAcked(t, c, svc, all)
	var missing *types.ExecutionDoesNotExist
	if _, err := c.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(svc.ExecutionArn("hold", "torn-x"))}); !errors.As(err, &missing) {
		t.Fatalf("the torn record: %v, want ExecutionDoesNotExist", err)
	}
	// The restart began a new journal: nothing is appended after the torn line.
	if _, err := os.Stat(files[len(files)-1]); !os.IsNotExist(err) {
		t.Fatalf("the torn journal %s is still there after the restart's snapshot: %v", files[len(files)-1], err)
	}
}

// TestCompactionKeepsEverything: with a tiny compaction bound the journal is
// compacted after nearly every write while executions run; a graceful
// restart then finds every execution with its whole history, and a kill
// loses no acknowledged one.
func TestCompactionKeepsEverything(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, c, stateFile := durableService(t, func(cfg *localsfn.Config) { cfg.JournalCompactBytes = 1 })
	var ids []string
	var arns []string
	for i := range 6 {
		id := uniq(fmt.Sprintf("compact%d", i))
		ids = append(ids, id)
		arns = append(arns, start(t, c, svc, "workflow", id, stepIn{ID: id, Mode: "ok"}))
	}
	before := map[string][]string{}
	for _, arn := range arns {
		if out := waitDone(t, c, arn); out.Status != types.ExecutionStatusSucceeded {
			t.Fatalf("%s: %s", arn, out.Status)
		}
		before[arn] = eventTypes(history(t, c, arn, 0))
	}
	all := startMany(t, c, svc, "compact", 40)
	if err := svc.Restart(ctx); err != nil { // graceful
		t.Fatal(err)
	}
	for _, arn := range arns {
		if got := eventTypes(history(t, c, arn, 0)); strings.Join(got, ",") != strings.Join(before[arn], ",") {
			t.Fatalf("%s: history after compaction and restart\n%v\nwant\n%v", arn, got, before[arn])
		}
	}
	checkAcked(t, c, svc, all)
	more := startMany(t, c, svc, "compact-kill", 40)
	if err := svc.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := svc.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	checkAcked(t, c, svc, append(all, more...))
	if n := len(journals(t, stateFile)); n != 1 {
		t.Fatalf("%d journals after the restart's compaction, want 1", n)
	}
}

// TestVersion1StateFile: a state file written before the journal (one JSON
// document, version 1) is read as a snapshot: finished executions keep their
// result, a running one comes back ABORTED, retired names stay taken.
func TestVersion1StateFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	stateFile := filepath.Join(dir, "executions.json")
	arn := func(name string) string {
		return fmt.Sprintf("arn:aws:states:%s:%s:execution:hold:%s", localsfn.DefaultRegion, localsfn.DefaultAccount, name)
	}
	sm := fmt.Sprintf("arn:aws:states:%s:%s:stateMachine:hold", localsfn.DefaultRegion, localsfn.DefaultAccount)
	v1 := fmt.Sprintf(`{"version":1,"retired":[%q],"executions":[
{"executionArn":%q,"stateMachineArn":%q,"name":"v1-done","status":"SUCCEEDED","startDate":1700000000000,"stopDate":1700000001000,"input":"{}","output":"{\"ok\":true}","seq":1,"closed":true,
 "events":[{"timestamp":1700000000000,"type":"ExecutionStarted","id":1,"previousEventId":0,"executionStartedEventDetails":{"input":"{}"}},{"timestamp":1700000001000,"type":"ExecutionSucceeded","id":2,"previousEventId":1,"executionSucceededEventDetails":{"output":"{\"ok\":true}"}}]},
{"executionArn":%q,"stateMachineArn":%q,"name":"v1-running","status":"RUNNING","startDate":1700000002000,"input":"{}","seq":2,
 "events":[{"timestamp":1700000002000,"type":"ExecutionStarted","id":1,"previousEventId":0,"executionStartedEventDetails":{"input":"{}"}}]}]}`,
		arn("v1-retired"), arn("v1-done"), sm, arn("v1-running"), sm)
	if err := os.WriteFile(stateFile, []byte(v1), 0o644); err != nil {
		t.Fatal(err)
	}
	svc, c, _ := durableService(t, func(cfg *localsfn.Config) { cfg.StateFile = stateFile })
	done, err := c.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn("v1-done"))})
	if err != nil || done.Status != types.ExecutionStatusSucceeded || aws.ToString(done.Output) != `{"ok":true}` {
		t.Fatalf("v1-done: %+v %v", done, err)
	}
	cut, err := c.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn("v1-running"))})
	if err != nil || cut.Status != types.ExecutionStatusAborted || aws.ToString(cut.Error) != "Local.ServiceRestarted" {
		t.Fatalf("v1-running: %+v %v", cut, err)
	}
	_, err = c.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(svc.StateMachineArn("hold")), Name: aws.String("v1-retired")})
	var exists *types.ExecutionAlreadyExists
	if !errors.As(err, &exists) {
		t.Fatalf("retired name: %v, want ExecutionAlreadyExists", err)
	}
}
