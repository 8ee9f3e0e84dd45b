// Package runtimeclient calls a pipeline runtime's HTTP endpoints (SPEC §7, the
// Feldera-compatible runtime protocol): GET /status, POST /suspend,
// POST /checkpoint, GET /checkpoint_status, GET /pause, GET /start, GET /stats.
//
// Every call has its own timeout (see Timeouts) on top of the caller's context,
// and every failure is classified for the workflows:
//
//   - *TemporaryError: the runtime is temporarily unable to answer (connection
//     refused or reset, DNS failure, the per-call timeout expired, HTTP 502, 503,
//     504 or 429). Retry with backoff; the Retry-After of the answer is kept.
//   - *FatalError: any other non-2xx answer (its Feldera error body
//     {message, error_code, details} is kept), a 2xx answer that does not follow
//     the protocol, or a TLS certificate failure. Retrying will not help.
//   - the caller's own context error (cancelled or its deadline passed), wrapped,
//     neither temporary nor fatal: the caller gave up.
package runtimeclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/domain"
)

// DefaultMaxBodyBytes bounds how much of a response body is read.
const DefaultMaxBodyBytes = 1 << 20

// Timeouts are the per-call timeouts. Each applies to one HTTP exchange, including
// reading the body; the caller's context still bounds it from outside.
type Timeouts struct {
	// Status bounds GET /status (default 5s): a healthy runtime answers at once.
	Status time.Duration
	// Suspend bounds POST /suspend (default 10s): the call only asks for the suspend,
	// which then proceeds asynchronously (/status reports Suspending, then Suspended).
	Suspend time.Duration
	// Checkpoint bounds POST /checkpoint (default 60s): the runtime answers once the
	// checkpoint is written, and writing a real checkpoint of large state (flushing
	// it to durable storage) takes long.
	Checkpoint time.Duration
	// CheckpointStatus bounds GET /checkpoint_status (default 5s).
	CheckpointStatus time.Duration
	// Pause bounds GET /pause (default 10s).
	Pause time.Duration
	// Start bounds GET /start, i.e. resume (default 10s).
	Start time.Duration
	// Stats bounds GET /stats (default 5s).
	Stats time.Duration
}

// DefaultTimeouts returns the default per-call timeouts.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		Status:           5 * time.Second,
		Suspend:          10 * time.Second,
		Checkpoint:       60 * time.Second,
		CheckpointStatus: 5 * time.Second,
		Pause:            10 * time.Second,
		Start:            10 * time.Second,
		Stats:            5 * time.Second,
	}
}

// withDefaults fills zero fields from DefaultTimeouts.
func (t Timeouts) withDefaults() Timeouts {
	d := DefaultTimeouts()
	fill := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	fill(&t.Status, d.Status)
	fill(&t.Suspend, d.Suspend)
	fill(&t.Checkpoint, d.Checkpoint)
	fill(&t.CheckpointStatus, d.CheckpointStatus)
	fill(&t.Pause, d.Pause)
	fill(&t.Start, d.Start)
	fill(&t.Stats, d.Stats)
	return t
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (default: a client with no overall timeout of
// its own; the per-call timeouts apply).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.http = hc
		}
	}
}

// WithTimeouts overrides per-call timeouts; zero fields keep their defaults.
func WithTimeouts(t Timeouts) Option {
	return func(c *Client) { c.timeouts = t.withDefaults() }
}

// WithMaxBodyBytes overrides the response body limit (default 1 MiB).
func WithMaxBodyBytes(n int64) Option {
	return func(c *Client) {
		if n > 0 {
			c.maxBody = n
		}
	}
}

// Client calls one runtime. It is safe for concurrent use.
type Client struct {
	base     string
	http     *http.Client
	timeouts Timeouts
	maxBody  int64
}

