package localstack

import (
	"testing"

	"github.com/sluicehq/sluice/internal/domain"
)

func TestGracefulStopHappyPath(t *testing.T) {
	t.Parallel()
	e := sharedEnv(t, stackDefault)
	name := e.name("g1")
	p := e.startRunning(name)
	if p.DeploymentLocation == nil || p.DeploymentID == nil || p.StorageStatus != domain.StorageInUse {
		t.Fatalf("running record: %+v", p)
	}
	e.must("POST", "/v0/pipelines/"+name+"/stop", nil, 202)
	p = e.waitFor(name, "Stopped", stopped)
	if p.DeploymentError != nil {
		t.Fatalf("unexpected error %+v", p.DeploymentError)
	}
	if string(p.StorageStatusDetails) == "" || p.StorageStatus != domain.StorageInUse {
		t.Fatalf("checkpoints not recorded or storage touched: %s %s", p.StorageStatusDetails, p.StorageStatus)
	}
	t.Logf("history: %v", e.historyActions(name))
}
