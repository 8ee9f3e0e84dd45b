package ecsfargate

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

// fakeECS is a local server speaking the ECS awsJson1_1 protocol for RunTask,
// ListTasks, DescribeTasks and StopTask. Requests are checked for the protocol's
// framing and recorded; responses follow the shapes of the ECS API reference.
type fakeECS struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	tasks    map[string]*fakeTask
	order    []string          // task ARNs, creation order
	tokens   map[string]string // cluster + "/" + clientToken → task ARN
	tokenReq map[string]string // cluster + "/" + clientToken → canonical request (to detect conflicts)
	// clusters are the clusters that exist; any other is ClusterNotFoundException.
	clusters map[string]bool
	calls    []fakeCall
	seq      int
	// hook, when set, may answer a request instead of the fake's own logic.
	hook func(target string, body []byte) (status int, resp any, ok bool)
	// Eventual consistency ("the result of an API command you run that affects
	// your Amazon ECS resources might not be immediately visible to all subsequent
	// commands you run", RunTask's doc comment), counted in calls, never in time:
	// a task RunTask starts is left out of the next listLag ListTasks answers and
	// reported MISSING by the next describeLag DescribeTasks calls that name it.
	// settle makes every task visible at once.
	listLag, describeLag int
	listHidden           map[string]int // task ARN → ListTasks calls it still misses
	describeHidden       map[string]int // task ARN → DescribeTasks calls it is still MISSING from
	// ipAtRun: RunTask's answer already has the ENI's private IP.
	ipAtRun bool
	// listPageSize caps ListTasks pages (nextToken pagination).
	listPageSize int
	// listTokens are the nextTokens handed out: position, and the query they continue.
	listTokens     map[string]int
	listTokenQuery map[string]string
}

type fakeCall struct {
	Target string
	Body   []byte
}

// Shapes of the ECS API reference (Task, Attachment, KeyValuePair, Container, Failure).
type fakeKV struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type fakeAttachment struct {
	ID      string   `json:"id"`
	Type    string   `json:"type"`
	Status  string   `json:"status"`
	Details []fakeKV `json:"details"`
}

type fakeNetIf struct {
	AttachmentID       string `json:"attachmentId"`
	PrivateIpv4Address string `json:"privateIpv4Address"`
}

type fakeContainer struct {
	ContainerArn      string      `json:"containerArn"`
	TaskArn           string      `json:"taskArn"`
	Name              string      `json:"name"`
	Image             string      `json:"image"`
	LastStatus        string      `json:"lastStatus"`
	ExitCode          *int        `json:"exitCode,omitempty"`
	Reason            string      `json:"reason,omitempty"`
	NetworkInterfaces []fakeNetIf `json:"networkInterfaces"`
}

type fakeTag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type fakeTask struct {
	Attachments       []fakeAttachment `json:"attachments"`
	AvailabilityZone  string           `json:"availabilityZone"`
	ClusterArn        string           `json:"clusterArn"`
	Containers        []fakeContainer  `json:"containers"`
	Cpu               string           `json:"cpu"`
	CreatedAt         float64          `json:"createdAt"`
	DesiredStatus     string           `json:"desiredStatus"`
	Group             string           `json:"group"`
	LastStatus        string           `json:"lastStatus"`
	LaunchType        string           `json:"launchType"`
	Memory            string           `json:"memory"`
	Overrides         json.RawMessage  `json:"overrides,omitempty"`
	PlatformVersion   string           `json:"platformVersion"`
	StartedBy         string           `json:"startedBy,omitempty"`
	StopCode          string           `json:"stopCode,omitempty"`
	StoppedReason     string           `json:"stoppedReason,omitempty"`
	StoppedAt         float64          `json:"stoppedAt,omitempty"`
	Tags              []fakeTag        `json:"tags,omitempty"`
	TaskArn           string           `json:"taskArn"`
	TaskDefinitionArn string           `json:"taskDefinitionArn"`
	Version           int              `json:"version"`
}

