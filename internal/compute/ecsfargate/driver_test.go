package ecsfargate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/sluicehq/sluice/internal/compute"
)

const (
	testPipeline   = "orders"
	testPipelineID = "6f1c2b9e-3d4a-4f5b-8c7d-9e0f1a2b3c4d"
	testDeployment = "0b7e1d2c-5a6f-4e3d-9c8b-7a6f5e4d3c2b"
)

func testConfig() Config {
	return Config{
		Cluster:        "sluice",
		TaskDefinition: "sluice-runtime:7",
		ContainerName:  "runtime",
		Subnets:        []string{"subnet-0a1b2c3d", "subnet-4e5f6a7b"},
		SecurityGroups: []string{"sg-0123456789abcdef0"},
		StorageBucket:  "sluice-storage",
		StoragePrefix:  "/pipelines/",
		Tags:           map[string]string{"team": "data", TagPipeline: "must-be-overridden"},
	}
}

// newTestDriver points real SDK clients at the fake servers: static dummy
// credentials, us-east-1, one attempt (no SDK retries), path-style S3.
func newTestDriver(t *testing.T, mutate func(*Config)) (*Driver, *fakeECS, *fakeS3) {
	t.Helper()
	fe := newFakeECS(t)
	fs := newFakeS3(t, "sluice-storage")
	awsCfg := aws.Config{
		Region: "us-east-1",
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret", Source: "test"}, nil
		}),
		RetryMaxAttempts: 1,
		HTTPClient:       &http.Client{},
	}
	ecsClient := ecs.NewFromConfig(awsCfg, func(o *ecs.Options) { o.BaseEndpoint = aws.String(fe.srv.URL) })
	s3Client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(fs.srv.URL)
		o.UsePathStyle = true
	})
	cfg := testConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	d, err := New(cfg, ecsClient, s3Client)
	if err != nil {
		t.Fatal(err)
	}
	d.sleep = func(context.Context, time.Duration) error { return nil } // the fake lags by calls, not time
	return d, fe, fs
}

func provisionRequest() compute.ProvisionRequest {
	return compute.ProvisionRequest{
		Pipeline:      testPipeline,
		PipelineID:    testPipelineID,
		DeploymentID:  testDeployment,
		RuntimeConfig: json.RawMessage(`{"workers": 4, "resources": {"cpu": 2048, "memory": "8192"}, "checkpoint_interval_secs": 60}`),
		Initial:       "Paused",
	}
}

func lastRunTask(t *testing.T, fe *fakeECS) runTaskRequest {
	t.Helper()
	calls := fe.callsTo("RunTask")
	if len(calls) == 0 {
		t.Fatal("no RunTask call")
	}
	var req runTaskRequest
	if err := strictDecode(calls[len(calls)-1].Body, &req); err != nil {
		t.Fatalf("RunTask request has members the driver should not send: %v\n%s", err, calls[len(calls)-1].Body)
	}
	return req
}

