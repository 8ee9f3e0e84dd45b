package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sluicehq/sluice/internal/domain"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// APIError is an error answer of the Sluice API ({message, error_code,
// details}), or a deployment_error shown as one.
type APIError struct {
	Status    int            `json:"-"`
	Message   string         `json:"message"`
	ErrorCode string         `json:"error_code"`
	Details   map[string]any `json:"details"`
}

// Error is "<error_code>: <message>" (the CLI prints it after "error: ").
func (e *APIError) Error() string {
	code := e.ErrorCode
	if code == "" {
		code = fmt.Sprintf("HTTP %d", e.Status)
	}
	return code + ": " + e.Message
}

// UnreachableError is a request that got no HTTP answer.
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the Sluice API at %s: %v (is the local stack running? `make run`)", e.URL, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Client calls the Sluice /v0 API.
type Client struct {
	BaseURL string
	APIKey  string
	HTTP    *http.Client
}

// response is a successful answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request; a non-2xx answer is an *APIError, no answer an
// *UnreachableError.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body any) (response, error) {
	u := strings.TrimRight(c.BaseURL, "/") + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return response{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return response{}, fmt.Errorf("bad URL %q: %w", c.BaseURL, err)
	}
	if c.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 90 * time.Second}
	}
	res, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return response{}, ctx.Err()
		}
		return response{}, &UnreachableError{URL: c.BaseURL, Err: unwrapURLError(err)}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 32<<20))
	if err != nil {
		return response{}, &UnreachableError{URL: c.BaseURL, Err: err}
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return response{}, parseError(res.StatusCode, b)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}, nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// parseError reads an error body; one not in the API's shape becomes an
// APIError with the HTTP status as its code and the start of the body.
func parseError(status int, b []byte) *APIError {
	e := &APIError{Status: status}
	if json.Unmarshal(b, e) == nil && e.ErrorCode != "" {
		return e
	}
	e.ErrorCode, e.Message, e.Details = "", strings.TrimSpace(string(b)), nil
	if len(e.Message) > 300 {
		e.Message = e.Message[:300] + "…"
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

// message decodes a 202/200 JSON string body (e.g. "Pipeline 'p1' is being
// stopped…"); anything else is returned as is.
func message(b []byte) string {
	var s string
	if json.Unmarshal(b, &s) == nil {
		return s
	}
	return strings.TrimSpace(string(b))
}

// Pipeline is the pipeline record as the API sends it: the domain's view,
// one definition for the server and its client.
type Pipeline = domain.View

// Event is one status-history item.
type Event struct {
	At                      time.Time `json:"at"`
	Generation              int64     `json:"generation"`
	RefreshVersion          int64     `json:"refresh_version"`
	DeploymentStatus        string    `json:"deployment_status"`
	DeploymentDesiredStatus string    `json:"deployment_desired_status"`
	StorageStatus           string    `json:"storage_status"`
	DeploymentError         *APIError `json:"deployment_error"`
	Cause                   struct {
		Action    string `json:"action"`
		Actor     string `json:"actor"`
		Execution string `json:"execution"`
	} `json:"cause"`
}

func pipelinePath(name string, rest ...string) string {
	p := "/v0/pipelines/" + url.PathEscape(name)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

// Get reads one pipeline.
func (c *Client) Get(ctx context.Context, name string) (Pipeline, error) {
	r, err := c.do(ctx, http.MethodGet, pipelinePath(name), nil, nil)
	if err != nil {
		return Pipeline{}, err
	}
	var p Pipeline
	if err := json.Unmarshal(r.body, &p); err != nil {
		return Pipeline{}, fmt.Errorf("decoding the pipeline: %w", err)
	}
	return p, nil
}

// List reads every pipeline (following the pages).
func (c *Client) List(ctx context.Context) ([]Pipeline, error) {
	var all []Pipeline
	token := ""
	for {
		q := url.Values{"selector": {"status"}, "limit": {"1000"}}
		if token != "" {
			q.Set("page_token", token)
		}
		r, err := c.do(ctx, http.MethodGet, "/v0/pipelines", q, nil)
		if err != nil {
			return nil, err
		}
		var page []Pipeline
		if err := json.Unmarshal(r.body, &page); err != nil {
			return nil, fmt.Errorf("decoding the pipelines: %w", err)
		}
		all = append(all, page...)
		if token = r.header.Get("X-Next-Page-Token"); token == "" {
			return all, nil
		}
	}
}

// Action posts a lifecycle action and returns the accepted message.
func (c *Client) Action(ctx context.Context, method, name, action string, query url.Values) (string, error) {
	path := pipelinePath(name)
	if action != "" {
		path = pipelinePath(name, action)
	}
	r, err := c.do(ctx, method, path, query, nil)
	if err != nil {
		return "", err
	}
	return message(r.body), nil
}

// Events reads the latest limit events, newest first.
func (c *Client) Events(ctx context.Context, name string, limit int) ([]Event, error) {
	r, err := c.do(ctx, http.MethodGet, pipelinePath(name, "events"), url.Values{"limit": {strconv.Itoa(limit)}}, nil)
	if err != nil {
		return nil, err
	}
	var evs []Event
	if err := json.Unmarshal(r.body, &evs); err != nil {
		return nil, fmt.Errorf("decoding the events: %w", err)
	}
	return evs, nil
}