type fakeFailure struct {
	Arn    string `json:"arn,omitempty"`
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

const ecsTargetPrefix = "AmazonEC2ContainerServiceV20141113."

func newFakeECS(t *testing.T) *fakeECS {
	f := &fakeECS{
		t:              t,
		tasks:          map[string]*fakeTask{},
		tokens:         map[string]string{},
		tokenReq:       map[string]string{},
		clusters:       map[string]bool{"sluice": true},
		listHidden:     map[string]int{},
		describeHidden: map[string]int{},
		listPageSize:   100,
		listTokens:     map[string]int{},
		listTokenQuery: map[string]string{},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeECS) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		f.t.Errorf("ECS request %s %s: want POST /", r.Method, r.URL.Path)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		f.t.Errorf("ECS request Content-Type %q", ct)
	}
	if a := r.Header.Get("Authorization"); !strings.HasPrefix(a, "AWS4-HMAC-SHA256 ") || !strings.Contains(a, "/us-east-1/ecs/aws4_request") {
		f.t.Errorf("ECS request not SigV4-signed for ecs in us-east-1: %q", a)
	}
	target, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), ecsTargetPrefix)
	if !ok {
		f.t.Errorf("X-Amz-Target %q", r.Header.Get("X-Amz-Target"))
	}
	body, _ := io.ReadAll(r.Body)
	if !json.Valid(body) {
		f.t.Errorf("%s: body is not JSON: %s", target, body)
	}

	f.mu.Lock()
	f.calls = append(f.calls, fakeCall{Target: target, Body: body})
	hook := f.hook
	f.mu.Unlock()
	if hook != nil {
		if status, resp, ok := hook(target, body); ok {
			writeJSON(w, status, resp)
			return
		}
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	var status int
	var resp any
	switch target {
	case "RunTask":
		status, resp = f.runTask(body)
	case "ListTasks":
		status, resp = f.listTasks(body)
	case "DescribeTasks":
		status, resp = f.describeTasks(body)
	case "StopTask":
		status, resp = f.stopTask(body)
	default:
		status, resp = ecsError(400, "InvalidAction", "unknown operation "+target)
	}
	writeJSON(w, status, resp)
}

func writeJSON(w http.ResponseWriter, status int, resp any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("x-amzn-RequestId", "fake-request-id-0123456789")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(resp)
}

// ecsError is the awsJson1_1 error body: {"__type": code, "message": text}.
func ecsError(status int, code, message string) (int, any) {
	return status, map[string]any{"__type": code, "message": message}
}

// invalidParameter is ECS's answer to a request that breaks a documented rule:
// InvalidParameterException, "The specified parameter isn't valid" (its doc
// comment in aws-sdk-go-v2 service/ecs/types/errors.go), HTTP 400. The messages
// are the fake's own unless a comment says they are AWS's.
func invalidParameter(format string, args ...any) (int, any) {
	return ecsError(400, "InvalidParameterException", fmt.Sprintf(format, args...))
}

// clusterName resolves a request's cluster (short name or ARN; the default
// cluster when omitted: "If you do not specify a cluster, the default cluster is
// assumed", the Cluster member of RunTaskInput, ListTasksInput,
// DescribeTasksInput and StopTaskInput).
func (f *fakeECS) clusterName(cluster string) (string, bool) {
	if cluster == "" {
		cluster = "default"
	}
	if _, name, ok := strings.Cut(cluster, ":cluster/"); ok {
		cluster = name
	}
	return cluster, f.clusters[cluster]
}

// clusterNotFound is ClusterNotFoundException: "The specified cluster wasn't
// found" (types/errors.go).
func clusterNotFound() (int, any) {
	return ecsError(400, "ClusterNotFoundException", "Cluster not found.")
}