func TestProvisionHappyPath(t *testing.T) {
	d, fe, fs := newTestDriver(t, nil)
	fe.with(func() { fe.ipAtRun = true })

	preq := provisionRequest()
	preq.Program = compute.Program{Version: 4, Code: "CREATE TABLE t(x INT);", Config: []byte(`{"profile":"dev"}`)}
	dep, err := d.Provision(context.Background(), preq)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(dep.Handle, "arn:aws:ecs:us-east-1:123456789012:task/sluice/") {
		t.Errorf("Handle = %q, want the task ARN", dep.Handle)
	}
	if dep.Location != "http://10.0.1.23:8080" {
		t.Errorf("Location = %q, want http://10.0.1.23:8080", dep.Location)
	}

	req := lastRunTask(t, fe)
	if req.Cluster != "sluice" || req.TaskDefinition != "sluice-runtime:7" || req.Count != 1 {
		t.Errorf("cluster/taskDefinition/count = %q/%q/%d", req.Cluster, req.TaskDefinition, req.Count)
	}
	if req.ClientToken != testDeployment || req.StartedBy != testDeployment {
		t.Errorf("clientToken/startedBy = %q/%q, want the deployment id", req.ClientToken, req.StartedBy)
	}
	if req.LaunchType != "FARGATE" || len(req.CapacityProviderStrategy) != 0 {
		t.Errorf("launchType = %q, capacityProviderStrategy = %v", req.LaunchType, req.CapacityProviderStrategy)
	}
	if req.PlatformVersion != "" {
		t.Errorf("platformVersion = %q, want none", req.PlatformVersion)
	}
	vpc := req.NetworkConfiguration.AwsvpcConfiguration
	if strings.Join(vpc.Subnets, ",") != "subnet-0a1b2c3d,subnet-4e5f6a7b" ||
		strings.Join(vpc.SecurityGroups, ",") != "sg-0123456789abcdef0" || vpc.AssignPublicIp != "DISABLED" {
		t.Errorf("awsvpcConfiguration = %+v", vpc)
	}
	if req.PropagateTags != "TASK_DEFINITION" || !req.EnableECSManagedTags || req.EnableExecuteCommand {
		t.Errorf("propagateTags/enableECSManagedTags/enableExecuteCommand = %q/%v/%v", req.PropagateTags, req.EnableECSManagedTags, req.EnableExecuteCommand)
	}
	tags := map[string]string{}
	for _, tg := range req.Tags {
		tags[tg.Key] = tg.Value
	}
	wantTags := map[string]string{TagPipeline: testPipeline, TagPipelineID: testPipelineID, TagDeploymentID: testDeployment, "team": "data"}
	if len(tags) != len(wantTags) {
		t.Errorf("tags = %v, want %v", tags, wantTags)
	}
	for k, v := range wantTags {
		if tags[k] != v {
			t.Errorf("tag %s = %q, want %q", k, tags[k], v)
		}
	}

	o := req.overrides(t)
	if o.Cpu != "2048" || o.Memory != "8192" {
		t.Errorf("task cpu/memory overrides = %q/%q, want 2048/8192", o.Cpu, o.Memory)
	}
	if len(o.ContainerOverrides) != 1 {
		t.Fatalf("containerOverrides = %+v", o.ContainerOverrides)
	}
	env := o.env("runtime")
	wantEnv := map[string]string{
		EnvRuntimeConfig: `{"workers":4,"resources":{"cpu":2048,"memory":"8192"},"checkpoint_interval_secs":60}`,
		EnvInitial:       "Paused",
		EnvPipeline:      testPipeline,
		EnvPipelineID:    testPipelineID,
		EnvDeploymentID:  testDeployment,
		EnvStorageURI:    "s3://sluice-storage/pipelines/" + testPipeline + "-" + testPipelineID + "/",
		EnvProgramURI:    "s3://sluice-storage/pipelines/" + testPipeline + "-" + testPipelineID + "/sluice-program/v4.json",
		EnvListen:        "0.0.0.0:8080",
	}
	// The program went to S3 before the task started (too large for the
	// task's environment), where SLUICE_PROGRAM_URI points.
	if b := string(fs.body("pipelines/" + testPipeline + "-" + testPipelineID + "/sluice-program/v4.json")); !strings.Contains(b, `"program_code":"CREATE TABLE t(x INT);"`) || !strings.Contains(b, `"program_version":4`) {
		t.Errorf("program object %q", b)
	}
	if len(env) != len(wantEnv) {
		t.Errorf("environment = %v", env)
	}
	for k, v := range wantEnv {
		if env[k] != v {
			t.Errorf("env %s = %q, want %q", k, env[k], v)
		}
	}
	// Provision first looked for an existing task of the deployment: the running
	// ones by startedBy alone, then the stopped ones of the task definition family.
	lists := fe.callsTo("ListTasks")
	if len(lists) != 2 || string(lists[0].Body) != `{"cluster":"sluice","startedBy":"`+testDeployment+`"}` ||
		string(lists[1].Body) != `{"cluster":"sluice","desiredStatus":"STOPPED","family":"sluice-runtime"}` {
		t.Errorf("ListTasks calls = %s", lists)
	}
}

