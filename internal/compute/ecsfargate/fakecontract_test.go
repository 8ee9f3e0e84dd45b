package ecsfargate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/sluicehq/sluice/internal/compute"
)

// These tests hold the fakes to the AWS rules they claim to enforce (each rule
// and its source is commented in fakeecs_test.go / fakes3_test.go): through the
// real SDK clients, a request that breaks a rule must fail with the error type
// the SDK decodes from AWS's answer, and one that keeps it must pass.

func validRunTaskInput() *ecs.RunTaskInput {
	return &ecs.RunTaskInput{
		Cluster:        aws.String("sluice"),
		TaskDefinition: aws.String("sluice-runtime:7"),
		Count:          aws.Int32(1),
		ClientToken:    aws.String("token-1"),
		StartedBy:      aws.String("deployment-1"),
		LaunchType:     ecstypes.LaunchTypeFargate,
		NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{
			Subnets: []string{"subnet-1"}, SecurityGroups: []string{"sg-1"},
		}},
		Overrides: &ecstypes.TaskOverride{ContainerOverrides: []ecstypes.ContainerOverride{{
			Name: aws.String("runtime"), Environment: []ecstypes.KeyValuePair{kv("A", "b")},
		}}},
		Tags: []ecstypes.Tag{{Key: aws.String("team"), Value: aws.String("data")}},
	}
}

func manyTags(n int) []ecstypes.Tag {
	tags := make([]ecstypes.Tag, n)
	for i := range tags {
		tags[i] = ecstypes.Tag{Key: aws.String(fmt.Sprintf("k%d", i)), Value: aws.String("v")}
	}
	return tags
}

