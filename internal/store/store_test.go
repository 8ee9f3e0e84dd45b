package store

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/sluicehq/sluice/internal/domain"
)

func TestCreateGetRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.create("alpha")
	got := e.get("alpha")
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", got, p)
	}
	sameRecord(t, "get after create", got, p)

	evs := e.history("alpha")
	if len(evs) != 1 || evs[0].RefreshVersion != 1 || evs[0].Generation != 0 ||
		evs[0].DeploymentStatus != domain.CombinedStopped || evs[0].StorageStatus != domain.StorageCleared ||
		evs[0].Cause != (Cause{Action: "create", Actor: "user:test"}) {
		t.Fatalf("history after create: %+v", evs)
	}
}

func TestCreateDuplicateName(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.create("dup")
	other, err := domain.Create(domain.Definition{Name: "dup", Description: "another one"}, uuid.NewString(), e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	err = e.store.Create(e.ctx, other, Cause{Action: "create"})
	if errCode(err) != domain.CodeDuplicateName {
		t.Fatalf("duplicate create: got %v, want DuplicateName", err)
	}
	sameRecord(t, "record after a duplicate create", e.get("dup"), p)
	if n := len(e.history("dup")); n != 1 {
		t.Fatalf("history after a duplicate create has %d events, want 1", n)
	}
}

func TestGetUnknown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s, h := e.hooked()
	for _, name := range []string{"nope", "bad name!", strings.Repeat("a", 5000), ""} {
		_, err := s.Get(e.ctx, name)
		if errCode(err) != domain.CodeUnknownPipelineName {
			t.Errorf("Get(%.20q): got %v, want UnknownPipelineName", name, err)
		}
	}
	if n := h.gets.Load(); n != 1 { // only "nope" is a valid name
		t.Errorf("%d GetItem calls, want 1 (invalid names are unknown without a call)", n)
	}
}

// fullRecord is a provisioned record with every optional field set.
func fullRecord(name string, now time.Time) domain.Pipeline {
	running, desired := domain.RuntimeRunning, domain.RuntimeDesiredRunning
	initial := domain.InitialRunning
	dep, loc := "dep-42", "http://127.0.0.1:8080"
	t1 := now.Add(time.Second)
	return domain.Pipeline{
		Name: name, ID: uuid.NewString(), Description: "all fields ✓", RuntimeConfig: []byte(`{"checkpoint_interval_secs":5,"storage":true,"x":[1,2,{"y":null}]}`),
		CreatedAt: now, Version: 3, RefreshVersion: 17, Generation: 5, Tags: []string{"a", "b"},
		ProgramCode: "CREATE TABLE t(x INT);", UdfRust: "fn f() {}", UdfToml: "[dependencies]", ProgramConfig: []byte(`{"profile":"dev"}`),
		ProgramVersion: 2, ProgramStatus: domain.ProgramSystemError, ProgramStatusSince: now,
		ProgramError: domain.ProgramError{SystemError: &loc}, PlatformVersion: "sluice-test",
		ResourcesStatus: domain.ResourcesProvisioned, ResourcesStatusSince: now,
		ResourcesDesiredStatus: domain.ResourcesDesiredProvisioned, ResourcesDesiredStatusSince: now,
		RuntimeStatus: &running, RuntimeStatusSince: &t1, RuntimeDesiredStatus: &desired, RuntimeDesiredStatusSince: &t1,
		DeploymentStatusSince: t1, DeploymentDesiredStatusSince: now,
		DeploymentError: &domain.ErrorBody{Message: "earlier trouble", ErrorCode: "RuntimeFailed", Details: map[string]any{"reason": "x", "n": 1.5, "list": []any{"a"}}},
		DeploymentID:    &dep, DeploymentLocation: &loc, DeploymentInitial: &initial,
		StorageStatus: domain.StorageInUse, StorageStatusSince: now, StorageStatusDetails: []byte(`{"checkpoints":[{"uuid":"c1","fingerprint":7}]}`),
		Workflow: &domain.WorkflowRef{Kind: domain.WorkflowStart, Generation: 5, ExecutionName: name + "-g5-start",
			ExecutionArn: "arn:aws:states:us-east-1:000000000000:execution:start:" + name + "-g5-start", StartedAt: now, Status: "RUNNING"},
	}
}

