package localproc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/compute"
)

var _ compute.LogReader = (*Driver)(nil)

// logPollEvery is how often a followed log looks for new output.
const logPollEvery = 100 * time.Millisecond

// Logs opens the deployment's runtime.log (the runtime's stdout and stderr;
// ErrNoLogs when Config.Stdout and Stderr sent them elsewhere). With an
// empty deploymentID it is the pipeline's most recently started deployment
// under Root. A followed log ends (io.EOF) once the runtime process is gone
// and its last output read: the process writes the file directly, so nothing
// is in flight after it exits.
func (d *Driver) Logs(ctx context.Context, pipeline, deploymentID string, opts compute.LogOptions) (io.ReadCloser, error) {
	if err := validate(pipeline); err != nil {
		return nil, err
	}
	var runDir string
	var m meta
	if deploymentID == "" {
		found, err := d.pipelineDeployments(pipeline)
		if err != nil {
			return nil, err
		}
		for _, f := range found {
			if runDir == "" || f.m.StartedAt.After(m.StartedAt) {
				runDir, m = f.runDir, f.m
			}
		}
		if runDir == "" {
			return nil, compute.ErrNoLogs
		}
	} else {
		if err := validate(pipeline, deploymentID); err != nil {
			return nil, err
		}
		runDir = d.RunDir(pipeline, deploymentID)
		var err error
		if m, err = readMeta(runDir); errors.Is(err, os.ErrNotExist) {
			return nil, compute.ErrNoLogs
		} else if err != nil {
			return nil, err
		}
	}
	f, err := os.Open(filepath.Join(runDir, logFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, compute.ErrNoLogs
	}
	if err != nil {
		return nil, err
	}
	if opts.Tail > 0 {
		if err := seekTail(f, opts.Tail); err != nil {
			_ = f.Close()
			return nil, err
		}
	}
	if !opts.Follow {
		return f, nil
	}
	return &followReader{ctx: ctx, f: f, closed: make(chan struct{}),
		ended: func() bool { return !processAlive(m.PID, m.StartTicks) }}, nil
}

// seekTail positions f at most tail bytes before its end, at the start of a
// line (or exactly tail bytes before the end when that window holds no line
// break).
func seekTail(f *os.File, tail int64) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	off := fi.Size() - tail
	if off <= 0 {
		return nil
	}
	// Read from one byte earlier: a window that starts right after a '\n'
	// starts at a line.
	b := make([]byte, tail+1)
	n, err := f.ReadAt(b, off-1)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	start := off
	if i := bytes.IndexByte(b[:n], '\n'); i >= 0 && off-1+int64(i)+1 < fi.Size() {
		start = off + int64(i)
	}
	_, err = f.Seek(start, io.SeekStart)
	return err
}

// followReader reads a growing file until its writer has ended.
type followReader struct {
	ctx       context.Context
	f         *os.File
	ended     func() bool
	closed    chan struct{}
	closeOnce sync.Once
}

func (r *followReader) Read(p []byte) (int, error) {
	for {
		n, err := r.f.Read(p)
		if n > 0 || (err != nil && !errors.Is(err, io.EOF)) {
			return n, err
		}
		if r.ended() {
			// Whatever the process wrote before it ended is in the file now.
			if n, err = r.f.Read(p); n > 0 {
				return n, nil
			}
			return 0, io.EOF
		}
		t := time.NewTimer(logPollEvery)
		select {
		case <-r.ctx.Done():
			t.Stop()
			return 0, r.ctx.Err()
		case <-r.closed:
			t.Stop()
			return 0, os.ErrClosed
		case <-t.C:
		}
	}
}

func (r *followReader) Close() error {
	var err error
	r.closeOnce.Do(func() {
		close(r.closed)
		err = r.f.Close()
	})
	return err
}