func TestFakeECSRunTaskRules(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*ecs.RunTaskInput)
		// wantErr is nil for a valid request, else a pointer to the expected error type.
		wantErr any
	}{
		{"valid", func(*ecs.RunTaskInput) {}, nil},
		{"default cluster does not exist", func(in *ecs.RunTaskInput) { in.Cluster = nil }, new(*ecstypes.ClusterNotFoundException)},
		{"cluster by ARN", func(in *ecs.RunTaskInput) {
			in.Cluster = aws.String("arn:aws:ecs:us-east-1:123456789012:cluster/sluice")
		}, nil},
		{"count 10", func(in *ecs.RunTaskInput) { in.Count = aws.Int32(10) }, nil},
		{"count 11", func(in *ecs.RunTaskInput) { in.Count = aws.Int32(11) }, new(*ecstypes.InvalidParameterException)},
		{"clientToken 64", func(in *ecs.RunTaskInput) { in.ClientToken = aws.String(strings.Repeat("t", 64)) }, nil},
		{"clientToken 65", func(in *ecs.RunTaskInput) { in.ClientToken = aws.String(strings.Repeat("t", 65)) }, new(*ecstypes.InvalidParameterException)},
		{"clientToken with a space", func(in *ecs.RunTaskInput) { in.ClientToken = aws.String("a b") }, new(*ecstypes.InvalidParameterException)},
		{"startedBy 128 with slash", func(in *ecs.RunTaskInput) { in.StartedBy = aws.String("a/" + strings.Repeat("b", 126)) }, nil},
		{"startedBy 129", func(in *ecs.RunTaskInput) { in.StartedBy = aws.String(strings.Repeat("b", 129)) }, new(*ecstypes.InvalidParameterException)},
		{"startedBy with colon", func(in *ecs.RunTaskInput) { in.StartedBy = aws.String("a:b") }, new(*ecstypes.InvalidParameterException)},
		{"50 tags", func(in *ecs.RunTaskInput) { in.Tags = manyTags(50) }, nil},
		{"51 tags", func(in *ecs.RunTaskInput) { in.Tags = manyTags(51) }, new(*ecstypes.InvalidParameterException)},
		{"tag key 128", func(in *ecs.RunTaskInput) { in.Tags[0].Key = aws.String(strings.Repeat("k", 128)) }, nil},
		{"tag key 129", func(in *ecs.RunTaskInput) { in.Tags[0].Key = aws.String(strings.Repeat("k", 129)) }, new(*ecstypes.InvalidParameterException)},
		{"tag value 256", func(in *ecs.RunTaskInput) { in.Tags[0].Value = aws.String(strings.Repeat("v", 256)) }, nil},
		{"tag value 257", func(in *ecs.RunTaskInput) { in.Tags[0].Value = aws.String(strings.Repeat("v", 257)) }, new(*ecstypes.InvalidParameterException)},
		{"tag key aws:", func(in *ecs.RunTaskInput) { in.Tags[0].Key = aws.String("aws:team") }, new(*ecstypes.InvalidParameterException)},
		{"tag value AWS:", func(in *ecs.RunTaskInput) { in.Tags[0].Value = aws.String("AWS:x") }, new(*ecstypes.InvalidParameterException)},
		{"duplicate tag key", func(in *ecs.RunTaskInput) { in.Tags = append(in.Tags, in.Tags[0]) }, new(*ecstypes.InvalidParameterException)},
		{"tag with comma", func(in *ecs.RunTaskInput) { in.Tags[0].Value = aws.String("a,b") }, new(*ecstypes.InvalidParameterException)},
		{"tag with allowed punctuation", func(in *ecs.RunTaskInput) { in.Tags[0].Value = aws.String("a+b-c=d.e_f:g/h@i j") }, nil},
		{"overrides over 8192", func(in *ecs.RunTaskInput) {
			in.Overrides.ContainerOverrides[0].Environment[0].Value = aws.String(strings.Repeat("x", 8192))
		}, new(*ecstypes.InvalidParameterException)},
		{"container override without name", func(in *ecs.RunTaskInput) { in.Overrides.ContainerOverrides[0].Name = nil }, new(*ecstypes.InvalidParameterException)},
		{"launchType with capacity providers", func(in *ecs.RunTaskInput) {
			in.CapacityProviderStrategy = []ecstypes.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE"), Weight: 1}}
		}, new(*ecstypes.InvalidParameterException)},
		{"capacity providers", func(in *ecs.RunTaskInput) {
			in.LaunchType = ""
			in.CapacityProviderStrategy = []ecstypes.CapacityProviderStrategyItem{
				{CapacityProvider: aws.String("FARGATE_SPOT"), Weight: 1000}, {CapacityProvider: aws.String("FARGATE"), Base: 100000},
			}
		}, nil},
		{"21 capacity providers", func(in *ecs.RunTaskInput) {
			in.LaunchType = ""
			for i := range 21 {
				in.CapacityProviderStrategy = append(in.CapacityProviderStrategy, ecstypes.CapacityProviderStrategyItem{CapacityProvider: aws.String(fmt.Sprint("cp", i)), Weight: 1})
			}
		}, new(*ecstypes.InvalidParameterException)},
		{"two bases", func(in *ecs.RunTaskInput) {
			in.LaunchType = ""
			in.CapacityProviderStrategy = []ecstypes.CapacityProviderStrategyItem{
				{CapacityProvider: aws.String("FARGATE_SPOT"), Weight: 1, Base: 1}, {CapacityProvider: aws.String("FARGATE"), Weight: 1, Base: 1},
			}
		}, new(*ecstypes.InvalidParameterException)},
		{"all weights zero", func(in *ecs.RunTaskInput) {
			in.LaunchType = ""
			in.CapacityProviderStrategy = []ecstypes.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE_SPOT")}, {CapacityProvider: aws.String("FARGATE")}}
		}, new(*ecstypes.InvalidParameterException)},
		{"weight 1001", func(in *ecs.RunTaskInput) {
			in.LaunchType = ""
			in.CapacityProviderStrategy = []ecstypes.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE"), Weight: 1001}}
		}, new(*ecstypes.InvalidParameterException)},
		{"base 100001", func(in *ecs.RunTaskInput) {
			in.LaunchType = ""
			in.CapacityProviderStrategy = []ecstypes.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE"), Weight: 1, Base: 100001}}
		}, new(*ecstypes.InvalidParameterException)},
		{"propagateTags SERVICE", func(in *ecs.RunTaskInput) { in.PropagateTags = ecstypes.PropagateTagsService }, new(*ecstypes.InvalidParameterException)},
		{"no network configuration", func(in *ecs.RunTaskInput) { in.NetworkConfiguration = nil }, new(*ecstypes.InvalidParameterException)},
		{"17 subnets", func(in *ecs.RunTaskInput) {
			in.NetworkConfiguration.AwsvpcConfiguration.Subnets = strings.Split(strings.Repeat("subnet-x,", 16)+"subnet-y", ",")
		}, new(*ecstypes.InvalidParameterException)},
		{"6 security groups", func(in *ecs.RunTaskInput) {
			in.NetworkConfiguration.AwsvpcConfiguration.SecurityGroups = strings.Split("a,b,c,d,e,f", ",")
		}, new(*ecstypes.InvalidParameterException)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fe := newFakeECS(t)
			in := validRunTaskInput()
			tc.mutate(in)
			_, err := fe.client().RunTask(context.Background(), in)
			checkAPIError(t, err, tc.wantErr)
		})
	}
}

