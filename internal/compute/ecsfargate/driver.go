package ecsfargate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluicehq/sluice/internal/compute"
	"github.com/sluicehq/sluice/internal/ctxutil"
)

// ECSAPI is the part of the ECS client the driver uses (*ecs.Client satisfies it).
type ECSAPI interface {
	RunTask(ctx context.Context, in *ecs.RunTaskInput, optFns ...func(*ecs.Options)) (*ecs.RunTaskOutput, error)
	ListTasks(ctx context.Context, in *ecs.ListTasksInput, optFns ...func(*ecs.Options)) (*ecs.ListTasksOutput, error)
	DescribeTasks(ctx context.Context, in *ecs.DescribeTasksInput, optFns ...func(*ecs.Options)) (*ecs.DescribeTasksOutput, error)
	StopTask(ctx context.Context, in *ecs.StopTaskInput, optFns ...func(*ecs.Options)) (*ecs.StopTaskOutput, error)
}

// S3API is the part of the S3 client the driver uses (*s3.Client satisfies it).
type S3API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	DeleteObjects(ctx context.Context, in *s3.DeleteObjectsInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error)
}

// Environment variables the runtime container receives.
const (
	EnvRuntimeConfig = "SLUICE_RUNTIME_CONFIG"
	EnvInitial       = "SLUICE_INITIAL"
	EnvPipeline      = "SLUICE_PIPELINE"
	EnvPipelineID    = "SLUICE_PIPELINE_ID"
	EnvDeploymentID  = "SLUICE_DEPLOYMENT_ID"
	EnvStorageURI    = "SLUICE_STORAGE_URI"
	// EnvProgramURI is the S3 object holding the pipeline's program (every
	// program field as JSON): the program is too large for the task's
	// environment (RunTask overrides are at most 8192 characters).
	EnvProgramURI = "SLUICE_PROGRAM_URI"
	EnvListen     = "SLUICE_LISTEN"
)

// Tags every task carries.
const (
	TagPipeline     = "sluice:pipeline"
	TagPipelineID   = "sluice:pipeline-id"
	TagDeploymentID = "sluice:deployment-id"
)

// maxOverridesChars is ECS's limit on the JSON of a RunTask's overrides.
const maxOverridesChars = 8192

var (
	pipelineNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,63}$`)
	// deploymentIDRE: a valid clientToken (≤64 of ASCII 33-126) and startedBy
	// (letters, digits, - / _); the control plane uses UUIDs.
	deploymentIDRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,36}$`)
	pipelineIDRE   = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
)

// Driver runs pipeline deployments as ECS tasks on Fargate. It keeps no state:
// a deployment's task is found by startedBy = deployment id.
type Driver struct {
	cfg Config
	ecs ECSAPI
	s3  S3API

	// settleDelays are the waits before each new look when ECS lists no task of
	// a deployment (see lookupSettled); sleep waits (tests replace it).
	settleDelays []time.Duration
	sleep        func(context.Context, time.Duration) error
}

// listSettleDelays: ECS's API is eventually consistent ("the result of an API
// command you run that affects your Amazon ECS resources might not be
// immediately visible to all subsequent commands you run", RunTask's doc
// comment, which advises retrying "starting with a couple of seconds of wait
// time"), so a task RunTask just started may not be listed yet. Seven seconds in
// all keeps a Check or Deprovision well inside a Lambda's timeout.
var listSettleDelays = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}

var _ compute.Driver = (*Driver)(nil)

// New returns a driver using the given clients.
func New(cfg Config, ecsClient ECSAPI, s3Client S3API) (*Driver, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if ecsClient == nil || s3Client == nil {
		return nil, errors.New("ecsfargate: ECS and S3 clients are required")
	}
	return &Driver{cfg: cfg, ecs: ecsClient, s3: s3Client, settleDelays: listSettleDelays, sleep: ctxutil.Sleep}, nil
}

