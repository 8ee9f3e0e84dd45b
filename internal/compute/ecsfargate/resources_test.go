package ecsfargate

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func TestSizeFromRuntimeConfig(t *testing.T) {
	cases := []struct {
		rc      string
		want    taskSize
		wantErr bool
	}{
		{`{}`, taskSize{}, false},
		{`{"resources": {}}`, taskSize{}, false},
		{`{"resources": {"cpu": 256, "memory": 512}}`, taskSize{"256", "512"}, false},
		{`{"resources": {"cpu": "4096", "memory": 30720}}`, taskSize{"4096", "30720"}, false},
		{`{"resources": {"cpu": 256, "memory": 1536}}`, taskSize{}, true},
		{`{"resources": {"cpu": 8192, "memory": 18432}}`, taskSize{}, true}, // 8 vCPU: 4 GiB steps
		{`{"resources": {"cpu": 1000, "memory": 2048}}`, taskSize{}, true},
		{`{"resources": {"cpu": "1 vCPU", "memory": "2 GB"}}`, taskSize{"1 vCPU", "2 GB"}, false},
		{`{"resources": {"cpu": 1024}}`, taskSize{CPU: "1024"}, false},
		{`{"resources": {"cpu": 1.5}}`, taskSize{}, true},
		{`{"resources": {"cpu_cores_max": 0.25}}`, taskSize{"256", "512"}, false},
		{`{"resources": {"cpu_cores_min": 1, "memory_mb_min": 100}}`, taskSize{"1024", "2048"}, false},
		{`{"resources": {"cpu_cores_max": 0.25, "memory_mb_max": 3000}}`, taskSize{"512", "3072"}, false},
		{`{"resources": {"cpu_cores_max": 4, "memory_mb_max": 40000}}`, taskSize{"8192", "40960"}, false},
		{`{"resources": {"memory_mb_max": 130000}}`, taskSize{}, true},
		{`{"resources": {"cpu_cores_max": "two"}}`, taskSize{}, true},
		{`[1]`, taskSize{}, true},
	}
	for _, tc := range cases {
		got, err := sizeFromRuntimeConfig(json.RawMessage(tc.rc))
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%s: got %+v, %v; want %+v, error %v", tc.rc, got, err, tc.want, tc.wantErr)
		}
	}
}

// stubS3 answers ListObjectsV2 with more keys in one page than DeleteObjects takes.
type stubS3 struct {
	keys    int
	batches []int
}

func (s *stubS3) PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	return &s3.PutObjectOutput{}, nil
}

func (s *stubS3) ListObjectsV2(_ context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	out := &s3.ListObjectsV2Output{IsTruncated: aws.Bool(false)}
	for i := range s.keys {
		out.Contents = append(out.Contents, s3types.Object{Key: aws.String(fmt.Sprintf("%s%05d", aws.ToString(in.Prefix), i))})
	}
	return out, nil
}

func (s *stubS3) DeleteObjects(_ context.Context, in *s3.DeleteObjectsInput, _ ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error) {
	s.batches = append(s.batches, len(in.Delete.Objects))
	return &s3.DeleteObjectsOutput{}, nil
}

func TestClearStorageBatchesALargePage(t *testing.T) {
	st := &stubS3{keys: 2500}
	d, err := New(testConfig(), newFakeECS(t).client(), st)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.ClearStorage(context.Background(), testPipeline, testPipelineID); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(st.batches) != "[1000 1000 500]" {
		t.Errorf("batches %v, want [1000 1000 500]", st.batches)
	}
}
