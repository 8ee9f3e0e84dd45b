package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sluicehq/sluice/functions/api/openapi"
	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/obs"
	"github.com/sluicehq/sluice/internal/runtimeclient"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/workflow"
)

// ---- responses ----

func jsonResponse(status int, v any) (Response, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Response{}, fmt.Errorf("encoding the response: %w", err)
	}
	return rawJSON(status, b), nil
}

func rawJSON(status int, b []byte) Response {
	return Response{Status: status, Header: http.Header{"Content-Type": {"application/json"}}, Body: b}
}

// message answers a JSON string (Feldera's style for 202 and other
// acknowledgements), e.g. "Pipeline 'p1' is being stopped: …".
func message(status int, text string) (Response, error) { return jsonResponse(status, text) }

// statusOmits are the fields selector=status leaves out, as Feldera's
// PipelineFieldSelector::Status does: the definition's large fields. The
// description stays (Feldera 0.148's PipelineSelectedInfo requires it).
var statusOmits = []string{"runtime_config", "program_code", "udf_rust", "udf_toml", "program_config", "program_info"}

// view renders a record: the full view, or with selector=status the view
// without statusOmits.
func (h *Handler) view(p domain.Pipeline, sel domain.Selector) (json.RawMessage, error) {
	v := domain.ViewOf(p)
	if h.execLink != nil && p.Workflow != nil && p.Workflow.ExecutionArn != "" {
		if link, ok := h.execLink(p.Workflow.ExecutionArn); ok {
			v.WorkflowConsoleURL = link
		}
	}
	b, err := json.Marshal(v)
	if err != nil || sel != domain.SelectorStatus {
		return b, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for _, f := range statusOmits {
		delete(m, f)
	}
	return json.Marshal(m)
}

// ---- query helpers ----

func single(q map[string][]string, name string) (string, error) {
	v := q[name]
	switch len(v) {
	case 0:
		return "", nil
	case 1:
		return v[0], nil
	}
	return "", domain.InvalidQueryParameter(name, strings.Join(v, ","), "a single value")
}

// parseLimit reads limit: an integer from 1 to store.MaxPageLimit; 0 when absent.
func parseLimit(q map[string][]string) (int, error) {
	s, err := single(q, "limit")
	if err != nil || s == "" {
		if err == nil && len(q["limit"]) == 1 {
			err = domain.InvalidQueryParameter("limit", s, fmt.Sprintf("an integer from 1 to %d", store.MaxPageLimit))
		}
		return 0, err
	}
	n, convErr := strconv.Atoi(s)
	if convErr != nil || n < 1 || n > store.MaxPageLimit || strconv.Itoa(n) != s {
		return 0, domain.InvalidQueryParameter("limit", s, fmt.Sprintf("an integer from 1 to %d", store.MaxPageLimit))
	}
	return n, nil
}

// ---- bodies ----

// definitionBody is the body of POST /v0/pipelines, PUT and PATCH
// /v0/pipelines/{name}: Feldera's PostPutPipeline and PatchPipeline. Every
// field is nullable; null and absent are the same (empty for POST/PUT,
// unchanged for PATCH).
type definitionBody struct {
	Name          *string         `json:"name"`
	Description   *string         `json:"description"`
	Tags          *[]string       `json:"tags"`
	RuntimeConfig json.RawMessage `json:"runtime_config"`
	ProgramCode   *string         `json:"program_code"`
	UdfRust       *string         `json:"udf_rust"`
	UdfToml       *string         `json:"udf_toml"`
	ProgramConfig json.RawMessage `json:"program_config"`
}

// bodyFields lists the accepted fields (for the unknown-field message).
const bodyFields = "name, description, tags, runtime_config, program_code, udf_rust, udf_toml, program_config"

// definition is the full definition a POST or PUT writes.
func (b definitionBody) definition(name string) domain.Definition {
	return b.patch(domain.Definition{Name: name})
}

// patch applies the fields present in b to base (PATCH; for POST/PUT the
// base is empty).
func (b definitionBody) patch(base domain.Definition) domain.Definition {
	d := base
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&d.Description, b.Description)
	set(&d.ProgramCode, b.ProgramCode)
	set(&d.UdfRust, b.UdfRust)
	set(&d.UdfToml, b.UdfToml)
	if b.Tags != nil {
		d.Tags = *b.Tags
	}
	if !isNull(b.RuntimeConfig) {
		d.RuntimeConfig = b.RuntimeConfig
	}
	if !isNull(b.ProgramConfig) {
		d.ProgramConfig = b.ProgramConfig
	}
	return d
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || bytes.Equal(t, []byte("null"))
}

