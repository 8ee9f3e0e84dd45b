package localstack

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
)

func describe(arn string) *sfn.DescribeExecutionInput {
	return &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)}
}
