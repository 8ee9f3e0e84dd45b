package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/obs"
	"github.com/sluicehq/sluice/internal/runtimeclient"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/workflow"
)

// runtimeError is a failed call to a pipeline's runtime (a forwarded action).
type runtimeError struct {
	pipeline string
	err      error
}

func (e *runtimeError) Error() string { return "pipeline " + e.pipeline + ": " + e.err.Error() }
func (e *runtimeError) Unwrap() error { return e.err }

// errorResponse is the one place where errors become responses:
//
//   - *domain.Error: its status and body (405 adds Allow, 401 adds
//     WWW-Authenticate, 503 adds Retry-After);
//   - a runtime's temporary failure: 503 PipelineUnavailable (the runtime
//     answered 502/503/504/429) or PipelineInteractionUnreachable (no
//     answer, or the call timed out), Retry-After from the runtime or the
//     default;
//   - a runtime's fatal answer in the error shape: its status and body,
//     passed through; any other fatal answer: 500 InternalError;
//   - store.ErrUnavailable, workflow.ErrUnavailable, a deadline: 503
//     ServiceUnavailable;
//   - anything else (domain.ErrInconsistentRecord included): 500
//     InternalError, whose body repeats the request id the log line carries.
//
// Internals never reach a message: only catalogue messages do.
func (h *Handler) errorResponse(ctx context.Context, requestID string, al *accessLog, err error) Response {
	header := http.Header{}
	var (
		de  *domain.Error
		mna *methodNotAllowed
		rte *runtimeError
	)
	switch {
	case errors.As(err, &mna):
		header.Set("Allow", strings.Join(mna.allow, ", "))
		de = mna.err
	case errors.As(err, &rte):
		var resp *Response
		de, resp = h.runtimeFailure(ctx, rte, header)
		if resp != nil {
			al.errorCode = "runtime:" + strconv.Itoa(resp.Status)
			return *resp
		}
	case errors.As(err, &de):
	case errors.Is(err, store.ErrUnavailable):
		obs.Logger(ctx).Warn("state store unavailable", obs.Err(err))
		de = domain.ServiceUnavailable("state store")
	case errors.Is(err, workflow.ErrUnavailable):
		obs.Logger(ctx).Warn("workflow service unavailable", obs.Err(err))
		de = domain.ServiceUnavailable("workflow service")
	case errors.Is(err, context.DeadlineExceeded):
		obs.Logger(ctx).Warn("request deadline exceeded", obs.Err(err))
		de = domain.ServiceUnavailable("control plane")
	default:
		obs.Logger(ctx).Error("internal error", obs.Err(err))
		de = domain.InternalError(requestID)
	}
	status := de.HTTPStatus()
	switch status {
	case http.StatusServiceUnavailable:
		if header.Get("Retry-After") == "" {
			header.Set("Retry-After", strconv.Itoa(domain.DefaultRetryAfterSeconds))
		}
	case http.StatusUnauthorized:
		header.Set("WWW-Authenticate", `Bearer realm="sluice"`)
	}
	al.errorCode = string(de.Code)
	return errorBody(status, header, de)
}

// runtimeFailure maps a failed forwarded call. It returns either a catalogue
// error or a pass-through response.
func (h *Handler) runtimeFailure(ctx context.Context, e *runtimeError, header http.Header) (*domain.Error, *Response) {
	log := obs.Logger(ctx)
	var (
		tmp   *runtimeclient.TemporaryError
		fatal *runtimeclient.FatalError
	)
	switch {
	case errors.As(e.err, &tmp):
		header.Set("Retry-After", strconv.Itoa(retryAfterSeconds(tmp.RetryAfter)))
		log.Warn("runtime temporarily unavailable", obs.Err(e.err))
		if tmp.StatusCode == 0 {
			return domain.PipelineInteractionUnreachable(e.pipeline, "the pipeline runtime did not answer in time"), nil
		}
		return domain.PipelineUnavailable(e.pipeline, "the pipeline runtime answered HTTP "+strconv.Itoa(tmp.StatusCode)), nil
	case errors.As(e.err, &fatal):
		log.Warn("runtime refused a forwarded action", obs.Err(e.err))
		if fatal.StatusCode >= 400 && fatal.StatusCode <= 599 && fatal.Body.ErrorCode != "" && fatal.Body.Message != "" {
			details := json.RawMessage(`{}`)
			if d := bytes.TrimSpace(fatal.Body.Details); len(d) > 0 && d[0] == '{' && json.Valid(d) {
				details = d
			}
			b, err := json.Marshal(struct {
				Message   string          `json:"message"`
				ErrorCode string          `json:"error_code"`
				Details   json.RawMessage `json:"details"`
			}{fatal.Body.Message, fatal.Body.ErrorCode, details})
			if err == nil {
				header.Set("Content-Type", "application/json")
				if fatal.StatusCode == http.StatusServiceUnavailable {
					header.Set("Retry-After", strconv.Itoa(domain.DefaultRetryAfterSeconds))
				}
				return nil, &Response{Status: fatal.StatusCode, Header: header, Body: b}
			}
		}
		return domain.InternalError(requestIDOf(ctx)), nil
	case errors.Is(e.err, context.DeadlineExceeded) || errors.Is(e.err, context.Canceled):
		header.Set("Retry-After", strconv.Itoa(domain.DefaultRetryAfterSeconds))
		log.Warn("runtime call abandoned", obs.Err(e.err))
		return domain.PipelineInteractionUnreachable(e.pipeline, "the request ended before the pipeline runtime answered"), nil
	}
	log.Error("runtime call failed", obs.Err(e.err))
	return domain.InternalError(requestIDOf(ctx)), nil
}

func retryAfterSeconds(d time.Duration) int {
	if d <= 0 {
		return domain.DefaultRetryAfterSeconds
	}
	s := int(math.Ceil(d.Seconds()))
	return max(1, min(s, 3600))
}

// errorBody renders a catalogue error; details are never null.
func errorBody(status int, header http.Header, de *domain.Error) Response {
	e := *de
	if e.Details == nil {
		e.Details = struct{}{}
	}
	b, err := json.Marshal(&e)
	if err != nil {
		b = []byte(`{"message":"Internal error.","error_code":"InternalError","details":{}}`)
		status = http.StatusInternalServerError
	}
	header.Set("Content-Type", "application/json")
	return Response{Status: status, Header: header, Body: b}
}

type requestIDKey struct{}

func withRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

func requestIDOf(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