func TestProvisionOptionalConfig(t *testing.T) {
	d, fe, _ := newTestDriver(t, func(c *Config) {
		c.AssignPublicIP = true
		c.RuntimePort = 9090
		c.PlatformVersion = "1.4.0"
		c.CapacityProviderStrategy = []CapacityProvider{{Name: "FARGATE_SPOT", Weight: 3}, {Name: "FARGATE", Weight: 1, Base: 1}}
	})
	req := provisionRequest()
	req.RuntimeConfig = json.RawMessage(`{"resources": {"cpu_cores_max": 1.5, "memory_mb_max": 3000}}`)
	dep, err := d.Provision(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if dep.Location != "" {
		t.Errorf("Location = %q before the ENI has an address, want empty", dep.Location)
	}
	rt := lastRunTask(t, fe)
	if rt.LaunchType != "" || len(rt.CapacityProviderStrategy) != 2 || rt.CapacityProviderStrategy[0].CapacityProvider != "FARGATE_SPOT" ||
		rt.CapacityProviderStrategy[0].Weight != 3 || rt.CapacityProviderStrategy[1].Base != 1 {
		t.Errorf("launchType %q, capacityProviderStrategy %+v", rt.LaunchType, rt.CapacityProviderStrategy)
	}
	if rt.PlatformVersion != "1.4.0" || rt.NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp != "ENABLED" {
		t.Errorf("platformVersion %q, assignPublicIp %q", rt.PlatformVersion, rt.NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp)
	}
	o := rt.overrides(t)
	if o.Cpu != "2048" || o.Memory != "4096" {
		t.Errorf("Feldera-style resources rounded to %q/%q, want 2048/4096", o.Cpu, o.Memory)
	}
	if got := o.env("runtime")[EnvListen]; got != "0.0.0.0:9090" {
		t.Errorf("SLUICE_LISTEN = %q", got)
	}

	fe.setRunning(dep.Handle)
	res, err := d.Check(context.Background(), testPipeline, testDeployment)
	if err != nil {
		t.Fatal(err)
	}
	if res.State != compute.StateRunning || res.Location != "http://10.0.1.23:9090" {
		t.Errorf("Check = %+v", res)
	}
}

// A Provision whose answer was lost is retried: the retry carries the same
// clientToken and gets the same task back, never a second one.
func TestProvisionRetrySendsSameClientToken(t *testing.T) {
	d, fe, _ := newTestDriver(t, nil)
	fe.with(func() { fe.listLag = 1000 }) // ListTasks does not show the new task yet
	lost := true
	setHook(fe, func(target string, body []byte) (int, any, bool) {
		if target != "RunTask" || !lost {
			return 0, nil, false
		}
		lost = false
		// Start the task, then fail as if the answer never arrived.
		fe.mu.Lock()
		fe.runTask(body)
		fe.mu.Unlock()
		status, resp := ecsError(500, "ServerException", "Service unavailable.")
		return status, resp, true
	})
	_, err := d.Provision(context.Background(), provisionRequest())
	if !errors.Is(err, compute.ErrTemporary) {
		t.Fatalf("first Provision: %v, want a temporary error", err)
	}
	dep, err := d.Provision(context.Background(), provisionRequest())
	if err != nil {
		t.Fatal(err)
	}
	calls := fe.callsTo("RunTask")
	if len(calls) != 2 {
		t.Fatalf("%d RunTask calls, want 2", len(calls))
	}
	var first, second runTaskRequest
	_ = json.Unmarshal(calls[0].Body, &first)
	_ = json.Unmarshal(calls[1].Body, &second)
	if first.ClientToken != testDeployment || second.ClientToken != first.ClientToken {
		t.Errorf("clientTokens %q then %q", first.ClientToken, second.ClientToken)
	}
	if canonicalJSON(calls[0].Body) != canonicalJSON(calls[1].Body) {
		t.Errorf("retried RunTask differs from the first:\n%s\n%s", calls[0].Body, calls[1].Body)
	}
	if fe.taskCount() != 1 {
		t.Errorf("%d tasks started, want 1", fe.taskCount())
	}
	if dep.Handle != fe.taskArns()[0] {
		t.Errorf("Handle %q, want the first task %q", dep.Handle, fe.taskArns()[0])
	}

	// Once ListTasks sees the task, a further retry finds it without RunTask.
	fe.settle()
	again, err := d.Provision(context.Background(), provisionRequest())
	if err != nil || again.Handle != dep.Handle {
		t.Errorf("third Provision = %+v, %v", again, err)
	}
	if n := len(fe.callsTo("RunTask")); n != 2 {
		t.Errorf("%d RunTask calls after the task became visible, want still 2", n)
	}
}

// The token already started a task with other parameters: ConflictException names
// it, and that task is the deployment.
func TestProvisionConflictReturnsExistingTask(t *testing.T) {
	d, fe, _ := newTestDriver(t, nil)
	fe.with(func() { fe.listLag, fe.describeLag = 1000, 1000 })
	if _, err := d.Provision(context.Background(), provisionRequest()); err != nil {
		t.Fatal(err)
	}
	req := provisionRequest()
	req.RuntimeConfig = json.RawMessage(`{"workers": 8}`)
	dep, err := d.Provision(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if fe.taskCount() != 1 || dep.Handle != fe.taskArns()[0] {
		t.Errorf("tasks %d, handle %q", fe.taskCount(), dep.Handle)
	}
}

func TestProvisionFailures(t *testing.T) {
	cases := []struct {
		name      string
		status    int
		resp      any
		temporary bool
		wantInErr string
	}{
		{
			name:   "fargate capacity",
			status: 200,
			resp: map[string]any{"tasks": []any{}, "failures": []fakeFailure{{
				Arn: "arn:aws:ecs:us-east-1:123456789012:cluster/sluice", Reason: "RESOURCE:FARGATE",
				Detail: "Capacity is unavailable at this time. Please try again later or in a different availability zone",
			}}},
			temporary: true, wantInErr: "RESOURCE:FARGATE",
		},
		{
			name:   "eni limit",
			status: 200,
			resp: map[string]any{"tasks": []any{}, "failures": []fakeFailure{{
				Arn: "arn:aws:ecs:us-east-1:123456789012:cluster/sluice", Reason: "RESOURCE:ENI",
			}}},
			temporary: true, wantInErr: "RESOURCE:ENI",
		},
		{
			name:   "missing",
			status: 200,
			resp: map[string]any{"tasks": []any{}, "failures": []fakeFailure{{
				Arn: "arn:aws:ecs:us-east-1:123456789012:task-definition/sluice-runtime:7", Reason: "MISSING",
			}}},
			temporary: false, wantInErr: "MISSING",
		},
		{
			name:   "throttling",
			status: 400,
			resp:   map[string]any{"__type": "ThrottlingException", "message": "Rate exceeded"},
			// awsJson1_1 error, code not modelled by ECS: classified by the SDK's throttle codes
			temporary: true, wantInErr: "ThrottlingException: Rate exceeded",
		},
		{
			name:      "server exception",
			status:    500,
			resp:      map[string]any{"__type": "ServerException", "message": "Internal failure."},
			temporary: true, wantInErr: "ServerException",
		},
		{
			name:      "provisioning quota",
			status:    400,
			resp:      map[string]any{"__type": "ClientException", "message": "Tasks provisioning capacity limit exceeded."},
			temporary: true, wantInErr: "ClientException",
		},
		{
			name:      "bad task definition",
			status:    400,
			resp:      map[string]any{"__type": "ClientException", "message": "TaskDefinition is inactive"},
			temporary: false, wantInErr: "ClientException: TaskDefinition is inactive",
		},
		{
			name:      "namespaced error type",
			status:    400,
			resp:      map[string]any{"__type": "com.amazonaws.ecs#InvalidParameterException", "message": "Task definition does not support launch_type FARGATE."},
			temporary: false, wantInErr: "InvalidParameterException: Task definition does not support launch_type FARGATE.",
		},
		{
			name:      "access denied",
			status:    400,
			resp:      map[string]any{"__type": "AccessDeniedException", "message": "User is not authorized to perform: iam:PassRole"},
			temporary: false, wantInErr: "AccessDeniedException",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, fe, _ := newTestDriver(t, nil)
			setHook(fe, func(target string, _ []byte) (int, any, bool) {
				if target == "RunTask" {
					return tc.status, tc.resp, true
				}
				return 0, nil, false
			})
			_, err := d.Provision(context.Background(), provisionRequest())
			if err == nil {
				t.Fatal("Provision succeeded")
			}
			if got := errors.Is(err, compute.ErrTemporary); got != tc.temporary {
				t.Errorf("temporary = %v, want %v (%v)", got, tc.temporary, err)
			}
			if !strings.Contains(err.Error(), tc.wantInErr) || !strings.HasPrefix(err.Error(), "ecs RunTask: ") {
				t.Errorf("error %q, want it to name ecs RunTask and %q", err, tc.wantInErr)
			}
			if strings.Contains(err.Error(), "fake-request-id") || strings.Contains(strings.ToLower(err.Error()), "requestid") {
				t.Errorf("error leaks the AWS request id: %q", err)
			}
			var de *Error
			if !errors.As(err, &de) {
				t.Errorf("error is not an *Error: %T", err)
			}
			if tc.status != 200 {
				var apiErr smithy.APIError
				if !errors.As(err, &apiErr) {
					t.Errorf("the AWS API error is not reachable with errors.As")
				}
			}
		})
	}
}

func TestProvisionRejectsBadInput(t *testing.T) {
	d, fe, _ := newTestDriver(t, nil)
	mk := func(mut func(*compute.ProvisionRequest)) compute.ProvisionRequest {
		r := provisionRequest()
		mut(&r)
		return r
	}
	for name, req := range map[string]compute.ProvisionRequest{
		"pipeline name":       mk(func(r *compute.ProvisionRequest) { r.Pipeline = "a/b" }),
		"deployment id":       mk(func(r *compute.ProvisionRequest) { r.DeploymentID = "x y" }),
		"initial":             mk(func(r *compute.ProvisionRequest) { r.Initial = "Suspended" }),
		"runtime config json": mk(func(r *compute.ProvisionRequest) { r.RuntimeConfig = json.RawMessage(`{"a":`) }),
		"fargate size": mk(func(r *compute.ProvisionRequest) {
			r.RuntimeConfig = json.RawMessage(`{"resources":{"cpu":256,"memory":4096}}`)
		}),
		"too large": mk(func(r *compute.ProvisionRequest) {
			r.RuntimeConfig = json.RawMessage(`{"blob":"` + strings.Repeat("x", 9000) + `"}`)
		}),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := d.Provision(context.Background(), req)
			if err == nil || errors.Is(err, compute.ErrTemporary) {
				t.Errorf("Provision = %v, want a permanent error", err)
			}
		})
	}
	if n := len(fe.callsTo("RunTask")); n != 0 {
		t.Errorf("%d RunTask calls for bad input", n)
	}
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	d, fe, _ := newTestDriver(t, nil)

	res, err := d.Check(ctx, testPipeline, testDeployment)
	if err != nil {
		t.Fatal(err)
	}
	if res.State != compute.StateGone || !strings.Contains(res.Reason, "no ECS task") {
		t.Errorf("Check before provisioning = %+v, want Gone", res)
	}

	dep, err := d.Provision(ctx, provisionRequest())
	if err != nil {
		t.Fatal(err)
	}
	res, err = d.Check(ctx, testPipeline, testDeployment)
	if err != nil {
		t.Fatal(err)
	}
	if res.State != compute.StateStarting || res.Location != "" || res.Reason != "" {
		t.Errorf("Check while PROVISIONING = %+v, want Starting without location", res)
	}

	fe.mu.Lock()
	fe.tasks[dep.Handle].LastStatus = "PENDING"
	fe.mu.Unlock()
	fe.setRunning(dep.Handle)
	fe.mu.Lock()
	fe.tasks[dep.Handle].LastStatus = "PENDING" // ENI attached, containers still starting
	fe.mu.Unlock()
	res, _ = d.Check(ctx, testPipeline, testDeployment)
	if res.State != compute.StateStarting || res.Location != "http://10.0.1.23:8080" {
		t.Errorf("Check while PENDING with an IP = %+v", res)
	}

	fe.setRunning(dep.Handle)
	res, _ = d.Check(ctx, testPipeline, testDeployment)
	if res.State != compute.StateRunning || res.Location != "http://10.0.1.23:8080" || res.Reason != "" {
		t.Errorf("Check while RUNNING = %+v", res)
	}
	describes := fe.callsTo("DescribeTasks")
	if !strings.Contains(string(describes[len(describes)-1].Body), dep.Handle) ||
		!strings.Contains(string(describes[len(describes)-1].Body), `"cluster":"sluice"`) {
		t.Errorf("DescribeTasks request %s", describes[len(describes)-1].Body)
	}

	fe.setStopped(dep.Handle, 137, "EssentialContainerExited", "Essential container in task exited", "OutOfMemoryError: Container killed due to memory usage")
	res, err = d.Check(ctx, testPipeline, testDeployment)
	if err != nil {
		t.Fatal(err)
	}
	if res.State != compute.StateGone {
		t.Errorf("Check after exit = %+v, want Gone", res)
	}
	for _, want := range []string{"EssentialContainerExited", "Essential container in task exited", "code 137", "OutOfMemoryError"} {
		if !strings.Contains(res.Reason, want) {
			t.Errorf("Reason %q lacks %q", res.Reason, want)
		}
	}
}

