// Package cli is `sluice`, the command-line client of the Sluice API. It uses
// only the HTTP API (the same calls as the curl examples of
// README.md, API reference): the URL and API key come from --url/--api-key or
// SLUICE_URL/SLUICE_API_KEY.
//
// Error answers ({message, error_code, details}) are printed as
// "error: <error_code>: <message>" on stderr with exit code 1; usage errors
// exit 2.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// Environment variables and defaults.
const (
	EnvURL     = "SLUICE_URL"
	EnvAPIKey  = "SLUICE_API_KEY"
	DefaultURL = "http://127.0.0.1:8080"
)

// Exit codes.
const (
	ExitOK          = 0
	ExitError       = 1
	ExitUsage       = 2
	ExitInterrupted = 130
)

// App is one invocation's environment.
type App struct {
	Stdout, Stderr io.Writer
	Env            func(string) string
	// ReadFile reads --config @file (os.ReadFile when nil).
	ReadFile func(string) ([]byte, error)
	// HTTP is the client (a 90 s timeout when nil).
	HTTP *http.Client
	// PollInterval is how often --wait polls (250 ms when 0).
	PollInterval time.Duration
	// Now is the clock of the progress lines (time.Now when nil).
	Now func() time.Time
}

// Main runs `sluice args…` and returns the exit code.
func Main(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) int {
	a := &App{Stdout: stdout, Stderr: stderr, Env: env}
	return a.Run(ctx, args)
}

type command struct {
	name, args, help string
	run              func(ctx context.Context, a *App, c *Client, fs *flag.FlagSet, args []string) error
	flags            func(fs *flag.FlagSet)
	// positional is the number of positional arguments.
	positional int
}

func commands() []command {
	return []command{
		{name: "pipelines", help: "list the pipelines and their statuses", run: cmdPipelines},
		{name: "create", args: "NAME [--description D] [--config JSON|@FILE]", help: "create a pipeline (runtime_config from JSON or a file)", positional: 1, run: cmdCreate, flags: createFlags},
		{name: "status", args: "NAME [--json]", help: "show a pipeline's statuses, error, storage and workflow", positional: 1, run: cmdStatus, flags: jsonFlag},
		{name: "start", args: "NAME [--paused] [--wait] [--timeout D]", help: "start a pipeline; --wait follows it until it runs", positional: 1, run: cmdStart, flags: startFlags},
		{name: "stop", args: "NAME [--force] [--wait] [--timeout D]", help: "stop a pipeline (graceful: checkpoint first; --force: at once); --wait shows each status until Stopped", positional: 1, run: cmdStop, flags: stopFlags},
		{name: "events", args: "NAME [--limit N]", help: "the status history, oldest first (the last N events)", positional: 1, run: cmdEvents, flags: eventsFlags},
		{name: "stats", args: "NAME", help: "the runtime's statistics (JSON)", positional: 1, run: cmdStats},
		{name: "pause", args: "NAME", help: "pause a running pipeline", positional: 1, run: simpleAction(http.MethodPost, "pause")},
		{name: "resume", args: "NAME", help: "resume a paused pipeline", positional: 1, run: simpleAction(http.MethodPost, "resume")},
		{name: "checkpoint", args: "NAME", help: "ask the runtime for a checkpoint now", positional: 1, run: cmdCheckpoint},
		{name: "clear", args: "NAME [--wait] [--timeout D]", help: "delete a stopped pipeline's checkpoints; --wait until Cleared", positional: 1, run: cmdClear, flags: waitFlags},
		{name: "dismiss-error", args: "NAME", help: "dismiss a stopped pipeline's deployment_error", positional: 1, run: simpleAction(http.MethodPost, "dismiss_error")},
		{name: "delete", args: "NAME", help: "delete a stopped pipeline whose storage is cleared", positional: 1, run: simpleAction(http.MethodDelete, "")},
	}
}