var (
	// RunTaskInput.StartedBy: "Up to 128 letters (uppercase and lowercase),
	// numbers, hyphens (-), forward slash (/), and underscores (_) are allowed."
	startedByRE = regexp.MustCompile(`^[a-zA-Z0-9/_-]{0,128}$`)
	// RunTaskInput.Tags: "Generally allowed characters
	// are: letters, numbers, and spaces representable in UTF-8, and the following
	// characters: + - = . _ : / @"; ECS enforces it ("Some tags contain invalid
	// characters", PrefectHQ/prefect#13174). Written apart from config.go's
	// tagCharsRE so that a mistake in one does not hide in the other.
	fakeTagCharsRE = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}+\-=._:/@]*$`)
)

// checkRunTask enforces RunTask's documented input rules; ok is false with
// ECS's answer when one is broken.
func checkRunTask(req runTaskRequest) (status int, resp any, ok bool) {
	bad := func(format string, args ...any) (int, any, bool) {
		st, r := invalidParameter(format, args...)
		return st, r, false
	}
	// RunTaskInput.TaskDefinition: "This member is required."
	if req.TaskDefinition == "" {
		return bad("taskDefinition is required")
	}
	// RunTaskInput.Count: "You can specify up to 10 tasks for each call."
	if req.Count > 10 {
		return bad("count must be at most 10")
	}
	// RunTaskInput.ClientToken: "Up to 64 characters are allowed. The valid
	// characters are characters in the range of 33-126, inclusive."
	if len(req.ClientToken) > 64 {
		return bad("clientToken must be at most 64 characters")
	}
	for _, c := range []byte(req.ClientToken) {
		if c < 33 || c > 126 {
			return bad("clientToken has a character outside ASCII 33-126")
		}
	}
	if !startedByRE.MatchString(req.StartedBy) {
		return bad("startedBy must be up to 128 letters, numbers, hyphens, forward slashes and underscores")
	}
	// RunTaskInput.Tags: "Maximum number of tags per resource - 50", "Maximum key
	// length - 128 Unicode characters", "Maximum value length - 256 Unicode
	// characters", "each tag key must be unique", and "Do not use aws:, AWS:, or
	// any upper or lowercase combination of such as a prefix for either keys or
	// values ... Tags with this prefix do not count against your tags per resource
	// limit." ECS's message for the prefix is "Tag key must not start with aws:"
	// (aws/amazon-ecs-agent#1704).
	counted, seen := 0, map[string]bool{}
	for _, t := range req.Tags {
		switch {
		case t.Key == "":
			return bad("tag keys must not be empty")
		case utf8.RuneCountInString(t.Key) > 128:
			return bad("tag key %q is longer than 128 characters", t.Key)
		case utf8.RuneCountInString(t.Value) > 256:
			return bad("the value of tag %q is longer than 256 characters", t.Key)
		case seen[t.Key]:
			return bad("tag key %q is not unique", t.Key)
		case strings.HasPrefix(strings.ToLower(t.Key), "aws:"):
			return bad("Tag key must not start with aws:")
		case strings.HasPrefix(strings.ToLower(t.Value), "aws:"):
			return bad("Tag value must not start with aws:")
		case !fakeTagCharsRE.MatchString(t.Key) || !fakeTagCharsRE.MatchString(t.Value):
			return bad("Some tags contain invalid characters.")
		}
		seen[t.Key] = true
		counted++
	}
	if counted > 50 {
		return bad("a task can have at most 50 tags, not %d", counted)
	}
	// RunTaskInput.Overrides: "A total of 8192 characters are allowed for
	// overrides. This limit includes the JSON formatting characters of the
	// override structure." Counted on the JSON as the SDK sent it.
	if n := utf8.RuneCount(req.Overrides); n > 8192 {
		return bad("overrides are %d characters, at most 8192 are allowed", n)
	}
	if len(req.Overrides) > 0 {
		var o taskOverrides
		if err := json.Unmarshal(req.Overrides, &o); err != nil {
			return bad("overrides: %v", err)
		}
		// ContainerOverride.Name: "This parameter is required if any override is specified."
		for _, c := range o.ContainerOverrides {
			if c.Name == "" {
				return bad("containerOverrides: name is required")
			}
		}
	}
	// RunTaskInput.CapacityProviderStrategy / LaunchType: "If a
	// capacityProviderStrategy is specified, the launchType parameter must be
	// omitted." and "A capacity provider strategy can contain a maximum of 20
	// capacity providers."
	cps := req.CapacityProviderStrategy
	if len(cps) > 0 && req.LaunchType != "" {
		return bad("launchType and capacityProviderStrategy cannot both be specified")
	}
	if len(cps) > 20 {
		return bad("a capacity provider strategy can contain at most 20 capacity providers")
	}
	// CapacityProviderStrategyItem.Base/Weight: "The valid range is 0 to
	// 100,000", "Only one capacity provider in a strategy can have a base
	// defined", "The valid range is 0 to 1,000", and with several providers "at
	// least one of the capacity providers must have a weight value greater than zero".
	withBase, weighted := 0, 0
	for _, p := range cps {
		switch {
		case p.CapacityProvider == "": // CapacityProviderStrategyItem.CapacityProvider: "This member is required."
			return bad("capacityProvider is required")
		case p.Base < 0 || p.Base > 100000:
			return bad("base must be between 0 and 100000")
		case p.Weight < 0 || p.Weight > 1000:
			return bad("weight must be between 0 and 1000")
		}
		if p.Base > 0 {
			withBase++
		}
		if p.Weight > 0 {
			weighted++
		}
	}
	if withBase > 1 {
		return bad("only one capacity provider in a strategy can have a base")
	}
	if len(cps) > 1 && weighted == 0 {
		return bad("at least one capacity provider must have a weight greater than zero")
	}
	// RunTaskInput.PropagateTags: "An error will be received if you specify the
	// SERVICE option when running a task."
	if req.PropagateTags == "SERVICE" {
		return bad("propagateTags SERVICE is not valid for RunTask")
	}
	// RunTaskInput.NetworkConfiguration: "required for task definitions that use
	// the awsvpc network mode" (the fake's task definition is a Fargate one, so
	// awsvpc); AwsVpcConfiguration.Subnets: "This member is required", "There's a
	// limit of 16 subnets"; SecurityGroups: "There's a limit of 5 security groups".
	vpc := req.NetworkConfiguration.AwsvpcConfiguration
	switch {
	case len(vpc.Subnets) == 0:
		return bad("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
	case len(vpc.Subnets) > 16:
		return bad("at most 16 subnets can be specified")
	case len(vpc.SecurityGroups) > 5:
		return bad("at most 5 security groups can be specified")
	}
	return 0, nil, true
}

func (f *fakeECS) runTask(body []byte) (int, any) {
	var req runTaskRequest
	if err := strictDecode(body, &req); err != nil {
		return invalidParameter("%v", err)
	}
	cluster, exists := f.clusterName(req.Cluster)
	if !exists {
		return clusterNotFound()
	}
	if status, resp, ok := checkRunTask(req); !ok {
		return status, resp
	}
	// ECS_Idempotency (API reference, "Ensuring idempotency"): "Requests with the
	// same token in the same cluster are idempotent"; a retry "using the same
	// client token and the same parameters" returns the original result; with the
	// same token and changed parameters "the retry fails with a
	// ConflictException". RunTask's doc comment: "The resourceIds are the existing
	// task ARNs which are already associated with the clientToken."
	tokenKey := cluster + "/" + req.ClientToken
	if req.ClientToken != "" {
		if arn, ok := f.tokens[tokenKey]; ok {
			if f.tokenReq[tokenKey] != canonicalJSON(body) {
				return 400, map[string]any{
					"__type":      "ConflictException",
					"message":     "The specified client token has already been used in another request.",
					"resourceIds": []string{arn},
				}
			}
			return 200, map[string]any{"tasks": []*fakeTask{f.tasks[arn]}, "failures": []fakeFailure{}}
		}
	}
	f.seq++
	id := fmt.Sprintf("%032x", f.seq)
	arn := "arn:aws:ecs:us-east-1:123456789012:task/" + cluster + "/" + id
	ip := fmt.Sprintf("10.0.1.%d", 22+f.seq)
	details := []fakeKV{{Name: "subnetId", Value: firstOr(req.NetworkConfiguration.AwsvpcConfiguration.Subnets, "")}}
	if f.ipAtRun {
		details = append(details,
			fakeKV{Name: "networkInterfaceId", Value: "eni-0" + id[:16]},
			fakeKV{Name: "macAddress", Value: "0a:1b:2c:3d:4e:5f"},
			fakeKV{Name: "privateDnsName", Value: "ip-" + strings.ReplaceAll(ip, ".", "-") + ".ec2.internal"},
			fakeKV{Name: "privateIPv4Address", Value: ip})
	}
	var tags []fakeTag
	for _, t := range req.Tags {
		tags = append(tags, fakeTag(t))
	}
	task := &fakeTask{
		Attachments:      []fakeAttachment{{ID: "att-" + id[:8], Type: "ElasticNetworkInterface", Status: "PRECREATED", Details: details}},
		AvailabilityZone: "us-east-1a",
		ClusterArn:       "arn:aws:ecs:us-east-1:123456789012:cluster/" + cluster,
		Containers: []fakeContainer{{
			ContainerArn: "arn:aws:ecs:us-east-1:123456789012:container/" + cluster + "/" + id + "/c1",
			TaskArn:      arn, Name: "runtime", Image: "example/runtime:1", LastStatus: "PENDING",
			NetworkInterfaces: []fakeNetIf{},
		}},
		Cpu: "1024", Memory: "2048",
		CreatedAt:         float64(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC).Unix() + int64(f.seq)),
		DesiredStatus:     "RUNNING",
		Group:             "family:sluice-runtime",
		LastStatus:        "PROVISIONING",
		LaunchType:        firstOr([]string{req.LaunchType}, "FARGATE"),
		Overrides:         req.Overrides,
		PlatformVersion:   "1.4.0",
		StartedBy:         req.StartedBy,
		Tags:              tags,
		TaskArn:           arn,
		TaskDefinitionArn: "arn:aws:ecs:us-east-1:123456789012:task-definition/" + req.TaskDefinition,
		Version:           1,
	}
	f.tasks[arn] = task
	f.order = append(f.order, arn)
	if f.listLag > 0 {
		f.listHidden[arn] = f.listLag
	}
	if f.describeLag > 0 {
		f.describeHidden[arn] = f.describeLag
	}
	if req.ClientToken != "" {
		f.tokens[tokenKey] = arn
		f.tokenReq[tokenKey] = canonicalJSON(body)
	}
	return 200, map[string]any{"tasks": []*fakeTask{task}, "failures": []fakeFailure{}}
}

func (f *fakeECS) listTasks(body []byte) (int, any) {
	var req struct {
		Cluster           string `json:"cluster"`
		ContainerInstance string `json:"containerInstance"`
		DaemonName        string `json:"daemonName"`
		DesiredStatus     string `json:"desiredStatus"`
		Family            string `json:"family"`
		LaunchType        string `json:"launchType"`
		MaxResults        *int   `json:"maxResults"`
		NextToken         string `json:"nextToken"`
		ServiceName       string `json:"serviceName"`
		StartedBy         string `json:"startedBy"`
	}
	if err := strictDecode(body, &req); err != nil {
		return ecsError(400, "InvalidParameterException", err.Error())
	}
	// ListTasksInput.StartedBy: "When you specify startedBy as the filter, it must
	// be the only filter that you use." The code and message are what AWS answers
	// (aws/aws-sdk-go-v2#1893). cluster, maxResults and nextToken are not filters:
	// the cluster is always one (the default one when omitted).
	if req.StartedBy != "" && (req.ContainerInstance != "" || req.DaemonName != "" || req.DesiredStatus != "" ||
		req.Family != "" || req.LaunchType != "" || req.ServiceName != "") {
		return ecsError(400, "InvalidParameterException", "cannot specify startedBy with other arguments")
	}
	cluster, exists := f.clusterName(req.Cluster)
	if !exists {
		return clusterNotFound()
	}
	// ListTasksInput.MaxResults: "This value can be between 1 and 100. If this
	// parameter isn't used, then ListTasks returns up to 100 results".
	pageSize := 100
	if req.MaxResults != nil {
		if *req.MaxResults < 1 || *req.MaxResults > 100 {
			return invalidParameter("maxResults must be between 1 and 100")
		}
		pageSize = *req.MaxResults
	}
	pageSize = min(pageSize, f.listPageSize)
	want := req.DesiredStatus
	if want == "" {
		want = "RUNNING" // ListTasksInput.DesiredStatus: "The default status filter is RUNNING"
	}
	// ListTasksInput.DesiredStatus: "Although you can filter results based on a
	// desired status of PENDING, this doesn't return any results."
	var arns []string
	for _, arn := range f.order {
		t := f.tasks[arn]
		if n := f.listHidden[arn]; n > 0 {
			f.listHidden[arn] = n - 1
			continue
		}
		if t.cluster() == cluster && (req.StartedBy == "" || t.StartedBy == req.StartedBy) &&
			(req.Family == "" || t.family() == req.Family) && t.DesiredStatus == want {
			arns = append(arns, arn)
		}
	}
	// ListTasksInput.NextToken: "This token should be treated as an opaque
	// identifier that is only used to retrieve the next items in a list". The
	// fake's tokens are bound to the query they continue; anything else is
	// refused (the error code is the fake's choice: ECS does not document one).
	start := 0
	if req.NextToken != "" {
		var ok bool
		if start, ok = f.listTokens[req.NextToken]; !ok || f.listTokenQuery[req.NextToken] != withoutNextToken(body) {
			return invalidParameter("Invalid nextToken")
		}
	}
	start = min(start, len(arns))
	end := min(start+pageSize, len(arns))
	resp := map[string]any{"taskArns": append([]string{}, arns[start:end]...)}
	if end < len(arns) {
		f.seq++
		token := base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("fake-list-%d-%d", f.seq, end)))
		f.listTokens[token] = end
		f.listTokenQuery[token] = withoutNextToken(body)
		resp["nextToken"] = token
	}
	return 200, resp
}

// withoutNextToken is a ListTasks request's query (the request less its page token).
func withoutNextToken(body []byte) string {
	var v map[string]any
	_ = json.Unmarshal(body, &v)
	delete(v, "nextToken")
	out, _ := json.Marshal(v)
	return string(out)
}

// cluster is the short name of the task's cluster.
func (t *fakeTask) cluster() string {
	return t.ClusterArn[strings.LastIndex(t.ClusterArn, "/")+1:]
}

// family is the task's task definition family.
func (t *fakeTask) family() string {
	return taskDefinitionFamily(t.TaskDefinitionArn)
}

// taskByRef finds a task of the cluster by ARN or task ID.
func (f *fakeECS) taskByRef(cluster, ref string) (*fakeTask, bool) {
	if t, ok := f.tasks[ref]; ok && t.cluster() == cluster {
		return t, true
	}
	for _, t := range f.tasks {
		if t.cluster() == cluster && strings.HasSuffix(t.TaskArn, "/"+ref) {
			return t, true
		}
	}
	return nil, false
}

func (f *fakeECS) describeTasks(body []byte) (int, any) {
	var req struct {
		Cluster string   `json:"cluster"`
		Tasks   []string `json:"tasks"`
		Include []string `json:"include"`
	}
	if err := strictDecode(body, &req); err != nil {
		return invalidParameter("%v", err)
	}
	cluster, exists := f.clusterName(req.Cluster)
	if !exists {
		return clusterNotFound()
	}
	// DescribeTasksInput.Tasks: "A list of up to 100 task IDs or full ARN
	// entries. This member is required." An empty list is refused with "Tasks
	// cannot be empty." (AWS's message, aws/copilot-cli#3551).
	switch {
	case len(req.Tasks) == 0:
		return invalidParameter("Tasks cannot be empty.")
	case len(req.Tasks) > 100:
		return invalidParameter("at most 100 tasks can be described at once, not %d", len(req.Tasks))
	}
	tasks := []fakeTask{}
	failures := []fakeFailure{}
	for _, ref := range req.Tasks {
		t, ok := f.taskByRef(cluster, ref)
		if ok && f.describeHidden[t.TaskArn] > 0 {
			f.describeHidden[t.TaskArn]--
			ok = false
		}
		if !ok {
			// An unknown task is a failure, not an error: "API failure reasons"
			// (ECS developer guide), DescribeTasks: MISSING, "The specified task
			// wasn't found".
			failures = append(failures, fakeFailure{Arn: ref, Reason: "MISSING"})
			continue
		}
		described := *t
		// DescribeTasksInput.Include: "If TAGS is specified, the tags are included
		// in the response. If this field is omitted, tags aren't included".
		if !slices.Contains(req.Include, "TAGS") {
			described.Tags = nil
		}
		tasks = append(tasks, described)
	}
	return 200, map[string]any{"tasks": tasks, "failures": failures}
}

func (f *fakeECS) stopTask(body []byte) (int, any) {
	var req struct {
		Cluster string `json:"cluster"`
		Task    string `json:"task"`
		Reason  string `json:"reason"`
	}
	if err := strictDecode(body, &req); err != nil {
		return invalidParameter("%v", err)
	}
	cluster, exists := f.clusterName(req.Cluster)
	if !exists {
		return clusterNotFound()
	}
	// StopTaskInput.Task: "This member is required."
	if req.Task == "" {
		return invalidParameter("task is required")
	}
	// StopTaskRequest#reason (AWS SDK for Ruby v2 reference on
	// docs.aws.amazon.com, from the ECS model): "Up to 255 characters are allowed
	// in this message."
	if utf8.RuneCountInString(req.Reason) > 255 {
		return invalidParameter("reason must be at most 255 characters")
	}
	t, ok := f.taskByRef(cluster, req.Task)
	if !ok {
		// AWS's answer for a task it does not know (e.g. griptape-ai/griptape-nodes-engine#1454).
		return invalidParameter("The referenced task was not found.")
	}
	if t.DesiredStatus != "STOPPED" {
		t.DesiredStatus = "STOPPED"
		t.LastStatus = "DEACTIVATING"
		t.StopCode = "UserInitiated"
		t.StoppedReason = req.Reason
		t.Version++
	}
	return 200, map[string]any{"task": t}
}

// settle ends the lag: ListTasks and DescribeTasks show every task from now on.
func (f *fakeECS) settle() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.listHidden)
	clear(f.describeHidden)
}

// setRunning moves a task to RUNNING with its ENI attached and an IP.
func (f *fakeECS) setRunning(arn string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tasks[arn]
	t.LastStatus = "RUNNING"
	t.Containers[0].LastStatus = "RUNNING"
	id := arn[strings.LastIndex(arn, "/")+1:]
	ip := "10.0.1.23"
	t.Attachments[0].Status = "ATTACHED"
	t.Attachments[0].Details = []fakeKV{
		{Name: "subnetId", Value: "subnet-0a1b2c3d"},
		{Name: "networkInterfaceId", Value: "eni-0" + id[:16]},
		{Name: "macAddress", Value: "0a:1b:2c:3d:4e:5f"},
		{Name: "privateDnsName", Value: "ip-10-0-1-23.ec2.internal"},
		{Name: "privateIPv4Address", Value: ip},
	}
	t.Containers[0].NetworkInterfaces = []fakeNetIf{{AttachmentID: t.Attachments[0].ID, PrivateIpv4Address: ip}}
	t.Version++
}

// setStopped makes a task STOPPED the way ECS reports an exited essential container.
func (f *fakeECS) setStopped(arn string, exitCode int, stopCode, stoppedReason, containerReason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tasks[arn]
	t.DesiredStatus = "STOPPED"
	t.LastStatus = "STOPPED"
	t.StopCode = stopCode
	t.StoppedReason = stoppedReason
	t.StoppedAt = t.CreatedAt + 60
	t.Attachments[0].Status = "DELETED"
	t.Containers[0].LastStatus = "STOPPED"
	t.Containers[0].ExitCode = &exitCode
	t.Containers[0].Reason = containerReason
	t.Version++
}

func (f *fakeECS) callsTo(target string) []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeCall
	for _, c := range f.calls {
		if c.Target == target {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeECS) taskCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.tasks)
}

func (f *fakeECS) task(arn string) fakeTask {
	f.mu.Lock()
	defer f.mu.Unlock()
	return *f.tasks[arn]
}

// runTaskRequest is RunTask's request syntax (only the members the driver may send).
type runTaskRequest struct {
	CapacityProviderStrategy []struct {
		CapacityProvider string `json:"capacityProvider"`
		Weight           int    `json:"weight"`
		Base             int    `json:"base"`
	} `json:"capacityProviderStrategy"`
	ClientToken          string `json:"clientToken"`
	Cluster              string `json:"cluster"`
	Count                int    `json:"count"`
	EnableECSManagedTags bool   `json:"enableECSManagedTags"`
	EnableExecuteCommand bool   `json:"enableExecuteCommand"`
	LaunchType           string `json:"launchType"`
	NetworkConfiguration struct {
		AwsvpcConfiguration struct {
			Subnets        []string `json:"subnets"`
			SecurityGroups []string `json:"securityGroups"`
			AssignPublicIp string   `json:"assignPublicIp"`
		} `json:"awsvpcConfiguration"`
	} `json:"networkConfiguration"`
	Overrides       json.RawMessage `json:"overrides"`
	PlatformVersion string          `json:"platformVersion"`
	PropagateTags   string          `json:"propagateTags"`
	StartedBy       string          `json:"startedBy"`
	Tags            []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"tags"`
	TaskDefinition string `json:"taskDefinition"`
}

