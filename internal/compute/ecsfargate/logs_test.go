package ecsfargate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"github.com/sluicehq/sluice/internal/compute"
	"github.com/sluicehq/sluice/internal/testkit"
)

// fakeCWL is CloudWatch Logs' GetLogEvents, enforcing the rules of its API
// reference (API_GetLogEvents):
//   - logStreamName is required; exactly one of logGroupName and
//     logGroupIdentifier;
//   - limit, when given, is 1–10,000;
//   - nextToken must be a token the service returned; a forward token needs
//     startFromHead true ("If you are using a previous nextForwardToken value
//     as the nextToken in this operation, you must specify true for
//     startFromHead");
//   - at most 10,000 events and 1 MB per response (events counted as their
//     message bytes plus 26, as PutLogEvents counts them); a response may be
//     empty while the token still leads to more events;
//   - at the end of the stream the token passed in comes back;
//   - an unknown group or stream: ResourceNotFoundException.
type fakeCWL struct {
	t        *testing.T
	mu       sync.Mutex
	streams  map[string][]string // group + "|" + stream → messages
	issued   map[string]bool
	pageSize int  // events per page (the service's own choice), 0: as many as fit
	empties  bool // answer one empty page before each forward page
	emptied  map[string]bool
	calls    int
}

func newFakeCWL(t *testing.T) *fakeCWL {
	return &fakeCWL{t: t, streams: map[string][]string{}, issued: map[string]bool{}, emptied: map[string]bool{}}
}

func (f *fakeCWL) put(group, stream string, msgs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := group + "|" + stream
	f.streams[k] = append(f.streams[k], msgs...)
}

func invalid(msg string) error {
	return &cwtypes.InvalidParameterException{Message: aws.String(msg)}
}

func (f *fakeCWL) GetLogEvents(_ context.Context, in *cloudwatchlogs.GetLogEventsInput, _ ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.GetLogEventsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if aws.ToString(in.LogStreamName) == "" {
		return nil, invalid("logStreamName is required")
	}
	if (aws.ToString(in.LogGroupName) == "") == (aws.ToString(in.LogGroupIdentifier) == "") {
		return nil, invalid("give exactly one of logGroupName and logGroupIdentifier")
	}
	limit := maxGetLogEventsLimit
	if in.Limit != nil {
		if *in.Limit < 1 || *in.Limit > maxGetLogEventsLimit {
			return nil, invalid("limit must be between 1 and 10000")
		}
		limit = int(*in.Limit)
	}
	if f.pageSize > 0 {
		limit = min(limit, f.pageSize)
	}
	msgs, ok := f.streams[aws.ToString(in.LogGroupName)+"|"+aws.ToString(in.LogStreamName)]
	if !ok {
		return nil, &cwtypes.ResourceNotFoundException{Message: aws.String("The specified log stream does not exist.")}
	}
	fromHead := aws.ToBool(in.StartFromHead)
	dir, pos := "", 0
	if tok := aws.ToString(in.NextToken); tok != "" {
		if !f.issued[tok] {
			return nil, invalid("the next token is invalid")
		}
		parts := strings.Split(tok, "/") // f/<pos>[/e] or b/<pos>
		dir = parts[0]
		var err error
		if pos, err = strconv.Atoi(parts[1]); err != nil {
			f.t.Fatalf("fake token %q: %v", tok, err)
		}
		if dir == "f" && !fromHead {
			return nil, invalid("startFromHead must be true with a nextForwardToken")
		}
	}
	issue := func(tok string) *string { f.issued[tok] = true; return aws.String(tok) }
	var from, to int
	switch {
	case dir == "f" || (dir == "" && fromHead):
		from = pos
		if f.empties && !f.emptied[fmt.Sprint("f", pos)] && from < len(msgs) {
			f.emptied[fmt.Sprint("f", pos)] = true
			return &cloudwatchlogs.GetLogEventsOutput{NextForwardToken: issue(fmt.Sprintf("f/%d/e", pos)), NextBackwardToken: issue(fmt.Sprintf("b/%d", pos))}, nil
		}
		to = from
		for bytes := 0; to < len(msgs) && to-from < limit && bytes+len(msgs[to])+26 <= 1<<20; to++ {
			bytes += len(msgs[to]) + 26
		}
	default: // backward: the newest events before pos (the end without a token)
		to = len(msgs)
		if dir == "b" {
			to = pos
		}
		from = to
		for bytes := 0; from > 0 && to-from < limit && bytes+len(msgs[from-1])+26 <= 1<<20; from-- {
			bytes += len(msgs[from-1]) + 26
		}
	}
	out := &cloudwatchlogs.GetLogEventsOutput{}
	for i := from; i < to; i++ {
		out.Events = append(out.Events, cwtypes.OutputLogEvent{Message: aws.String(msgs[i]), Timestamp: aws.Int64(int64(i))})
	}
	// At the end (start) of the stream the token passed in comes back.
	fwd, back := fmt.Sprintf("f/%d", to), fmt.Sprintf("b/%d", from)
	if tok := aws.ToString(in.NextToken); tok != "" && ((dir == "f" && to == pos) || (dir == "b" && from == pos)) {
		if dir == "f" {
			fwd = tok
		} else {
			back = tok
		}
	}
	out.NextForwardToken, out.NextBackwardToken = issue(fwd), issue(back)
	return out, nil
}

