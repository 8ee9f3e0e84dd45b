package httpapi

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/obs"
	"github.com/sluicehq/sluice/internal/store"
)

// nameParam is the path parameter of every per-pipeline route, as in
// Feldera's API and in the API Gateway resources.
const nameParam = "{pipeline_name}"

// Route templates.
const (
	routeHealthz          = "/healthz"
	routeOpenAPI          = "/v0/openapi.json"
	routeConfig           = "/v0/config"
	routePipelines        = "/v0/pipelines"
	routePipeline         = "/v0/pipelines/{pipeline_name}"
	routeStart            = "/v0/pipelines/{pipeline_name}/start"
	routeStop             = "/v0/pipelines/{pipeline_name}/stop"
	routePause            = "/v0/pipelines/{pipeline_name}/pause"
	routeResume           = "/v0/pipelines/{pipeline_name}/resume"
	routeClear            = "/v0/pipelines/{pipeline_name}/clear"
	routeDismissError     = "/v0/pipelines/{pipeline_name}/dismiss_error"
	routeCheckpoint       = "/v0/pipelines/{pipeline_name}/checkpoint"
	routeCheckpointStatus = "/v0/pipelines/{pipeline_name}/checkpoint_status"
	routeStats            = "/v0/pipelines/{pipeline_name}/stats"
	routeEvents           = "/v0/pipelines/{pipeline_name}/events"
)

// call is one routed request as a handler sees it.
type call struct {
	req       *Request
	name      string // the validated {pipeline_name}, "" on other routes
	keyName   string // the raw {api_key_name}, "" on other routes (apikeys.go)
	principal auth.Principal
	query     url.Values
	log       *accessLog
}

// cause is the history cause of a write made by this call.
func (c *call) cause(action string) store.Cause {
	actor := "user:" + c.principal.Subject
	if c.principal.Subject == "" {
		actor = "user:" + c.principal.Kind
	}
	return store.Cause{Action: action, Actor: actor, RequestID: c.req.RequestID}
}

type handlerFunc func(ctx context.Context, c *call) (Response, error)

// endpoint is one method of a route.
type endpoint struct {
	handle handlerFunc
	// query lists the accepted query parameters; any other is 400.
	query []string
	// body: the endpoint reads a JSON body (Content-Type application/json).
	body bool
	// role is the role the endpoint needs; "" = by method (auth.RequiredRole).
	role store.Role
}

type route struct {
	template string
	segments []string
	// public: no authentication (health check, API description).
	public    bool
	endpoints map[string]endpoint
}

func (h *Handler) routeTable() []*route {
	rs := []*route{
		{template: routeHealthz, public: true, endpoints: map[string]endpoint{
			http.MethodGet: {handle: h.healthz}}},
		{template: routeOpenAPI, public: true, endpoints: map[string]endpoint{
			http.MethodGet: {handle: h.openAPI}}},
		{template: routeConfig, endpoints: map[string]endpoint{
			http.MethodGet: {handle: h.config}}},
		{template: routePipelines, endpoints: map[string]endpoint{
			http.MethodGet:  {handle: h.listPipelines, query: []string{"selector", "limit", "page_token"}},
			http.MethodPost: {handle: h.createPipeline, body: true}}},
		{template: routePipeline, endpoints: map[string]endpoint{
			http.MethodGet:    {handle: h.getPipeline, query: []string{"selector"}},
			http.MethodPut:    {handle: h.putPipeline, body: true},
			http.MethodPatch:  {handle: h.patchPipeline, body: true},
			http.MethodDelete: {handle: h.deletePipeline}}},
		{template: routeStart, endpoints: map[string]endpoint{
			http.MethodPost: {handle: h.start, query: []string{"initial", "dismiss_error"}}}},
		{template: routeStop, endpoints: map[string]endpoint{
			http.MethodPost: {handle: h.stop, query: []string{"force"}}}},
		{template: routePause, endpoints: map[string]endpoint{
			http.MethodPost: {handle: h.pause}}},
		{template: routeResume, endpoints: map[string]endpoint{
			http.MethodPost: {handle: h.resume}}},
		{template: routeClear, endpoints: map[string]endpoint{
			http.MethodPost: {handle: h.clear}}},
		{template: routeDismissError, endpoints: map[string]endpoint{
			http.MethodPost: {handle: h.dismissError}}},
		{template: routeCheckpoint, endpoints: map[string]endpoint{
			http.MethodPost: {handle: h.checkpoint}}},
		{template: routeCheckpointStatus, endpoints: map[string]endpoint{
			http.MethodGet: {handle: h.checkpointStatus, query: []string{"incarnation_uuid"}}}},
		{template: routeStats, endpoints: map[string]endpoint{
			http.MethodGet: {handle: h.stats}}},
		{template: routeEvents, endpoints: map[string]endpoint{
			http.MethodGet: {handle: h.events, query: []string{"limit", "page_token"}}}},
		{template: routeLogs, endpoints: map[string]endpoint{http.MethodGet: {handle: h.pipelineLogs}}},
	}
	rs = append(rs, h.apiKeyRoutes()...)
	for _, r := range rs {
		r.segments = strings.Split(strings.TrimPrefix(r.template, "/"), "/")
	}
	return rs
}