func TestCheckStoppingIsNotYetGone(t *testing.T) {
	ctx := context.Background()
	d, fe, _ := newTestDriver(t, nil)
	dep, err := d.Provision(ctx, provisionRequest())
	if err != nil {
		t.Fatal(err)
	}
	fe.setRunning(dep.Handle)
	if err := d.Deprovision(ctx, testPipeline, testDeployment); err != nil {
		t.Fatal(err)
	}
	// StopTask left it DEACTIVATING: the container may still write checkpoints.
	res, _ := d.Check(ctx, testPipeline, testDeployment)
	if res.State != compute.StateRunning {
		t.Errorf("Check while stopping = %+v, want Running", res)
	}
	for _, st := range []string{"DEPROVISIONING", "STOPPED"} {
		fe.mu.Lock()
		fe.tasks[dep.Handle].LastStatus = st
		fe.mu.Unlock()
		res, _ = d.Check(ctx, testPipeline, testDeployment)
		if res.State != compute.StateGone || !strings.Contains(res.Reason, "UserInitiated") || !strings.Contains(res.Reason, "deprovisioned") {
			t.Errorf("Check when %s = %+v, want Gone with the stop reason", st, res)
		}
	}
}

func TestCheckErrors(t *testing.T) {
	d, fe, _ := newTestDriver(t, nil)
	setHook(fe, func(target string, _ []byte) (int, any, bool) {
		status, resp := ecsError(400, "ThrottlingException", "Rate exceeded")
		return status, resp, target == "ListTasks"
	})
	_, err := d.Check(context.Background(), testPipeline, testDeployment)
	if !errors.Is(err, compute.ErrTemporary) || !strings.HasPrefix(err.Error(), "ecs ListTasks: ") {
		t.Errorf("Check = %v, want a temporary ListTasks error", err)
	}
	setHook(fe, func(target string, _ []byte) (int, any, bool) {
		status, resp := ecsError(400, "ClusterNotFoundException", "Cluster not found.")
		return status, resp, true
	})
	_, err = d.Check(context.Background(), testPipeline, testDeployment)
	if err == nil || errors.Is(err, compute.ErrTemporary) || !strings.Contains(err.Error(), "ClusterNotFoundException: Cluster not found.") {
		t.Errorf("Check = %v, want a permanent ClusterNotFoundException", err)
	}
}