// decodeDefinition decodes a definition strictly (decodeStrict).
func decodeDefinition(body []byte) (definitionBody, error) {
	return decodeStrict[definitionBody](body, bodyFields)
}

// decodeStrict decodes a request body strictly: one JSON object (not empty,
// not null), no unknown fields (accepted lists them in the error), the
// right types, nothing after it, and checkStrictJSON's rules.
func decodeStrict[T any](body []byte, accepted string) (T, error) {
	var v T
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return v, domain.InvalidRequestBody("", "the body is empty; send a JSON object")
	}
	if bytes.Equal(trimmed, []byte("null")) {
		return v, domain.InvalidRequestBody("", "the body must be a JSON object")
	}
	if err := checkStrictJSON(body, v); err != nil {
		return v, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return v, domain.InvalidRequestBody(truncate(strings.Trim(f, `"`), 100), "unknown field (accepted: "+accepted+")")
		}
		return v, bodyError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return v, domain.InvalidRequestBody("", "unexpected data after the JSON object")
	}
	return v, nil
}

func bodyError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn):
		return domain.InvalidRequestBody("", fmt.Sprintf("malformed JSON at byte %d", syn.Offset))
	case errors.As(err, &typ):
		if typ.Field == "" {
			return domain.InvalidRequestBody("", "the body must be a JSON object")
		}
		return domain.InvalidRequestBody(typ.Field, fmt.Sprintf("must be %s, not %s", jsonKind(typ.Type), typ.Value))
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return domain.InvalidRequestBody("", "truncated JSON")
	}
	return domain.InvalidRequestBody("", "the body is not a valid JSON object")
}

func jsonKind(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "a JSON value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int64, reflect.Uint32, reflect.Uint64, reflect.Float64:
		return "a number"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice:
		return "an array"
	}
	return "a " + t.Kind().String()
}

func isUnknownPipeline(err error) bool {
	var de *domain.Error
	return errors.As(err, &de) && de.Code == domain.CodeUnknownPipelineName
}

func isDuplicateName(err error) bool {
	var de *domain.Error
	return errors.As(err, &de) && de.Code == domain.CodeDuplicateName
}

// stale reports a lost conditional write; current is the record the store
// returned with it (nil: read again).
func stale(err error) (current *domain.Pipeline, ok bool) {
	var se *store.StaleError
	if errors.As(err, &se) {
		return &se.Current, true
	}
	return nil, errors.Is(err, store.ErrStale)
}

func (h *Handler) gaveUp(action, name string) error {
	return fmt.Errorf("%w: %s of pipeline %q lost its conditional write %d times to concurrent writes", store.ErrUnavailable, action, name, h.maxAttempts)
}

// ---- public routes ----

func (h *Handler) healthz(context.Context, *call) (Response, error) {
	return jsonResponse(http.StatusOK, map[string]string{"status": "ok"})
}

func (h *Handler) openAPI(context.Context, *call) (Response, error) {
	b, err := openapi.JSON()
	if err != nil {
		return Response{}, err
	}
	return rawJSON(http.StatusOK, b), nil
}

// ---- the definition ----