func TestRoundTripEveryField(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := fullRecord("full", e.clock.Now())
	if err := e.store.Create(e.ctx, p, Cause{Action: "import"}); err != nil {
		t.Fatal(err)
	}
	got := e.get("full")
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", got, p)
	}
	sameRecord(t, "get", got, p)
	recs, _, err := e.store.List(e.ctx, "", 10)
	if err != nil || len(recs) != 1 {
		t.Fatalf("list: %v %v", recs, err)
	}
	sameRecord(t, "list", recs[0], p)
	evs := e.history("full")
	if len(evs) != 1 || !reflect.DeepEqual(evs[0].DeploymentError, p.DeploymentError) || *evs[0].RuntimeStatus != domain.RuntimeRunning ||
		evs[0].DeploymentStatus != domain.CombinedRunning || evs[0].RefreshVersion != 17 || evs[0].Generation != 5 {
		t.Fatalf("event: %+v", evs)
	}
}

// putRaw writes an item as it is (to plant corrupt data).
func (e *env) putRaw(item map[string]types.AttributeValue) {
	e.t.Helper()
	if _, err := e.client.PutItem(e.ctx, &dynamodb.PutItemInput{TableName: aws.String(e.table), Item: item}); err != nil {
		e.t.Fatal(err)
	}
}

