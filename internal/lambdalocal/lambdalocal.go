// Package lambdalocal serves the AWS Lambda Invoke API
// (POST /2015-03-31/functions/{FunctionName}/invocations) on this machine for
// Go handlers registered in-process, so that the local Step Functions engine
// (infra/local-sfn), the AWS SDKs and the AWS CLI can invoke the same handlers
// that run as Lambdas in AWS.
//
// Invocations run through aws-lambda-go's own invocation code, so the event
// decoding, the lambdacontext, and above all the function error shape
// ({"errorMessage": ..., "errorType": <Go type name of the error>}) are the ones
// the Lambda service reports for a Go function; Step Functions Retry/Catch
// route on that errorType.
//
// The optimized Step Functions integration (Resource
// "arn:aws:states:::lambda:invoke") is unwrapped here: the local engine calls
// Invoke with that ARN as the function name and the Task's Parameters
// ({"FunctionName": ..., "Payload": ...}) as the body; the server invokes the
// named function with the Payload and answers with the integration's result
// shape ({"ExecutedVersion", "Payload", "SdkHttpMetadata",
// "SdkResponseMetadata", "StatusCode"}), so "OutputPath": "$.Payload" works as
// in AWS.
//
// Like the Lambda service, the endpoint serves only authenticated callers:
// every Invoke request must carry an AWS Signature Version 4 made with the
// Server's credentials (random per Server, see Credentials and sigv4.go),
// else 403 (MissingAuthenticationTokenException, UnrecognizedClientException,
// InvalidSignatureException, IncompleteSignatureException) and no function
// runs.
package lambdalocal

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/uuid"
)

// Defaults used when the Server fields are left zero.
const (
	DefaultTimeout = 60 * time.Second
	DefaultRegion  = "us-east-1"
	DefaultAccount = "123456789012"

	// OptimizedInvokeResource is the Step Functions optimized Lambda
	// integration's Resource, which the local engine sends as FunctionName.
	OptimizedInvokeResource = "arn:aws:states:::lambda:invoke"

	// maxPayload and maxEventPayload: "The maximum payload size is 6 MB for
	// synchronous invocations and 1 MB for asynchronous invocations."
	// (Invoke's Payload, API_Invoke; the aws-sdk-go-v2 lambda model
	// v1.116.0 states the same). Larger: RequestTooLargeException, 413
	// ("The request payload exceeded the Invoke request body JSON input
	// quota", API_Invoke Errors).
	maxPayload      = 6 << 20
	maxEventPayload = 1 << 20
	// maxFunctionName, maxNameOnly, maxQualifier: FunctionName "Length: 1 -
	// 170", "If you specify only the function name, it is limited to 64
	// characters in length"; Qualifier "Length: 1 - 128" (API_Invoke; the
	// model's constraints as the AWS SDK for Android 2.16.13 lists them).
	maxFunctionName = 170
	maxNameOnly     = 64
	maxQualifier    = 128
	// maxClientContext: "Up to 3,583 bytes of base64-encoded data about the
	// invoking client" (API_Invoke, ClientContext).
	maxClientContext = 3583
)

type invoker func(req *messages.InvokeRequest) *messages.InvokeResponse

type function struct {
	name    string
	timeout time.Duration
	invoke  invoker
}

// FunctionOption configures one registered function.
type FunctionOption func(*function)

// WithTimeout sets the function's timeout (Lambda's Timeout setting): the
// handler's context deadline, after which the invocation fails with
// errorType "Sandbox.Timedout" as in AWS. Zero or negative keeps the
// Server's default.
func WithTimeout(d time.Duration) FunctionOption {
	return func(f *function) {
		if d > 0 {
			f.timeout = d
		}
	}
}