func (h *Handler) listPipelines(ctx context.Context, c *call) (Response, error) {
	sel, err := domain.ParseSelector(c.query["selector"])
	if err != nil {
		return Response{}, err
	}
	limit, token, err := listPaging(c.query)
	if err != nil {
		return Response{}, err
	}
	records, next, err := h.store.List(ctx, token, limit)
	if err != nil {
		return Response{}, err
	}
	out, fit, err := h.viewsWithin(records, sel, MaxListBytes)
	if err != nil {
		return Response{}, err
	}
	if fit < len(records) {
		// Too large for one answer (Lambda's response limit): a shorter page,
		// read again so that its next-page token is the store's own.
		if records, next, err = h.store.List(ctx, token, fit); err != nil {
			return Response{}, err
		}
		if out, _, err = h.viewsWithin(records, sel, MaxListBytes); err != nil {
			return Response{}, err
		}
	}
	resp, err := jsonResponse(http.StatusOK, out)
	if err == nil && next != "" {
		resp.Header.Set(NextPageHeader, next)
	}
	return resp, err
}

// listPaging reads a list's limit and page_token. Without a limit, Feldera
// clients expect every item: one page of the largest size.
func listPaging(q map[string][]string) (limit int, token string, err error) {
	if limit, err = parseLimit(q); err != nil {
		return 0, "", err
	}
	if token, err = single(q, "page_token"); err != nil {
		return 0, "", err
	}
	if limit == 0 {
		limit = store.MaxPageLimit
	}
	return limit, token, nil
}

// MaxListBytes bounds the records of one list answer. Lambda's response
// payload limit is 6 MB for the whole proxy response, in which the body is a
// JSON string (escaping grows it): a page stops before its records pass 3 MiB
// and says where the next one starts (X-Next-Page-Token), even when the
// caller asked for more records or for no limit.
const MaxListBytes = 3 << 20

// viewsWithin renders records until the next one would pass budget bytes
// (at least one); fit is how many were rendered.
func (h *Handler) viewsWithin(records []domain.Pipeline, sel domain.Selector, budget int) (out []json.RawMessage, fit int, err error) {
	out = make([]json.RawMessage, 0, len(records))
	total := 0
	for _, p := range records {
		v, err := h.view(p, sel)
		if err != nil {
			return nil, 0, err
		}
		if len(out) > 0 && total+len(v) > budget {
			break
		}
		total += len(v) + 1
		out = append(out, v)
	}
	return out, len(out), nil
}

func (h *Handler) getPipeline(ctx context.Context, c *call) (Response, error) {
	sel, err := domain.ParseSelector(c.query["selector"])
	if err != nil {
		return Response{}, err
	}
	p, err := h.store.Get(ctx, c.name)
	if err != nil {
		return Response{}, err
	}
	c.log.generation = p.Generation
	v, err := h.view(p, sel)
	if err != nil {
		return Response{}, err
	}
	return rawJSON(http.StatusOK, v), nil
}

func (h *Handler) createPipeline(ctx context.Context, c *call) (Response, error) {
	body, err := decodeDefinition(c.req.Body)
	if err != nil {
		return Response{}, err
	}
	if body.Name == nil {
		return Response{}, domain.InvalidRequestBody("name", "is required")
	}
	c.log.pipeline = truncate(*body.Name, domain.MaxNameLength)
	p, err := domain.Create(body.definition(*body.Name), h.newID(), h.now().UTC())
	if err != nil {
		return Response{}, err
	}
	if err := h.store.Create(ctx, p, c.cause("create")); err != nil {
		return Response{}, err
	}
	v, err := h.view(p, domain.SelectorAll)
	if err != nil {
		return Response{}, err
	}
	return rawJSON(http.StatusCreated, v), nil
}