func TestListTasksPagination(t *testing.T) {
	ctx := context.Background()
	d, fe, _ := newTestDriver(t, nil)
	fe.with(func() { fe.listPageSize = 1 })
	// Two tasks for one deployment (started outside the driver): Deprovision stops both.
	for _, tok := range []string{"a", "b"} {
		fe.mu.Lock()
		status, resp := fe.runTask([]byte(`{"cluster":"sluice","taskDefinition":"sluice-runtime:7","count":1,"clientToken":"` + tok + `","startedBy":"` + testDeployment +
			`","networkConfiguration":{"awsvpcConfiguration":{"subnets":["subnet-0a1b2c3d"]}}}`))
		fe.mu.Unlock()
		if status != 200 {
			t.Fatalf("RunTask: %d %v", status, resp)
		}
	}
	if err := d.Deprovision(ctx, testPipeline, testDeployment); err != nil {
		t.Fatal(err)
	}
	if n := len(fe.callsTo("StopTask")); n != 2 {
		t.Errorf("%d StopTask calls, want 2", n)
	}
}

func TestDeprovision(t *testing.T) {
	ctx := context.Background()
	d, fe, _ := newTestDriver(t, nil)
	dep, err := d.Provision(ctx, provisionRequest())
	if err != nil {
		t.Fatal(err)
	}
	fe.setRunning(dep.Handle)

	if err := d.Deprovision(ctx, testPipeline, testDeployment); err != nil {
		t.Fatal(err)
	}
	stops := fe.callsTo("StopTask")
	if len(stops) != 1 {
		t.Fatalf("%d StopTask calls, want 1", len(stops))
	}
	var stop struct {
		Cluster, Task, Reason string
	}
	if err := json.Unmarshal(stops[0].Body, &stop); err != nil {
		t.Fatal(err)
	}
	if stop.Cluster != "sluice" || stop.Task != dep.Handle || !strings.Contains(stop.Reason, testDeployment) || len(stop.Reason) > 255 {
		t.Errorf("StopTask request %s", stops[0].Body)
	}
	if got := fe.task(dep.Handle).DesiredStatus; got != "STOPPED" {
		t.Errorf("desiredStatus %q after Deprovision", got)
	}

	// Twice: the task is no longer desired RUNNING, nothing more to stop.
	if err := d.Deprovision(ctx, testPipeline, testDeployment); err != nil {
		t.Fatalf("second Deprovision: %v", err)
	}
	if n := len(fe.callsTo("StopTask")); n != 1 {
		t.Errorf("%d StopTask calls after the second Deprovision, want 1", n)
	}
	// Deprovision never touches storage.
	if n := len(fe.callsTo("RunTask")); n != 1 {
		t.Errorf("RunTask calls %d", n)
	}
}

