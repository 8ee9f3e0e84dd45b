// Command reconciler is the scheduled Lambda (every minute) that observes
// provisioned pipelines and restarts lost workflows (internal/reconciler);
// sharded, the scheduled invocation invokes it once per shard. Wiring only:
// the handler is reconcilerlambda.Lambda, built once per execution
// environment (reconcilerlambda.Handler documents the environment it reads).
package main

import (
	"github.com/sluicehq/sluice/internal/awswire"
	"github.com/sluicehq/sluice/internal/awswire/reconcilerlambda"
)

func main() { awswire.Start("reconciler", reconcilerlambda.Lambda) }
