package httpapi

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
)

// requestIDPattern is what ServeHTTP accepts as a caller's X-Request-Id (a
// trusted proxy's); anything else is replaced by a fresh id.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// ServeHTTP adapts net/http: the local stack's API server and the tests. It
// brings no principal, so Handle verifies the Authorization header with the
// configured Verifier and enforces the role rule, exactly as the API Gateway
// authorizer and LambdaHandler do in the deployed path.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := Request{
		Method:    r.Method,
		Path:      r.URL.Path,
		RawPath:   r.URL.EscapedPath(),
		RawQuery:  r.URL.RawQuery,
		Header:    r.Header,
		RequestID: r.Header.Get(RequestIDHeader),
		CanStream: true,
	}
	if !requestIDPattern.MatchString(req.RequestID) {
		req.RequestID = ""
	}
	if r.ContentLength > MaxBodyBytes {
		req.BodyTooLarge = true
	} else if r.Body != nil {
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
		switch {
		case err != nil:
			req.BodyErr = err
		case len(body) > MaxBodyBytes:
			req.BodyTooLarge = true
		default:
			req.Body = body
		}
	}
	resp := h.Handle(r.Context(), req)
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if req.BodyTooLarge {
		// The rest of the body is not read: do not keep the connection.
		w.Header().Set("Connection", "close")
	}
	if resp.Stream != nil {
		streamBody(w, resp)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(resp.Body)))
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.Body)
}

// streamBody sends Body, then Stream as it is read, flushing each chunk, until
// Stream ends or fails or the client goes away (a failed write); then closes
// Stream.
func streamBody(w http.ResponseWriter, resp Response) {
	defer resp.Stream.Close()
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(resp.Status)
	rc := http.NewResponseController(w)
	if _, err := w.Write(resp.Body); err != nil {
		return
	}
	_ = rc.Flush()
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Stream.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			_ = rc.Flush()
		}
		if err != nil {
			return
		}
	}
}