func TestDeprovisionMissingTask(t *testing.T) {
	ctx := context.Background()
	d, fe, _ := newTestDriver(t, nil)
	// No task at all.
	if err := d.Deprovision(ctx, testPipeline, testDeployment); err != nil {
		t.Fatalf("Deprovision without a task: %v", err)
	}
	if n := len(fe.callsTo("StopTask")); n != 0 {
		t.Errorf("%d StopTask calls without a task", n)
	}
	// ListTasks still lists a task that StopTask no longer knows.
	gone := "arn:aws:ecs:us-east-1:123456789012:task/sluice/ffffffffffffffffffffffffffffffff"
	setHook(fe, func(target string, _ []byte) (int, any, bool) {
		if target == "ListTasks" {
			return 200, map[string]any{"taskArns": []string{gone}}, true
		}
		return 0, nil, false
	})
	if err := d.Deprovision(ctx, testPipeline, testDeployment); err != nil {
		t.Fatalf("Deprovision of a task ECS forgot: %v", err)
	}
	stops := fe.callsTo("StopTask")
	if len(stops) != 1 || !strings.Contains(string(stops[0].Body), gone) {
		t.Errorf("StopTask calls %v", stops)
	}
	// Other StopTask errors are reported.
	setHook(fe, func(target string, _ []byte) (int, any, bool) {
		switch target {
		case "ListTasks":
			return 200, map[string]any{"taskArns": []string{gone}}, true
		case "StopTask":
			status, resp := ecsError(400, "AccessDeniedException", "not authorized to perform: ecs:StopTask")
			return status, resp, true
		}
		return 0, nil, false
	})
	err := d.Deprovision(ctx, testPipeline, testDeployment)
	if err == nil || errors.Is(err, compute.ErrTemporary) || !strings.HasPrefix(err.Error(), "ecs StopTask: AccessDeniedException") {
		t.Errorf("Deprovision = %v, want a permanent StopTask error", err)
	}
}

