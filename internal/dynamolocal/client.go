package dynamolocal

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Region is the region the local clients claim (DynamoDB Local runs with
// -sharedDb, so region and credentials do not partition the data).
const Region = "us-east-1"

// NewClient returns a DynamoDB client for a DynamoDB Local endpoint: static
// dummy credentials, region us-east-1, BaseEndpoint set, and the CRC32
// response check off (the emulator's error responses carry no
// X-Amz-Crc32 header, and the SDK would otherwise log a checksum mismatch on
// every error). optFns run last and may change anything.
//
// It reads no shared AWS config or environment, so a developer's AWS
// profile can never send local traffic to a real account.
func NewClient(ctx context.Context, endpoint string, optFns ...func(*dynamodb.Options)) (*dynamodb.Client, error) {
	if endpoint == "" {
		return nil, errors.New("dynamolocal: NewClient: empty endpoint")
	}
	_ = ctx // reserved: nothing to load
	opts := dynamodb.Options{
		Region:                          Region,
		BaseEndpoint:                    aws.String(endpoint),
		Credentials:                     credentials.NewStaticCredentialsProvider("local", "local", ""),
		DisableValidateResponseChecksum: true,
	}
	return dynamodb.New(opts, optFns...), nil
}