// checkAPIError: wantErr nil means success, else err must be of *wantErr's type.
func checkAPIError(t *testing.T, err error, wantErr any) {
	t.Helper()
	if wantErr == nil {
		if err != nil {
			t.Fatalf("refused a valid request: %v", err)
		}
		return
	}
	if err == nil || !errors.As(err, wantErr) {
		t.Fatalf("error = %v, want %T", err, wantErr)
	}
}

func TestFakeECSRunTaskClientToken(t *testing.T) {
	ctx := context.Background()
	fe := newFakeECS(t)
	fe.with(func() { fe.clusters["other"] = true })
	c := fe.client()
	first, err := c.RunTask(ctx, validRunTaskInput())
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(first.Tasks[0].TaskArn)

	again, err := c.RunTask(ctx, validRunTaskInput())
	if err != nil || aws.ToString(again.Tasks[0].TaskArn) != arn || fe.taskCount() != 1 {
		t.Errorf("same token, same parameters = %v, %v (%d tasks), want the first task again", again, err, fe.taskCount())
	}

	changed := validRunTaskInput()
	changed.StartedBy = aws.String("someone-else")
	_, err = c.RunTask(ctx, changed)
	var conflict *ecstypes.ConflictException
	if !errors.As(err, &conflict) || len(conflict.ResourceIds) != 1 || conflict.ResourceIds[0] != arn {
		t.Errorf("same token, other parameters = %v, want ConflictException naming %s", err, arn)
	}

	elsewhere := validRunTaskInput()
	elsewhere.Cluster = aws.String("other")
	out, err := c.RunTask(ctx, elsewhere)
	if err != nil || aws.ToString(out.Tasks[0].TaskArn) == arn {
		t.Errorf("same token in another cluster = %v, %v, want a task of its own", out, err)
	}
}