// NewFromAWSConfig returns a driver with ECS and S3 clients built from awsCfg.
func NewFromAWSConfig(awsCfg aws.Config, cfg Config) (*Driver, error) {
	return New(cfg, ecs.NewFromConfig(awsCfg), s3.NewFromConfig(awsCfg))
}

// Provision starts the deployment's task, or returns the one already started for
// this deployment id.
func (d *Driver) Provision(ctx context.Context, req compute.ProvisionRequest) (compute.Deployment, error) {
	const op = "ecs RunTask"
	if err := validateProvision(req); err != nil {
		return compute.Deployment{}, err
	}
	// A task already started for this deployment (by an earlier attempt whose
	// answer was lost) is the deployment, even if it has stopped since. Nothing
	// listed is not proof that there is none (ListTasks lags RunTask): the
	// RunTask below carries the deployment id as its clientToken, so ECS answers
	// a repeat with the task the first attempt started instead of a second one.
	if found, err := d.lookup(ctx, req.DeploymentID); err != nil {
		return compute.Deployment{}, err
	} else if len(found.tasks) > 0 {
		return d.deployment(pickTask(found.tasks)), nil
	} else if len(found.running) > 0 {
		// Listed but not yet described: its address comes later, from Check.
		return compute.Deployment{Handle: found.running[0]}, nil
	}
	in, err := d.runTaskInput(req)
	if err != nil {
		return compute.Deployment{}, err
	}
	if err := d.putProgram(ctx, req); err != nil {
		return compute.Deployment{}, err
	}
	out, err := d.ecs.RunTask(ctx, in)
	if err != nil {
		var conflict *ecstypes.ConflictException
		if errors.As(err, &conflict) && len(conflict.ResourceIds) > 0 {
			// The token already started a task (with different parameters): that
			// task is this deployment's.
			tasks, derr := d.describe(ctx, conflict.ResourceIds)
			if derr != nil {
				return compute.Deployment{}, derr
			}
			if len(tasks) > 0 {
				return d.deployment(pickTask(tasks)), nil
			}
			// DescribeTasks does not know the task yet (eventual consistency):
			// ECS named it, so it exists; Check reports its address later.
			return compute.Deployment{Handle: conflict.ResourceIds[0]}, nil
		}
		return compute.Deployment{}, awsError(op, err)
	}
	if len(out.Tasks) == 0 {
		if len(out.Failures) > 0 {
			f := out.Failures[0]
			return compute.Deployment{}, failureError(op, aws.ToString(f.Reason), aws.ToString(f.Detail), aws.ToString(f.Arn))
		}
		return compute.Deployment{}, failureError(op, "", "", "")
	}
	return d.deployment(out.Tasks[0]), nil
}

func validateProvision(req compute.ProvisionRequest) error {
	const op = "provision"
	switch {
	case !pipelineNameRE.MatchString(req.Pipeline):
		return permanent(op, "invalid pipeline name %q", req.Pipeline)
	case !pipelineIDRE.MatchString(req.PipelineID):
		return permanent(op, "invalid pipeline id %q", req.PipelineID)
	case !deploymentIDRE.MatchString(req.DeploymentID):
		return permanent(op, "invalid deployment id %q", req.DeploymentID)
	case req.Initial != "Running" && req.Initial != "Paused":
		return permanent(op, "initial state must be Running or Paused, not %q", req.Initial)
	}
	return nil
}

