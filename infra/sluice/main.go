// Command sluice is the command-line client of the Sluice API: `sluice
// pipelines`, `sluice create`, `sluice start`, `sluice stop NAME --wait`, …
// (`sluice help`). It uses only the HTTP API; the logic is internal/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/sluicehq/sluice/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
