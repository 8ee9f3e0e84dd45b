package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

func createFlags(fs *flag.FlagSet) {
	fs.String("description", "", "the pipeline's description")
	fs.String("config", "", "the runtime_config: a JSON object, or @FILE to read it from a file")
}

func jsonFlag(fs *flag.FlagSet) {
	fs.Bool("json", false, "print the whole record as JSON")
}

func waitFlags(fs *flag.FlagSet) {
	fs.Bool("wait", false, "wait until the action is done, showing each status")
	fs.Duration("timeout", 10*time.Minute, "with --wait: give up after this long (0: never)")
}

func startFlags(fs *flag.FlagSet) {
	fs.Bool("paused", false, "start paused (initial=paused) instead of running")
	waitFlags(fs)
}

func stopFlags(fs *flag.FlagSet) {
	fs.Bool("force", false, "stop at once, without a final checkpoint (force=true)")
	waitFlags(fs)
}

func eventsFlags(fs *flag.FlagSet) {
	fs.Int("limit", 50, "how many of the latest events to show (1..1000)")
}

func boolFlag(fs *flag.FlagSet, name string) bool {
	f := fs.Lookup(name)
	return f != nil && f.Value.String() == "true"
}

func stringFlag(fs *flag.FlagSet, name string) string {
	if f := fs.Lookup(name); f != nil {
		return f.Value.String()
	}
	return ""
}

func durationFlag(fs *flag.FlagSet, name string) time.Duration {
	if f := fs.Lookup(name); f != nil {
		if g, ok := f.Value.(flag.Getter); ok {
			if d, ok := g.Get().(time.Duration); ok {
				return d
			}
		}
	}
	return 0
}

func cmdPipelines(ctx context.Context, a *App, c *Client, _ *flag.FlagSet, _ []string) error {
	ps, err := c.List(ctx)
	if err != nil {
		return err
	}
	if len(ps) == 0 {
		a.printf("no pipelines (create one: sluice create NAME --config '{\"events_per_sec\":1000}')\n")
		return nil
	}
	tw := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATUS\tDESIRED\tSTORAGE\tERROR")
	for _, p := range ps {
		e := "-"
		if p.DeploymentError != nil {
			e = p.DeploymentError.ErrorCode
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Name, p.DeploymentStatus, p.DeploymentDesiredStatus, p.StorageStatus, e)
	}
	return tw.Flush()
}

func cmdCreate(ctx context.Context, a *App, c *Client, fs *flag.FlagSet, args []string) error {
	body := map[string]any{"name": args[0]}
	if d := stringFlag(fs, "description"); d != "" {
		body["description"] = d
	}
	if cfg := stringFlag(fs, "config"); cfg != "" {
		raw := []byte(cfg)
		if strings.HasPrefix(cfg, "@") {
			b, err := a.readFile(cfg[1:])
			if err != nil {
				return usageError{fmt.Errorf("--config %s: %w", cfg, err)}
			}
			raw = b
		}
		var obj map[string]any
		if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
			return usageError{fmt.Errorf("--config: want a JSON object (e.g. '{\"events_per_sec\":1000,\"checkpoint_interval_secs\":5}'): %v", errOr(err, "null"))}
		}
		body["runtime_config"] = json.RawMessage(raw)
	}
	r, err := c.do(ctx, http.MethodPost, "/v0/pipelines", nil, body)
	if err != nil {
		return err
	}
	var p Pipeline
	if err := json.Unmarshal(r.body, &p); err != nil {
		return fmt.Errorf("decoding the pipeline: %w", err)
	}
	a.printf("created pipeline %s (id %s): %s\n", p.Name, p.ID, p.DeploymentStatus)
	return nil
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

func cmdStatus(ctx context.Context, a *App, c *Client, fs *flag.FlagSet, args []string) error {
	if boolFlag(fs, "json") {
		r, err := c.do(ctx, http.MethodGet, pipelinePath(args[0]), nil, nil)
		if err != nil {
			return err
		}
		return a.printJSON(r.body)
	}
	p, err := c.Get(ctx, args[0])
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("name", p.Name)
	row("id", p.ID)
	if p.Description != "" {
		row("description", p.Description)
	}
	row("status", fmt.Sprintf("%s (desired %s) since %s", p.DeploymentStatus, p.DeploymentDesiredStatus, p.DeploymentStatusSince.Local().Format(time.DateTime)))
	if p.DeploymentID != nil {
		loc := "-"
		if p.DeploymentLocation != nil {
			loc = *p.DeploymentLocation
		}
		row("deployment", *p.DeploymentID+" at "+loc)
	}
	if p.DeploymentError != nil {
		row("deployment_error", deploymentError(p).Error())
	} else {
		row("deployment_error", "-")
	}
	row("storage", string(p.StorageStatus)+checkpointSummary(p.StorageStatusDetails))
	if w := p.Workflow; w != nil {
		row("workflow", fmt.Sprintf("%s %s (generation %d) %s", w.Kind, w.ExecutionName, w.Generation, w.Status))
	}
	row("generation", strconv.FormatInt(p.Generation, 10))
	if len(p.RuntimeConfig) > 0 && string(p.RuntimeConfig) != "null" {
		row("runtime_config", string(p.RuntimeConfig))
	}
	return tw.Flush()
}

