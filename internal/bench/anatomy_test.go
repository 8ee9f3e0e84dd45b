package bench

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"runtime/pprof"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/sluicehq/sluice/internal/lambdalocal"
	"github.com/sluicehq/sluice/internal/localstack"
)

func TestAttributeSplitsTheProfileByPart(t *testing.T) {
	fn := func(id uint64, name string) *profile.Location {
		return &profile.Location{ID: id, Line: []profile.Line{{Function: &profile.Function{ID: id, Name: name}}}}
	}
	encode, handle, gc := fn(1, "encoding/json.Marshal"), fn(2, "steps.Handle"), fn(3, "runtime.gcBgMarkWorker")
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		Function:   []*profile.Function{encode.Line[0].Function, handle.Line[0].Function, gc.Line[0].Function},
		Location:   []*profile.Location{encode, handle, gc},
		Sample: []*profile.Sample{
			{Location: []*profile.Location{encode}, Value: []int64{3, 3e9}, Label: map[string][]string{lambdalocal.ProfileLabel: {localstack.ProfilePartAPI}}},
			{Location: []*profile.Location{handle}, Value: []int64{1, 1e9}, Label: map[string][]string{lambdalocal.ProfileLabel: {"lambda:steps"}}},
			{Location: []*profile.Location{encode}, Value: []int64{2, 2e9}, Label: map[string][]string{lambdalocal.ProfileLabel: {"lambda:steps"}}},
			{Location: []*profile.Location{gc}, Value: []int64{1, 5e8}},
			{Location: []*profile.Location{encode}, Value: []int64{1, 25e7}, Label: map[string][]string{lambdalocal.ProfileLabel: {clientLabel}}},
		},
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	sec := map[string]float64{partDynamo: 7}
	top, err := attribute(buf.Bytes(), sec)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{partAPI: 3, partSteps: 3, partGo: 0.5, partClients: 0.25, partDynamo: 7}
	for part, s := range want {
		if sec[part] != s {
			t.Errorf("%s: %.2f s, want %.2f (all: %v)", part, sec[part], s, sec)
		}
	}
	if len(top) == 0 || top[0].Func != "encoding/json.Marshal" || top[0].Part != partAPI || top[0].Sec != 3 {
		t.Errorf("top function: %+v, want encoding/json.Marshal for the API with 3 s", top)
	}
	if _, err := attribute([]byte("not a profile"), map[string]float64{}); err == nil {
		t.Error("a broken profile was read")
	}
}

func TestPartOf(t *testing.T) {
	for label, want := range map[string]string{
		localstack.ProfilePartAPI: partAPI, "lambda:sluice-steps": partSteps, "lambda-endpoint": partEndpoint,
		clientLabel: partClients, "": partGo, "something else": partGo,
	} {
		if got := partOf(label); got != want {
			t.Errorf("partOf(%q) = %q, want %q", label, got, want)
		}
	}
}

func TestProcCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	busy := 0
	for i := range 20_000_000 {
		busy += i % 7
	}
	_ = busy
	if got := procCPU(os.Getpid()); got <= 0 {
		t.Errorf("procCPU(self) = %v after a busy loop, want > 0", got)
	}
	if got := procCPU(-1); got != 0 {
		t.Errorf("procCPU(-1) = %v, want 0", got)
	}
}

type okClient struct{}

func (okClient) Do(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200}, nil
}

func TestCallTimersCountOnlyInTheWindowAndTellTheAPIApart(t *testing.T) {
	timers := &callTimers{}
	c := timers.wrap(okClient{})
	call := func(ctx context.Context, target string) {
		r, _ := http.NewRequestWithContext(ctx, "POST", "http://127.0.0.1/", nil)
		r.Header.Set("X-Amz-Target", target)
		if _, err := c.Do(r); err != nil {
			t.Fatal(err)
		}
	}
	api := pprof.WithLabels(context.Background(), pprof.Labels(lambdalocal.ProfileLabel, localstack.ProfilePartAPI))
	call(api, "DynamoDB_20120810.GetItem") // before the window
	timers.start()
	call(api, "DynamoDB_20120810.GetItem")
	call(api, "AWSStepFunctions.StartExecution")
	call(context.Background(), "DynamoDB_20120810.TransactWriteItems")
	got := map[string]int{}
	for _, d := range timers.stop() {
		got[d.Op] = d.Dist.N
	}
	call(api, "DynamoDB_20120810.GetItem") // after it
	want := map[string]int{"GetItem": 1, "StartExecution": 1, otherCaller + "TransactWriteItems": 1}
	if len(got) != len(want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
	for op, n := range want {
		if got[op] != n {
			t.Errorf("%s: %d calls, want %d (all: %v)", op, got[op], n, got)
		}
	}
}
