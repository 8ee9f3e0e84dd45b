// Command reconciler is the scheduled Lambda (every minute) that observes
// provisioned pipelines and restarts lost workflows (internal/reconciler);
// sharded, the scheduled invocation invokes it once per shard. Wiring only:
// the handler is awswire.ReconcilerLambda, built once per execution
// environment (awswire.ReconcilerHandler documents the environment it reads).
package main

import "github.com/sluicehq/sluice/internal/awswire"

func main() { awswire.Start("reconciler", awswire.ReconcilerLambda) }
