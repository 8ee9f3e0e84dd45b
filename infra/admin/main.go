// Command admin is Sluice's operator CLI. It is not a Lambda: run it from a
// shell with AWS credentials for the table (or against DynamoDB Local).
//
//	go run ./infra/admin create-key --role write [--name ci-deployer] --description "CI deployer" [--table T] [--endpoint-url URL]
//	go run ./infra/admin name-keys [--table T] [--endpoint-url URL]
//
// create-key generates an API key (auth.CreateNamedKey), stores only its
// SHA-256 hash in the table under a unique name (default: the key's id) and
// prints the key once on stdout; notes go to stderr. name-keys names the
// keys stored before keys had names by their ids (store.NameLegacyAPIKeys,
// a one-off scan), so that /v0/api_keys lists and deletes them.
// The table defaults to $SLUICE_TABLE. With --endpoint-url and no AWS
// credentials in the environment, dummy credentials and region us-east-1 are
// used (DynamoDB Local accepts any). Wiring only; the logic is auth.RunAdmin.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/store"
)

func main() {
	os.Exit(auth.RunAdmin(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr, open))
}

func open(ctx context.Context, table, endpointURL string) (auth.KeyPutter, error) {
	var opts []func(*config.LoadOptions) error
	if endpointURL != "" {
		if os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
			opts = append(opts, config.WithRegion("us-east-1"))
		}
		if os.Getenv("AWS_ACCESS_KEY_ID") == "" && os.Getenv("AWS_PROFILE") == "" {
			opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
		}
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, err
	}
	client := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		if endpointURL != "" {
			o.BaseEndpoint = aws.String(endpointURL)
		}
	})
	return store.NewDynamo(client, table), nil
}