const (
	testLogGroup = "/ecs/sluice-runtime"
	testPrefix   = "sluice"
)

func newTestLogReader(t *testing.T) (*LogReader, *fakeECS, *fakeCWL) {
	t.Helper()
	fe := newFakeECS(t)
	cw := newFakeCWL(t)
	l, err := NewLogReader(LogsConfig{Cluster: "sluice", ContainerName: "runtime", LogGroup: testLogGroup, StreamPrefix: testPrefix,
		PollInterval: time.Millisecond}, fe.client(), cw)
	if err != nil {
		t.Fatal(err)
	}
	return l, fe, cw
}

func runLoggedTask(fe *fakeECS, deployment string) string {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	status, resp := fe.runTask([]byte(`{"cluster":"sluice","taskDefinition":"sluice-runtime:7","count":1,"startedBy":"` + deployment + `","networkConfiguration":{"awsvpcConfiguration":{"subnets":["subnet-0a1b2c3d"]}}}`))
	if status != 200 || len(fe.order) == 0 {
		panic(fmt.Sprintf("fake RunTask refused: %d %v", status, resp))
	}
	return fe.order[len(fe.order)-1]
}

// logText returns a function reading a whole log (for l.Logs(…) results).
func logText(t *testing.T) func(io.ReadCloser, error) string {
	return func(rc io.ReadCloser, err error) string {
		t.Helper()
		return testkit.ReadAllOf(t, rc, err)
	}
}

func TestFakeCWLEnforcesGetLogEventsRules(t *testing.T) {
	cw := newFakeCWL(t)
	cw.put("g", "s", "a")
	ctx := context.Background()
	bad := map[string]*cloudwatchlogs.GetLogEventsInput{
		"no stream":          {LogGroupName: aws.String("g")},
		"no group":           {LogStreamName: aws.String("s")},
		"both groups":        {LogGroupName: aws.String("g"), LogGroupIdentifier: aws.String("g"), LogStreamName: aws.String("s")},
		"limit above 10000":  {LogGroupName: aws.String("g"), LogStreamName: aws.String("s"), Limit: aws.Int32(10001)},
		"limit 0":            {LogGroupName: aws.String("g"), LogStreamName: aws.String("s"), Limit: aws.Int32(0)},
		"made-up token":      {LogGroupName: aws.String("g"), LogStreamName: aws.String("s"), NextToken: aws.String("f/0")},
		"unknown stream":     {LogGroupName: aws.String("g"), LogStreamName: aws.String("nope")},
		"forward, from tail": nil, // filled below
	}
	out, err := cw.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String("g"), LogStreamName: aws.String("s"), StartFromHead: aws.Bool(true)})
	if err != nil || len(out.Events) != 1 {
		t.Fatalf("valid call: %v %+v", err, out)
	}
	bad["forward, from tail"] = &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String("g"), LogStreamName: aws.String("s"), NextToken: out.NextForwardToken}
	for name, in := range bad {
		if _, err := cw.GetLogEvents(ctx, in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	again, err := cw.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String("g"), LogStreamName: aws.String("s"), StartFromHead: aws.Bool(true), NextToken: out.NextForwardToken})
	if err != nil || len(again.Events) != 0 || *again.NextForwardToken != *out.NextForwardToken {
		t.Fatalf("at the end: %v %+v, want the same token back", err, again)
	}
}