// Server is the local Lambda Invoke endpoint. It is an http.Handler; the zero
// value is not usable, call NewServer.
type Server struct {
	// Region and Account build the ARN reported to handlers as
	// InvokedFunctionArn when a function is invoked by bare name.
	Region, Account string
	// Timeout is the default function timeout (DefaultTimeout when zero).
	Timeout time.Duration
	// Logger, when set, gets one record per invocation.
	Logger *slog.Logger

	mux   *http.ServeMux
	mu    sync.RWMutex
	funcs map[string]*function
	creds aws.Credentials
	async sync.WaitGroup // asynchronous (Event) invocations still running
}

// WaitAsync waits until the asynchronous (Event) invocations accepted so far
// have ended, or ctx ends (its error): a stack that stops waits for the
// work it queued instead of cutting it off half-way.
func (s *Server) WaitAsync(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.async.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// NewServer returns a Server with no functions registered, and fresh random
// credentials (Credentials) that every Invoke request must be signed with.
func NewServer() *Server {
	s := &Server{funcs: map[string]*function{}, mux: http.NewServeMux(), creds: NewCredentials()}
	s.mux.HandleFunc("POST /2015-03-31/functions/{name}/invocations", s.handleInvoke)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	})
	return s
}

// Register makes h invocable as name (a bare function name, or an ARN, which
// is reduced to its name). Registering a name again replaces the handler. It
// panics on a name Lambda would not accept.
func (s *Server) Register(name string, h Handler, opts ...FunctionOption) {
	n, ok := ResolveFunctionName(name)
	if !ok || h == nil {
		panic(fmt.Sprintf("lambdalocal: Register(%q): invalid function name or nil handler", name))
	}
	name = n
	f := &function{name: name, invoke: newInvoker(h)}
	for _, o := range opts {
		o(f)
	}
	s.mu.Lock()
	s.funcs[name] = f
	s.mu.Unlock()
}

// Functions lists the registered function names, sorted.
func (s *Server) Functions() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.funcs))
	for n := range s.funcs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ProfileLabel is the pprof label whose value names the part of a local
// stack a goroutine works for ("lambda:<function>" for an invocation), so a
// CPU profile of the one process that runs them all (the bench's) can say
// which part used the CPU.
const ProfileLabel = "part"