// New returns a client for the runtime at baseURL (an http or https URL, e.g. a
// deployment_location such as http://127.0.0.1:8080; a path prefix is kept).
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("runtime client: invalid base URL %q: %w", baseURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("runtime client: invalid base URL %q: want http(s)://host[:port][/prefix]", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("runtime client: invalid base URL %q: no query or fragment allowed", baseURL)
	}
	c := &Client{
		base:     strings.TrimRight(u.String(), "/"),
		http:     &http.Client{},
		timeouts: DefaultTimeouts(),
		maxBody:  DefaultMaxBodyBytes,
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// BaseURL returns the runtime's base URL (without trailing slash).
func (c *Client) BaseURL() string { return c.base }

// Timeouts returns the effective per-call timeouts.
func (c *Client) Timeouts() Timeouts { return c.timeouts }

// StatusReport is the answer of GET /status.
type StatusReport struct {
	RuntimeStatus domain.RuntimeStatus `json:"runtime_status"`
	// RuntimeDesiredStatus is reported as is (Feldera runtimes may report values
	// beyond domain.RuntimeDesiredStatus, e.g. "Standby").
	RuntimeDesiredStatus string `json:"runtime_desired_status"`
	// StorageStatusDetails is the runtime's storage description, kept verbatim
	// (normally {"checkpoints":[...]}); nil when absent or null.
	StorageStatusDetails json.RawMessage `json:"storage_status_details,omitempty"`
}

// CheckpointInfo is one entry of storage_status_details.checkpoints.
type CheckpointInfo struct {
	UUID           string    `json:"uuid"`
	SequenceNumber int64     `json:"sequence_number"`
	CreatedAt      time.Time `json:"created_at"`
	Size           int64     `json:"size"`
}

// Checkpoints decodes storage_status_details.checkpoints (nil when absent).
func (r StatusReport) Checkpoints() ([]CheckpointInfo, error) {
	if len(r.StorageStatusDetails) == 0 || string(r.StorageStatusDetails) == "null" {
		return nil, nil
	}
	var d struct {
		Checkpoints []CheckpointInfo `json:"checkpoints"`
	}
	if err := json.Unmarshal(r.StorageStatusDetails, &d); err != nil {
		return nil, fmt.Errorf("storage_status_details: %w", err)
	}
	return d.Checkpoints, nil
}

// CheckpointResponse is the answer of POST /checkpoint.
type CheckpointResponse struct {
	CheckpointSequenceNumber uint64 `json:"checkpoint_sequence_number"`
	IncarnationUUID          string `json:"incarnation_uuid"`
}

// CheckpointFailure describes the last failed checkpoint request.
type CheckpointFailure struct {
	SequenceNumber uint64 `json:"sequence_number"`
	Error          string `json:"error"`
}

// CheckpointStatus is the answer of GET /checkpoint_status.
type CheckpointStatus struct {
	// Success is the sequence number of the last successful checkpoint request, nil if none.
	Success *uint64 `json:"success"`
	// Failure is the last failed checkpoint request, nil if none.
	Failure *CheckpointFailure `json:"failure"`
}

// Status calls GET /status.
func (c *Client) Status(ctx context.Context) (StatusReport, error) {
	const op = "status"
	body, code, err := c.do(ctx, op, http.MethodGet, "/status", c.timeouts.Status)
	if err != nil {
		return StatusReport{}, err
	}
	var raw struct {
		RuntimeStatus        *string         `json:"runtime_status"`
		RuntimeDesiredStatus string          `json:"runtime_desired_status"`
		StorageStatusDetails json.RawMessage `json:"storage_status_details"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return StatusReport{}, invalidResponse(op, code, "not a status object: %v", err)
	}
	if raw.RuntimeStatus == nil {
		return StatusReport{}, invalidResponse(op, code, "runtime_status missing")
	}
	st, err := domain.ParseRuntimeStatus(*raw.RuntimeStatus)
	if err != nil {
		return StatusReport{}, invalidResponse(op, code, "%v", err)
	}
	rep := StatusReport{RuntimeStatus: st, RuntimeDesiredStatus: raw.RuntimeDesiredStatus}
	if len(raw.StorageStatusDetails) > 0 && string(raw.StorageStatusDetails) != "null" {
		rep.StorageStatusDetails = raw.StorageStatusDetails
	}
	return rep, nil
}

// Suspend calls POST /suspend: the runtime writes a final checkpoint and stops
// processing input, asynchronously; poll Status until Suspended.
func (c *Client) Suspend(ctx context.Context) error {
	_, _, err := c.do(ctx, "suspend", http.MethodPost, "/suspend", c.timeouts.Suspend)
	return err
}

// Checkpoint calls POST /checkpoint.
func (c *Client) Checkpoint(ctx context.Context) (CheckpointResponse, error) {
	const op = "checkpoint"
	body, code, err := c.do(ctx, op, http.MethodPost, "/checkpoint", c.timeouts.Checkpoint)
	if err != nil {
		return CheckpointResponse{}, err
	}
	var raw struct {
		Seq  *uint64 `json:"checkpoint_sequence_number"`
		UUID string  `json:"incarnation_uuid"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return CheckpointResponse{}, invalidResponse(op, code, "not a checkpoint response: %v", err)
	}
	if raw.Seq == nil {
		return CheckpointResponse{}, invalidResponse(op, code, "checkpoint_sequence_number missing")
	}
	return CheckpointResponse{CheckpointSequenceNumber: *raw.Seq, IncarnationUUID: raw.UUID}, nil
}

// CheckpointStatus calls GET /checkpoint_status; a non-empty incarnationUUID
// is sent as the incarnation_uuid query parameter (as Feldera forwards it).
func (c *Client) CheckpointStatus(ctx context.Context, incarnationUUID string) (CheckpointStatus, error) {
	const op = "checkpoint_status"
	path := "/checkpoint_status"
	if incarnationUUID != "" {
		path += "?incarnation_uuid=" + url.QueryEscape(incarnationUUID)
	}
	body, code, err := c.do(ctx, op, http.MethodGet, path, c.timeouts.CheckpointStatus)
	if err != nil {
		return CheckpointStatus{}, err
	}
	var cs CheckpointStatus
	if err := json.Unmarshal(body, &cs); err != nil {
		return CheckpointStatus{}, invalidResponse(op, code, "not a checkpoint status: %v", err)
	}
	return cs, nil
}

// Pause calls GET /pause.
func (c *Client) Pause(ctx context.Context) error {
	_, _, err := c.do(ctx, "pause", http.MethodGet, "/pause", c.timeouts.Pause)
	return err
}

// Start calls GET /start (resume a paused runtime).
func (c *Client) Start(ctx context.Context) error {
	_, _, err := c.do(ctx, "start", http.MethodGet, "/start", c.timeouts.Start)
	return err
}

// Stats calls GET /stats and returns the runtime's statistics verbatim (validated
// to be JSON).
func (c *Client) Stats(ctx context.Context) (json.RawMessage, error) {
	const op = "stats"
	body, code, err := c.do(ctx, op, http.MethodGet, "/stats", c.timeouts.Stats)
	if err != nil {
		return nil, err
	}
	if !json.Valid(body) {
		return nil, invalidResponse(op, code, "stats are not valid JSON")
	}
	return json.RawMessage(body), nil
}

func invalidResponse(op string, code int, format string, args ...any) error {
	return &FatalError{Op: op, StatusCode: code, Body: ErrorBody{
		Message:   "invalid response from runtime: " + fmt.Sprintf(format, args...),
		ErrorCode: "InvalidRuntimeResponse",
	}}
}

// do performs one exchange and classifies its failure. On success it returns the
// (size-limited) body and the status code.
func (c *Client) do(ctx context.Context, op, method, path string, timeout time.Duration) ([]byte, int, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, fmt.Errorf("runtime %s: %w", op, err)
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(cctx, method, c.base+path, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("runtime %s: %w", op, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "sluice-runtimeclient")

	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, c.transportError(ctx, cctx, op, 0, timeout, err)
	}
	defer resp.Body.Close()

	body, tooLarge, err := readLimited(resp.Body, c.maxBody)
	if err != nil {
		return nil, resp.StatusCode, c.transportError(ctx, cctx, op, resp.StatusCode, timeout, err)
	}

	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		if tooLarge {
			return nil, code, invalidResponse(op, code, "body larger than %d bytes", c.maxBody)
		}
		return body, code, nil
	case temporaryStatus(code):
		eb := parseErrorBody(body)
		return nil, code, &TemporaryError{
			Op:         op,
			StatusCode: code,
			Cause:      fmt.Errorf("HTTP %d %s", code, http.StatusText(code)),
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
			Body:       eb,
		}
	default:
		return nil, code, &FatalError{Op: op, StatusCode: code, Body: parseErrorBody(body)}
	}
}

// transportError classifies a failure to exchange with the runtime.
func (c *Client) transportError(parent, cctx context.Context, op string, code int, timeout time.Duration, err error) error {
	if perr := parent.Err(); perr != nil {
		// The caller cancelled or its own deadline passed: not the runtime's fault.
		return fmt.Errorf("runtime %s: %w", op, perr)
	}
	if cctx.Err() != nil || isTimeout(err) {
		return &TemporaryError{Op: op, StatusCode: code, Cause: fmt.Errorf("%w after %s: %v", ErrTimeout, timeout, err)}
	}
	if permanentTransportError(err) {
		return &FatalError{Op: op, StatusCode: code, Body: ErrorBody{Message: err.Error(), ErrorCode: "RuntimeTLSError"}}
	}
	return &TemporaryError{Op: op, StatusCode: code, Cause: err}
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// readLimited reads at most limit bytes of r; tooLarge reports that more followed.
// A remainder is drained (bounded) so the connection can be reused.
func readLimited(r io.Reader, limit int64) (body []byte, tooLarge bool, err error) {
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, limit+1))
	if err != nil {
		return nil, false, err
	}
	if n > limit {
		_, _ = io.Copy(io.Discard, io.LimitReader(r, 64<<10))
		return buf.Bytes()[:limit], true, nil
	}
	return buf.Bytes(), false, nil
}