// A deployment whose task already stopped is still that deployment: Provision
// returns it rather than starting another one.
func TestProvisionAfterTaskStoppedReturnsIt(t *testing.T) {
	ctx := context.Background()
	d, fe, _ := newTestDriver(t, nil)
	dep, err := d.Provision(ctx, provisionRequest())
	if err != nil {
		t.Fatal(err)
	}
	fe.setStopped(dep.Handle, 1, "EssentialContainerExited", "Essential container in task exited", "")
	again, err := d.Provision(ctx, provisionRequest())
	if err != nil || again.Handle != dep.Handle || fe.taskCount() != 1 {
		t.Errorf("Provision after stop = %+v, %v (%d tasks)", again, err, fe.taskCount())
	}
}

func TestNewValidatesConfig(t *testing.T) {
	_, err := New(Config{}, nil, nil)
	if err == nil {
		t.Fatal("New accepted an empty config")
	}
	for _, want := range []string{"Cluster", "TaskDefinition", "ContainerName", "StorageBucket", "Subnets"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		EnvCluster:          "sluice",
		EnvTaskDefinition:   "arn:aws:ecs:us-east-1:123456789012:task-definition/sluice-runtime:7",
		EnvContainerName:    "runtime",
		EnvSubnets:          "subnet-1, subnet-2",
		EnvSecurityGroups:   "sg-1",
		EnvAssignPublicIP:   "false",
		EnvCapacityProvider: "FARGATE_SPOT:3,FARGATE:1:1",
		EnvRuntimePort:      "9000",
		EnvStorageBucket:    "b",
		EnvStoragePrefix:    "p/",
		EnvTags:             "team=data,env=prod",
	}
	c, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Cluster != "sluice" || len(c.Subnets) != 2 || c.Subnets[1] != "subnet-2" || c.RuntimePort != 9000 ||
		c.StoragePrefix != "p" || c.Tags["env"] != "prod" || len(c.CapacityProviderStrategy) != 2 ||
		c.CapacityProviderStrategy[0] != (CapacityProvider{Name: "FARGATE_SPOT", Weight: 3}) ||
		c.CapacityProviderStrategy[1] != (CapacityProvider{Name: "FARGATE", Weight: 1, Base: 1}) {
		t.Errorf("config %+v", c)
	}
	env[EnvRuntimePort] = "x"
	if _, err := ConfigFromEnv(func(k string) string { return env[k] }); err == nil {
		t.Error("bad port accepted")
	}
}