func (d *Driver) runTaskInput(req compute.ProvisionRequest) (*ecs.RunTaskInput, error) {
	rc := []byte(req.RuntimeConfig)
	if len(bytes.TrimSpace(rc)) == 0 {
		rc = []byte("{}")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, rc); err != nil {
		return nil, permanent("provision", "runtime_config is not valid JSON: %v", err)
	}
	size, err := sizeFromRuntimeConfig(compact.Bytes())
	if err != nil {
		return nil, permanent("provision", "%v", err)
	}
	env := []ecstypes.KeyValuePair{
		kv(EnvRuntimeConfig, compact.String()),
		kv(EnvInitial, req.Initial),
		kv(EnvPipeline, req.Pipeline),
		kv(EnvPipelineID, req.PipelineID),
		kv(EnvDeploymentID, req.DeploymentID),
		kv(EnvStorageURI, d.StorageURI(req.Pipeline, req.PipelineID)),
		kv(EnvProgramURI, d.ProgramURI(req.Pipeline, req.PipelineID, req.Program.Version)),
		kv(EnvListen, "0.0.0.0:"+strconv.Itoa(d.cfg.RuntimePort)),
	}
	overrides := &ecstypes.TaskOverride{
		ContainerOverrides: []ecstypes.ContainerOverride{{
			Name:        aws.String(d.cfg.ContainerName),
			Environment: env,
		}},
	}
	if size.CPU != "" {
		overrides.Cpu = aws.String(size.CPU)
	}
	if size.Memory != "" {
		overrides.Memory = aws.String(size.Memory)
	}
	if n := overridesChars(overrides); n > maxOverridesChars {
		return nil, permanent("provision", "runtime_config too large: ECS task overrides would be %d characters, the limit is %d", n, maxOverridesChars)
	}

	assign := ecstypes.AssignPublicIpDisabled
	if d.cfg.AssignPublicIP {
		assign = ecstypes.AssignPublicIpEnabled
	}
	in := &ecs.RunTaskInput{
		Cluster:        aws.String(d.cfg.Cluster),
		TaskDefinition: aws.String(d.cfg.TaskDefinition),
		Count:          aws.Int32(1),
		ClientToken:    aws.String(req.DeploymentID),
		StartedBy:      aws.String(req.DeploymentID),
		NetworkConfiguration: &ecstypes.NetworkConfiguration{
			AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{
				Subnets:        d.cfg.Subnets,
				SecurityGroups: d.cfg.SecurityGroups,
				AssignPublicIp: assign,
			},
		},
		Overrides:            overrides,
		Tags:                 d.tags(req),
		PropagateTags:        ecstypes.PropagateTagsTaskDefinition,
		EnableECSManagedTags: true,
	}
	if d.cfg.PlatformVersion != "" {
		in.PlatformVersion = aws.String(d.cfg.PlatformVersion)
	}
	if len(d.cfg.CapacityProviderStrategy) > 0 {
		for _, p := range d.cfg.CapacityProviderStrategy {
			in.CapacityProviderStrategy = append(in.CapacityProviderStrategy, ecstypes.CapacityProviderStrategyItem{
				CapacityProvider: aws.String(p.Name),
				Weight:           p.Weight,
				Base:             p.Base,
			})
		}
	} else {
		in.LaunchType = ecstypes.LaunchTypeFargate
	}
	return in, nil
}

func kv(name, value string) ecstypes.KeyValuePair {
	return ecstypes.KeyValuePair{Name: aws.String(name), Value: aws.String(value)}
}

// overridesChars is the length of the overrides' JSON as ECS counts it.
func overridesChars(o *ecstypes.TaskOverride) int {
	type pair struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}
	type container struct {
		Name        string `json:"name"`
		Environment []pair `json:"environment"`
	}
	var doc struct {
		ContainerOverrides []container `json:"containerOverrides"`
		CPU                string      `json:"cpu,omitempty"`
		Memory             string      `json:"memory,omitempty"`
	}
	for _, c := range o.ContainerOverrides {
		cc := container{Name: aws.ToString(c.Name)}
		for _, e := range c.Environment {
			cc.Environment = append(cc.Environment, pair{aws.ToString(e.Name), aws.ToString(e.Value)})
		}
		doc.ContainerOverrides = append(doc.ContainerOverrides, cc)
	}
	doc.CPU, doc.Memory = aws.ToString(o.Cpu), aws.ToString(o.Memory)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(doc)
	return len(strings.TrimSpace(buf.String()))
}