func (h *Handler) putPipeline(ctx context.Context, c *call) (Response, error) {
	body, err := decodeDefinition(c.req.Body)
	if err != nil {
		return Response{}, err
	}
	if body.Name != nil && *body.Name != c.name {
		return Response{}, domain.InvalidRequestBody("name", fmt.Sprintf("must equal the pipeline name in the path ('%s'): pipelines cannot be renamed", c.name))
	}
	def := body.definition(c.name)
	for range h.maxAttempts {
		p, err := h.store.Get(ctx, c.name)
		if isUnknownPipeline(err) {
			np, err := domain.Create(def, h.newID(), h.now().UTC())
			if err != nil {
				return Response{}, err
			}
			err = h.store.Create(ctx, np, c.cause("create"))
			if isDuplicateName(err) {
				continue // created concurrently: replace it
			}
			if err != nil {
				return Response{}, err
			}
			v, err := h.view(np, domain.SelectorAll)
			if err != nil {
				return Response{}, err
			}
			return rawJSON(http.StatusCreated, v), nil
		}
		if err != nil {
			return Response{}, err
		}
		out, err := domain.Replace(p, def, h.now().UTC())
		if err != nil {
			return Response{}, err
		}
		after, err := h.store.ApplyAction(ctx, p, out, c.cause("replace"))
		if _, ok := stale(err); ok {
			continue
		}
		if err != nil {
			return Response{}, err
		}
		c.log.generation = after.Generation
		v, err := h.view(after, domain.SelectorAll)
		if err != nil {
			return Response{}, err
		}
		return rawJSON(http.StatusOK, v), nil
	}
	return Response{}, h.gaveUp("replace", c.name)
}

// patchPipeline edits the fields present in the body (Feldera's PATCH), with
// the same rules as PUT: only while fully stopped, never a rename.
func (h *Handler) patchPipeline(ctx context.Context, c *call) (Response, error) {
	body, err := decodeDefinition(c.req.Body)
	if err != nil {
		return Response{}, err
	}
	if body.Name != nil && *body.Name != c.name {
		return Response{}, domain.InvalidRequestBody("name", fmt.Sprintf("must equal the pipeline name in the path ('%s'): pipelines cannot be renamed", c.name))
	}
	after, _, err := h.act(ctx, c, "patch", func(p domain.Pipeline, now time.Time) (domain.Outcome, error) {
		return domain.Replace(p, body.patch(domain.DefinitionOf(p)), now)
	})
	if err != nil {
		return Response{}, err
	}
	v, err := h.view(after, domain.SelectorAll)
	if err != nil {
		return Response{}, err
	}
	return rawJSON(http.StatusOK, v), nil
}

func (h *Handler) deletePipeline(ctx context.Context, c *call) (Response, error) {
	for range h.maxAttempts {
		p, err := h.store.Get(ctx, c.name)
		if err != nil {
			return Response{}, err
		}
		if err := domain.CheckDelete(p); err != nil {
			return Response{}, err
		}
		err = h.store.Delete(ctx, p, c.cause("delete"))
		if _, ok := stale(err); ok {
			continue
		}
		if err != nil {
			return Response{}, err
		}
		return message(http.StatusOK, fmt.Sprintf("Pipeline '%s' deleted.", c.name))
	}
	return Response{}, h.gaveUp("delete", c.name)
}

// ---- lifecycle actions ----

type decision func(p domain.Pipeline, now time.Time) (domain.Outcome, error)

// act is the read → decide → conditional write loop of a user action. A
// write that loses to a concurrent one is decided again on the current
// record, at most maxAttempts times (then 503 ServiceUnavailable).
func (h *Handler) act(ctx context.Context, c *call, action string, decide decision) (domain.Pipeline, domain.Outcome, error) {
	var current *domain.Pipeline
	for range h.maxAttempts {
		if current == nil {
			p, err := h.store.Get(ctx, c.name)
			if err != nil {
				return domain.Pipeline{}, domain.Outcome{}, err
			}
			current = &p
		}
		p := *current
		c.log.generation = p.Generation
		out, err := decide(p, h.now().UTC())
		if err != nil {
			return domain.Pipeline{}, domain.Outcome{}, err
		}
		if !out.Write {
			return p, out, nil
		}
		if out.Workflow != "" {
			// The workflow's execution name is deterministic: record its
			// reference (PENDING) in this very write, so that nothing is
			// left to write once StartExecution has answered.
			ref, err := h.starter.PendingRef(out.Pipeline, out.Workflow)
			if err != nil {
				return domain.Pipeline{}, domain.Outcome{}, err
			}
			if out, err = domain.RecordWorkflow(out, ref); err != nil {
				return domain.Pipeline{}, domain.Outcome{}, err
			}
		}
		after, err := h.store.ApplyAction(ctx, p, out, c.cause(action))
		if cur, ok := stale(err); ok {
			current = cur
			continue
		}
		if err != nil {
			return domain.Pipeline{}, domain.Outcome{}, err
		}
		c.log.generation = after.Generation
		obs.Logger(ctx).Info("action accepted", "action", action, obs.Generation(after.Generation))
		return after, out, nil
	}
	return domain.Pipeline{}, domain.Outcome{}, h.gaveUp(action, c.name)
}