// ProfileInvocationPrefix starts the ProfileLabel value of an invocation's
// goroutines: ProfileInvocationPrefix + the function's name.
const ProfileInvocationPrefix = "lambda:"

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// Start serves the endpoint on addr ("127.0.0.1:0" picks a free port) in a
// goroutine. It returns the endpoint URL (for AWS_ENDPOINT_URL_LAMBDA) and a
// shutdown function.
func (s *Server) Start(addr string) (endpoint string, shutdown func(context.Context) error, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("lambdalocal: listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), srv.Shutdown, nil
}

// ResolveFunctionName reduces what the Invoke API accepts as FunctionName to
// the function's name: "NAME", "NAME:QUALIFIER",
// "ACCOUNT:function:NAME[:QUALIFIER]" or
// "arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]" (any partition).
// It reports false for anything else, including the Step Functions
// integration ARN, and for a name longer than 64 characters.
//
// The forms are Invoke's "Name formats" and its FunctionName pattern
// (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?
// (API_Invoke); see functionNamePattern.
func ResolveFunctionName(s string) (string, bool) {
	if s == "" || len(s) > maxFunctionName || !functionNamePattern.MatchString(s) {
		return "", false
	}
	parts := strings.Split(s, ":")
	switch {
	case len(parts) >= 7 && parts[0] == "arn" && parts[2] == "lambda" && parts[5] == "function":
		if len(parts) > 8 {
			return "", false
		}
		parts = parts[6:]
	case len(parts) >= 3 && parts[1] == "function":
		if len(parts) > 4 {
			return "", false
		}
		parts = parts[2:]
	case parts[0] == "arn":
		return "", false
	case len(parts) > 2:
		return "", false
	}
	name := parts[0]
	if name == "" || len(name) > maxNameOnly {
		return "", false
	}
	return name, true
}

// functionNamePattern is Invoke's FunctionName pattern (API_Invoke), whole.
var functionNamePattern = regexp.MustCompile(`^(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?$`)

// qualifierPattern is Invoke's Qualifier pattern, (|[a-zA-Z0-9$_-]+) (API_Invoke).
var qualifierPattern = regexp.MustCompile(`^[a-zA-Z0-9$_-]*$`)

// Invoke calls a registered function directly (no HTTP), with the same
// semantics as the endpoint. A function error is reported in the result, not
// as err; err is for an unknown function.
func (s *Server) Invoke(functionName string, payload []byte) (*InvokeResult, error) {
	name, ok := ResolveFunctionName(functionName)
	if !ok {
		return nil, &NotFoundError{FunctionName: functionName}
	}
	s.mu.RLock()
	f := s.funcs[name]
	s.mu.RUnlock()
	if f == nil {
		return nil, &NotFoundError{FunctionName: s.arn(name)}
	}
	arn := functionName
	if !strings.HasPrefix(arn, "arn:") {
		arn = s.arn(name)
	}
	return s.run(f, arn, payload), nil
}

// InvokeResult is one invocation's outcome.
type InvokeResult struct {
	RequestID string
	// Payload is the function's JSON result, or the JSON error document
	// ({"errorMessage", "errorType"[, "stackTrace"]}) when FunctionError is set.
	Payload json.RawMessage
	// FunctionError is "Unhandled" for a function error, "" on success.
	FunctionError string
	// ErrorType is the error document's errorType ("" on success).
	ErrorType string
}

// NotFoundError is returned for an unknown function (HTTP 404
// ResourceNotFoundException on the endpoint).
type NotFoundError struct{ FunctionName string }

func (e *NotFoundError) Error() string { return "Function not found: " + e.FunctionName }

func (s *Server) arn(name string) string {
	region, account := s.Region, s.Account
	if region == "" {
		region = DefaultRegion
	}
	if account == "" {
		account = DefaultAccount
	}
	return "arn:aws:lambda:" + region + ":" + account + ":function:" + name
}

// run invokes f, enforcing its timeout the way Lambda does: the handler's
// context carries the deadline, and an invocation still running at the
// deadline fails with Sandbox.Timedout (the handler goroutine is left to
// finish on its own, as a frozen sandbox would be discarded).
func (s *Server) run(f *function, invokedArn string, payload []byte) *InvokeResult {
	timeout := f.timeout
	if timeout <= 0 {
		timeout = s.Timeout
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if len(bytes.TrimSpace(payload)) == 0 {
		payload = []byte("{}")
	}
	reqID := uuid.NewString()
	deadline := time.Now().Add(timeout)
	req := &messages.InvokeRequest{
		Payload:            payload,
		RequestId:          reqID,
		XAmznTraceId:       traceID(),
		Deadline:           messages.InvokeRequest_Timestamp{Seconds: deadline.Unix(), Nanos: int64(deadline.Nanosecond())},
		InvokedFunctionArn: invokedArn,
	}
	start := time.Now()
	done := make(chan *messages.InvokeResponse, 1)
	go pprof.Do(context.Background(), pprof.Labels(ProfileLabel, ProfileInvocationPrefix+f.name), func(context.Context) { done <- f.invoke(req) })
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var resp *messages.InvokeResponse
	select {
	case resp = <-done:
	case <-timer.C:
		resp = &messages.InvokeResponse{Error: &messages.InvokeResponse_Error{
			Type:    "Sandbox.Timedout",
			Message: fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", reqID, timeout.Seconds()),
		}}
	}
	res := &InvokeResult{RequestID: reqID}
	if resp.Error != nil {
		res.FunctionError = "Unhandled"
		res.ErrorType = resp.Error.Type
		b, err := json.Marshal(resp.Error)
		if err != nil {
			b = []byte(`{"errorMessage":"cannot encode the function error","errorType":"Runtime.MarshalError"}`)
		}
		res.Payload = b
	} else {
		res.Payload = resp.Payload
		if len(res.Payload) == 0 {
			res.Payload = json.RawMessage("null")
		}
	}
	if s.Logger != nil {
		attrs := []any{"function", f.name, "request_id", reqID, "duration_ms", time.Since(start).Milliseconds()}
		if res.FunctionError != "" {
			attrs = append(attrs, "error_type", res.ErrorType)
		}
		s.Logger.Info("lambda invoke", attrs...)
	}
	return res
}

func traceID() string {
	u := strings.ReplaceAll(uuid.NewString(), "-", "")
	return fmt.Sprintf("Root=1-%08x-%s;Sampled=0", time.Now().Unix(), u[:24])
}

// optimizedRequest is the Parameters object of an
// "arn:aws:states:::lambda:invoke" Task: the Lambda Invoke request in the
// Step Functions integration's field names.
type optimizedRequest struct {
	FunctionName   string          `json:"FunctionName"`
	Payload        json.RawMessage `json:"Payload"`
	InvocationType string          `json:"InvocationType"`
	Qualifier      string          `json:"Qualifier"`
	ClientContext  string          `json:"ClientContext"`
	LogType        string          `json:"LogType"`
}

// handleInvoke serves Invoke as the Lambda API reference documents it
// (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html), for the
// SDK's request (FunctionName in the path; X-Amz-Invocation-Type,
// X-Amz-Log-Type, X-Amz-Client-Context headers; Qualifier query parameter)
// and for the Step Functions optimized integration's Parameters. Each check
// cites its rule; validation errors come before the function is looked up.
func (s *Server) handleInvoke(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPayload+1))
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, "InvalidRequestContentException", "could not read the request body: "+err.Error())
		return
	}
	if len(body) > maxPayload {
		writeAPIError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException", "Request must be smaller than 6291456 bytes for the InvokeFunction operation")
		return
	}
	// Authentication before anything else (sigv4.go): only a caller holding
	// the Server's credentials gets further, whatever the payload claims.
	region := s.Region
	if region == "" {
		region = DefaultRegion
	}
	if serr := verifySignature(r, body, s.Credentials(), region, time.Now()); serr != nil {
		if s.Logger != nil {
			s.Logger.Warn("lambda invoke refused", "error_type", serr.errType, "reason", serr.msg, "remote", r.RemoteAddr)
		}
		writeAPIError(w, serr.status, serr.errType, serr.msg)
		return
	}
	invocationType := r.Header.Get("X-Amz-Invocation-Type")
	logType := r.Header.Get("X-Amz-Log-Type")
	clientContext := r.Header.Get("X-Amz-Client-Context")
	qualifier, hasQualifier := r.URL.Query().Get("Qualifier"), r.URL.Query().Has("Qualifier")
	optimized := name == OptimizedInvokeResource
	if optimized {
		var req optimizedRequest
		if err := json.Unmarshal(body, &req); err != nil || req.FunctionName == "" {
			writeAPIError(w, http.StatusBadRequest, "InvalidParameterValueException",
				"the "+OptimizedInvokeResource+" integration needs Parameters with a FunctionName (and usually \"Payload.$\": \"$\")")
			return
		}
		name = req.FunctionName
		body = req.Payload
		if req.InvocationType != "" {
			invocationType = req.InvocationType
		}
		if req.LogType != "" {
			logType = req.LogType
		}
		if req.ClientContext != "" {
			clientContext = req.ClientContext
		}
		if req.Qualifier != "" {
			qualifier, hasQualifier = req.Qualifier, true
		}
	} else if strings.HasPrefix(name, "arn:aws:states:::") {
		writeAPIError(w, http.StatusBadRequest, "InvalidParameterValueException",
			"the local Lambda endpoint only unwraps "+OptimizedInvokeResource+", not "+name)
		return
	}

	// FunctionName: 1..170 characters and Invoke's pattern, else
	// ValidationException (AWS's request validator; its answer to a
	// constraint violation is "x-amzn-ErrorType: ValidationException", HTTP
	// 400, "1 validation error detected: Value ... failed to satisfy
	// constraint: ...", as observed for InvocationType in ex-aws/ex_aws#442).
	if n := utf8.RuneCountInString(name); n < 1 || n > maxFunctionName {
		writeValidation(w, name, "functionName", fmt.Sprintf("Member must have length less than or equal to %d", maxFunctionName))
		return
	}
	if !functionNamePattern.MatchString(name) {
		writeValidation(w, name, "functionName", "Member must satisfy regular expression pattern: "+functionNamePattern.String())
		return
	}
	// Qualifier: 1..128 characters of [a-zA-Z0-9$_-].
	if hasQualifier {
		if n := utf8.RuneCountInString(qualifier); n < 1 || n > maxQualifier {
			writeValidation(w, qualifier, "qualifier", fmt.Sprintf("Member must have length between 1 and %d", maxQualifier))
			return
		}
		if !qualifierPattern.MatchString(qualifier) {
			writeValidation(w, qualifier, "qualifier", "Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)")
			return
		}
	}
	// InvocationType: "Valid Values: Event | RequestResponse | DryRun".
	switch invocationType {
	case "", "RequestResponse", "Event", "DryRun":
	default:
		writeValidation(w, invocationType, "invocationType", "Member must satisfy enum value set: [DryRun, RequestResponse, Event]")
		return
	}
	// LogType: "Valid Values: None | Tail".
	switch logType {
	case "", "None", "Tail":
	default:
		writeValidation(w, logType, "logType", "Member must satisfy enum value set: [None, Tail]")
		return
	}
	// ClientContext: up to 3583 bytes of base64 data; "InvalidRequestContentException:
	// The request body could not be parsed as JSON, or a request header is
	// invalid." (HTTP 400, API_Invoke Errors)
	if clientContext != "" {
		if _, err := base64.StdEncoding.DecodeString(clientContext); err != nil || len(clientContext) > maxClientContext {
			writeAPIError(w, http.StatusBadRequest, "InvalidRequestContentException", "Client context must be a valid Base64-encoded JSON object of at most 3583 bytes")
			return
		}
	}
	// Payload: JSON ("The JSON that you want to provide to your Lambda
	// function as input"), else InvalidRequestContentException ("The request
	// body could not be parsed as JSON"); an empty payload is "{}".
	if len(bytes.TrimSpace(body)) > 0 && !json.Valid(body) {
		writeAPIError(w, http.StatusBadRequest, "InvalidRequestContentException", "Could not parse request body into json: the payload is not valid JSON")
		return
	}
	// An asynchronous invocation's payload: at most 1 MB (maxEventPayload).
	if invocationType == "Event" && len(body) > maxEventPayload {
		writeAPIError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException", "Request must be smaller than 1048576 bytes for the InvokeFunction operation with InvocationType Event")
		return
	}
	if optimized && len(body) > maxPayload {
		writeAPIError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException", "Request must be smaller than 6291456 bytes for the InvokeFunction operation")
		return
	}

	// An unknown function, or a name no function can have (longer than 64
	// characters): "ResourceNotFoundException: The resource specified in the
	// request does not exist." (HTTP 404, API_Invoke Errors)
	fname, ok := ResolveFunctionName(name)
	var f *function
	if ok {
		s.mu.RLock()
		f = s.funcs[fname]
		s.mu.RUnlock()
	}
	if f == nil {
		shown := name
		if ok {
			shown = s.arn(fname)
		}
		writeAPIError(w, http.StatusNotFound, "ResourceNotFoundException", "Function not found: "+shown)
		return
	}
	// The ARN the function sees as InvokedFunctionArn: the full ARN (in this
	// server's region and account for a name or partial ARN), with the
	// qualifier the request gave.
	tail := name
	if i := strings.Index(tail, "function:"); i >= 0 {
		tail = tail[i+len("function:"):]
	}
	invokedArn := name
	if !strings.HasPrefix(name, "arn:") {
		invokedArn = s.arn(tail)
	}
	if hasQualifier && !strings.Contains(tail, ":") {
		invokedArn += ":" + qualifier
	}

	switch invocationType {
	case "Event":
		s.async.Add(1)
		go func() { defer s.async.Done(); s.run(f, invokedArn, body) }()
		if optimized {
			writeOptimized(w, uuid.NewString(), http.StatusAccepted, json.RawMessage(`""`))
			return
		}
		w.Header().Set("x-amzn-RequestId", uuid.NewString())
		w.WriteHeader(http.StatusAccepted)
		return
	case "DryRun":
		w.WriteHeader(http.StatusNoContent)
		return
	}

	res := s.run(f, invokedArn, body)
	if res.FunctionError == "" && optimized {
		writeOptimized(w, res.RequestID, http.StatusOK, res.Payload)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amz-Executed-Version", "$LATEST")
	h.Set("x-amzn-RequestId", res.RequestID)
	// "FunctionError: If present, indicates that an error occurred during
	// function execution. Details about the error are included in the
	// response payload." (API_Invoke, X-Amz-Function-Error); the payload is
	// the runtime's {"errorMessage", "errorType"} document, HTTP 200.
	if res.FunctionError != "" {
		h.Set("X-Amz-Function-Error", res.FunctionError)
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(res.Payload)
}

// writeOptimized answers in the shape Step Functions gives the result of the
// optimized Lambda integration. The function's result goes in Payload (as
// JSON when it is JSON, as a string otherwise).
func writeOptimized(w http.ResponseWriter, reqID string, status int, payload json.RawMessage) {
	if !json.Valid(payload) {
		b, _ := json.Marshal(string(payload))
		payload = b
	}
	date := time.Now().UTC().Format(http.TimeFormat)
	out := map[string]any{
		"ExecutedVersion": "$LATEST",
		"Payload":         payload,
		"SdkHttpMetadata": map[string]any{
			"AllHttpHeaders": map[string][]string{
				"X-Amz-Executed-Version": {"$LATEST"},
				"x-amzn-RequestId":       {reqID},
				"Content-Length":         {fmt.Sprint(len(payload))},
				"Date":                   {date},
				"Content-Type":           {"application/json"},
			},
			"HttpHeaders": map[string]string{
				"X-Amz-Executed-Version": "$LATEST",
				"x-amzn-RequestId":       reqID,
				"Content-Length":         fmt.Sprint(len(payload)),
				"Date":                   date,
				"Content-Type":           "application/json",
			},
			"HttpStatusCode": status,
		},
		"SdkResponseMetadata": map[string]string{"RequestId": reqID},
		"StatusCode":          status,
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amz-Executed-Version", "$LATEST")
	w.Header().Set("x-amzn-RequestId", reqID)
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(out)
}

// writeValidation writes the ValidationException AWS's request validator
// answers for a member outside its constraints.
func writeValidation(w http.ResponseWriter, value, member, constraint string) {
	if len(value) > 64 {
		value = value[:64] + "…"
	}
	writeAPIError(w, http.StatusBadRequest, "ValidationException",
		fmt.Sprintf("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: %s", value, member, constraint))
}

// writeAPIError writes a Lambda API (restJson1) error.
func writeAPIError(w http.ResponseWriter, status int, errType, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-amzn-ErrorType", errType)
	w.Header().Set("x-amzn-RequestId", uuid.NewString())
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"Type": "User", "Message": msg})
}

// IsNotFound reports whether err is an unknown-function error.
func IsNotFound(err error) bool {
	var nf *NotFoundError
	return errors.As(err, &nf)
}