// Routes lists every route template and its methods (for documentation
// checks and the local stack).
func (h *Handler) Routes() map[string][]string {
	out := map[string][]string{}
	for _, r := range h.routes {
		out[r.template] = r.methods()
	}
	return out
}

func (r *route) methods() []string {
	ms := make([]string, 0, len(r.endpoints))
	for m := range r.endpoints {
		ms = append(ms, m)
	}
	sort.Strings(ms)
	return ms
}

// match finds the route of a request and its raw {pipeline_name} segment.
func (h *Handler) match(req *Request) (*route, string, bool) {
	if req.Resource != "" {
		for _, r := range h.routes {
			if r.template == req.Resource {
				param := pathParam(r.template)
				name, has := req.PathParameters[param]
				if param != "" && !has {
					break // not the event shape we know: route on the path
				}
				return r, name, true
			}
		}
	}
	path := req.RawPath
	if path == "" {
		path = req.Path
	}
	if !strings.HasPrefix(path, "/") {
		return nil, "", false
	}
	segs := strings.Split(path[1:], "/")
	for _, r := range h.routes {
		if len(r.segments) != len(segs) {
			continue
		}
		name, ok := "", true
		for i, s := range r.segments {
			if isParam(s) {
				name = unescapeSegment(segs[i])
				continue
			}
			if s != segs[i] {
				ok = false
				break
			}
		}
		if ok {
			return r, name, true
		}
	}
	return nil, "", false
}