func TestStrictDecoding(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	base := fullRecord("strict", e.clock.Now())
	enc, err := encodeRecord(base, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	js := enc.item["record"].(*types.AttributeValueMemberS).Value
	withRecord := func(js string) map[string]types.AttributeValue {
		item := map[string]types.AttributeValue{}
		for k, v := range enc.item {
			item[k] = v
		}
		item["record"] = &types.AttributeValueMemberS{Value: js}
		return item
	}
	cases := map[string]map[string]types.AttributeValue{
		"unknown field":        withRecord(`{"surprise":1,` + js[1:]),
		"unknown enum":         withRecord(strings.Replace(js, `"deployment_resources_status":"Provisioned"`, `"deployment_resources_status":"Provisionned"`, 1)),
		"unknown runtime enum": withRecord(strings.Replace(js, `"deployment_runtime_status":"Running"`, `"deployment_runtime_status":"running"`, 1)),
		"trailing data":        withRecord(js + `{}`),
		"not JSON":             withRecord(`nope`),
		"generation disagrees": func() map[string]types.AttributeValue {
			item := withRecord(js)
			item[attrGeneration] = &types.AttributeValueMemberN{Value: "6"}
			return item
		}(),
		"storage status disagrees": func() map[string]types.AttributeValue {
			item := withRecord(js)
			item[attrStorageStatus] = &types.AttributeValueMemberS{Value: "Cleared"}
			return item
		}(),
		"wrong attribute type": func() map[string]types.AttributeValue {
			item := withRecord(js)
			item[attrRefreshVersion] = &types.AttributeValueMemberS{Value: "17"}
			return item
		}(),
	}
	for what, item := range cases {
		e.putRaw(item)
		_, err := e.store.Get(e.ctx, "strict")
		if err == nil || !errors.Is(err, errCorrupt) || errCode(err) != "" || errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: Get gave %v, want a corrupt-item error", what, err)
		}
	}
	// An event with an unknown status fails History.
	e.putRaw(enc.item)
	ev, err := encodeEvent(base.Name, base.ID, eventOf(base, Cause{Action: "x"}, e.clock.Now()), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	ev[attrResourcesStatus] = &types.AttributeValueMemberS{Value: "Sideways"}
	e.putRaw(ev)
	if _, _, err := e.store.History(e.ctx, "strict", "", 10); !errors.Is(err, errCorrupt) {
		t.Errorf("History with a corrupt event: %v", err)
	}
}

func TestApplyAction(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.create("act")
	before := e.get("act")
	out, err := start(before, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	started, err := e.store.ApplyAction(e.ctx, before, out, Cause{Action: "start", Actor: "user:k1", RequestID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if started.RefreshVersion != 2 || started.Generation != 1 || started.ResourcesDesiredStatus != domain.ResourcesDesiredProvisioned {
		t.Fatalf("after start: %s", statusesOf(started))
	}
	sameRecord(t, "get after start", e.get("act"), started)

	t.Run("stale refresh version", func(t *testing.T) {
		_, err := e.store.ApplyAction(e.ctx, before, out, Cause{Action: "start"})
		var stale *StaleError
		if !errors.As(err, &stale) || !errors.Is(err, ErrStale) {
			t.Fatalf("got %v, want *StaleError", err)
		}
		sameRecord(t, "stale error's current record", stale.Current, started)
		if n := len(e.history("act")); n != 2 {
			t.Fatalf("%d events, want 2", n)
		}
	})

	t.Run("outcome without a write", func(t *testing.T) {
		s, h := e.hooked()
		out, err := start(started, e.clock.Now()) // a repeated start: no-op
		if err != nil || out.Write {
			t.Fatalf("repeat start: %+v %v", out, err)
		}
		got, err := s.ApplyAction(e.ctx, started, out, Cause{Action: "start"})
		if err != nil || h.calls.Load() != 0 {
			t.Fatalf("no-write outcome: %v, %d calls", err, h.calls.Load())
		}
		sameRecord(t, "no-write outcome", got, started)
	})

	t.Run("invalid outcome is a programming error", func(t *testing.T) {
		s, h := e.hooked()
		bad := domain.Outcome{Pipeline: started, Write: true}
		bad.Pipeline.Generation += 5
		bad.Pipeline.RefreshVersion++
		_, err := s.ApplyAction(e.ctx, started, bad, Cause{})
		var illegal *domain.IllegalTransitionError
		if !errors.As(err, &illegal) || errors.Is(err, ErrStale) || h.calls.Load() != 0 {
			t.Fatalf("got %v (%d calls), want an IllegalTransitionError before any call", err, h.calls.Load())
		}
		same := domain.Outcome{Pipeline: started, Write: true} // refresh version not bumped
		if _, err := s.ApplyAction(e.ctx, started, same, Cause{}); err == nil || errors.Is(err, ErrStale) {
			t.Fatalf("unbumped refresh version: %v", err)
		}
	})
}

func TestApplyActionDeletedOrRecreated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.create("gone")
	before := e.get("gone")
	if err := e.store.Delete(e.ctx, before, Cause{Action: "delete"}); err != nil {
		t.Fatal(err)
	}
	out, err := start(before, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.ApplyAction(e.ctx, before, out, Cause{}); errCode(err) != domain.CodeUnknownPipelineName {
		t.Fatalf("deleted: got %v, want UnknownPipelineName", err)
	}
	// Re-created with the same name: same refresh version and generation,
	// another id. The old read must not overwrite the new pipeline.
	fresh := e.create("gone")
	_, err = e.store.ApplyAction(e.ctx, before, out, Cause{})
	var stale *StaleError
	if !errors.As(err, &stale) || stale.Current.ID != fresh.ID {
		t.Fatalf("re-created: got %v, want *StaleError with the new record", err)
	}
	sameRecord(t, "re-created record", e.get("gone"), fresh)
}

func TestTransition(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.create("tr")
	started := e.act("tr", start)
	g := started.Generation
	cause := Cause{Action: "MarkProvisioning", Actor: "workflow", Execution: "tr-g1-start"}

	prov, err := e.store.Transition(e.ctx, "tr", g, domain.MarkProvisioning("dep-1"), cause)
	if err != nil {
		t.Fatal(err)
	}
	if prov.ResourcesStatus != domain.ResourcesProvisioning || prov.RefreshVersion != 3 || prov.Generation != g {
		t.Fatalf("after MarkProvisioning: %s", statusesOf(prov))
	}
	sameRecord(t, "get after transition", e.get("tr"), prov)

	t.Run("idempotent repeat writes nothing", func(t *testing.T) {
		s, h := e.hooked()
		again, err := s.Transition(e.ctx, "tr", g, domain.MarkProvisioning("dep-1"), cause)
		if err != nil || h.transacts.Load() != 0 {
			t.Fatalf("repeat: %v, %d writes", err, h.transacts.Load())
		}
		sameRecord(t, "repeat", again, prov)
		if n := len(e.history("tr")); n != 3 {
			t.Fatalf("%d events, want 3", n)
		}
	})

	t.Run("unexpected status is a conflict", func(t *testing.T) {
		_, err := e.store.Transition(e.ctx, "tr", g, domain.MarkStopped(), Cause{Action: "MarkStopped"})
		var conflict *ConflictError
		var unexpected *domain.UnexpectedStatusError
		if !errors.As(err, &conflict) || !errors.As(err, &unexpected) {
			t.Fatalf("got %v, want *ConflictError", err)
		}
		sameRecord(t, "conflict's current record", conflict.Current, prov)
		sameRecord(t, "record after a conflict", e.get("tr"), prov)
	})

	t.Run("stale generation is superseded, nothing written", func(t *testing.T) {
		s, h := e.hooked()
		_, err := s.Transition(e.ctx, "tr", g-1, domain.MarkProvisioned("http://x", domain.RuntimeRunning), Cause{})
		var sup *SupersededError
		if !errors.As(err, &sup) || sup.Generation != g-1 || h.transacts.Load() != 0 {
			t.Fatalf("got %v (%d writes), want *SupersededError", err, h.transacts.Load())
		}
		sameRecord(t, "superseded's current record", sup.Current, prov)
	})

	t.Run("illegal transition is a plain error", func(t *testing.T) {
		_, err := e.store.Transition(e.ctx, "tr", g, domain.MarkProvisioned("http://x", domain.RuntimeSuspended), Cause{})
		var conflict *ConflictError
		var illegal *domain.IllegalTransitionError
		if errors.As(err, &conflict) || !errors.As(err, &illegal) {
			t.Fatalf("got %v, want an IllegalTransitionError", err)
		}
	})

	t.Run("unknown pipeline", func(t *testing.T) {
		_, err := e.store.Transition(e.ctx, "nope", 1, domain.MarkStopped(), Cause{})
		if errCode(err) != domain.CodeUnknownPipelineName {
			t.Fatalf("got %v", err)
		}
	})

	// A forced stop supersedes the start workflow: its next step is fenced off.
	stopped := e.act("tr", stop(true))
	if stopped.Generation != g+1 {
		t.Fatalf("after stop: %s", statusesOf(stopped))
	}
	_, err = e.store.Transition(e.ctx, "tr", g, domain.MarkProvisioned("http://x", domain.RuntimeRunning), Cause{})
	var sup *SupersededError
	if !errors.As(err, &sup) || sup.Current.Generation != g+1 {
		t.Fatalf("old generation after a stop: %v", err)
	}
	e.transition("tr", domain.MarkStopping())
	final := e.transition("tr", domain.MarkStopped())
	if !final.FullyStopped() || final.Generation != g+1 {
		t.Fatalf("final: %s", statusesOf(final))
	}
}

// provisioned brings a new pipeline to Provisioned/Running.
func (e *env) provisioned(name string) domain.Pipeline {
	e.t.Helper()
	e.create(name)
	e.act(name, start)
	e.transition(name, domain.MarkProvisioning("dep-"+name))
	return e.transition(name, domain.MarkProvisioned("http://127.0.0.1:1/"+name, domain.RuntimeRunning))
}

func TestTransitionSupersededBetweenReadAndWrite(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.create("race")
	started := e.act("race", start)
	s, h := e.hooked()
	// A forced stop lands between the step's read and its write.
	h.beforeTransact = func(n int64, _ *dynamodb.TransactWriteItemsInput) error {
		if n == 1 {
			e.act("race", stop(true))
		}
		return nil
	}
	_, err := s.Transition(e.ctx, "race", started.Generation, domain.MarkProvisioning("dep-1"), Cause{Action: "MarkProvisioning"})
	var sup *SupersededError
	if !errors.As(err, &sup) || sup.Current.Generation != started.Generation+1 {
		t.Fatalf("got %v, want *SupersededError with the stop's generation", err)
	}
	if h.gets.Load() != 1 || h.transacts.Load() != 1 {
		t.Fatalf("%d reads, %d writes; want 1 and 1 (the failed write returns the current record)", h.gets.Load(), h.transacts.Load())
	}
	for _, ev := range e.history("race") {
		if ev.ResourcesStatus == domain.ResourcesProvisioning {
			t.Fatalf("a superseded write landed: %+v", ev)
		}
	}
}

func TestTransitionRetriesAfterConcurrentObservation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provisioned("obs")
	suspending := e.act("obs", stop(false)) // desired Suspended: the suspend workflow runs
	g := suspending.Generation
	s, h := e.hooked()
	h.beforeTransact = func(n int64, _ *dynamodb.TransactWriteItemsInput) error {
		if n == 1 { // an observation of the same generation lands first
			if _, err := e.store.Transition(e.ctx, "obs", g, domain.ObserveRuntime(domain.RuntimePaused, nil), Cause{Action: "ObserveRuntime"}); err != nil {
				t.Error(err)
			}
		}
		return nil
	}
	got, err := s.Transition(e.ctx, "obs", g, domain.MarkSuspending(), Cause{Action: "MarkSuspending"})
	if err != nil {
		t.Fatal(err)
	}
	if *got.RuntimeStatus != domain.RuntimeSuspending || got.RefreshVersion != suspending.RefreshVersion+2 {
		t.Fatalf("got %s", statusesOf(got))
	}
	if h.gets.Load() != 1 || h.transacts.Load() != 2 {
		t.Fatalf("%d reads, %d writes; want 1 and 2", h.gets.Load(), h.transacts.Load())
	}
	evs := e.history("obs")
	if evs[0].Cause.Action != "MarkSuspending" || evs[1].Cause.Action != "ObserveRuntime" || *evs[1].RuntimeStatus != domain.RuntimePaused {
		t.Fatalf("history: %+v", evs[:2])
	}
}

func TestTransitionGivesUpUnderContention(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.provisioned("busy")
	h := &hookClient{DynamoAPI: e.client}
	s := NewDynamo(h, e.table, WithClock(e.clock.Now), WithMaxAttempts(3))
	flip := []domain.RuntimeStatus{domain.RuntimePaused, domain.RuntimeRunning}
	h.beforeTransact = func(n int64, _ *dynamodb.TransactWriteItemsInput) error {
		_, err := e.store.Transition(e.ctx, "busy", p.Generation, domain.ObserveRuntime(flip[(n+1)%2], nil), Cause{Action: "ObserveRuntime"})
		return err
	}
	_, err := s.Transition(e.ctx, "busy", p.Generation, domain.ObserveRuntime(domain.RuntimeUnavailable, nil), Cause{})
	if !errors.Is(err, ErrStale) || !errors.Is(err, ErrUnavailable) || h.transacts.Load() != 3 {
		t.Fatalf("got %v after %d writes, want ErrStale+ErrUnavailable after 3", err, h.transacts.Load())
	}
}

func TestSetWorkflow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.create("wf")
	started := e.act("wf", start)
	ref := domain.WorkflowRef{Kind: domain.WorkflowStart, Generation: started.Generation, ExecutionName: "wf-g1-start",
		StartedAt: e.clock.Now(), Status: "PENDING"}
	got, err := e.store.SetWorkflow(e.ctx, "wf", ref)
	if err != nil {
		t.Fatal(err)
	}
	same := started
	same.RefreshVersion++
	if got.Workflow == nil || *got.Workflow != ref || got.RefreshVersion != started.RefreshVersion+1 || statusesOf(got) != statusesOf(same) {
		t.Fatalf("after SetWorkflow: %s %+v", statusesOf(got), got.Workflow)
	}
	sameRecord(t, "get after SetWorkflow", e.get("wf"), got)
	if ev := e.history("wf")[0]; ev.Cause.Action != "SetWorkflow" || ev.Cause.Execution != "wf-g1-start" || ev.RefreshVersion != got.RefreshVersion {
		t.Fatalf("event: %+v", ev)
	}

	s, h := e.hooked()
	again, err := s.SetWorkflow(e.ctx, "wf", ref)
	if err != nil || h.transacts.Load() != 0 || again.RefreshVersion != got.RefreshVersion {
		t.Fatalf("repeat: %v, %d writes", err, h.transacts.Load())
	}

	// A concurrent transition between read and write: both land, nothing is lost.
	h.beforeTransact = func(n int64, _ *dynamodb.TransactWriteItemsInput) error {
		if n == 1 {
			e.transition("wf", domain.MarkProvisioning("dep-1"))
		}
		return nil
	}
	ref.Status = "RUNNING"
	running, err := s.SetWorkflow(e.ctx, "wf", ref)
	if err != nil {
		t.Fatal(err)
	}
	if running.Workflow.Status != "RUNNING" || running.ResourcesStatus != domain.ResourcesProvisioning {
		t.Fatalf("lost update: %s %+v", statusesOf(running), running.Workflow)
	}
	sameRecord(t, "get after concurrent SetWorkflow", e.get("wf"), running)

	old := ref
	old.Generation = 0
	var sup *SupersededError
	if _, err := e.store.SetWorkflow(e.ctx, "wf", old); !errors.As(err, &sup) {
		t.Fatalf("old generation: %v", err)
	}
	if _, err := e.store.SetWorkflow(e.ctx, "nope", ref); errCode(err) != domain.CodeUnknownPipelineName {
		t.Fatalf("unknown: %v", err)
	}
}

// rawItems queries every item of a pipeline's partition.
func (e *env) rawItems(name string) []map[string]types.AttributeValue {
	e.t.Helper()
	kc, _ := expression.NewBuilder().WithKeyCondition(expression.Key(attrPK).Equal(expression.Value(pipelinePK(name)))).Build()
	out, err := e.client.Query(e.ctx, &dynamodb.QueryInput{TableName: aws.String(e.table), KeyConditionExpression: kc.KeyCondition(),
		ExpressionAttributeNames: kc.Names(), ExpressionAttributeValues: kc.Values(), ConsistentRead: aws.Bool(true)})
	if err != nil {
		e.t.Fatal(err)
	}
	return out.Items
}

func TestDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provisioned("del")
	if err := e.store.Delete(e.ctx, e.get("del"), Cause{}); errCode(err) != domain.CodeDeleteRestrictedToFullyStopped {
		t.Fatalf("delete while running: %v", err)
	}
	e.act("del", stop(true))
	e.transition("del", domain.MarkStopping())
	e.transition("del", domain.MarkStopped())
	if err := e.store.Delete(e.ctx, e.get("del"), Cause{}); errCode(err) != domain.CodeDeleteRestrictedToClearedStorage {
		t.Fatalf("delete with storage in use: %v", err)
	}
	e.act("del", domain.Clear)
	cleared := e.transition("del", domain.MarkStorageCleared())
	old := e.get("del")
	id := old.ID

	// A write after the read makes the delete stale.
	ref := domain.WorkflowRef{Kind: domain.WorkflowClear, Generation: cleared.Generation, ExecutionName: "del-clear", StartedAt: e.clock.Now(), Status: "SUCCEEDED"}
	current, err := e.store.SetWorkflow(e.ctx, "del", ref)
	if err != nil {
		t.Fatal(err)
	}
	var stale *StaleError
	if err := e.store.Delete(e.ctx, old, Cause{}); !errors.As(err, &stale) {
		t.Fatalf("stale delete: %v", err)
	}
	sameRecord(t, "stale delete's current record", stale.Current, current)
	nEvents := len(e.history("del"))

	if err := e.store.Delete(e.ctx, current, Cause{Action: "delete", Actor: "user:k1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Get(e.ctx, "del"); errCode(err) != domain.CodeUnknownPipelineName {
		t.Fatalf("get after delete: %v", err)
	}
	if err := e.store.Delete(e.ctx, current, Cause{}); errCode(err) != domain.CodeUnknownPipelineName {
		t.Fatalf("second delete: %v", err)
	}
	// The history is gone except the tombstone, which expires.
	items := e.rawItems("del")
	if len(items) != 1 {
		t.Fatalf("%d items left after delete (of %d events), want the tombstone only", len(items), nEvents)
	}
	var tomb eventItem
	if err := attributevalue.UnmarshalMap(items[0], &tomb); err != nil {
		t.Fatal(err)
	}
	wantExpiry := e.clock.Now().Add(DefaultDeletedHistoryTTL).Unix()
	if tomb.SK != eventSK(id, current.RefreshVersion+1) || tomb.CauseAction != "delete" || tomb.CauseActor != "user:k1" ||
		tomb.ExpiresAt < wantExpiry-60 || tomb.ExpiresAt > wantExpiry+60 {
		t.Fatalf("tombstone: %+v (want expiry ≈ %d)", tomb, wantExpiry)
	}

	// Re-created: a new id, a new history.
	fresh := e.create("del")
	if fresh.ID == id {
		t.Fatal("same id")
	}
	if evs := e.history("del"); len(evs) != 1 || evs[0].RefreshVersion != 1 {
		t.Fatalf("history of the re-created pipeline: %+v", evs)
	}
}

func TestDeleteCleansLongHistory(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.create("long")
	ref := domain.WorkflowRef{Kind: domain.WorkflowClear, Generation: 0, ExecutionName: "long-x", StartedAt: e.clock.Now()}
	for i := range 60 { // more than two BatchWriteItem batches
		ref.Status = "S" + string(rune('A'+i%26)) + string(rune('a'+i/26))
		if _, err := e.store.SetWorkflow(e.ctx, "long", ref); err != nil {
			t.Fatal(err)
		}
	}
	p := e.get("long")
	if err := e.store.Delete(e.ctx, p, Cause{Action: "delete"}); err != nil {
		t.Fatal(err)
	}
	if items := e.rawItems("long"); len(items) != 1 {
		t.Fatalf("%d items left, want the tombstone only", len(items))
	}
}

// TestWriteLandedButAnswerLost: a transaction committed but its answer was
// lost, and the repeated request (with a new client token, e.g. after the
// token's window) fails its condition. The writer recognises its own write in
// the item returned with the failure and acknowledges it.
func TestWriteLandedButAnswerLost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s, h := e.hooked()
	h.beforeTransact = func(n int64, in *dynamodb.TransactWriteItemsInput) error {
		first := *in // the first attempt, committed (its answer "lost")
		first.ClientRequestToken = nil
		_, err := e.client.TransactWriteItems(e.ctx, &first)
		return err
	}
	p, err := domain.Create(domain.Definition{Name: "lost"}, uuid.NewString(), e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Create(e.ctx, p, Cause{Action: "create"}); err != nil {
		t.Fatalf("create: %v", err)
	}
	before := e.get("lost")
	out, err := start(before, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	started, err := s.ApplyAction(e.ctx, before, out, Cause{Action: "start"})
	if err != nil {
		t.Fatalf("apply action: %v", err)
	}
	prov, err := s.Transition(e.ctx, "lost", started.Generation, domain.MarkProvisioning("dep-1"), Cause{Action: "MarkProvisioning"})
	if err != nil {
		t.Fatalf("transition: %v", err)
	}
	sameRecord(t, "record", e.get("lost"), prov)
	if n := len(e.history("lost")); n != 3 || prov.RefreshVersion != 3 {
		t.Fatalf("%d events, refresh version %d; want 3 writes", n, prov.RefreshVersion)
	}
}

func TestTransitionFrom(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.create("from")
	started := e.act("from", start)
	cause := Cause{Action: "MarkProvisioning", Actor: "workflow"}

	t.Run("a current read: no read, one write", func(t *testing.T) {
		s, h := e.hooked()
		got, err := s.TransitionFrom(e.ctx, started, domain.MarkProvisioning("dep-1"), cause)
		if err != nil {
			t.Fatal(err)
		}
		if got.ResourcesStatus != domain.ResourcesProvisioning || got.RefreshVersion != started.RefreshVersion+1 {
			t.Fatalf("got %s", statusesOf(got))
		}
		if h.gets.Load() != 0 || h.transacts.Load() != 1 {
			t.Fatalf("%d reads, %d writes; want 0 and 1", h.gets.Load(), h.transacts.Load())
		}
		sameRecord(t, "get after", e.get("from"), got)
	})

	t.Run("a stale read: decided again on the current record", func(t *testing.T) {
		provisioning := e.get("from")
		// Another write of the generation lands after the caller's read.
		ref := domain.WorkflowRef{Kind: domain.WorkflowStart, Generation: provisioning.Generation, ExecutionName: "from-start", StartedAt: e.clock.Now(), Status: "RUNNING"}
		observed, err := e.store.SetWorkflow(e.ctx, "from", ref)
		if err != nil {
			t.Fatal(err)
		}
		s, h := e.hooked()
		got, err := s.TransitionFrom(e.ctx, provisioning, domain.MarkProvisioned("http://x", domain.RuntimeRunning), Cause{Action: "MarkProvisioned"})
		if err != nil {
			t.Fatal(err)
		}
		if got.RefreshVersion != observed.RefreshVersion+1 || got.Workflow == nil || got.Workflow.ExecutionName != "from-start" || got.ResourcesStatus != domain.ResourcesProvisioned {
			t.Fatalf("the stale read's write landed over the other write: %s, workflow %+v", statusesOf(got), got.Workflow)
		}
		if h.gets.Load() != 0 || h.transacts.Load() != 2 {
			t.Fatalf("%d reads, %d writes; want 0 and 2 (the lost write hands back the current record)", h.gets.Load(), h.transacts.Load())
		}
		sameRecord(t, "get after", e.get("from"), got)
	})

	t.Run("a read of an older generation is superseded, nothing written", func(t *testing.T) {
		before := e.get("from")
		stopped := e.act("from", stop(true))
		s, h := e.hooked()
		_, err := s.TransitionFrom(e.ctx, before, domain.ObserveRuntime(domain.RuntimePaused, nil), Cause{})
		var sup *SupersededError
		if !errors.As(err, &sup) || sup.Current.Generation != stopped.Generation {
			t.Fatalf("got %v, want *SupersededError with generation %d", err, stopped.Generation)
		}
		if h.transacts.Load() != 1 {
			t.Fatalf("%d writes, want 1 (lost, handing back the stop)", h.transacts.Load())
		}
		sameRecord(t, "record after", e.get("from"), stopped)
	})

	t.Run("a read of a deleted pipeline does not write on its re-created namesake", func(t *testing.T) {
		e.transition("from", domain.MarkStopping())
		old := e.transition("from", domain.MarkStopped())
		e.act("from", domain.Clear)
		e.transition("from", domain.MarkStorageCleared())
		if err := e.store.Delete(e.ctx, e.get("from"), Cause{Action: "delete"}); err != nil {
			t.Fatal(err)
		}
		e.create("from")
		fresh := e.act("from", start)
		stale := fresh
		stale.ID = old.ID // the same name, generation and refresh version; the deleted pipeline's id
		_, err := e.store.TransitionFrom(e.ctx, stale, domain.MarkProvisioning("dep-old"), cause)
		var sup *SupersededError
		if !errors.As(err, &sup) || sup.Current.ID != fresh.ID {
			t.Fatalf("got %v, want *SupersededError naming the new pipeline", err)
		}
		sameRecord(t, "the new pipeline", e.get("from"), fresh)
	})
}