func TestFakeECSListTasksRules(t *testing.T) {
	ctx := context.Background()
	fe := newFakeECS(t)
	c := fe.client()
	var arns []string
	for i := range 5 {
		in := validRunTaskInput()
		in.ClientToken = aws.String(fmt.Sprint("t", i))
		out, err := c.RunTask(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		arns = append(arns, aws.ToString(out.Tasks[0].TaskArn))
	}
	fe.setStopped(arns[4], 0, "EssentialContainerExited", "", "")

	cases := []struct {
		name    string
		in      ecs.ListTasksInput
		wantErr any
		want    int // tasks listed over every page
	}{
		{"startedBy and cluster", ecs.ListTasksInput{Cluster: aws.String("sluice"), StartedBy: aws.String("deployment-1")}, nil, 4},
		{"startedBy and desiredStatus", ecs.ListTasksInput{Cluster: aws.String("sluice"), StartedBy: aws.String("deployment-1"), DesiredStatus: ecstypes.DesiredStatusStopped}, new(*ecstypes.InvalidParameterException), 0},
		{"startedBy and family", ecs.ListTasksInput{Cluster: aws.String("sluice"), StartedBy: aws.String("deployment-1"), Family: aws.String("sluice-runtime")}, new(*ecstypes.InvalidParameterException), 0},
		{"startedBy and launchType", ecs.ListTasksInput{Cluster: aws.String("sluice"), StartedBy: aws.String("deployment-1"), LaunchType: ecstypes.LaunchTypeFargate}, new(*ecstypes.InvalidParameterException), 0},
		{"default status is RUNNING", ecs.ListTasksInput{Cluster: aws.String("sluice")}, nil, 4},
		{"family and STOPPED", ecs.ListTasksInput{Cluster: aws.String("sluice"), Family: aws.String("sluice-runtime"), DesiredStatus: ecstypes.DesiredStatusStopped}, nil, 1},
		{"PENDING lists nothing", ecs.ListTasksInput{Cluster: aws.String("sluice"), DesiredStatus: ecstypes.DesiredStatusPending}, nil, 0},
		{"other family", ecs.ListTasksInput{Cluster: aws.String("sluice"), Family: aws.String("other")}, nil, 0},
		{"maxResults 1 pages", ecs.ListTasksInput{Cluster: aws.String("sluice"), MaxResults: aws.Int32(1)}, nil, 4},
		{"maxResults 100", ecs.ListTasksInput{Cluster: aws.String("sluice"), MaxResults: aws.Int32(100)}, nil, 4},
		{"maxResults 0", ecs.ListTasksInput{Cluster: aws.String("sluice"), MaxResults: aws.Int32(0)}, new(*ecstypes.InvalidParameterException), 0},
		{"maxResults 101", ecs.ListTasksInput{Cluster: aws.String("sluice"), MaxResults: aws.Int32(101)}, new(*ecstypes.InvalidParameterException), 0},
		{"made-up nextToken", ecs.ListTasksInput{Cluster: aws.String("sluice"), NextToken: aws.String("2")}, new(*ecstypes.InvalidParameterException), 0},
		{"unknown cluster", ecs.ListTasksInput{Cluster: aws.String("nope")}, new(*ecstypes.ClusterNotFoundException), 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Paged by hand: the SDK's paginator drops a maxResults of 0.
			var got []string
			in := tc.in
			var err error
			for {
				var page *ecs.ListTasksOutput
				if page, err = c.ListTasks(ctx, &in); err != nil {
					break
				}
				got = append(got, page.TaskArns...)
				if in.MaxResults != nil && len(page.TaskArns) > int(*in.MaxResults) {
					t.Errorf("page of %d tasks, maxResults %d", len(page.TaskArns), *in.MaxResults)
				}
				if page.NextToken == nil {
					break
				}
				in.NextToken = page.NextToken
			}
			checkAPIError(t, err, tc.wantErr)
			if len(got) != tc.want {
				t.Errorf("listed %d tasks, want %d", len(got), tc.want)
			}
		})
	}
}

