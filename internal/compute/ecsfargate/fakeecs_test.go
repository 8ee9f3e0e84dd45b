package ecsfargate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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
	tokens   map[string]string // clientToken → task ARN
	tokenReq map[string]string // clientToken → canonical request (to detect conflicts)
	calls    []fakeCall
	seq      int
	// hook, when set, may answer a request instead of the fake's own logic.
	hook func(target string, body []byte) (status int, resp any, ok bool)
	// hideFromList makes ListTasks miss every task (ECS's eventual consistency).
	hideFromList bool
	// ipAtRun: RunTask's answer already has the ENI's private IP.
	ipAtRun bool
	// listPageSize caps ListTasks pages (nextToken pagination).
	listPageSize int
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
		t:            t,
		tasks:        map[string]*fakeTask{},
		tokens:       map[string]string{},
		tokenReq:     map[string]string{},
		listPageSize: 100,
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

func (f *fakeECS) runTask(body []byte) (int, any) {
	var req runTaskRequest
	if err := strictDecode(body, &req); err != nil {
		return ecsError(400, "InvalidParameterException", err.Error())
	}
	if req.ClientToken != "" {
		if arn, ok := f.tokens[req.ClientToken]; ok {
			if f.tokenReq[req.ClientToken] != canonicalJSON(body) {
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
	cluster := req.Cluster
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
	if req.ClientToken != "" {
		f.tokens[req.ClientToken] = arn
		f.tokenReq[req.ClientToken] = canonicalJSON(body)
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
		MaxResults        int    `json:"maxResults"`
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
	want := req.DesiredStatus
	if want == "" {
		want = "RUNNING" // ListTasksInput.DesiredStatus: "The default status filter is RUNNING"
	}
	var arns []string
	if !f.hideFromList {
		for _, arn := range f.order {
			t := f.tasks[arn]
			if strings.HasSuffix(t.ClusterArn, "/"+req.Cluster) && (req.StartedBy == "" || t.StartedBy == req.StartedBy) &&
				(req.Family == "" || t.family() == req.Family) && t.DesiredStatus == want {
				arns = append(arns, arn)
			}
		}
	}
	start := 0
	if req.NextToken != "" {
		start, _ = strconv.Atoi(req.NextToken)
	}
	end := min(start+f.listPageSize, len(arns))
	resp := map[string]any{"taskArns": append([]string{}, arns[start:end]...)}
	if end < len(arns) {
		resp["nextToken"] = strconv.Itoa(end)
	}
	return 200, resp
}

// family is the task's task definition family.
func (t *fakeTask) family() string {
	return taskDefinitionFamily(t.TaskDefinitionArn)
}

func (f *fakeECS) describeTasks(body []byte) (int, any) {
	var req struct {
		Cluster string   `json:"cluster"`
		Tasks   []string `json:"tasks"`
		Include []string `json:"include"`
	}
	if err := strictDecode(body, &req); err != nil {
		return ecsError(400, "InvalidParameterException", err.Error())
	}
	if len(req.Tasks) == 0 {
		return ecsError(400, "InvalidParameterException", "Tasks cannot be empty.")
	}
	tasks := []*fakeTask{}
	failures := []fakeFailure{}
	for _, arn := range req.Tasks {
		if t, ok := f.tasks[arn]; ok && strings.HasSuffix(t.ClusterArn, "/"+req.Cluster) {
			tasks = append(tasks, t)
		} else {
			failures = append(failures, fakeFailure{Arn: arn, Reason: "MISSING"})
		}
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
		return ecsError(400, "InvalidParameterException", err.Error())
	}
	t, ok := f.tasks[req.Task]
	if !ok {
		return ecsError(400, "InvalidParameterException", "The referenced task was not found.")
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
