package ecsfargate

import (
	"bytes"
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluicehq/sluice/internal/compute"
)

// programKey is the S3 key of a pipeline's program at one program_version,
// inside the pipeline's storage prefix (so clearing the storage removes it;
// every provisioning writes it again).
func (d *Driver) programKey(pipeline, pipelineID string, version int64) string {
	return fmt.Sprintf("%ssluice-program/v%d.json", d.StorageKeyPrefix(pipeline, pipelineID), version)
}

// ProgramURI is where the runtime reads its program (SLUICE_PROGRAM_URI).
func (d *Driver) ProgramURI(pipeline, pipelineID string, version int64) string {
	return "s3://" + d.cfg.StorageBucket + "/" + d.programKey(pipeline, pipelineID, version)
}

// putProgram writes the program object. A repeat writes the same bytes to
// the same key, so a retried Provision is harmless.
func (d *Driver) putProgram(ctx context.Context, req compute.ProvisionRequest) error {
	const op = "s3 PutObject"
	body, err := req.Program.ProgramJSON()
	if err != nil {
		return permanent(op, "program: %v", err)
	}
	_, err = d.s3.PutObject(ctx, &s3.PutObjectInput{
		Bucket:      aws.String(d.cfg.StorageBucket),
		Key:         aws.String(d.programKey(req.Pipeline, req.PipelineID, req.Program.Version)),
		Body:        bytes.NewReader(body),
		ContentType: aws.String("application/json"),
	})
	if err != nil {
		return awsError(op, err)
	}
	return nil
}
