package compute

import (
	"context"
	"errors"
	"io"
)

// ErrNoLogs: the driver has no log for that deployment (never started, or
// its log is gone), or, with no deployment id, knows no earlier deployment
// of the pipeline.
var ErrNoLogs = errors.New("no runtime log for this deployment")

// LogOptions say which part of a runtime's log to read.
type LogOptions struct {
	// Tail, when positive, starts the log at most Tail bytes before its
	// current end, at a line boundary (the whole log when it is smaller);
	// zero starts at the head.
	Tail int64
	// Follow keeps the reader open after the current end, delivering new
	// output as the runtime writes it, until the runtime has ended (then
	// io.EOF once its last output is read) or ctx is done (then ctx.Err()).
	Follow bool
}

// LogReader reads the output (stdout and stderr) of a deployment's runtime,
// as the pipeline's GET /v0/pipelines/{pipeline_name}/logs streams it.
// localproc reads the deployment's runtime.log; ecsfargate reads the task's
// awslogs stream in CloudWatch Logs.
type LogReader interface {
	// Logs opens the runtime log of a deployment. An empty deploymentID means
	// the pipeline's most recent deployment the driver still knows of
	// (ErrNoLogs when it knows none). The caller closes the reader.
	Logs(ctx context.Context, pipeline, deploymentID string, opts LogOptions) (io.ReadCloser, error)
}
