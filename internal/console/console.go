// Package console is the local stack's web console (served at /console/):
// pipelines with their lifecycle buttons, a pipeline's record, event
// timeline, live stats and workflow executions, and each execution drawn on
// its state machine's graph with the path it took and its event history,
// the way the AWS Step Functions console shows it.
//
// The page itself (assets/, embedded) calls the real /v0 API with the API
// key the user enters (kept in the browser's session storage, sent as
// Authorization: Bearer). What the API does not serve — the Step Functions
// executions, their histories and the state machine graphs — comes from the
// small backend here under /console/api/, checked with the same
// auth.Verifier as the API.
package console

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/workflow"
)

// Prefix is where the console is mounted.
const Prefix = "/console/"

//go:embed assets
var assets embed.FS

// SFN is the part of the Step Functions API the console reads.
type SFN interface {
	ListExecutions(context.Context, *sfn.ListExecutionsInput, ...func(*sfn.Options)) (*sfn.ListExecutionsOutput, error)
	DescribeExecution(context.Context, *sfn.DescribeExecutionInput, ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error)
	GetExecutionHistory(context.Context, *sfn.GetExecutionHistoryInput, ...func(*sfn.Options)) (*sfn.GetExecutionHistoryOutput, error)
	DescribeStateMachine(context.Context, *sfn.DescribeStateMachineInput, ...func(*sfn.Options)) (*sfn.DescribeStateMachineOutput, error)
}

// Config of the console.
type Config struct {
	SFN SFN
	// Machines are the workflows' state machine ARNs by kind.
	Machines map[domain.WorkflowKind]string
	// Verifier checks the Authorization header of /console/api/ requests:
	// the API's own verifier.
	Verifier auth.Verifier
	Logger   *slog.Logger
}

// Handler serves the console under Prefix.
type Handler struct {
	cfg    Config
	static http.Handler
	log    *slog.Logger

	mu     sync.Mutex
	graphs map[string]Graph // by state machine ARN (definitions do not change while the stack runs)
}

