package reliability

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/sluicehq/sluice/internal/domain"
)

// The model must tell linearizable histories from others; these are small
// hand-made histories of one pipeline (times in µs).
func TestLinearizabilityModel(t *testing.T) {
	t.Parallel()
	created, err := domain.Create(domain.Definition{Name: "lin", RuntimeConfig: []byte(`{}`)}, "00000000-0000-4000-8000-000000000009", time.Unix(0, 0).UTC())
	if err != nil {
		t.Fatal(err)
	}
	initial := modelOf(created)
	started := mstate{Gen: 1, RS: domain.ResourcesStopped, RD: domain.ResourcesDesiredProvisioned, RTD: domain.RuntimeDesiredRunning, Storage: domain.StorageCleared}
	cancelled := mstate{Gen: 2, RS: domain.ResourcesStopped, RD: domain.ResourcesDesiredStopped, Storage: domain.StorageCleared}
	running := mstate{Gen: 1, RS: domain.ResourcesProvisioned, RD: domain.ResourcesDesiredProvisioned, RT: domain.RuntimeRunning,
		RTD: domain.RuntimeDesiredRunning, Init: domain.InitialRunning, Storage: domain.StorageInUse}
	paused := mstate{Gen: 2, RS: domain.ResourcesProvisioned, RD: domain.ResourcesDesiredProvisioned, RT: domain.RuntimeRunning,
		RTD: domain.RuntimeDesiredPaused, Storage: domain.StorageInUse}
	op := func(client int, action string, call, ret int64, res linResult) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: linOp{Action: action, RequestID: action}, Call: call, Output: res, Return: ret}
	}
	write := func(s mstate) linResult { return linResult{Kind: resWrite, After: s} }
	read := func(s mstate) linResult { return linResult{Kind: resRead, After: s} }
	for _, c := range []struct {
		name string
		ops  []porcupine.Operation
		want porcupine.CheckResult
	}{
		{"start, a concurrent idempotent repeat, a forced stop of the pending start, a read", []porcupine.Operation{
			op(0, actStartRunning, 0, 10, write(started)),
			op(1, actStartRunning, 5, 15, linResult{Kind: resNoOp}),
			op(0, actForceStop, 20, 30, write(cancelled)),
			op(1, actGet, 40, 50, read(mstate{Gen: 2, RS: domain.ResourcesStopped, RD: domain.ResourcesDesiredStopped, Init: domain.InitialRunning, Storage: domain.StorageCleared})),
		}, porcupine.Ok},
		{"the workflow moves the record between calls: a read of Running, a pause", []porcupine.Operation{
			op(0, actStartRunning, 0, 10, write(started)),
			op(1, actGet, 20, 30, read(running)),
			op(1, actPause, 40, 50, write(paused)),
			op(0, actResume, 45, 55, linResult{Kind: resWrite, After: mstate{Gen: 3, RS: domain.ResourcesProvisioned, RD: domain.ResourcesDesiredProvisioned,
				RT: domain.RuntimeRunning, RTD: domain.RuntimeDesiredRunning, Storage: domain.StorageInUse}}),
		}, porcupine.Ok},
		{"a refusal the record justifies: start while a stop is in progress", []porcupine.Operation{
			op(0, actStartRunning, 0, 10, write(started)),
			op(1, actGet, 20, 30, read(running)),
			op(1, actForceStop, 40, 50, write(mstate{Gen: 2, RS: domain.ResourcesProvisioned, RD: domain.ResourcesDesiredStopped, RT: domain.RuntimeRunning,
				RTD: domain.RuntimeDesiredRunning, Storage: domain.StorageInUse})),
			op(0, actStartRunning, 60, 70, linResult{Kind: resRefused, Code: string(domain.CodeIllegalPipelineAction)}),
		}, porcupine.Ok},

		{"lost update: two concurrent starts both acknowledged as writes of generation 1", []porcupine.Operation{
			op(0, actStartRunning, 0, 10, write(started)),
			op(1, actStartRunning, 0, 10, write(started)),
		}, porcupine.Illegal},
		{"lost update: pause and resume both decided on generation 1", []porcupine.Operation{
			op(0, actStartRunning, 0, 10, write(started)),
			op(1, actGet, 20, 30, read(running)),
			op(1, actPause, 40, 50, write(paused)),
			op(0, actResume, 40, 50, linResult{Kind: resWrite, After: mstate{Gen: 2, RS: domain.ResourcesProvisioned, RD: domain.ResourcesDesiredProvisioned,
				RT: domain.RuntimeRunning, RTD: domain.RuntimeDesiredRunning, Storage: domain.StorageInUse}}),
		}, porcupine.Illegal},
		{"stale read: a GET sent after a start was acknowledged sees generation 0", []porcupine.Operation{
			op(0, actStartRunning, 0, 10, write(started)),
			op(1, actGet, 20, 30, read(initial)),
		}, porcupine.Illegal},
		{"an acknowledged no-op the record never allowed: a start repeat before any start", []porcupine.Operation{
			op(0, actStartRunning, 0, 10, linResult{Kind: resNoOp}),
		}, porcupine.Illegal},
		{"a refusal the record never justified: IllegalPipelineAction for a first start", []porcupine.Operation{
			op(0, actStartRunning, 0, 10, linResult{Kind: resRefused, Code: string(domain.CodeIllegalPipelineAction)}),
		}, porcupine.Illegal},
		{"a write that skips a generation", []porcupine.Operation{
			op(0, actStartRunning, 0, 10, write(mstate{Gen: 2, RS: domain.ResourcesStopped, RD: domain.ResourcesDesiredProvisioned,
				RTD: domain.RuntimeDesiredRunning, Storage: domain.StorageCleared})),
		}, porcupine.Illegal},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, _ := checkLinearizable(created, c.ops, time.Minute)
			if got != c.want {
				t.Fatalf("porcupine says %s, want %s", got, c.want)
			}
		})
	}
}