// isParam reports whether a template segment is a path parameter ({name}).
func isParam(seg string) bool { return strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") }

// pathParam is the name of the template's path parameter ("" when none).
func pathParam(template string) string {
	for _, s := range strings.Split(template, "/") {
		if isParam(s) {
			return s[1 : len(s)-1]
		}
	}
	return ""
}

// unescapeSegment decodes one path segment; a segment that is not valid
// percent-encoding (a decoded path holding a literal '%') is kept as is, and
// then fails name validation.
func unescapeSegment(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

// serve routes and validates a request, then runs its handler.
func (h *Handler) serve(ctx context.Context, req *Request, al *accessLog) (Response, error) {
	r, rawName, ok := h.match(req)
	if !ok {
		return Response{}, domain.NotFound(req.Method, req.Path)
	}
	al.route = r.template
	ep, ok := r.endpoints[req.Method]
	if !ok {
		return Response{}, &methodNotAllowed{err: domain.MethodNotAllowed(req.Method, r.template, r.methods()), allow: r.methods()}
	}
	c := &call{req: req, log: al}
	if !r.public {
		p, err := h.authenticate(ctx, req)
		if err != nil {
			return Response{}, err
		}
		c.principal = p
		al.principal = p.Kind + ":" + p.Subject
		required := auth.RequiredRole(req.Method)
		if ep.role != "" {
			required = ep.role
		}
		if err := auth.Authorize(p, required); err != nil {
			return Response{}, err
		}
	}
	if strings.Contains(r.template, nameParam) {
		if err := domain.ValidateName(rawName); err != nil {
			return Response{}, err
		}
		c.name = rawName
		al.pipeline = rawName
	} else if strings.Contains(r.template, keyNameParam) {
		c.keyName = rawName
	}
	if r.public {
		c.query = url.Values{}
	} else {
		q, err := h.query(req, ep.query)
		if err != nil {
			return Response{}, err
		}
		c.query = q
	}
	if req.BodyTooLarge || len(req.Body) > MaxBodyBytes {
		return Response{}, domain.PayloadTooLarge(MaxBodyBytes)
	}
	if req.BodyErr != nil {
		var de *domain.Error
		if errors.As(req.BodyErr, &de) {
			return Response{}, de
		}
		return Response{}, domain.InvalidRequestBody("", "the body could not be decoded")
	}
	if ep.body {
		if err := checkContentType(req); err != nil {
			return Response{}, err
		}
	}
	if c.name != "" {
		ctx = obs.With(ctx, obs.Pipeline(c.name))
	}
	return ep.handle(ctx, c)
}

// authenticate returns the request's principal: the one a trusted front
// verified, or the Verifier's verdict on the Authorization header.
func (h *Handler) authenticate(ctx context.Context, req *Request) (auth.Principal, error) {
	if req.Principal != nil {
		return *req.Principal, nil
	}
	if h.verifier == nil {
		obs.Logger(ctx).Error("request without a verified principal and no verifier configured (is the API Gateway authorizer attached to this route?)")
		return auth.Principal{}, domain.AuthenticationFailed("no verified credentials")
	}
	// One rule for every path (auth.AuthorizationValue): a second
	// Authorization header is refused, not ignored.
	header, err := auth.AuthorizationValue(req.Header.Values("Authorization"))
	if err != nil {
		return auth.Principal{}, err
	}
	return h.verifier.Verify(ctx, header)
}

// query parses the query strictly: only the endpoint's parameters.
func (h *Handler) query(req *Request, allowed []string) (url.Values, error) {
	q := url.Values(req.Query)
	if q == nil {
		var err error
		q, err = url.ParseQuery(req.RawQuery)
		if err != nil {
			return nil, domain.InvalidQueryParameter("query", req.RawQuery, "a valid URL query string")
		}
	}
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !slices.Contains(allowed, k) {
			expected := "no query parameters on this endpoint"
			if len(allowed) > 0 {
				expected = "only the parameters " + strings.Join(allowed, ", ")
			}
			return nil, &domain.Error{Code: domain.CodeInvalidQueryParameter,
				Message: fmt.Sprintf("Unknown query parameter '%s': this endpoint accepts %s.", truncate(k, 100), expected),
				Details: domain.ParameterDetails{Parameter: truncate(k, 100), Value: truncate(strings.Join(q[k], ","), 100), Expected: expected}}
		}
	}
	return q, nil
}

// checkContentType requires application/json (charset utf-8 or none) for a
// non-empty body.
func checkContentType(req *Request) error {
	if len(req.Body) == 0 {
		return nil // answered by the body decoder (the body is required)
	}
	ct := req.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return domain.UnsupportedMediaType(ct)
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return domain.UnsupportedMediaType(ct)
		}
	}
	return nil
}

// methodNotAllowed is a 405 with its Allow header.
type methodNotAllowed struct {
	err   *domain.Error
	allow []string
}

func (e *methodNotAllowed) Error() string { return e.err.Error() }
func (e *methodNotAllowed) Unwrap() error { return e.err }
