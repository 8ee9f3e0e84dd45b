package ecsfargate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/sluicehq/sluice/internal/compute"
)

// Runtime logs.
//
// The runtime container logs with the awslogs driver (the task definition's
// logConfiguration: awslogs-group, awslogs-stream-prefix). ECS names each
// task's stream <awslogs-stream-prefix>/<container name>/<task id> (Amazon
// ECS Developer Guide, "Send Amazon ECS logs to CloudWatch", awslogs-stream-
// prefix), so a deployment's stream follows from its task, found by
// startedBy = deployment id as the driver does.
//
// GetLogEvents (CloudWatch Logs API Reference, API_GetLogEvents), whose rules
// this reader keeps:
//   - logStreamName is required (1–512 characters, no ':' or '*'); exactly one
//     of logGroupName and logGroupIdentifier is given;
//   - limit is 1–10,000; a response holds at most 1 MB of events (up to
//     10,000); it may hold none while the token still leads to more;
//   - startFromHead true returns the earliest events first; it must be true
//     when nextToken is a previous nextForwardToken;
//   - at the end of the stream nextForwardToken (and at its start
//     nextBackwardToken) is the very token passed in; tokens expire after
//     24 hours;
//   - ResourceNotFoundException: the group or the stream does not exist (a
//     task that has not logged yet has no stream).
// The account's GetLogEvents quota is 25 requests per second per Region
// (CloudWatch Logs quotas), so a followed log polls every LogPollInterval.

// CloudWatchLogsAPI is the part of the CloudWatch Logs client the log reader
// uses (*cloudwatchlogs.Client satisfies it).
type CloudWatchLogsAPI interface {
	GetLogEvents(ctx context.Context, in *cloudwatchlogs.GetLogEventsInput, optFns ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.GetLogEventsOutput, error)
}

// TaskLister is the part of the ECS client the log reader uses.
type TaskLister interface {
	ListTasks(ctx context.Context, in *ecs.ListTasksInput, optFns ...func(*ecs.Options)) (*ecs.ListTasksOutput, error)
}

// GetLogEvents limits (API_GetLogEvents).
const (
	maxGetLogEventsLimit = 10000
	maxLogStreamNameLen  = 512
)

const (
	// DefaultLogPollInterval is how often a followed log asks for new events.
	DefaultLogPollInterval = 2 * time.Second
	// maxTailPages bounds the backward pages a tail reads (each up to 1 MB).
	maxTailPages = 16
	// maxEmptyPages bounds consecutive empty pages whose token still moves.
	maxEmptyPages = 100
)

// Environment variables read by LogsConfigFromEnv (besides EnvCluster and
// EnvContainerName).
const (
	EnvRuntimeLogGroup        = "SLUICE_RUNTIME_LOG_GROUP"
	EnvRuntimeLogStreamPrefix = "SLUICE_RUNTIME_LOG_STREAM_PREFIX"
)

// LogsConfig locates the runtime containers' logs.
type LogsConfig struct {
	// Cluster and ContainerName are the driver's (Config).
	Cluster       string
	ContainerName string
	// LogGroup and StreamPrefix are the task definition's awslogs-group and
	// awslogs-stream-prefix for the runtime container.
	LogGroup     string
	StreamPrefix string
	// PollInterval: DefaultLogPollInterval when zero.
	PollInterval time.Duration
}

// LogsConfigFromEnv reads a LogsConfig; ok is false when no log group is
// configured (the API then has no runtime logs).
func LogsConfigFromEnv(getenv func(string) string) (cfg LogsConfig, ok bool, err error) {
	cfg = LogsConfig{
		Cluster:       strings.TrimSpace(getenv(EnvCluster)),
		ContainerName: strings.TrimSpace(getenv(EnvContainerName)),
		LogGroup:      strings.TrimSpace(getenv(EnvRuntimeLogGroup)),
		StreamPrefix:  strings.Trim(strings.TrimSpace(getenv(EnvRuntimeLogStreamPrefix)), "/"),
	}
	if cfg.LogGroup == "" {
		return cfg, false, nil
	}
	return cfg, true, cfg.validate()
}