// New builds the console handler.
func New(cfg Config) (*Handler, error) {
	if cfg.SFN == nil || cfg.Verifier == nil || len(cfg.Machines) == 0 {
		return nil, errors.New("console: SFN, Verifier and Machines are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, err
	}
	return &Handler{cfg: cfg, static: http.StripPrefix(Prefix, http.FileServerFS(sub)), log: cfg.Logger, graphs: map[string]Graph{}}, nil
}

// ServeHTTP serves the page and its assets (no data in them, so no key
// needed) and the JSON backend under /console/api/ (key needed).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if !strings.HasPrefix(r.URL.Path, Prefix+"api/") {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeError(w, &domain.Error{Code: domain.CodeUnsupportedPipelineAction, Message: "The console's pages are read with GET.", Details: struct{}{}})
			return
		}
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
		w.Header().Set("Cache-Control", "no-cache")
		h.static.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if err := h.authorize(r); err != nil {
		writeError(w, err)
		return
	}
	var (
		body any
		err  error
	)
	switch strings.TrimPrefix(r.URL.Path, Prefix+"api/") {
	case "machines":
		body, err = h.machines(r.Context())
	case "executions":
		body, err = h.executions(r.Context(), r.URL.Query().Get("pipeline"), r.URL.Query().Get("pipeline_id"))
	case "execution":
		body, err = h.execution(r.Context(), r.URL.Query().Get("arn"))
	default:
		err = &domain.Error{Code: domain.CodeUnknownPipelineName, Message: "No such console endpoint.", Details: struct{}{}}
		writeErrorStatus(w, http.StatusNotFound, err)
		return
	}
	if err != nil {
		writeError(w, h.sfnError(r.Context(), err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

// authorize is the API's own check (SPEC §6): the one Authorization header
// verified by the API's verifier, and the role of the method. Credentials
// anywhere else (a query parameter, a cookie) are not looked at.
func (h *Handler) authorize(r *http.Request) error {
	if r.Method != http.MethodGet {
		return &domain.Error{Code: domain.CodeUnsupportedPipelineAction, Message: "The console's backend only answers GET.", Details: struct{}{}}
	}
	header, err := auth.AuthorizationValue(r.Header.Values("Authorization"))
	if err != nil {
		return err
	}
	p, err := h.cfg.Verifier.Verify(r.Context(), header)
	if err != nil {
		return err
	}
	return auth.Authorize(p, auth.RequiredRole(r.Method))
}

// sfnError keeps the Step Functions service's internals out of answers.
func (h *Handler) sfnError(ctx context.Context, err error) error {
	var de *domain.Error
	if errors.As(err, &de) {
		return de
	}
	var missing *sfntypes.ExecutionDoesNotExist
	if errors.As(err, &missing) {
		return errNotFound("No such execution.")
	}
	h.log.WarnContext(ctx, "console: step functions call failed", "error", err.Error())
	return domain.ServiceUnavailable("workflow service")
}

func errNotFound(msg string) *domain.Error {
	return &domain.Error{Code: "NotFound", Message: msg, Details: struct{}{}}
}

func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	var de *domain.Error
	if errors.As(err, &de) {
		status = de.HTTPStatus()
		if de.Code == "NotFound" {
			status = http.StatusNotFound
		}
	}
	writeErrorStatus(w, status, err)
}

func writeErrorStatus(w http.ResponseWriter, status int, err error) {
	var de *domain.Error
	if !errors.As(err, &de) {
		de = &domain.Error{Code: domain.CodeInternalError, Message: "Internal error.", Details: struct{}{}}
	}
	switch status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="sluice"`)
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", strconv.Itoa(domain.DefaultRetryAfterSeconds))
	}
	if de.Details == nil {
		de.Details = struct{}{}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(de)
}

// MachineView is a state machine with its graph.
type MachineView struct {
	Kind  domain.WorkflowKind `json:"kind"`
	Name  string              `json:"name"`
	Arn   string              `json:"arn"`
	Graph Graph               `json:"graph"`
}

func (h *Handler) kinds() []domain.WorkflowKind {
	kinds := make([]domain.WorkflowKind, 0, len(h.cfg.Machines))
	for k := range h.cfg.Machines {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	return kinds
}

func (h *Handler) machines(ctx context.Context) ([]MachineView, error) {
	var out []MachineView
	for _, kind := range h.kinds() {
		arn := h.cfg.Machines[kind]
		g, name, err := h.graph(ctx, arn)
		if err != nil {
			return nil, err
		}
		out = append(out, MachineView{Kind: kind, Name: name, Arn: arn, Graph: g})
	}
	return out, nil
}

// graph is the laid-out definition of a state machine (cached).
func (h *Handler) graph(ctx context.Context, arn string) (Graph, string, error) {
	h.mu.Lock()
	g, ok := h.graphs[arn]
	h.mu.Unlock()
	name := arn[strings.LastIndexByte(arn, ':')+1:]
	if ok {
		return g, name, nil
	}
	out, err := h.cfg.SFN.DescribeStateMachine(ctx, &sfn.DescribeStateMachineInput{StateMachineArn: aws.String(arn)})
	if err != nil {
		return Graph{}, name, err
	}
	if g, err = ParseASL([]byte(aws.ToString(out.Definition))); err != nil {
		return Graph{}, name, err
	}
	h.mu.Lock()
	h.graphs[arn] = g
	h.mu.Unlock()
	return g, name, nil
}

// ExecutionSummary is one execution in a list.
type ExecutionSummary struct {
	Name      string              `json:"name"`
	Arn       string              `json:"arn"`
	Kind      domain.WorkflowKind `json:"kind"`
	Status    string              `json:"status"`
	StartDate time.Time           `json:"start_date"`
	StopDate  *time.Time          `json:"stop_date,omitempty"`
}

// executions lists the executions of every workflow of one pipeline (named
// by workflow.ExecutionNameFor, see workflow.IsExecutionOf), newest first.
func (h *Handler) executions(ctx context.Context, pipeline, pipelineID string) ([]ExecutionSummary, error) {
	if pipeline == "" {
		return nil, domain.InvalidQueryParameter("pipeline", "", "a pipeline name")
	}
	out := []ExecutionSummary{}
	for _, kind := range h.kinds() {
		pages := sfn.NewListExecutionsPaginator(h.cfg.SFN, &sfn.ListExecutionsInput{StateMachineArn: aws.String(h.cfg.Machines[kind]), MaxResults: 1000})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			for _, e := range page.Executions {
				if !workflow.IsExecutionOf(aws.ToString(e.Name), pipeline, pipelineID) {
					continue
				}
				out = append(out, ExecutionSummary{Name: aws.ToString(e.Name), Arn: aws.ToString(e.ExecutionArn), Kind: kind,
					Status: string(e.Status), StartDate: aws.ToTime(e.StartDate), StopDate: e.StopDate})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].StartDate.After(out[j].StartDate) })
	return out, nil
}

// ExecutionView is everything the execution page shows.
type ExecutionView struct {
	Name            string              `json:"name"`
	Arn             string              `json:"arn"`
	Kind            domain.WorkflowKind `json:"kind"`
	StateMachineArn string              `json:"state_machine_arn"`
	Status          string              `json:"status"`
	StartDate       time.Time           `json:"start_date"`
	StopDate        *time.Time          `json:"stop_date,omitempty"`
	Input           string              `json:"input,omitempty"`
	Output          string              `json:"output,omitempty"`
	Error           string              `json:"error,omitempty"`
	Cause           string              `json:"cause,omitempty"`
	// AWSConsoleURL is where this execution is on the AWS console (for an
	// ARN of a real region; the local stack's look like one).
	AWSConsoleURL string  `json:"aws_console_url,omitempty"`
	Graph         Graph   `json:"graph"`
	Trace         Trace   `json:"trace"`
	Events        []Event `json:"events"`
}

func (h *Handler) execution(ctx context.Context, arn string) (*ExecutionView, error) {
	kind, machineArn, ok := h.machineOf(arn)
	if !ok {
		return nil, errNotFound("No such execution of Sluice's state machines.")
	}
	d, err := h.cfg.SFN.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
	if err != nil {
		return nil, err
	}
	g, _, err := h.graph(ctx, machineArn)
	if err != nil {
		return nil, err
	}
	var events []Event
	pages := sfn.NewGetExecutionHistoryPaginator(h.cfg.SFN, &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(arn), MaxResults: 1000, IncludeExecutionData: aws.Bool(true)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, ev := range page.Events {
			events = append(events, FromSDK(ev))
		}
	}
	v := &ExecutionView{Name: aws.ToString(d.Name), Arn: arn, Kind: kind, StateMachineArn: machineArn, Status: string(d.Status),
		StartDate: aws.ToTime(d.StartDate), StopDate: d.StopDate, Input: aws.ToString(d.Input), Output: aws.ToString(d.Output),
		Error: aws.ToString(d.Error), Cause: aws.ToString(d.Cause), Graph: g, Trace: TraceHistory(events), Events: events}
	v.AWSConsoleURL, _ = workflow.AWSConsoleURL(arn)
	if v.Events == nil {
		v.Events = []Event{}
	}
	return v, nil
}

// machineOf finds which of the configured state machines an execution
// ARN belongs to ("arn:…:states:r:a:execution:<machine>:<name>" of the
// machine "arn:…:states:r:a:stateMachine:<machine>").
func (h *Handler) machineOf(execArn string) (domain.WorkflowKind, string, bool) {
	name := execArn[strings.LastIndexByte(execArn, ':')+1:]
	if name == "" {
		return "", "", false
	}
	for kind, m := range h.cfg.Machines {
		if arn, err := workflow.ExecutionARN(m, name); err == nil && arn == execArn {
			return kind, m, true
		}
	}
	return "", "", false
}

// FromSDK flattens a history event's details.
func FromSDK(ev sfntypes.HistoryEvent) Event {
	e := Event{ID: ev.Id, PreviousID: ev.PreviousEventId, Type: string(ev.Type), Timestamp: aws.ToTime(ev.Timestamp)}
	switch {
	case ev.StateEnteredEventDetails != nil:
		e.State, e.Input = aws.ToString(ev.StateEnteredEventDetails.Name), aws.ToString(ev.StateEnteredEventDetails.Input)
	case ev.StateExitedEventDetails != nil:
		e.State, e.Output = aws.ToString(ev.StateExitedEventDetails.Name), aws.ToString(ev.StateExitedEventDetails.Output)
	case ev.ExecutionStartedEventDetails != nil:
		e.Input = aws.ToString(ev.ExecutionStartedEventDetails.Input)
	case ev.ExecutionSucceededEventDetails != nil:
		e.Output = aws.ToString(ev.ExecutionSucceededEventDetails.Output)
	case ev.ExecutionFailedEventDetails != nil:
		e.Error, e.Cause = aws.ToString(ev.ExecutionFailedEventDetails.Error), aws.ToString(ev.ExecutionFailedEventDetails.Cause)
	case ev.ExecutionAbortedEventDetails != nil:
		e.Error, e.Cause = aws.ToString(ev.ExecutionAbortedEventDetails.Error), aws.ToString(ev.ExecutionAbortedEventDetails.Cause)
	case ev.ExecutionTimedOutEventDetails != nil:
		e.Error, e.Cause = aws.ToString(ev.ExecutionTimedOutEventDetails.Error), aws.ToString(ev.ExecutionTimedOutEventDetails.Cause)
	case ev.LambdaFunctionScheduledEventDetails != nil:
		e.Resource, e.Input = aws.ToString(ev.LambdaFunctionScheduledEventDetails.Resource), aws.ToString(ev.LambdaFunctionScheduledEventDetails.Input)
	case ev.LambdaFunctionSucceededEventDetails != nil:
		e.Output = aws.ToString(ev.LambdaFunctionSucceededEventDetails.Output)
	case ev.LambdaFunctionFailedEventDetails != nil:
		e.Error, e.Cause = aws.ToString(ev.LambdaFunctionFailedEventDetails.Error), aws.ToString(ev.LambdaFunctionFailedEventDetails.Cause)
	case ev.LambdaFunctionTimedOutEventDetails != nil:
		e.Error, e.Cause = aws.ToString(ev.LambdaFunctionTimedOutEventDetails.Error), aws.ToString(ev.LambdaFunctionTimedOutEventDetails.Cause)
	case ev.TaskScheduledEventDetails != nil:
		e.Resource, e.Input = aws.ToString(ev.TaskScheduledEventDetails.Resource), aws.ToString(ev.TaskScheduledEventDetails.Parameters)
	case ev.TaskSucceededEventDetails != nil:
		e.Output = aws.ToString(ev.TaskSucceededEventDetails.Output)
	case ev.TaskFailedEventDetails != nil:
		e.Error, e.Cause = aws.ToString(ev.TaskFailedEventDetails.Error), aws.ToString(ev.TaskFailedEventDetails.Cause)
	case ev.TaskTimedOutEventDetails != nil:
		e.Error, e.Cause = aws.ToString(ev.TaskTimedOutEventDetails.Error), aws.ToString(ev.TaskTimedOutEventDetails.Cause)
	}
	return e
}

// ExecutionURL is the console's page of an execution, on the API at apiURL
// (the pipeline record's workflow_console_url under make run).
func ExecutionURL(apiURL, executionArn string) string {
	return apiURL + "/console/#/executions/" + url.PathEscape(executionArn)
}
