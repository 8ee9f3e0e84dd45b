package httpapi

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/sluicehq/sluice/internal/runtimeclient"
)

// Runtime is what the forwarded actions call on a pipeline's runtime (SPEC
// §7). *runtimeclient.Client implements it; its errors
// (*runtimeclient.TemporaryError, *runtimeclient.FatalError) are what the
// error mapping understands.
type Runtime interface {
	Pause(ctx context.Context) error
	Start(ctx context.Context) error
	Checkpoint(ctx context.Context) (runtimeclient.CheckpointResponse, error)
	CheckpointStatus(ctx context.Context, incarnationUUID string) (runtimeclient.CheckpointStatus, error)
	Status(ctx context.Context) (runtimeclient.StatusReport, error)
	Stats(ctx context.Context) (json.RawMessage, error)
}

// RuntimeDialer returns the Runtime answering at a deployment_location.
type RuntimeDialer func(location string) (Runtime, error)

var _ Runtime = (*runtimeclient.Client)(nil)

// RuntimeClientDialer dials runtimes with runtimeclient, with the per-call
// timeouts t (zero fields: runtimeclient's defaults) over hc (nil: one shared
// client, so connections to a runtime are reused across requests).
func RuntimeClientDialer(t runtimeclient.Timeouts, hc *http.Client) RuntimeDialer {
	if hc == nil {
		hc = &http.Client{}
	}
	return func(location string) (Runtime, error) {
		return runtimeclient.New(location, runtimeclient.WithTimeouts(t), runtimeclient.WithHTTPClient(hc))
	}
}
