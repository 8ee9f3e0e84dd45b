package workflowtest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/internal/domain"
)

func pipeline() domain.Pipeline {
	dep := "dep-1"
	return domain.Pipeline{Name: "p1", Generation: 8, DeploymentID: &dep}
}

func TestRecorder(t *testing.T) {
	r := NewRecorder()
	p := pipeline()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.Start(context.Background(), p, domain.WorkflowSuspend); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := len(r.Calls()); n != 8 {
		t.Fatalf("%d calls, want 8", n)
	}
	ex := r.Executions()
	if len(ex) != 1 || ex[0].ExecutionName != "p1-g8-suspend" || ex[0].Input.DeploymentID != "dep-1" {
		t.Fatalf("executions %+v", ex)
	}
	boom := errors.New("boom")
	r.FailStarts(1, boom)
	p.Generation = 9
	if _, err := r.Start(context.Background(), p, domain.WorkflowStop); !errors.Is(err, boom) {
		t.Fatalf("first start after FailStarts(1): %v", err)
	}
	ref, err := r.Start(context.Background(), p, domain.WorkflowStop)
	if err != nil || ref.ExecutionName != "p1-g9-stop" || !strings.Contains(ref.ExecutionArn, ":execution:sluice-stop:p1-g9-stop") {
		t.Fatalf("second start: %+v, %v", ref, err)
	}
	r.FailStops(boom)
	if err := r.Stop(context.Background(), ref, "c"); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if s := r.Stops(); len(s) != 1 || s[0].Cause != "c" {
		t.Fatalf("stops %+v", s)
	}
	r.Reset()
	if len(r.Calls())+len(r.Executions())+len(r.Stops()) != 0 {
		t.Fatal("Reset kept records")
	}
}