// tags are the task's tags, sorted so that every attempt sends identical parameters
// (a RunTask retried with the same clientToken must match the first one).
func (d *Driver) tags(req compute.ProvisionRequest) []ecstypes.Tag {
	all := map[string]string{}
	for k, v := range d.cfg.Tags {
		all[k] = v
	}
	all[TagPipeline] = req.Pipeline
	all[TagPipelineID] = req.PipelineID
	all[TagDeploymentID] = req.DeploymentID
	out := make([]ecstypes.Tag, 0, len(all))
	for _, k := range sortedKeys(all) {
		out = append(out, ecstypes.Tag{Key: aws.String(k), Value: aws.String(all[k])})
	}
	return out
}

func (d *Driver) deployment(t ecstypes.Task) compute.Deployment {
	return compute.Deployment{Handle: aws.ToString(t.TaskArn), Location: d.location(t)}
}

// location is http://<private IPv4>:<port> once the task's ENI has an address.
func (d *Driver) location(t ecstypes.Task) string {
	ip := ""
	for _, a := range t.Attachments {
		if aws.ToString(a.Type) != "ElasticNetworkInterface" {
			continue
		}
		for _, kv := range a.Details {
			if aws.ToString(kv.Name) == "privateIPv4Address" && aws.ToString(kv.Value) != "" {
				ip = aws.ToString(kv.Value)
			}
		}
	}
	if ip == "" {
		for _, c := range t.Containers {
			for _, ni := range c.NetworkInterfaces {
				if v := aws.ToString(ni.PrivateIpv4Address); v != "" {
					ip = v
				}
			}
		}
	}
	if ip == "" {
		return ""
	}
	return "http://" + net.JoinHostPort(ip, strconv.Itoa(d.cfg.RuntimePort))
}

// Check reports the deployment's task state.
func (d *Driver) Check(ctx context.Context, pipeline, deploymentID string) (compute.CheckResult, error) {
	if !deploymentIDRE.MatchString(deploymentID) {
		return compute.CheckResult{}, permanent("check", "invalid deployment id %q", deploymentID)
	}
	found, err := d.lookupSettled(ctx, deploymentID)
	if err != nil {
		return compute.CheckResult{}, err
	}
	if found.none() {
		return compute.CheckResult{State: compute.StateGone, Reason: "no ECS task found for deployment " + deploymentID}, nil
	}
	if len(found.tasks) == 0 {
		// ListTasks shows a task desired RUNNING that DescribeTasks does not know
		// yet: it was started a moment ago.
		return compute.CheckResult{State: compute.StateStarting}, nil
	}
	task := pickTask(found.tasks)
	switch strings.ToUpper(aws.ToString(task.LastStatus)) {
	case "PROVISIONING", "PENDING", "ACTIVATING":
		return compute.CheckResult{State: compute.StateStarting, Location: d.location(task)}, nil
	case "RUNNING", "DEACTIVATING", "STOPPING":
		// Still running or shutting down: its containers may still write to storage.
		return compute.CheckResult{State: compute.StateRunning, Location: d.location(task)}, nil
	default: // DEPROVISIONING, STOPPED, DELETED
		return compute.CheckResult{State: compute.StateGone, Reason: d.stopReason(task)}, nil
	}
}

// stopReason describes why a task stopped: stop code, stopped reason and the
// runtime container's exit code and reason.
func (d *Driver) stopReason(t ecstypes.Task) string {
	var parts []string
	head := "task " + strings.ToLower(aws.ToString(t.LastStatus))
	if t.StopCode != "" {
		head += " (" + string(t.StopCode) + ")"
	}
	parts = append(parts, head)
	if r := aws.ToString(t.StoppedReason); r != "" {
		parts = append(parts, r)
	}
	for _, c := range t.Containers {
		if aws.ToString(c.Name) != d.cfg.ContainerName {
			continue
		}
		switch {
		case c.ExitCode != nil && aws.ToString(c.Reason) != "":
			parts = append(parts, fmt.Sprintf("container %s exited with code %d: %s", d.cfg.ContainerName, *c.ExitCode, aws.ToString(c.Reason)))
		case c.ExitCode != nil:
			parts = append(parts, fmt.Sprintf("container %s exited with code %d", d.cfg.ContainerName, *c.ExitCode))
		case aws.ToString(c.Reason) != "":
			parts = append(parts, fmt.Sprintf("container %s: %s", d.cfg.ContainerName, aws.ToString(c.Reason)))
		}
	}
	return strings.Join(parts, ": ")
}

