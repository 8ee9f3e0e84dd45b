// Command steps is the Lambda behind every Task state of the lifecycle
// workflows (statemachine/*.asl.json): one binary dispatching on the step name
// in its payload. Wiring only; the steps are internal/steps, built
// once per execution environment by awswire.StepsLambda.
//
// Environment: SLUICE_TABLE, the state machine ARNs (workflow.StateMachinesFromEnv,
// for continue-as-new), the compute driver's settings (ecsfargate.ConfigFromEnv),
// the loop settings (steps.ConfigFromEnv) and SLUICE_LOG_LEVEL.
package main

import "github.com/sluicehq/sluice/internal/awswire"

func main() { awswire.Start("steps", awswire.StepsLambda) }