func setHook(fe *fakeECS, h func(target string, body []byte) (int, any, bool)) {
	fe.with(func() { fe.hook = h })
}

// Regression: ListTasks was called with startedBy and desiredStatus together,
// which ECS refuses (startedBy must be the only filter), so every Provision,
// Check and Deprovision failed on AWS with a permanent InvalidParameterException.
func TestListTasksUsesStartedByAsItsOnlyFilter(t *testing.T) {
	ctx := context.Background()
	d, fe, _ := newTestDriver(t, nil)
	dep, err := d.Provision(ctx, provisionRequest())
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	fe.setRunning(dep.Handle)
	if res, err := d.Check(ctx, testPipeline, testDeployment); err != nil || res.State != compute.StateRunning {
		t.Fatalf("Check = %+v, %v", res, err)
	}
	if err := d.Deprovision(ctx, testPipeline, testDeployment); err != nil {
		t.Fatalf("Deprovision: %v", err)
	}
	if got := fe.task(dep.Handle).DesiredStatus; got != "STOPPED" {
		t.Errorf("desiredStatus %q after Deprovision, want STOPPED", got)
	}
	// Stopped now: found through the family's STOPPED tasks.
	if res, err := d.Check(ctx, testPipeline, testDeployment); err != nil || res.State != compute.StateRunning || res.Reason != "" {
		t.Errorf("Check while DEACTIVATING = %+v, %v, want Running", res, err)
	}
	for _, c := range fe.callsTo("ListTasks") {
		var in map[string]any
		_ = json.Unmarshal(c.Body, &in)
		if _, ok := in["startedBy"]; !ok {
			continue
		}
		delete(in, "cluster")
		delete(in, "nextToken")
		delete(in, "maxResults")
		if len(in) != 1 {
			t.Errorf("ListTasks with startedBy and other filters: %s", c.Body)
		}
	}
}

// A config RunTask would refuse on every call is refused by New.
func TestNewRefusesConfigECSWouldRefuse(t *testing.T) {
	many := map[string]string{}
	for i := range 48 {
		many[fmt.Sprint("k", i)] = "v"
	}
	cases := map[string]func(*Config){
		"17 subnets":           func(c *Config) { c.Subnets = strings.Split(strings.Repeat("s,", 16)+"s", ",") },
		"6 security groups":    func(c *Config) { c.SecurityGroups = strings.Split("a,b,c,d,e,f", ",") },
		"48 tags":              func(c *Config) { c.Tags = many },
		"aws: tag":             func(c *Config) { c.Tags = map[string]string{"aws:x": "y"} },
		"tag with a comma":     func(c *Config) { c.Tags = map[string]string{"x": "a,b"} },
		"tag value 257":        func(c *Config) { c.Tags = map[string]string{"x": strings.Repeat("v", 257)} },
		"weight 1001":          func(c *Config) { c.CapacityProviderStrategy = []CapacityProvider{{Name: "FARGATE", Weight: 1001}} },
		"two bases":            func(c *Config) { c.CapacityProviderStrategy = []CapacityProvider{{"A", 1, 1}, {"B", 1, 1}} },
		"no weight among many": func(c *Config) { c.CapacityProviderStrategy = []CapacityProvider{{Name: "A"}, {Name: "B"}} },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			mutate(&cfg)
			if _, err := New(cfg, &ecs.Client{}, &s3.Client{}); err == nil {
				t.Error("New accepted it")
			}
		})
	}
}