type taskOverrides struct {
	ContainerOverrides []struct {
		Name        string   `json:"name"`
		Environment []fakeKV `json:"environment"`
	} `json:"containerOverrides"`
	Cpu    string `json:"cpu"`
	Memory string `json:"memory"`
}

func (r runTaskRequest) overrides(t *testing.T) taskOverrides {
	t.Helper()
	var o taskOverrides
	if err := strictDecode(r.Overrides, &o); err != nil {
		t.Fatalf("overrides: %v: %s", err, r.Overrides)
	}
	return o
}

func (o taskOverrides) env(container string) map[string]string {
	for _, c := range o.ContainerOverrides {
		if c.Name == container {
			m := map[string]string{}
			for _, kv := range c.Environment {
				m[kv.Name] = kv.Value
			}
			return m
		}
	}
	return nil
}

// strictDecode decodes JSON, refusing members the shape does not have: a request
// member the fake does not know is a request the test did not expect.
func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func canonicalJSON(b []byte) string {
	var v any
	_ = json.Unmarshal(b, &v)
	out, _ := json.Marshal(v) // maps marshal with sorted keys
	return string(out)
}

func firstOr(s []string, def string) string {
	if i := slices.IndexFunc(s, func(x string) bool { return x != "" }); i >= 0 {
		return s[i]
	}
	return def
}

func (f *fakeECS) taskArns() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.order...)
}

// with runs fn under the fake's lock (to change its knobs while it serves).
func (f *fakeECS) with(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

// client is an ECS client pointed at the fake.
func (f *fakeECS) client() *ecs.Client {
	return ecs.New(ecs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(f.srv.URL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret", Source: "test"}, nil
		}),
		RetryMaxAttempts: 1,
	})
}
