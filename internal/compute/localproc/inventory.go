package localproc

// The inventory of deployments on this machine, and the sweep of orphans a crashed control plane left running.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// DeploymentInfo describes a deployment found under Root.
type DeploymentInfo struct {
	Pipeline     string
	PipelineID   string
	DeploymentID string
	PID          int
	// Alive reports whether the process is running.
	Alive bool
	// Location is the runtime's base URL once it reported its port.
	Location   string
	StartedAt  time.Time
	RunDir     string
	StorageDir string
	// ExitReason says how the process ended, when it did and that is known.
	ExitReason string
}

type found struct {
	runDir string
	m      meta
}

// pipelineDeployments lists the deployments of one pipeline found on disk.
func (d *Driver) pipelineDeployments(pipeline string) ([]found, error) {
	dir := filepath.Join(d.cfg.Root, "deployments", pipeline)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("localproc: %w", err)
	}
	var out []found
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		runDir := filepath.Join(dir, e.Name())
		m, err := readMeta(runDir)
		if err != nil {
			continue // incomplete (crashed between mkdir and meta) or foreign
		}
		out = append(out, found{runDir: runDir, m: m})
	}
	return out, nil
}

// Deployments lists every deployment found under Root, alive or not, oldest first.
func (d *Driver) Deployments() ([]DeploymentInfo, error) {
	pipes, err := os.ReadDir(filepath.Join(d.cfg.Root, "deployments"))
	if err != nil {
		return nil, fmt.Errorf("localproc: %w", err)
	}
	var out []DeploymentInfo
	for _, p := range pipes {
		if !p.IsDir() {
			continue
		}
		deps, err := d.pipelineDeployments(p.Name())
		if err != nil {
			return nil, err
		}
		for _, f := range deps {
			info := DeploymentInfo{
				Pipeline:     f.m.Pipeline,
				PipelineID:   f.m.PipelineID,
				DeploymentID: f.m.DeploymentID,
				PID:          f.m.PID,
				Alive:        processAlive(f.m.PID, f.m.StartTicks),
				StartedAt:    f.m.StartedAt,
				RunDir:       f.runDir,
				StorageDir:   f.m.StorageDir,
			}
			if port, err := readPort(f.runDir); err == nil {
				info.Location = location(port)
			}
			if !info.Alive {
				if rec, err := readExit(f.runDir); err == nil {
					info.ExitReason = rec.Reason
				}
			}
			out = append(out, info)
		}
	}
	slices.SortFunc(out, func(a, b DeploymentInfo) int { return a.StartedAt.Compare(b.StartedAt) })
	return out, nil
}

// CleanupOrphans deprovisions every live deployment for which keep returns false
// (e.g. after a control-plane restart: those no pipeline record points to). It
// returns the deployments it stopped.
func (d *Driver) CleanupOrphans(ctx context.Context, keep func(pipeline, deploymentID string) bool) ([]DeploymentInfo, error) {
	infos, err := d.Deployments()
	if err != nil {
		return nil, err
	}
	var stopped []DeploymentInfo
	var errs []error
	for _, i := range infos {
		if !i.Alive || (keep != nil && keep(i.Pipeline, i.DeploymentID)) {
			continue
		}
		d.log.Info("stopping orphan deployment", "pipeline", i.Pipeline, "deployment_id", i.DeploymentID, "pid", i.PID)
		if err := d.Deprovision(ctx, i.Pipeline, i.DeploymentID); err != nil {
			errs = append(errs, err)
			continue
		}
		stopped = append(stopped, i)
	}
	return stopped, errors.Join(errs...)
}
