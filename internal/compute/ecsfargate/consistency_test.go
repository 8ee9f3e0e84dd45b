package ecsfargate

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/compute"
)

// The ECS API is eventually consistent: the fake can leave a new task out of the
// next N ListTasks answers and report it MISSING to the next N DescribeTasks
// calls (fakeECS.listLag, describeLag). These tests hold the driver correct
// under that lag. No test waits: the driver's waits are counted, not slept.

// countSleeps makes the driver's settle waits instant and counts them.
func countSleeps(d *Driver) *int {
	n := new(int)
	d.sleep = func(context.Context, time.Duration) error { *n++; return nil }
	return n
}

func TestProvisionTwiceWhileListingLags(t *testing.T) {
	cases := []struct {
		name                 string
		listLag, describeLag int
	}{
		{"not listed", 1000, 0},
		{"listed, not described", 0, 1000},
		{"neither", 1000, 1000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			d, fe, _ := newTestDriver(t, nil)
			sleeps := countSleeps(d)
			fe.with(func() { fe.listLag, fe.describeLag = tc.listLag, tc.describeLag })
			first, err := d.Provision(ctx, provisionRequest())
			if err != nil {
				t.Fatal(err)
			}
			second, err := d.Provision(ctx, provisionRequest())
			if err != nil {
				t.Fatal(err)
			}
			if fe.taskCount() != 1 || second.Handle != first.Handle {
				t.Errorf("%d tasks, handles %q then %q: want one task", fe.taskCount(), first.Handle, second.Handle)
			}
			if *sleeps != 0 {
				t.Errorf("Provision waited %d times; the clientToken makes waiting needless", *sleeps)
			}
		})
	}
}

// The token was used with other parameters while DescribeTasks does not know the
// task yet: ConflictException names it, and it is the deployment.
func TestProvisionConflictWhileDescribeLags(t *testing.T) {
	ctx := context.Background()
	d, fe, _ := newTestDriver(t, nil)
	fe.with(func() { fe.listLag, fe.describeLag = 1000, 1000 })
	first, err := d.Provision(ctx, provisionRequest())
	if err != nil {
		t.Fatal(err)
	}
	changed := provisionRequest()
	changed.RuntimeConfig = json.RawMessage(`{"workers": 8}`)
	again, err := d.Provision(ctx, changed)
	if err != nil || again.Handle != first.Handle || fe.taskCount() != 1 {
		t.Errorf("Provision with other parameters = %+v, %v (%d tasks), want the first task", again, err, fe.taskCount())
	}
}

func TestCheckAndDeprovisionWhileListingLags(t *testing.T) {
	cases := []struct {
		name                 string
		listLag, describeLag int
	}{
		// Each look is two ListTasks calls (startedBy, then the family's STOPPED
		// tasks): a lag of 3 is seen on the second look, 5 on the third.
		{"listed on the second look", 3, 0},
		{"listed on the third look", 5, 0},
		{"listed, not yet described", 0, 1000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			for _, op := range []string{"check", "deprovision"} {
				d, fe, _ := newTestDriver(t, nil)
				fe.with(func() { fe.listLag, fe.describeLag = tc.listLag, tc.describeLag })
				dep, err := d.Provision(ctx, provisionRequest())
				if err != nil {
					t.Fatal(err)
				}
				switch op {
				case "check":
					res, err := d.Check(ctx, testPipeline, testDeployment)
					if err != nil || res.State != compute.StateStarting {
						t.Errorf("Check right after Provision = %+v, %v, want Starting", res, err)
					}
				case "deprovision":
					if err := d.Deprovision(ctx, testPipeline, testDeployment); err != nil {
						t.Fatal(err)
					}
					if got := fe.task(dep.Handle).DesiredStatus; got != "STOPPED" {
						t.Errorf("Deprovision right after Provision left the task desired %s", got)
					}
				}
			}
		})
	}
}

// What the driver cannot cover: a listing that lags beyond its settle waits.
// Deprovision then reports success (missing compute is success), after waiting
// every one of them.
func TestDeprovisionGivesUpAfterTheSettleWaits(t *testing.T) {
	d, fe, _ := newTestDriver(t, nil)
	sleeps := countSleeps(d)
	fe.with(func() { fe.listLag = 1000 })
	if _, err := d.Provision(context.Background(), provisionRequest()); err != nil {
		t.Fatal(err)
	}
	if err := d.Deprovision(context.Background(), testPipeline, testDeployment); err != nil {
		t.Fatal(err)
	}
	if *sleeps != len(listSettleDelays) {
		t.Errorf("waited %d times, want %d", *sleeps, len(listSettleDelays))
	}
	if n := len(fe.callsTo("StopTask")); n != 0 {
		t.Errorf("%d StopTask calls for a task never listed", n)
	}
	// Once the listing settles, a repeat (Step Functions retries) stops it.
	fe.settle()
	if err := d.Deprovision(context.Background(), testPipeline, testDeployment); err != nil {
		t.Fatal(err)
	}
	if n := len(fe.callsTo("StopTask")); n != 1 {
		t.Errorf("%d StopTask calls after the listing settled, want 1", n)
	}
}