// checkpointSummary describes storage_status_details {checkpoints: [...]}.
func checkpointSummary(details json.RawMessage) string {
	var d struct {
		Checkpoints []struct {
			UUID           string    `json:"uuid"`
			SequenceNumber int64     `json:"sequence_number"`
			CreatedAt      time.Time `json:"created_at"`
		} `json:"checkpoints"`
	}
	if json.Unmarshal(details, &d) != nil || len(d.Checkpoints) == 0 {
		return ""
	}
	latest := d.Checkpoints[0]
	for _, ck := range d.Checkpoints {
		if ck.SequenceNumber > latest.SequenceNumber {
			latest = ck
		}
	}
	return fmt.Sprintf(", %d checkpoint(s) recorded, latest at event %d (%s)", len(d.Checkpoints), latest.SequenceNumber, latest.UUID)
}

func cmdStart(ctx context.Context, a *App, c *Client, fs *flag.FlagSet, args []string) error {
	initial := "running"
	if boolFlag(fs, "paused") {
		initial = "paused"
	}
	return a.actAndWait(ctx, c, fs, args[0], "start", url.Values{"initial": {initial}}, startDone)
}

func cmdStop(ctx context.Context, a *App, c *Client, fs *flag.FlagSet, args []string) error {
	force := url.Values{"force": {strconv.FormatBool(boolFlag(fs, "force"))}}
	return a.actAndWait(ctx, c, fs, args[0], "stop", force, stopDone)
}

func cmdClear(ctx context.Context, a *App, c *Client, fs *flag.FlagSet, args []string) error {
	return a.actAndWait(ctx, c, fs, args[0], "clear", nil, clearDone)
}

// actAndWait posts a lifecycle action and prints the API's answer; with
// --wait it then shows every change of the record until done says so (or
// --timeout). The record is read before the action: the baseline that --wait
// shows every change after.
func (a *App) actAndWait(ctx context.Context, c *Client, fs *flag.FlagSet, name, action string, query url.Values, done doneFunc) error {
	var before Pipeline
	wait := boolFlag(fs, "wait")
	if wait {
		var err error
		if before, err = c.Get(ctx, name); err != nil {
			return err
		}
	}
	msg, err := c.Action(ctx, http.MethodPost, name, action, query)
	if err != nil {
		return err
	}
	a.printf("%s\n", msg)
	if !wait {
		return nil
	}
	return a.wait(ctx, c, before, durationFlag(fs, "timeout"), action, done)
}

func simpleAction(method, action string) func(context.Context, *App, *Client, *flag.FlagSet, []string) error {
	return func(ctx context.Context, a *App, c *Client, _ *flag.FlagSet, args []string) error {
		msg, err := c.Action(ctx, method, args[0], action, nil)
		if err != nil {
			return err
		}
		a.printf("%s\n", msg)
		return nil
	}
}

func cmdCheckpoint(ctx context.Context, a *App, c *Client, _ *flag.FlagSet, args []string) error {
	r, err := c.do(ctx, http.MethodPost, pipelinePath(args[0], "checkpoint"), nil, nil)
	if err != nil {
		return err
	}
	var ck struct {
		Seq         int64  `json:"checkpoint_sequence_number"`
		Incarnation string `json:"incarnation_uuid"`
	}
	if err := json.Unmarshal(r.body, &ck); err != nil {
		return fmt.Errorf("decoding the answer: %w", err)
	}
	a.printf("checkpoint %d written (runtime incarnation %s)\n", ck.Seq, ck.Incarnation)
	return nil
}

func cmdStats(ctx context.Context, a *App, c *Client, _ *flag.FlagSet, args []string) error {
	r, err := c.do(ctx, http.MethodGet, pipelinePath(args[0], "stats"), nil, nil)
	if err != nil {
		return err
	}
	return a.printJSON(r.body)
}

func (a *App) printJSON(b []byte) error {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		a.printf("%s\n", b)
		return nil
	}
	a.printf("%s\n", out.Bytes())
	return nil
}

func cmdEvents(ctx context.Context, a *App, c *Client, fs *flag.FlagSet, args []string) error {
	limit, err := strconv.Atoi(stringFlag(fs, "limit"))
	if err != nil || limit < 1 || limit > 1000 {
		return usageError{fmt.Errorf("--limit %s: want 1..1000", stringFlag(fs, "limit"))}
	}
	evs, err := c.Events(ctx, args[0], limit)
	if err != nil {
		return err
	}
	slices.Reverse(evs) // the API answers newest first; a terminal reads oldest first
	tw := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tGEN\tSTATUS\tDESIRED\tSTORAGE\tCAUSE\tERROR")
	for _, e := range evs {
		cause := e.Cause.Action
		if e.Cause.Actor != "" {
			cause += " (" + e.Cause.Actor + ")"
		}
		errText := "-"
		if e.DeploymentError != nil {
			errText = e.DeploymentError.ErrorCode
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", e.At.Local().Format("15:04:05.000"), e.Generation,
			e.DeploymentStatus, e.DeploymentDesiredStatus, e.StorageStatus, cause, errText)
	}
	return tw.Flush()
}
