package sampleruntime

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Handler serves the runtime protocol (SPEC §7).
func (r *Runtime) Handler() http.Handler {
	type route struct {
		methods []string
		h       func(http.ResponseWriter, *http.Request)
	}
	routes := map[string]route{
		"/status":            {[]string{http.MethodGet}, r.handleStatus},
		"/suspend":           {[]string{http.MethodPost}, r.handleSuspend},
		"/checkpoint":        {[]string{http.MethodPost}, r.handleCheckpoint},
		"/checkpoint_status": {[]string{http.MethodGet}, r.handleCheckpointStatus},
		"/pause":             {[]string{http.MethodGet, http.MethodPost}, r.handlePause},
		"/start":             {[]string{http.MethodGet, http.MethodPost}, r.handleStart},
		"/stats":             {[]string{http.MethodGet}, r.handleStats},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.isDead() {
			// A crashed process answers nothing: drop the connection.
			panic(http.ErrAbortHandler)
		}
		if left := r.unavailableFor(time.Now()); left > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(left.Seconds()))))
			writeError(w, newAPIError(http.StatusServiceUnavailable, "PipelineUnavailable",
				"the pipeline runtime is temporarily unavailable (unavailable_secs fault)", nil))
			return
		}
		rt, ok := routes[req.URL.Path]
		if !ok {
			writeError(w, newAPIError(http.StatusNotFound, "UnknownEndpoint",
				fmt.Sprintf("unknown endpoint %s", req.URL.Path), map[string]any{"path": req.URL.Path}))
			return
		}
		allowed := false
		for _, m := range rt.methods {
			allowed = allowed || req.Method == m || (req.Method == http.MethodHead && m == http.MethodGet)
		}
		if !allowed {
			w.Header().Set("Allow", strings.Join(rt.methods, ", "))
			writeError(w, newAPIError(http.StatusMethodNotAllowed, "MethodNotAllowed",
				fmt.Sprintf("%s %s is not supported", req.Method, req.URL.Path),
				map[string]any{"method": req.Method, "allowed": rt.methods}))
			return
		}
		rt.h(w, req)
	})
}

type statusBody struct {
	RuntimeStatus        string         `json:"runtime_status"`
	RuntimeDesiredStatus string         `json:"runtime_desired_status"`
	StorageStatusDetails storageDetails `json:"storage_status_details"`
}

type storageDetails struct {
	Checkpoints []CheckpointMeta `json:"checkpoints"`
}

func (r *Runtime) handleStatus(w http.ResponseWriter, _ *http.Request) {
	r.mu.Lock()
	if err := r.failedErrorLocked(); err != nil {
		r.mu.Unlock()
		writeError(w, err)
		return
	}
	st, desired := r.status, r.desired
	r.mu.Unlock()
	writeJSON(w, http.StatusOK, statusBody{
		RuntimeStatus:        st,
		RuntimeDesiredStatus: desired,
		StorageStatusDetails: storageDetails{Checkpoints: r.Checkpoints()},
	})
}

func (r *Runtime) handleSuspend(w http.ResponseWriter, _ *http.Request) {
	if err := r.Suspend(); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, "Pipeline is suspending: a final checkpoint is written, then it stops")
}

func (r *Runtime) handleCheckpoint(w http.ResponseWriter, _ *http.Request) {
	seq, err := r.RequestCheckpoint()
	if r.isDead() {
		panic(http.ErrAbortHandler)
	}
	if err != nil {
		if ae, ok := err.(*APIError); ok && ae.StatusCode == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"checkpoint_sequence_number": seq, "incarnation_uuid": r.incarnation})
}

func (r *Runtime) handleCheckpointStatus(w http.ResponseWriter, _ *http.Request) {
	success, failure := r.CheckpointStatus()
	writeJSON(w, http.StatusOK, map[string]any{"success": success, "failure": failure})
}

func (r *Runtime) handlePause(w http.ResponseWriter, _ *http.Request) {
	if err := r.Pause(); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, "Pipeline is pausing")
}

func (r *Runtime) handleStart(w http.ResponseWriter, _ *http.Request) {
	if err := r.Resume(); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, "Pipeline is running")
}

func (r *Runtime) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, r.Snapshot())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(ErrorBody{Message: "encoding the answer: " + err.Error(), ErrorCode: "InternalError", Details: map[string]any{}})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, err error) {
	var ae *APIError
	if !errors.As(err, &ae) {
		ae = newAPIError(http.StatusInternalServerError, "InternalError", err.Error(), nil)
	}
	writeJSON(w, ae.StatusCode, ae.Body)
}
