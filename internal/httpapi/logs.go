package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/compute"
	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/obs"
)

const routeLogs = "/v0/pipelines/{pipeline_name}/logs"

const (
	// DefaultLogFollowLimit bounds a followed log stream. Feldera's stream
	// may also end early; its clients request again.
	DefaultLogFollowLimit = time.Hour
	// LambdaLogTail bounds the log answered behind API Gateway, which cannot
	// stream: the last 256 KiB, far below Lambda's 6 MB response payload
	// limit (a JSON-encoded string may grow up to 6× with escapes).
	LambdaLogTail = 256 << 10
)

const textPlain = "text/plain; charset=utf-8"

// pipelineLogs serves GET /v0/pipelines/{name}/logs, as Feldera does: 200
// text/plain, the runtime's output line by line (Feldera's SDK iterates the
// lines of the answer); 404 UnknownPipelineName; 503 when the log cannot be
// read. The log is the current deployment's, or when the pipeline is stopped
// the most recent one the compute driver still has; none at all (never
// started) is an empty log, as Feldera's stream of a pipeline that never ran.
//
// Over net/http (the local stack) the log is streamed from its head and, while
// the deployment is provisioned, followed until the runtime ends, the client
// goes away or LogFollowLimit passes. Behind API Gateway (REST proxy
// integration, no streaming) it is the log's last LambdaLogTail bytes, after
// a one-line note that says so.
func (h *Handler) pipelineLogs(ctx context.Context, c *call) (Response, error) {
	p, err := h.store.Get(ctx, c.name)
	if err != nil {
		return Response{}, err
	}
	c.log.generation = p.Generation
	if h.logs == nil {
		return textResponse("[sluice] runtime logs are not configured on this control plane\n"), nil
	}
	deployment := ""
	if p.DeploymentID != nil {
		deployment = *p.DeploymentID
	}
	live := deployment != "" && (p.ResourcesStatus == domain.ResourcesProvisioning || p.ResourcesStatus == domain.ResourcesProvisioned)

	if c.req.CanStream {
		sctx, cancel := context.WithCancel(ctx)
		if live {
			sctx, cancel = context.WithTimeout(ctx, h.followLimit)
		}
		rc, err := h.logs.Logs(sctx, c.name, deployment, compute.LogOptions{Follow: live})
		if err != nil {
			cancel()
			return h.logsFailure(ctx, c, err)
		}
		resp := textResponse("")
		resp.Stream = &cancelOnClose{ReadCloser: rc, cancel: cancel}
		return resp, nil
	}

	rc, err := h.logs.Logs(ctx, c.name, deployment, compute.LogOptions{Tail: LambdaLogTail})
	if err != nil {
		return h.logsFailure(ctx, c, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, LambdaLogTail))
	if err != nil {
		return h.logsFailure(ctx, c, err)
	}
	which := "the most recent deployment"
	if deployment != "" {
		which = "deployment " + deployment
	}
	note := fmt.Sprintf("[sluice] the last %d KiB (at most) of the runtime log of %s: this API cannot stream it; request again for newer lines\n",
		LambdaLogTail>>10, which)
	return textResponse(note + strings.ToValidUTF8(string(b), "\uFFFD")), nil
}

// logsFailure answers a log that cannot be read: no log at all is an empty
// log; anything else is 503 (with Retry-After), the cause only in our log.
func (h *Handler) logsFailure(ctx context.Context, c *call, err error) (Response, error) {
	if errors.Is(err, compute.ErrNoLogs) {
		return textResponse(""), nil
	}
	obs.Logger(ctx).Warn("reading the runtime log failed", obs.Err(err))
	return Response{}, domain.ServiceUnavailable("runtime log service")
}

func textResponse(body string) Response {
	return Response{Status: http.StatusOK, Header: http.Header{"Content-Type": {textPlain}}, Body: []byte(body)}
}

// cancelOnClose releases the stream's context when the adapter closes it.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
