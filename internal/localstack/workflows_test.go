package localstack

import (
	"testing"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/steps"
)

func TestGracefulStopHappyPath(t *testing.T) {
	e := newEnv(t, steps.Config{})
	p := e.startRunning("g1")
	if p.DeploymentLocation == nil || p.DeploymentID == nil || p.StorageStatus != domain.StorageInUse {
		t.Fatalf("running record: %+v", p)
	}
	e.must("POST", "/v0/pipelines/g1/stop", nil, 202)
	p = e.waitFor("g1", "Stopped", status(domain.CombinedStopped, domain.CombinedDesiredStopped))
	if p.DeploymentError != nil {
		t.Fatalf("unexpected error %+v", p.DeploymentError)
	}
	if string(p.StorageStatusDetails) == "" || p.StorageStatus != domain.StorageInUse {
		t.Fatalf("checkpoints not recorded or storage touched: %s %s", p.StorageStatusDetails, p.StorageStatus)
	}
	t.Logf("history: %v", e.historyActions("g1"))
}