func (a *App) usage(w io.Writer) {
	fmt.Fprintf(w, `sluice: the command-line client of the Sluice API (Feldera /v0 pipelines).

Usage: sluice [--url URL] [--api-key KEY] COMMAND [ARGS]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %s\n      %s\n", strings.TrimSpace(c.name+" "+c.args), c.help)
	}
	fmt.Fprintf(w, `
The API is at --url or $%s (default %s); the key is --api-key or
$%s (the local stack prints both: make run). Errors print
"error: <error_code>: <message>" and exit 1.
`, EnvURL, DefaultURL, EnvAPIKey)
}

// Run runs one command.
func (a *App) Run(ctx context.Context, args []string) int {
	if a.Env == nil {
		a.Env = func(string) string { return "" }
	}
	var url, key string
	global := flag.NewFlagSet("sluice", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	global.StringVar(&url, "url", "", "")
	global.StringVar(&key, "api-key", "", "")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			a.usage(a.Stdout)
			return ExitOK
		}
		fmt.Fprintf(a.Stderr, "sluice: %v\n\n", err)
		a.usage(a.Stderr)
		return ExitUsage
	}
	rest := global.Args()
	if len(rest) == 0 {
		a.usage(a.Stderr)
		return ExitUsage
	}
	name, rest := rest[0], rest[1:]
	if name == "help" {
		a.usage(a.Stdout)
		return ExitOK
	}
	var cmd *command
	for _, c := range commands() {
		if c.name == name || (name == "list" && c.name == "pipelines") {
			cmd = &c
			break
		}
	}
	if cmd == nil {
		fmt.Fprintf(a.Stderr, "sluice: unknown command %q\n\n", name)
		a.usage(a.Stderr)
		return ExitUsage
	}
	fs := flag.NewFlagSet("sluice "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(a.Stderr)
	fs.StringVar(&url, "url", url, "the Sluice API's base URL ($"+EnvURL+")")
	fs.StringVar(&key, "api-key", key, "the API key ($"+EnvAPIKey+")")
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(a.Stderr, "Usage: sluice %s %s\n  %s\n\nFlags:\n", cmd.name, cmd.args, cmd.help)
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, rest)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err == nil && len(pos) != cmd.positional {
		err = fmt.Errorf("want %d argument(s) (%s), got %d", cmd.positional, cmd.args, len(pos))
	}
	if err != nil {
		fmt.Fprintf(a.Stderr, "sluice %s: %v\n", cmd.name, err)
		fs.Usage()
		return ExitUsage
	}
	if url == "" {
		url = a.Env(EnvURL)
	}
	if url == "" {
		url = DefaultURL
	}
	if key == "" {
		key = a.Env(EnvAPIKey)
	}
	c := &Client{BaseURL: url, APIKey: key, HTTP: a.HTTP}
	err = cmd.run(ctx, a, c, fs, pos)
	return a.report(ctx, err)
}

// report prints err and returns the exit code.
func (a *App) report(ctx context.Context, err error) int {
	if err == nil {
		return ExitOK
	}
	var ue usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(a.Stderr, "sluice: %v\n", err)
		return ExitUsage
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		fmt.Fprintln(a.Stderr, "interrupted")
		return ExitInterrupted
	}
	fmt.Fprintf(a.Stderr, "error: %v\n", err)
	return ExitError
}

// usageError is bad input found by a command (exit 2).
type usageError struct{ error }

// parseInterleaved parses flags that may come before, between or after the
// positional arguments (`sluice stop p1 --wait`).
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func (a *App) readFile(path string) ([]byte, error) {
	if a.ReadFile != nil {
		return a.ReadFile(path)
	}
	return os.ReadFile(path)
}

func (a *App) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *App) pollInterval() time.Duration {
	if a.PollInterval > 0 {
		return a.PollInterval
	}
	return 250 * time.Millisecond
}

func (a *App) printf(format string, args ...any) { fmt.Fprintf(a.Stdout, format, args...) }

// orDash is s, or "-" when empty.
func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