// followUp does what an accepted action leaves to do, detached from the
// caller's cancellation: start the outcome's workflow (its PENDING ref is
// already in the action's write: nothing more is written) and, at the same
// time, stop a superseded execution (best effort: its fenced writes already
// fail); and on an accepted repeat (no write) start the pending workflow of
// the current generation if the record does not show it started (still
// PENDING: a previous StartExecution failed or was lost; or no ref of this
// generation at all), so a retried call converges at once. A failure here
// never fails the request: the desired state is written and the reconciler
// converges (domain.DecideWorkflowRepair).
func (h *Handler) followUp(ctx context.Context, c *call, action string, after domain.Pipeline, out domain.Outcome) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.sideTimeout)
	defer cancel()
	defer func() {
		// The desired state is written: the answer stays the action's
		// (never a 500 for a change that happened); the reconciler converges.
		if v := recover(); v != nil {
			obs.Logger(ctx).Error("panic after an accepted write (workflow start or stop)", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
	}()
	var stopped chan struct{}
	if out.Write && out.Supersedes != nil {
		// Stopping the superseded execution is cosmetic (the fences do the
		// work), so it never waits for, nor delays, the new start: both
		// calls are in flight together and the answer waits for the slower.
		stopped = make(chan struct{})
		go func() {
			defer close(stopped)
			defer func() {
				if v := recover(); v != nil {
					obs.Logger(ctx).Error("panic stopping a superseded workflow execution", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				}
			}()
			h.stopSuperseded(sctx, after, action, *out.Supersedes)
		}()
	}
	switch {
	case out.Write && out.Workflow != "":
		h.startWorkflow(sctx, c, after, out.Workflow, false)
	case !out.Write:
		kind := after.PendingWorkflow()
		w := after.Workflow
		switch {
		case kind == "":
		case w == nil || w.Generation < after.Generation:
			// A record written without the ref (before refs were part of
			// the action's write): start it and record it.
			obs.Logger(ctx).Info("starting the pending workflow of the current generation, never recorded",
				"kind", string(kind), obs.Generation(after.Generation))
			h.startWorkflow(sctx, c, after, kind, true)
		case w.Generation == after.Generation && w.Kind == kind && w.Status == domain.WorkflowPending:
			obs.Logger(ctx).Info("starting the pending workflow of the current generation, not known to have started",
				"kind", string(kind), obs.Generation(after.Generation))
			h.startWorkflow(sctx, c, after, kind, false)
		}
	}
	if stopped != nil {
		<-stopped
	}
}

func (h *Handler) stopSuperseded(ctx context.Context, after domain.Pipeline, action string, old domain.WorkflowRef) {
	cause := fmt.Sprintf("Superseded by generation %d (%s).", after.Generation, action)
	if err := h.starter.Stop(ctx, old, cause); err != nil {
		obs.Logger(ctx).Warn("could not stop the superseded workflow execution (harmless: its fenced writes fail)",
			obs.Execution(old.ExecutionName), obs.Err(err))
		return
	}
	obs.Logger(ctx).Info("stopped the superseded workflow execution", obs.Execution(old.ExecutionName))
}

// startWorkflow calls StartExecution under the deterministic name (an
// execution that exists already is success). record: the record has no ref
// of this generation, so the started one is recorded (SetWorkflow); otherwise
// the record already names it (PENDING) and the workflow's first status
// write records RUNNING (domain.MarkWorkflowRunning).
func (h *Handler) startWorkflow(ctx context.Context, c *call, p domain.Pipeline, kind domain.WorkflowKind, record bool) {
	name := workflow.ExecutionNameFor(p, kind, 0)
	c.log.execution = name
	log := obs.Logger(ctx).With(obs.Execution(name), obs.Generation(p.Generation), "kind", string(kind))
	ref, err := h.starter.Start(ctx, p, kind)
	if err != nil {
		log.Error("StartExecution failed after the desired state was written; a retried call or the reconciler starts it", obs.Err(err))
		return
	}
	c.log.execution = ref.ExecutionName
	if !record {
		log.Info("workflow started")
		return
	}
	if _, err := h.store.SetWorkflow(ctx, p.Name, ref); err != nil {
		var sup *store.SupersededError
		if errors.As(err, &sup) {
			log.Info("workflow started, but a newer action superseded its generation before it was recorded")
			return
		}
		log.Warn("workflow started but not recorded on the pipeline", obs.Err(err))
		return
	}
	log.Info("workflow started")
}

func (h *Handler) lifecycle(ctx context.Context, c *call, action string, status int, decide decision) (Response, domain.Pipeline, error) {
	after, out, err := h.act(ctx, c, action, decide)
	if err != nil {
		return Response{}, after, err
	}
	h.followUp(ctx, c, action, after, out)
	resp, err := message(status, out.Accepted)
	return resp, after, err
}

func (h *Handler) stop(ctx context.Context, c *call) (Response, error) {
	force, err := domain.ParseBoolParam("force", c.query["force"], false)
	if err != nil {
		return Response{}, err
	}
	var accepted domain.Outcome
	resp, after, err := h.lifecycle(ctx, c, "stop?force="+strconv.FormatBool(force), http.StatusAccepted,
		func(p domain.Pipeline, now time.Time) (domain.Outcome, error) {
			out, err := domain.Stop(p, force, now)
			accepted = out
			return out, err
		})
	if err == nil && accepted.Write && h.metrics != nil {
		h.metrics.StopRequested(ctx, after.Name, after.Generation, force)
	}
	return resp, err
}

func (h *Handler) start(ctx context.Context, c *call) (Response, error) {
	initial, err := domain.ParseInitial(c.query["initial"])
	if err != nil {
		return Response{}, err
	}
	dismiss, err := domain.ParseBoolParam("dismiss_error", c.query["dismiss_error"], true)
	if err != nil {
		return Response{}, err
	}
	req := domain.StartRequest{Initial: initial, DismissError: dismiss}
	return h.forwardDesired(ctx, c, "start?initial="+strings.ToLower(string(initial)),
		func(p domain.Pipeline, now time.Time) (domain.Outcome, error) { return domain.Start(p, req, now) })
}

func (h *Handler) clear(ctx context.Context, c *call) (Response, error) {
	resp, _, err := h.lifecycle(ctx, c, "clear", http.StatusAccepted, domain.Clear)
	return resp, err
}

func (h *Handler) dismissError(ctx context.Context, c *call) (Response, error) {
	resp, _, err := h.lifecycle(ctx, c, "dismiss_error", http.StatusOK, domain.DismissError)
	return resp, err
}

// pause and resume record the runtime desired status, then forward the
// action to the runtime.
func (h *Handler) pause(ctx context.Context, c *call) (Response, error) {
	return h.forwardDesired(ctx, c, "pause", domain.Pause)
}

func (h *Handler) resume(ctx context.Context, c *call) (Response, error) {
	return h.forwardDesired(ctx, c, "resume", domain.Resume)
}

// forwardDesired runs a lifecycle action whose outcome may name a runtime
// call (pause, resume, start on a Paused pipeline): the desired status is
// written first, then the call is forwarded and the runtime observed, so
// that the record shows the new status at once.
func (h *Handler) forwardDesired(ctx context.Context, c *call, action string, decide decision) (Response, error) {
	after, out, err := h.act(ctx, c, action, decide)
	if err != nil {
		return Response{}, err
	}
	h.followUp(ctx, c, action, after, out)
	if out.Forward != "" {
		rt, err := h.runtimeOf(after)
		if err != nil {
			return Response{}, err
		}
		call, want := rt.Start, domain.RuntimeRunning
		if out.Forward == domain.ForwardPause {
			call, want = rt.Pause, domain.RuntimePaused
		}
		if err := call(ctx); err != nil {
			return Response{}, &runtimeError{pipeline: c.name, err: err}
		}
		h.observeAfterForward(ctx, c, after, rt, want)
	}
	return message(http.StatusAccepted, out.Accepted)
}

func (h *Handler) runtimeOf(p domain.Pipeline) (Runtime, error) {
	if p.DeploymentLocation == nil {
		return nil, fmt.Errorf("%w: pipeline %q: provisioned without a deployment location", domain.ErrInconsistentRecord, p.Name)
	}
	rt, err := h.runtimes(*p.DeploymentLocation)
	if err != nil {
		return nil, fmt.Errorf("%w: pipeline %q: deployment location: %w", domain.ErrInconsistentRecord, p.Name, err)
	}
	return rt, nil
}

// readRuntime reads the record, checks the interaction, and returns its runtime.
func (h *Handler) readRuntime(ctx context.Context, c *call, check func(domain.Pipeline) error) (Runtime, error) {
	p, err := h.store.Get(ctx, c.name)
	if err != nil {
		return nil, err
	}
	c.log.generation = p.Generation
	if err := check(p); err != nil {
		return nil, err
	}
	return h.runtimeOf(p)
}

func (h *Handler) checkpoint(ctx context.Context, c *call) (Response, error) {
	return forward(ctx, h, c, domain.CheckCheckpoint, Runtime.Checkpoint)
}

func (h *Handler) checkpointStatus(ctx context.Context, c *call) (Response, error) {
	incarnation, err := single(c.query, "incarnation_uuid")
	if err != nil {
		return Response{}, err
	}
	if incarnation != "" {
		if _, perr := uuid.Parse(incarnation); perr != nil {
			return Response{}, domain.InvalidQueryParameter("incarnation_uuid", incarnation, "a UUID")
		}
	}
	return forward(ctx, h, c, domain.CheckReadInteraction, func(rt Runtime, ctx context.Context) (runtimeclient.CheckpointStatus, error) {
		return rt.CheckpointStatus(ctx, incarnation)
	})
}

func (h *Handler) stats(ctx context.Context, c *call) (Response, error) {
	return forward(ctx, h, c, domain.CheckReadInteraction, Runtime.Stats)
}

// forward answers a forwarded read or checkpoint: the record's interaction
// check, the runtime call, its result as the 200 body (a raw JSON answer, the
// runtime's own statistics, is passed through as it came).
func forward[T any](ctx context.Context, h *Handler, c *call, check func(domain.Pipeline) error, do func(Runtime, context.Context) (T, error)) (Response, error) {
	rt, err := h.readRuntime(ctx, c, check)
	if err != nil {
		return Response{}, err
	}
	v, err := do(rt, ctx)
	if err != nil {
		return Response{}, &runtimeError{pipeline: c.name, err: err}
	}
	if raw, ok := any(v).(json.RawMessage); ok {
		return rawJSON(http.StatusOK, raw), nil
	}
	return jsonResponse(http.StatusOK, v)
}

func (h *Handler) events(ctx context.Context, c *call) (Response, error) {
	limit, err := parseLimit(c.query)
	if err != nil {
		return Response{}, err
	}
	token, err := single(c.query, "page_token")
	if err != nil {
		return Response{}, err
	}
	events, next, err := h.store.History(ctx, c.name, token, limit)
	if err != nil {
		return Response{}, err
	}
	if events == nil {
		events = []store.Event{}
	}
	resp, err := jsonResponse(http.StatusOK, events)
	if err == nil && next != "" {
		resp.Header.Set(NextPageHeader, next)
	}
	return resp, err
}