// Deprovision stops every task of the deployment that is not already stopping.
func (d *Driver) Deprovision(ctx context.Context, pipeline, deploymentID string) error {
	const op = "ecs StopTask"
	if !deploymentIDRE.MatchString(deploymentID) {
		return permanent("deprovision", "invalid deployment id %q", deploymentID)
	}
	// Settled: a task started a moment ago may not be listed yet, and reporting
	// success then would leave it running with nothing left to stop it.
	found, err := d.lookupSettled(ctx, deploymentID)
	if err != nil {
		return err
	}
	for _, arn := range found.running {
		_, err := d.ecs.StopTask(ctx, &ecs.StopTaskInput{
			Cluster: aws.String(d.cfg.Cluster),
			Task:    aws.String(arn),
			Reason:  aws.String("Sluice: deployment " + deploymentID + " of pipeline " + pipeline + " deprovisioned"),
		})
		if err != nil && !taskNotFound(err) {
			return awsError(op, err)
		}
	}
	return nil
}

// taskNotFound recognises StopTask's answer for a task ECS no longer knows.
func taskNotFound(err error) bool {
	var ip *ecstypes.InvalidParameterException
	var ce *ecstypes.ClientException
	var msg string
	switch {
	case errors.As(err, &ip):
		msg = ip.ErrorMessage()
	case errors.As(err, &ce):
		msg = ce.ErrorMessage()
	default:
		return false
	}
	return strings.Contains(strings.ToLower(msg), "not found")
}

// deploymentTasks is what ECS shows of one deployment's tasks.
type deploymentTasks struct {
	// running are the task ARNs listed for startedBy = deployment id: the tasks
	// ECS still wants running.
	running []string
	// tasks are the described tasks: the running ones if any, else the
	// deployment's tasks that ECS has set to STOPPED.
	tasks []ecstypes.Task
}

func (t deploymentTasks) none() bool { return len(t.running) == 0 && len(t.tasks) == 0 }

// lookup finds the deployment's tasks. ListTasks cannot filter by startedBy and
// desired status together (ListTasksInput.StartedBy: "When you specify startedBy
// as the filter, it must be the only filter that you use"; AWS answers
// InvalidParameterException "cannot specify startedBy with other arguments",
// aws/aws-sdk-go-v2#1893). So the running tasks are listed by startedBy alone,
// which lists desired RUNNING only (ListTasksInput.DesiredStatus: "The default
// status filter is RUNNING"); only when there is none are the stopped tasks
// listed, by task definition family and desired status STOPPED, and picked out
// by their startedBy from DescribeTasks.
func (d *Driver) lookup(ctx context.Context, deploymentID string) (deploymentTasks, error) {
	running, err := d.listTaskArns(ctx, &ecs.ListTasksInput{
		Cluster:   aws.String(d.cfg.Cluster),
		StartedBy: aws.String(deploymentID),
	})
	if err != nil {
		return deploymentTasks{}, err
	}
	if len(running) > 0 {
		tasks, err := d.describe(ctx, running)
		return deploymentTasks{running: running, tasks: tasks}, err
	}
	stopped, err := d.listTaskArns(ctx, &ecs.ListTasksInput{
		Cluster:       aws.String(d.cfg.Cluster),
		Family:        aws.String(taskDefinitionFamily(d.cfg.TaskDefinition)),
		DesiredStatus: ecstypes.DesiredStatusStopped,
	})
	if err != nil || len(stopped) == 0 {
		return deploymentTasks{}, err
	}
	tasks, err := d.describe(ctx, stopped)
	if err != nil {
		return deploymentTasks{}, err
	}
	var mine []ecstypes.Task
	for _, t := range tasks {
		if aws.ToString(t.StartedBy) == deploymentID {
			mine = append(mine, t)
		}
	}
	return deploymentTasks{tasks: mine}, nil
}

