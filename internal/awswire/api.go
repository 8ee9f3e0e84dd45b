package awswire

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/compute"
	"github.com/sluicehq/sluice/internal/compute/ecsfargate"
	"github.com/sluicehq/sluice/internal/httpapi"
	"github.com/sluicehq/sluice/internal/metrics"
	"github.com/sluicehq/sluice/internal/runtimeclient"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/workflow"
)

// EnvCheckpointTimeout bounds the forwarded POST /checkpoint of the api.
const EnvCheckpointTimeout = "SLUICE_CHECKPOINT_TIMEOUT"

// DefaultCheckpointTimeout bounds a forwarded checkpoint behind API Gateway,
// whose integration timeout is 29 s: a real checkpoint of large state may
// take longer (runtimeclient's own default is 60 s); then the client gets 503
// PipelineInteractionUnreachable while the runtime finishes the checkpoint,
// and follows it with GET /checkpoint_status.
const DefaultCheckpointTimeout = 25 * time.Second

// API builds the api function's handler from the environment and the AWS
// configuration.
//
// Environment:
//
//	SLUICE_TABLE                    DynamoDB table of pipeline records and history (required)
//	SLUICE_STATE_MACHINE_ARNS       every workflow kind's state machine, as JSON
//	                                {"start":"arn:…","suspend":"arn:…","stop":"arn:…","clear":"arn:…"}
//	                                or as start=arn:…,suspend=arn:…,…
//	SLUICE_STATE_MACHINE_ARN_START, _SUSPEND, _STOP, _CLEAR
//	                                one kind's state machine each (wins over the list);
//	                                every kind needs one
//	SLUICE_AUTH_DISABLED            "true": requests reaching the Lambda without authorizer
//	                                context are an anonymous writer (local development only;
//	                                default off: such requests get 401)
//	SLUICE_CHECKPOINT_TIMEOUT       bound of the forwarded POST /checkpoint (Go duration,
//	                                default 25s, below API Gateway's 29 s integration timeout;
//	                                the function's own timeout must exceed it)
//	SLUICE_LOG_LEVEL                debug, info (default), warn or error
//	SLUICE_RUNTIME_LOG_GROUP        the runtime container's awslogs group: GET
//	                                /v0/pipelines/{name}/logs reads the task's stream there
//	                                (unset: that route says logs are not configured)
//	SLUICE_RUNTIME_LOG_STREAM_PREFIX  its awslogs-stream-prefix (required with the group)
//	SLUICE_ECS_CLUSTER, SLUICE_ECS_CONTAINER_NAME
//	                                where the deployment's task and container are (with the group)
//
// The AWS SDK reads the region, credentials and endpoint overrides as usual
// (AWS_REGION, AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_SFN for the local
// stack). Authentication is the REQUEST authorizer's (functions/authorizer):
// the principal arrives in the request context and each route's role is
// checked here.
func API(getenv func(string) string, awsCfg aws.Config, logger *slog.Logger) (*httpapi.Handler, error) {
	table := strings.TrimSpace(getenv(EnvTable))
	if table == "" {
		return nil, fmt.Errorf("%s is not set", EnvTable)
	}
	machines, err := workflow.StateMachinesFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	starter, err := workflow.NewSFN(workflow.SFNConfig{Client: sfn.NewFromConfig(awsCfg), StateMachines: machines})
	if err != nil {
		return nil, err
	}
	authCfg, err := auth.ConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	var verifier auth.Verifier
	if authCfg.Disabled {
		// Only for requests without authorizer context (sam local, the local stack).
		if verifier, err = auth.NewVerifier(auth.Config{Disabled: true}, nil, logger); err != nil {
			return nil, err
		}
	}
	checkpoint := DefaultCheckpointTimeout
	if s := strings.TrimSpace(getenv(EnvCheckpointTimeout)); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return nil, errors.New(EnvCheckpointTimeout + " must be a positive duration such as 25s")
		}
		checkpoint = d
	}
	logsCfg, haveLogs, err := ecsfargate.LogsConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	var logs compute.LogReader // nil (not a typed nil) when not configured
	if haveLogs {
		r, err := ecsfargate.NewLogReaderFromAWSConfig(awsCfg, logsCfg)
		if err != nil {
			return nil, err
		}
		logs = r
	}
	return httpapi.New(httpapi.Config{
		Logs:            logs,
		Store:           store.NewDynamo(dynamodb.NewFromConfig(awsCfg), table, store.WithLogger(logger)),
		Starter:         starter,
		Verifier:        verifier,
		RuntimeTimeouts: runtimeclient.Timeouts{Checkpoint: checkpoint},
		Logger:          logger,
		Metrics:         metrics.New(os.Stdout),
		ExecutionLink:   workflow.AWSConsoleURL,
	})
}

// Authorizer builds the REQUEST authorizer from the environment: API keys
// from the table (unless auth is disabled), JWT settings from auth's
// variables.
func Authorizer(getenv func(string) string, awsCfg aws.Config, logger *slog.Logger) (*auth.APIGatewayAuthorizer, error) {
	cfg, err := auth.ConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	var keys auth.KeyLookup
	if !cfg.Disabled {
		table := getenv(EnvTable)
		if table == "" {
			return nil, errors.New(EnvTable + " is not set")
		}
		keys = store.NewDynamo(dynamodb.NewFromConfig(awsCfg), table, store.WithLogger(logger))
	}
	v, err := auth.NewVerifier(cfg, keys, logger)
	if err != nil {
		return nil, err
	}
	return auth.NewAPIGatewayAuthorizer(v, logger), nil
}
