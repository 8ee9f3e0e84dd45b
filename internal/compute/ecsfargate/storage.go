package ecsfargate

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// maxDeleteBatch is DeleteObjects' limit on keys per request.
const maxDeleteBatch = 1000

// StorageKeyPrefix is the S3 key prefix of a pipeline's storage, ending in "/".
func (d *Driver) StorageKeyPrefix(pipeline, pipelineID string) string {
	p := pipeline + "-" + pipelineID + "/"
	if d.cfg.StoragePrefix != "" {
		p = d.cfg.StoragePrefix + "/" + p
	}
	return p
}

// StorageURI is the pipeline's storage as the runtime sees it (SLUICE_STORAGE_URI).
func (d *Driver) StorageURI(pipeline, pipelineID string) string {
	return "s3://" + d.cfg.StorageBucket + "/" + d.StorageKeyPrefix(pipeline, pipelineID)
}

// ClearStorage deletes every object under the pipeline's prefix. It carries on past
// per-key failures and reports them together at the end.
func (d *Driver) ClearStorage(ctx context.Context, pipeline, pipelineID string) error {
	const op = "s3 DeleteObjects"
	// Refuse anything that could widen the prefix beyond this one pipeline.
	if !pipelineNameRE.MatchString(pipeline) || !pipelineIDRE.MatchString(pipelineID) {
		return permanent("clear storage", "invalid pipeline name %q or id %q", pipeline, pipelineID)
	}
	prefix := d.StorageKeyPrefix(pipeline, pipelineID)
	var failed []s3types.Error
	deleted := 0
	p := s3.NewListObjectsV2Paginator(d.s3, &s3.ListObjectsV2Input{
		Bucket: aws.String(d.cfg.StorageBucket),
		Prefix: aws.String(prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return awsError("s3 ListObjectsV2", err)
		}
		keys := make([]string, 0, len(page.Contents))
		for _, o := range page.Contents {
			if k := aws.ToString(o.Key); strings.HasPrefix(k, prefix) {
				keys = append(keys, k)
			}
		}
		for start := 0; start < len(keys); start += maxDeleteBatch {
			batch := keys[start:min(start+maxDeleteBatch, len(keys))]
			ids := make([]s3types.ObjectIdentifier, len(batch))
			for i, k := range batch {
				ids[i] = s3types.ObjectIdentifier{Key: aws.String(k)}
			}
			out, err := d.s3.DeleteObjects(ctx, &s3.DeleteObjectsInput{
				Bucket: aws.String(d.cfg.StorageBucket),
				Delete: &s3types.Delete{Objects: ids, Quiet: aws.Bool(true)},
			})
			if err != nil {
				return awsError(op, err)
			}
			failed = append(failed, out.Errors...)
			deleted += len(batch) - len(out.Errors)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return deleteErrors(op, prefix, deleted, failed)
}

// deleteErrors summarises DeleteObjects' per-key errors (the first few keys in
// full). It is temporary when every failure is one S3 asks to retry.
func deleteErrors(op, prefix string, deleted int, failed []s3types.Error) error {
	const show = 5
	temporary := true
	var b strings.Builder
	fmt.Fprintf(&b, "%d object(s) under %s could not be deleted (%d deleted)", len(failed), prefix, deleted)
	for i, f := range failed {
		code := aws.ToString(f.Code)
		switch code {
		case "InternalError", "SlowDown", "ServiceUnavailable", "RequestTimeout", "OperationAborted":
		default:
			temporary = false
		}
		if i < show {
			fmt.Fprintf(&b, "; %s: %s %s", aws.ToString(f.Key), code, aws.ToString(f.Message))
		}
	}
	if len(failed) > show {
		fmt.Fprintf(&b, "; and %d more", len(failed)-show)
	}
	return &Error{Op: op, Message: b.String(), Temporary: temporary}
}