func (c LogsConfig) validate() error {
	var errs []error
	for name, v := range map[string]string{"Cluster": c.Cluster, "ContainerName": c.ContainerName, "LogGroup": c.LogGroup, "StreamPrefix": c.StreamPrefix} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is required", name))
		}
	}
	if strings.ContainsAny(c.StreamPrefix+c.ContainerName, ":*") {
		errs = append(errs, errors.New("a log stream name cannot contain ':' or '*'"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ecsfargate logs config: %w", err)
	}
	return nil
}

// LogReader reads the runtime logs of ECS deployments from CloudWatch Logs.
type LogReader struct {
	cfg LogsConfig
	ecs TaskLister
	cw  CloudWatchLogsAPI
}

var _ compute.LogReader = (*LogReader)(nil)

// NewLogReader returns a log reader using the given clients.
func NewLogReader(cfg LogsConfig, ecsClient TaskLister, cw CloudWatchLogsAPI) (*LogReader, error) {
	cfg.StreamPrefix = strings.Trim(cfg.StreamPrefix, "/")
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultLogPollInterval
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if ecsClient == nil || cw == nil {
		return nil, errors.New("ecsfargate: ECS and CloudWatch Logs clients are required")
	}
	return &LogReader{cfg: cfg, ecs: ecsClient, cw: cw}, nil
}

// NewLogReaderFromAWSConfig returns a log reader with clients built from awsCfg.
func NewLogReaderFromAWSConfig(awsCfg aws.Config, cfg LogsConfig) (*LogReader, error) {
	return NewLogReader(cfg, ecs.NewFromConfig(awsCfg), cloudwatchlogs.NewFromConfig(awsCfg))
}

// StreamName is the awslogs stream of a task's runtime container.
func (l *LogReader) StreamName(taskARN string) string {
	id := taskARN[strings.LastIndex(taskARN, "/")+1:]
	return l.cfg.StreamPrefix + "/" + l.cfg.ContainerName + "/" + id
}

// Logs opens the runtime log of a deployment's task. ECS forgets stopped
// tasks after a while and the record keeps no stopped deployment, so an
// empty deploymentID, or a task ECS no longer lists, is ErrNoLogs; the
// stream itself stays in CloudWatch Logs for the group's retention.
func (l *LogReader) Logs(ctx context.Context, pipeline, deploymentID string, opts compute.LogOptions) (io.ReadCloser, error) {
	if deploymentID == "" {
		return nil, compute.ErrNoLogs
	}
	if !deploymentIDRE.MatchString(deploymentID) {
		return nil, permanent("logs", "invalid deployment id %q", deploymentID)
	}
	arn, running, err := l.task(ctx, deploymentID)
	if err != nil {
		return nil, err
	}
	if arn == "" {
		return nil, compute.ErrNoLogs
	}
	stream := l.StreamName(arn)
	if len(stream) > maxLogStreamNameLen {
		return nil, permanent("logs", "log stream name %q is longer than %d characters", stream, maxLogStreamNameLen)
	}
	if opts.Tail > 0 {
		b, err := l.tail(ctx, stream, opts.Tail)
		if err != nil {
			return nil, err
		}
		if !opts.Follow {
			return io.NopCloser(bytes.NewReader(b)), nil
		}
		// A followed tail would need the forward token at the tail's end;
		// the log reader only follows from the head.
		return nil, permanent("logs", "a tail cannot be followed")
	}
	return &streamReader{ctx: ctx, l: l, stream: stream, deployment: deploymentID, follow: opts.Follow && running}, nil
}

// task finds the deployment's running task ARN. ListTasks takes startedBy
// only as its sole filter ("When you specify startedBy as the filter, it must
// be the only filter that you use", ListTasksInput.StartedBy), which lists
// tasks desired RUNNING; a stopped deployment's log is not looked up (the
// record of a stopped pipeline names no deployment; CloudWatch keeps the
// stream).
func (l *LogReader) task(ctx context.Context, deploymentID string) (string, bool, error) {
	out, err := l.ecs.ListTasks(ctx, &ecs.ListTasksInput{
		Cluster: aws.String(l.cfg.Cluster), StartedBy: aws.String(deploymentID),
	})
	if err != nil {
		return "", false, awsError("ecs ListTasks", err)
	}
	if len(out.TaskArns) > 0 {
		return out.TaskArns[0], true, nil
	}
	return "", false, nil
}

func (l *LogReader) get(ctx context.Context, stream string, token *string, fromHead bool) (*cloudwatchlogs.GetLogEventsOutput, error) {
	out, err := l.cw.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{
		LogGroupName:  aws.String(l.cfg.LogGroup),
		LogStreamName: aws.String(stream),
		Limit:         aws.Int32(maxGetLogEventsLimit),
		StartFromHead: aws.Bool(fromHead),
		NextToken:     token,
	})
	var nf *cwtypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return nil, compute.ErrNoLogs
	}
	if err != nil {
		return nil, awsError("logs GetLogEvents", err)
	}
	return out, nil
}

