package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// doneFunc decides from a polled record whether a wait is over; a non-nil
// error ends it as a failure (e.g. the deployment_error of a failed stop).
type doneFunc func(p Pipeline) (done bool, err error)

// deploymentError is a record's deployment_error as the CLI reports errors.
func deploymentError(p Pipeline) error {
	e := p.DeploymentError
	return &APIError{Message: e.Message, ErrorCode: e.ErrorCode, Details: e.Details}
}

// stopDone: Stopped/Stopped; with a deployment_error set, that error.
func stopDone(p Pipeline) (bool, error) {
	if p.DeploymentStatus == "Stopped" && p.DeploymentDesiredStatus == "Stopped" {
		if p.DeploymentError != nil {
			return true, deploymentError(p)
		}
		return true, nil
	}
	return false, nil
}

// startDone: running or paused as desired; Stopped/Stopped is a failure.
func startDone(p Pipeline) (bool, error) {
	if p.DeploymentStatus == "Stopped" && p.DeploymentDesiredStatus == "Stopped" {
		if p.DeploymentError != nil {
			return true, deploymentError(p)
		}
		return true, errors.New("the pipeline was stopped before it started running")
	}
	s := p.DeploymentStatus
	return (s == "Running" || s == "Paused") && string(s) == string(p.DeploymentDesiredStatus), nil
}

// clearDone: storage Cleared.
func clearDone(p Pipeline) (bool, error) {
	return p.StorageStatus == "Cleared", nil
}

// transient reports whether a poll failed in a way worth retrying.
func transient(err error) bool {
	var ue *UnreachableError
	var ae *APIError
	switch {
	case errors.As(err, &ue):
		return true
	case errors.As(err, &ae):
		switch ae.Status {
		case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout, http.StatusTooManyRequests:
			return true
		}
	}
	return false
}

// eventsPerPoll is how many of the latest events a poll reads.
const eventsPerPoll = 100

// progress prints one line per change of (deployment_status,
// deployment_desired_status) — and of storage_status for a clear — and keeps
// the walk of deployment_status values.
type progress struct {
	a       *App
	clear   bool
	lastKey string
	lastRV  int64
	walk    []string
}

func (pr *progress) key(status, desired, storage string) string {
	key := status + "\x00" + desired
	if pr.clear {
		key += "\x00" + storage
	}
	return key
}

func (pr *progress) see(at time.Time, status, desired, storage string) {
	key := pr.key(status, desired, storage)
	line := fmt.Sprintf("%-12s desired %s", status, desired)
	if pr.clear {
		line += ", storage " + storage
	}
	if key != pr.lastKey {
		pr.a.printf("%s  %s\n", at.Local().Format("15:04:05.000"), line)
		pr.lastKey = key
	}
	if len(pr.walk) == 0 || pr.walk[len(pr.walk)-1] != status {
		pr.walk = append(pr.walk, status)
	}
}

// wait polls the pipeline until done says so. Every poll reads the record
// and, when it changed, the status history written since before (the record
// read just before the action), so even a status that lasted only a few
// milliseconds is shown, with the time it was written. At the end it prints
// the walk of deployment_status values, e.g.
//
//	Running → Suspending → Stopping → Stopped  (2.4s)
func (a *App) wait(ctx context.Context, c *Client, before Pipeline, timeout time.Duration, what string, done doneFunc) error {
	name := before.Name
	begin := a.now()
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	tick := time.NewTicker(a.pollInterval())
	defer tick.Stop()
	pr := &progress{a: a, clear: what == "clear", lastRV: before.RefreshVersion}
	// The state before the action is known: only changes from it are shown.
	pr.lastKey = pr.key(string(before.DeploymentStatus), string(before.DeploymentDesiredStatus), string(before.StorageStatus))
	pr.walk = []string{string(before.DeploymentStatus)}
	var (
		last        = before
		unreachable bool
	)
	for {
		p, err := c.Get(ctx, name)
		if err == nil && p.ID == before.ID && p.RefreshVersion > pr.lastRV {
			var evs []Event
			if evs, err = c.Events(ctx, name, eventsPerPoll); err == nil {
				slices.Reverse(evs) // oldest first
				for _, e := range evs {
					if e.RefreshVersion > pr.lastRV {
						pr.see(e.At, e.DeploymentStatus, e.DeploymentDesiredStatus, e.StorageStatus)
						pr.lastRV = e.RefreshVersion
					}
				}
			}
		}
		switch {
		case err == nil:
			if unreachable {
				fmt.Fprintln(a.Stderr, "(the API answers again)")
				unreachable = false
			}
			if p.RefreshVersion >= pr.lastRV { // else the history is already ahead of this read
				pr.see(a.now(), string(p.DeploymentStatus), string(p.DeploymentDesiredStatus), string(p.StorageStatus))
				pr.lastRV = p.RefreshVersion
			}
			last = p
			if ok, derr := done(p); ok {
				summary := strings.Join(pr.walk, " → ")
				if pr.clear {
					summary = "storage " + string(p.StorageStatus)
				}
				a.printf("%s  (%s)\n", summary, a.now().Sub(begin).Round(100*time.Millisecond))
				return derr
			}
		case transient(err):
			if !unreachable {
				fmt.Fprintf(a.Stderr, "(polling failed: %v; still trying)\n", err)
				unreachable = true
			}
		default:
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("timed out after %s waiting for %s to %s; last seen %s (desired %s); it goes on in the background",
				timeout, name, what, orDash(string(last.DeploymentStatus)), orDash(string(last.DeploymentDesiredStatus)))
		case <-tick.C:
		}
	}
}