func TestFakeECSDescribeAndStopRules(t *testing.T) {
	ctx := context.Background()
	fe := newFakeECS(t)
	c := fe.client()
	out, err := c.RunTask(ctx, validRunTaskInput())
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.Tasks[0].TaskArn)
	id := arn[strings.LastIndex(arn, "/")+1:]
	unknown := "arn:aws:ecs:us-east-1:123456789012:task/sluice/ffffffffffffffffffffffffffffffff"

	if _, err := c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("sluice"), Tasks: []string{}}); !errors.As(err, new(*ecstypes.InvalidParameterException)) {
		t.Errorf("DescribeTasks of no task = %v, want InvalidParameterException", err)
	}
	if _, err := c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("sluice"), Tasks: make([]string, 101)}); !errors.As(err, new(*ecstypes.InvalidParameterException)) {
		t.Errorf("DescribeTasks of 101 tasks = %v, want InvalidParameterException", err)
	}
	d, err := c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("sluice"), Tasks: []string{id, unknown}})
	if err != nil || len(d.Tasks) != 1 || aws.ToString(d.Tasks[0].TaskArn) != arn || len(d.Tasks[0].Tags) != 0 ||
		len(d.Failures) != 1 || aws.ToString(d.Failures[0].Reason) != "MISSING" || aws.ToString(d.Failures[0].Arn) != unknown {
		t.Errorf("DescribeTasks(id, unknown) = %+v, %v: want the task without tags, and a MISSING failure", d, err)
	}
	d, err = c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("sluice"), Tasks: []string{arn}, Include: []ecstypes.TaskField{ecstypes.TaskFieldTags}})
	if err != nil || len(d.Tasks) != 1 || len(d.Tasks[0].Tags) != 1 {
		t.Errorf("DescribeTasks with TAGS = %+v, %v, want the task's tag", d, err)
	}

	cases := []struct {
		name    string
		in      ecs.StopTaskInput
		wantErr any
	}{
		{"reason 256", ecs.StopTaskInput{Cluster: aws.String("sluice"), Task: aws.String(arn), Reason: aws.String(strings.Repeat("r", 256))}, new(*ecstypes.InvalidParameterException)},
		{"unknown task", ecs.StopTaskInput{Cluster: aws.String("sluice"), Task: aws.String(unknown)}, new(*ecstypes.InvalidParameterException)},
		{"unknown cluster", ecs.StopTaskInput{Cluster: aws.String("nope"), Task: aws.String(arn)}, new(*ecstypes.ClusterNotFoundException)},
		{"reason 255", ecs.StopTaskInput{Cluster: aws.String("sluice"), Task: aws.String(arn), Reason: aws.String(strings.Repeat("r", 255))}, nil},
		{"again, by id", ecs.StopTaskInput{Cluster: aws.String("sluice"), Task: aws.String(id)}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.StopTask(ctx, &tc.in)
			checkAPIError(t, err, tc.wantErr)
		})
	}
	if !taskNotFound(func() error {
		_, err := c.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String("sluice"), Task: aws.String(unknown)})
		return err
	}()) {
		t.Error("the driver does not recognise StopTask's answer for an unknown task")
	}
}

// client is an S3 client pointed at the fake (path-style, one attempt).
func (f *fakeS3) client() *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(f.srv.URL),
		UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret", Source: "test"}, nil
		}),
		RetryMaxAttempts: 1,
	})
}