// tail reads backward from the newest events until it has n bytes of lines
// (or the stream's start), then keeps the last n bytes, from a line start
// when the window holds one.
func (l *LogReader) tail(ctx context.Context, stream string, n int64) ([]byte, error) {
	var pages [][]byte
	var size int64
	var token *string
	for range maxTailPages {
		out, err := l.get(ctx, stream, token, false)
		if err != nil {
			return nil, err
		}
		page := lines(out.Events)
		pages = append(pages, page)
		size += int64(len(page))
		next := out.NextBackwardToken
		if size >= n || next == nil || (token != nil && *next == *token) {
			break
		}
		token = next
	}
	var all []byte
	for i := len(pages) - 1; i >= 0; i-- {
		all = append(all, pages[i]...)
	}
	if int64(len(all)) <= n {
		return all, nil
	}
	cut := all[int64(len(all))-n:]
	if i := bytes.IndexByte(cut, '\n'); i >= 0 && i+1 < len(cut) && all[int64(len(all))-n-1] != '\n' {
		cut = cut[i+1:]
	}
	return cut, nil
}

// lines renders events as text: each event is one line of the container's
// output (awslogs strips the newline).
func lines(events []cwtypes.OutputLogEvent) []byte {
	var b []byte
	for _, e := range events {
		b = append(b, aws.ToString(e.Message)...)
		b = append(b, '\n')
	}
	return b
}

// streamReader pages a log stream forward from its head, lazily.
type streamReader struct {
	ctx        context.Context
	l          *LogReader
	stream     string
	deployment string
	follow     bool // poll at the end while the task runs
	final      bool // the task has ended: drain to the end, then EOF
	token      *string
	buf        []byte
	empty      int
	closed     bool
}

func (r *streamReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.closed {
			return 0, errors.New("read of a closed log")
		}
		atEnd, err := r.page()
		if errors.Is(err, compute.ErrNoLogs) {
			atEnd, err = true, nil // no stream yet: nothing logged so far
		}
		if err != nil {
			return 0, err
		}
		if len(r.buf) > 0 {
			break
		}
		if !atEnd {
			continue
		}
		if !r.follow || r.final {
			return 0, io.EOF
		}
		if err := r.wait(); err != nil {
			return 0, err
		}
		if _, running, err := r.l.task(r.ctx, r.deployment); err != nil {
			return 0, err
		} else if !running {
			r.final = true
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// page fetches the next page into buf; atEnd: the stream has no more events
// for now (the token came back unchanged).
func (r *streamReader) page() (atEnd bool, err error) {
	out, err := r.l.get(r.ctx, r.stream, r.token, true)
	if err != nil {
		return false, err
	}
	next := out.NextForwardToken
	atEnd = next == nil || (r.token != nil && *next == *r.token)
	if next != nil {
		r.token = next
	}
	r.buf = lines(out.Events)
	if len(r.buf) == 0 && !atEnd {
		if r.empty++; r.empty >= maxEmptyPages {
			return true, nil
		}
	} else {
		r.empty = 0
	}
	return atEnd, nil
}

func (r *streamReader) wait() error {
	t := time.NewTimer(r.l.cfg.PollInterval)
	defer t.Stop()
	select {
	case <-r.ctx.Done():
		return r.ctx.Err()
	case <-t.C:
		return nil
	}
}

func (r *streamReader) Close() error {
	r.closed = true
	return nil
}