// lookupSettled is lookup, looked again after each of settleDelays while ECS
// shows no task at all. Check and Deprovision wait because nothing listed may
// just be a task too new to be listed (eventual consistency): Check would call a
// starting deployment Gone, Deprovision would leave it running. They cannot ask
// DescribeTasks instead, as the task ARN is not passed to them (compute.Driver
// gives only the deployment id) and the driver keeps no state between Lambda
// invocations. Provision does not wait: RunTask's clientToken already makes a
// repeat return the task started before ("If you retry a request that completed
// successfully using the same client token and the same parameters, the retry
// succeeds without performing any further actions", ECS API reference, Ensuring
// idempotency). What this cannot cover is a listing that lags longer than
// settleDelays; the tasks' sluice:* tags let a sweeper find such a stray.
func (d *Driver) lookupSettled(ctx context.Context, deploymentID string) (deploymentTasks, error) {
	for attempt := 0; ; attempt++ {
		found, err := d.lookup(ctx, deploymentID)
		if err != nil || !found.none() || attempt == len(d.settleDelays) {
			return found, err
		}
		if err := d.sleep(ctx, d.settleDelays[attempt]); err != nil {
			return deploymentTasks{}, &Error{Op: "ecs ListTasks", Message: "waiting for the task list to settle: " + err.Error(), Temporary: true, cause: err}
		}
	}
}

// taskDefinitionFamily is the family of a task definition given as family,
// family:revision or ARN (…:task-definition/family:revision).
func taskDefinitionFamily(td string) string {
	if _, after, ok := strings.Cut(td, ":task-definition/"); ok {
		td = after
	}
	family, _, _ := strings.Cut(td, ":")
	return family
}

func pickTask(tasks []ecstypes.Task) ecstypes.Task {
	sort.SliceStable(tasks, func(i, j int) bool {
		ri := aws.ToString(tasks[i].DesiredStatus) == "RUNNING"
		rj := aws.ToString(tasks[j].DesiredStatus) == "RUNNING"
		if ri != rj {
			return ri
		}
		return aws.ToTime(tasks[i].CreatedAt).After(aws.ToTime(tasks[j].CreatedAt))
	})
	return tasks[0]
}

// listTaskArns lists every page of one ListTasks query.
func (d *Driver) listTaskArns(ctx context.Context, in *ecs.ListTasksInput) ([]string, error) {
	var arns []string
	p := ecs.NewListTasksPaginator(d.ecs, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, awsError("ecs ListTasks", err)
		}
		arns = append(arns, page.TaskArns...)
	}
	return arns, nil
}

// describe describes tasks (in batches of 100); tasks ECS reports MISSING are left out.
func (d *Driver) describe(ctx context.Context, arns []string) ([]ecstypes.Task, error) {
	var tasks []ecstypes.Task
	for start := 0; start < len(arns); start += 100 {
		end := min(start+100, len(arns))
		out, err := d.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{
			Cluster: aws.String(d.cfg.Cluster),
			Tasks:   arns[start:end],
		})
		if err != nil {
			return nil, awsError("ecs DescribeTasks", err)
		}
		for _, f := range out.Failures {
			if aws.ToString(f.Reason) != "MISSING" {
				return nil, failureError("ecs DescribeTasks", aws.ToString(f.Reason), aws.ToString(f.Detail), aws.ToString(f.Arn))
			}
		}
		tasks = append(tasks, out.Tasks...)
	}
	return tasks, nil
}
