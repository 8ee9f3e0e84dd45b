// Package awswire builds the production clients and handlers of every Lambda
// (api, authorizer, steps, reconciler) from the environment, once per
// execution environment, so that each functions/<name>/main.go only wires.
// It is the edge where real AWS clients meet the small interfaces of the rest.
package awswire

import (
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/sluicehq/sluice/internal/compute/ecsfargate"
	"github.com/sluicehq/sluice/internal/reconciler"
	"github.com/sluicehq/sluice/internal/runtimeclient"
	"github.com/sluicehq/sluice/internal/steps"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/workflow"
)

// EnvTable names the DynamoDB table.
const EnvTable = "SLUICE_TABLE"

// Clients are what the workflow-side Lambdas share.
type Clients struct {
	Store     *store.Dynamo
	Workflows *workflow.SFN
	Driver    *ecsfargate.Driver
}

// Build builds the clients from an AWS configuration.
func Build(awsCfg aws.Config, getenv func(string) string) (Clients, error) {
	table := getenv(EnvTable)
	if table == "" {
		return Clients{}, fmt.Errorf("$%s is required", EnvTable)
	}
	machines, err := workflow.StateMachinesFromEnv(getenv)
	if err != nil {
		return Clients{}, err
	}
	wf, err := workflow.NewSFN(workflow.SFNConfig{Client: sfn.NewFromConfig(awsCfg), StateMachines: machines})
	if err != nil {
		return Clients{}, err
	}
	computeCfg, err := ecsfargate.ConfigFromEnv(getenv)
	if err != nil {
		return Clients{}, err
	}
	driver, err := ecsfargate.NewFromAWSConfig(awsCfg, computeCfg)
	if err != nil {
		return Clients{}, err
	}
	return Clients{Store: store.NewDynamo(dynamodb.NewFromConfig(awsCfg), table), Workflows: wf, Driver: driver}, nil
}

// RuntimeFor dials a pipeline runtime by its deployment location.
func RuntimeFor(location string) (steps.Runtime, error) {
	return runtimeclient.New(location)
}

// Getenv is os.Getenv, for wiring.
var Getenv = os.Getenv

var (
	_ steps.Continuer      = (*workflow.SFN)(nil)
	_ reconciler.Workflows = (*workflow.SFN)(nil)
)