func TestLogReaderReadsTheTaskStream(t *testing.T) {
	ctx := context.Background()
	l, fe, cw := newTestLogReader(t)
	cw.pageSize, cw.empties = 3, true
	readLog := logText(t)

	if _, err := l.Logs(ctx, testPipeline, "", compute.LogOptions{}); !errors.Is(err, compute.ErrNoLogs) {
		t.Fatalf("no deployment id: %v", err)
	}
	if _, err := l.Logs(ctx, testPipeline, testDeployment, compute.LogOptions{}); !errors.Is(err, compute.ErrNoLogs) {
		t.Fatalf("no task: %v", err)
	}
	arn := runLoggedTask(fe, testDeployment)
	stream := l.StreamName(arn)
	if want := testPrefix + "/runtime/" + arn[strings.LastIndex(arn, "/")+1:]; stream != want {
		t.Fatalf("stream %q, want %q (prefix/container/task-id)", stream, want)
	}
	// The task has not logged yet: no stream, an empty log.
	if got := readLog(l.Logs(ctx, testPipeline, testDeployment, compute.LogOptions{})); got != "" {
		t.Fatalf("before the stream exists: %q", got)
	}
	var want strings.Builder
	for i := range 10 {
		msg := "line " + strconv.Itoa(i)
		cw.put(testLogGroup, stream, msg)
		want.WriteString(msg + "\n")
	}
	if got := readLog(l.Logs(ctx, testPipeline, testDeployment, compute.LogOptions{})); got != want.String() {
		t.Fatalf("log = %q, want %q", got, want.String())
	}
	// A tail: from a line start, at most that many bytes, across backward pages.
	if got := readLog(l.Logs(ctx, testPipeline, testDeployment, compute.LogOptions{Tail: int64(len("line 8\nline 9\n") + 3)})); got != "line 8\nline 9\n" {
		t.Fatalf("tail = %q", got)
	}
	if got := readLog(l.Logs(ctx, testPipeline, testDeployment, compute.LogOptions{Tail: 1 << 20})); got != want.String() {
		t.Fatalf("large tail = %q", got)
	}
}

func TestLogReaderFollowsUntilTheTaskStops(t *testing.T) {
	ctx := context.Background()
	l, fe, cw := newTestLogReader(t)
	cw.pageSize = 2
	arn := runLoggedTask(fe, testDeployment)
	stream := l.StreamName(arn)
	cw.put(testLogGroup, stream, "a", "b", "c")
	rc, err := l.Logs(ctx, testPipeline, testDeployment, compute.LogOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	buf := make([]byte, 64)
	got := ""
	for got != "a\nb\nc\n" {
		n, err := rc.Read(buf)
		if err != nil {
			t.Fatalf("read: %v (so far %q)", err, got)
		}
		got += string(buf[:n])
	}
	// More output, then the task stops: the reader delivers it and ends.
	cw.put(testLogGroup, stream, "d")
	fe.setStopped(arn, 0, "EssentialContainerExited", "Essential container in task exited", "")
	rest, err := io.ReadAll(rc)
	if err != nil || string(rest) != "d\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}

	// A cancelled context ends a follow of a running task.
	arn2 := runLoggedTask(fe, "dep-2")
	cw.put(testLogGroup, l.StreamName(arn2), "x")
	cctx, cancel := context.WithCancel(ctx)
	rc2, err := l.Logs(cctx, testPipeline, "dep-2", compute.LogOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.ReadAtLeast(rc2, buf, 2)
	if err != nil || string(buf[:n]) != "x\n" {
		t.Fatalf("first read %q %v", buf[:n], err)
	}
	cancel()
	if _, err := io.ReadAll(rc2); !errors.Is(err, context.Canceled) {
		t.Fatalf("after cancel: %v", err)
	}
}

func TestLogsConfigFromEnv(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if _, ok, err := LogsConfigFromEnv(getenv); ok || err != nil {
		t.Fatalf("no log group: ok %v, %v", ok, err)
	}
	env[EnvRuntimeLogGroup] = testLogGroup
	if _, ok, err := LogsConfigFromEnv(getenv); !ok || err == nil {
		t.Fatalf("log group without cluster, container, prefix: ok %v, %v", ok, err)
	}
	env[EnvCluster], env[EnvContainerName], env[EnvRuntimeLogStreamPrefix] = "sluice", "runtime", "/sluice/"
	cfg, ok, err := LogsConfigFromEnv(getenv)
	if !ok || err != nil || cfg.StreamPrefix != "sluice" {
		t.Fatalf("%+v ok %v, %v", cfg, ok, err)
	}
}
