package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
)

// A scheduled event as EventBridge delivers it to a Lambda target.
const scheduledEvent = `{"version":"0","id":"53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa","detail-type":"Scheduled Event","source":"aws.events",
"account":"123456789012","time":"2026-12-02T14:00:00Z","region":"us-east-1","resources":["arn:aws:events:us-east-1:123456789012:rule/r"],"detail":{}}`

func TestParseInvocation(t *testing.T) {
	for _, c := range []struct {
		name, payload string
		want          *ShardRequest
		err           string
	}{
		{"scheduled event", scheduledEvent, nil, ""},
		{"empty", "", nil, ""},
		{"empty object", "{}", nil, ""},
		{"not an object", `"run"`, nil, ""},
		{"shard", `{"shard":2,"shards":5}`, &ShardRequest{Shard: 2, Shards: 5}, ""},
		{"first of one", `{"shard":0,"shards":1}`, &ShardRequest{Shard: 0, Shards: 1}, ""},
		{"shard out of range", `{"shard":5,"shards":5}`, nil, "want 0 ≤ shard < shards"},
		{"negative shard", `{"shard":-1,"shards":5}`, nil, "want 0 ≤ shard < shards"},
		{"no shards", `{"shard":0,"shards":0}`, nil, "want 0 ≤ shard < shards"},
		{"too many shards", `{"shard":0,"shards":101}`, nil, "≤ 100"},
		{"unknown member", `{"shard":0,"shards":2,"all":true}`, nil, "unknown field"},
		{"wrong type", `{"shard":"0","shards":2}`, nil, "cannot unmarshal"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseInvocation([]byte(c.payload))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != (c.want == nil) || (got != nil && *got != *c.want) {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestShardsFromEnv(t *testing.T) {
	for v, want := range map[string]int{"": 1, "1": 1, "10": 10, "100": 100} {
		if n, err := ShardsFromEnv(func(string) string { return v }); err != nil || n != want {
			t.Errorf("%q: %d, %v; want %d", v, n, err, want)
		}
	}
	for _, v := range []string{"0", "-1", "101", "x", "1.5"} {
		if _, err := ShardsFromEnv(func(string) string { return v }); err == nil || !strings.Contains(err.Error(), EnvShards) {
			t.Errorf("%q: err %v, want one naming %s", v, err, EnvShards)
		}
	}
}

// loopback is Lambda's asynchronous invocation of the same function: it
// runs the handler with the payload (after the invoke returned, as Lambda
// does) and records the results.
type loopback struct {
	entry   *Entry
	mu      sync.Mutex
	wg      sync.WaitGroup
	fail    map[int]bool // shards whose invoke fails
	results []any
	sent    []ShardRequest
}

func (l *loopback) InvokeAsync(ctx context.Context, payload []byte) error {
	var req ShardRequest
	if err := json.Unmarshal(payload, &req); err != nil {
		return err
	}
	l.mu.Lock()
	l.sent = append(l.sent, req)
	l.mu.Unlock()
	if l.fail[req.Shard] {
		return errors.New("TooManyRequestsException: Rate Exceeded.")
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		res, err := l.entry.Handle(context.WithoutCancel(ctx), payload)
		if err != nil {
			res = err
		}
		l.mu.Lock()
		l.results = append(l.results, res)
		l.mu.Unlock()
	}()
	return nil
}

// The coordinator invokes every shard once; together the shards' passes
// observe every pipeline exactly once.
func TestFanOutObservesEveryPipelineOnce(t *testing.T) {
	f := newFixture(t)
	names := f.runningMany(12)
	d := f.countChecks()
	e := &Entry{Pass: f.rec, Shards: 4}
	lb := &loopback{entry: e}
	e.Invoker = lb
	res, err := e.Handle(context.Background(), json.RawMessage(scheduledEvent))
	if err != nil {
		t.Fatal(err)
	}
	lb.wg.Wait()
	if rep, ok := res.(FanOutReport); !ok || rep != (FanOutReport{Shards: 4, Invoked: 4}) {
		t.Fatalf("coordinator result %#v", res)
	}
	seen := map[int]bool{}
	for _, s := range lb.sent {
		if s.Shards != 4 || seen[s.Shard] {
			t.Fatalf("sent %+v", lb.sent)
		}
		seen[s.Shard] = true
	}
	observed := 0
	for _, r := range lb.results {
		rep, ok := r.(Report)
		if !ok {
			t.Fatalf("a shard's result: %#v", r)
		}
		observed += rep.Observed
	}
	if len(lb.results) != 4 || observed != len(names) {
		t.Fatalf("%d shard passes observed %d pipelines, want 4 and %d", len(lb.results), observed, len(names))
	}
	for _, n := range names {
		if d.checks[n] != 1 {
			t.Fatalf("%s checked %d times", n, d.checks[n])
		}
	}
}

// Unsharded, the scheduled invocation is the pass itself.
func TestUnshardedInvocationIsThePass(t *testing.T) {
	f := newFixture(t)
	names := f.runningMany(3)
	e := &Entry{Pass: f.rec, Shards: 1, Invoker: &loopback{}}
	res, err := e.Handle(context.Background(), json.RawMessage(scheduledEvent))
	if err != nil {
		t.Fatal(err)
	}
	if rep, ok := res.(Report); !ok || rep.Observed != len(names) {
		t.Fatalf("result %#v", res)
	}
	if len(e.Invoker.(*loopback).sent) != 0 {
		t.Fatal("an unsharded pass invoked shards")
	}
}

// A failed invoke is counted and reported; the other shards still run.
func TestFanOutReportsFailedInvokes(t *testing.T) {
	f := newFixture(t)
	f.runningMany(8)
	e := &Entry{Pass: f.rec, Shards: 3}
	lb := &loopback{entry: e, fail: map[int]bool{1: true}}
	e.Invoker = lb
	res, err := e.Handle(context.Background(), json.RawMessage(scheduledEvent))
	lb.wg.Wait()
	if err == nil || !strings.Contains(err.Error(), "1 of 3 shards not invoked") {
		t.Fatalf("err %v", err)
	}
	if rep := res.(FanOutReport); rep != (FanOutReport{Shards: 3, Invoked: 2, Failed: 1}) || len(lb.results) != 2 {
		t.Fatalf("report %+v, %d passes", rep, len(lb.results))
	}
	if _, err := (&Entry{Pass: f.rec, Shards: 3}).Handle(context.Background(), nil); err == nil {
		t.Fatal("sharded without an Invoker ran")
	}
	if _, err := e.Handle(context.Background(), json.RawMessage(`{"shard":3,"shards":3}`)); err == nil {
		t.Fatal("an invalid shard request ran")
	}
}