func TestFakeS3Rules(t *testing.T) {
	ctx := context.Background()
	fs := newFakeS3(t, "b")
	c := fs.client()
	for i := range 1500 {
		fs.put(fmt.Sprintf("p/%04d", i))
	}
	fs.put("q/other")

	page, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("b"), Prefix: aws.String("p/"), MaxKeys: aws.Int32(5000)})
	if err != nil || len(page.Contents) != 1000 || aws.ToInt32(page.KeyCount) != 1000 || !aws.ToBool(page.IsTruncated) || page.NextContinuationToken == nil {
		t.Fatalf("ListObjectsV2(MaxKeys 5000) = %d keys, truncated %v, %v: want 1000 and a continuation token", len(page.Contents), aws.ToBool(page.IsTruncated), err)
	}
	if strings.HasPrefix(aws.ToString(page.NextContinuationToken), "p/") {
		t.Errorf("continuation token %q is a key; S3's are opaque", aws.ToString(page.NextContinuationToken))
	}
	next, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("b"), Prefix: aws.String("p/"), ContinuationToken: page.NextContinuationToken})
	if err != nil || len(next.Contents) != 500 || aws.ToBool(next.IsTruncated) || aws.ToString(next.ContinuationToken) != aws.ToString(page.NextContinuationToken) {
		t.Errorf("second page = %d keys, truncated %v, %v", len(next.Contents), aws.ToBool(next.IsTruncated), err)
	}
	_, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("b"), ContinuationToken: aws.String("p/0999")})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InvalidArgument" {
		t.Errorf("ListObjectsV2 with a made-up token = %v, want InvalidArgument", err)
	}
	_, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("nope")})
	if !errors.As(err, new(*s3types.NoSuchBucket)) {
		t.Errorf("ListObjectsV2 of a missing bucket = %v, want NoSuchBucket", err)
	}

	ids := func(keys ...string) []s3types.ObjectIdentifier {
		out := make([]s3types.ObjectIdentifier, len(keys))
		for i, k := range keys {
			out[i] = s3types.ObjectIdentifier{Key: aws.String(k)}
		}
		return out
	}
	var tooMany []string
	for i := range 1001 {
		tooMany = append(tooMany, fmt.Sprintf("p/%04d", i))
	}
	_, err = c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("b"), Delete: &s3types.Delete{Objects: ids(tooMany...)}})
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "MalformedXML" {
		t.Errorf("DeleteObjects of 1001 keys = %v, want MalformedXML", err)
	}
	fs.with(func() { fs.failKeys["p/0001"] = "AccessDenied" })
	out, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("b"), Delete: &s3types.Delete{Objects: ids("p/0000", "p/0001", "p/none"), Quiet: aws.Bool(true)}})
	if err != nil || len(out.Deleted) != 0 || len(out.Errors) != 1 || aws.ToString(out.Errors[0].Key) != "p/0001" || aws.ToString(out.Errors[0].Code) != "AccessDenied" {
		t.Errorf("quiet DeleteObjects = %+v, %v: want no Deleted and the one per-key error, no call error", out, err)
	}
	out, err = c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("b"), Delete: &s3types.Delete{Objects: ids("p/0002", "p/none")}})
	if err != nil || len(out.Deleted) != 2 || len(out.Errors) != 0 {
		t.Errorf("verbose DeleteObjects = %+v, %v: want both keys (present or not) reported deleted", out, err)
	}
}

// The driver refuses overrides over ECS's 8192 characters by its own count of the
// JSON; the fake counts the JSON the SDK actually sends. At exactly the limit by
// the driver's count, ECS (the fake) must accept it: else the driver's count is low.
func TestOverridesLimitMatchesTheSDKsJSON(t *testing.T) {
	d, fe, _ := newTestDriver(t, nil)
	withPad := func(n int) compute.ProvisionRequest {
		req := provisionRequest()
		req.RuntimeConfig = json.RawMessage(`{"pad":"` + strings.Repeat("x", n) + `"}`)
		return req
	}
	in, err := d.runTaskInput(withPad(0))
	if err != nil {
		t.Fatal(err)
	}
	pad := maxOverridesChars - overridesChars(in.Overrides)
	if in, err = d.runTaskInput(withPad(pad)); err != nil || overridesChars(in.Overrides) != maxOverridesChars {
		t.Fatalf("padding to the limit: %v (%d characters)", err, overridesChars(in.Overrides))
	}
	if _, err := d.Provision(context.Background(), withPad(pad)); err != nil {
		t.Errorf("Provision at the overrides limit: %v", err)
	}
	over := withPad(pad + 1)
	over.DeploymentID = "1b7e1d2c-5a6f-4e3d-9c8b-7a6f5e4d3c2b" // as long as testDeployment
	if _, err := d.Provision(context.Background(), over); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("Provision one character over the limit = %v, want refused", err)
	}
	if n := len(fe.callsTo("RunTask")); n != 1 {
		t.Errorf("%d RunTask calls, want 1 (the one over the limit never sent)", n)
	}
}
