package runtimeclient

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxErrorMessageBytes bounds the message kept from a non-JSON error body.
const MaxErrorMessageBytes = 4 << 10

// ErrTimeout is the cause of a TemporaryError raised because the per-call timeout
// expired. It deliberately does not wrap context.DeadlineExceeded, so that a caller
// testing errors.Is(err, context.DeadlineExceeded) only matches its own deadline.
var ErrTimeout = errors.New("runtime call timed out")

// ErrorBody is a runtime's error answer in Feldera's shape
// {"message", "error_code", "details"}. For a body that is not such JSON, Message
// holds the raw text (truncated to MaxErrorMessageBytes) and ErrorCode is empty.
type ErrorBody struct {
	Message   string          `json:"message"`
	ErrorCode string          `json:"error_code,omitempty"`
	Details   json.RawMessage `json:"details,omitempty"`
}

// TemporaryError reports that the runtime is temporarily unable to answer: the
// connection was refused or reset, the name did not resolve, the per-call timeout
// expired, or the runtime (or a proxy in front of it) answered 502, 503, 504 or 429.
// Callers retry with backoff.
type TemporaryError struct {
	// Op is the runtime call, e.g. "status" or "suspend".
	Op string
	// StatusCode is the HTTP status, 0 when no response was received.
	StatusCode int
	// Cause is the transport error, or an error describing the HTTP answer.
	Cause error
	// RetryAfter is the delay the runtime asked for in its Retry-After header
	// (0 when absent or unparsable).
	RetryAfter time.Duration
	// Body is the error body of an HTTP answer, when there was one.
	Body ErrorBody
}

func (e *TemporaryError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "runtime %s: temporarily unavailable", e.Op)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.StatusCode)
		if e.Body.Message != "" {
			fmt.Fprintf(&b, ": %s", e.Body.Message)
		}
	} else if e.Cause != nil {
		fmt.Fprintf(&b, ": %v", e.Cause)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

func (e *TemporaryError) Unwrap() error { return e.Cause }

// FatalError reports an answer that retrying will not change: any non-2xx status
// other than the temporary ones, a 2xx answer whose body is not what the protocol
// says (StatusCode is then the 2xx code and ErrorCode is "InvalidRuntimeResponse"),
// or a TLS certificate failure (StatusCode 0).
type FatalError struct {
	Op         string
	StatusCode int
	Body       ErrorBody
}

func (e *FatalError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "runtime %s: ", e.Op)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
	} else {
		b.WriteString("failed")
	}
	if e.Body.ErrorCode != "" {
		fmt.Fprintf(&b, " %s", e.Body.ErrorCode)
	}
	if e.Body.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Body.Message)
	}
	return b.String()
}

// IsTemporary reports whether err (or an error it wraps) is a *TemporaryError.
func IsTemporary(err error) bool {
	var t *TemporaryError
	return errors.As(err, &t)
}

// IsFatal reports whether err (or an error it wraps) is a *FatalError.
func IsFatal(err error) bool {
	var f *FatalError
	return errors.As(err, &f)
}

// RetryAfter returns the delay a temporary error asked for, 0 otherwise.
func RetryAfter(err error) time.Duration {
	var t *TemporaryError
	if errors.As(err, &t) {
		return t.RetryAfter
	}
	return 0
}

// temporaryStatus lists the HTTP answers that mean "try again later".
func temporaryStatus(code int) bool {
	switch code {
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout, http.StatusTooManyRequests:
		return true
	}
	return false
}

// parseErrorBody turns an error answer into an ErrorBody: Feldera's JSON shape when
// it is one, the raw (truncated) text otherwise.
func parseErrorBody(body []byte) ErrorBody {
	var eb ErrorBody
	if err := json.Unmarshal(body, &eb); err == nil && (eb.Message != "" || eb.ErrorCode != "") {
		if string(eb.Details) == "null" {
			eb.Details = nil
		}
		return eb
	}
	return ErrorBody{Message: truncateText(strings.TrimSpace(string(body)), MaxErrorMessageBytes)}
}

// truncateText cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncateText(s string, n int) string {
	if len(s) <= n {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.ToValidUTF8(s[:cut], "\uFFFD")
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(24*time.Hour/time.Second) {
			secs = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// permanentTransportError reports transport failures that retrying cannot fix:
// TLS certificate problems.
func permanentTransportError(err error) bool {
	var (
		verr  *tls.CertificateVerificationError
		uaerr x509.UnknownAuthorityError
		herr  x509.HostnameError
		cierr x509.CertificateInvalidError
	)
	return errors.As(err, &verr) || errors.As(err, &uaerr) || errors.As(err, &herr) || errors.As(err, &cierr)
}
