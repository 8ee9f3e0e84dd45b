package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/chromedp/chromedp"

	"github.com/sluicehq/sluice/internal/console"
	"github.com/sluicehq/sluice/internal/dynamolocal"
	"github.com/sluicehq/sluice/internal/localsfn"
	"github.com/sluicehq/sluice/internal/localstack"
	"github.com/sluicehq/sluice/internal/testkit"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := dynamolocal.StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// chromiumPackage is the Debian package the browser test needs.
const chromiumPackage = "chromium"

// findChromium returns the browser binary. Missing is a failure, not a skip:
// `make test` must run the browser test (.ci/run installs the package).
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "/usr/bin/chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("the console's browser test needs headless Chromium: install the Debian package %q (apt-get install -y %s); .ci/run installs it when missing", chromiumPackage, chromiumPackage)
	return ""
}

// browserStack is the local stack with the real local compute (the sample
// runtime, so the stats are real) and short Wait states.
func browserStack(t *testing.T) *localstack.Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	logs := &testkit.SyncBuffer{}
	st, err := localstack.Start(ctx, localstack.Config{
		DynamoEndpoint: dynamolocal.Shared(t).Endpoint,
		Table:          dynamolocal.UniqueTableName(t),
		// 300 ms backs off the suspend checks long enough for the page to
		// see the loop; the retry pauses stay short.
		Overrides:         localsfn.Overrides{WaitTimeOverrides: map[string]int{"*": 300}, RetryIntervalOverrides: map[string]int{"*": 20}},
		ReconcileInterval: -1,
		Logger:            slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatalf("starting the local stack: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out := logs.String()
			if len(out) > 20000 {
				out = "…" + out[len(out)-20000:]
			}
			t.Logf("stack logs (tail):\n%s", out)
		}
		if err := st.Close(); err != nil {
			t.Errorf("closing the stack: %v", err)
		}
	})
	return st
}

// browser drives one headless Chromium tab.
type browser struct {
	t         *testing.T
	ctx       context.Context
	shots     string
	shotCount int
}

func newBrowser(t *testing.T, ctx context.Context) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(findChromium(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		// Without these Chromium reaches out to the network at start, and
		// this machine's closed network refuses it.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	b := &browser{t: t, ctx: tabCtx}
	root, err := dynamolocal.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b.shots = filepath.Join(root, "console-screenshots")
	if err := os.MkdirAll(b.shots, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(tabCtx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return b
}

func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression into out (JSON round trip).
func (b *browser) eval(expr string, out any) {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[json.RawMessage](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	if err := json.Unmarshal(v, out); err != nil {
		b.t.Fatalf("evaluate %s: %s: %v", expr, v, err)
	}
}

// waitTrue polls a JavaScript expression until it is true, bounded only by
// the test's deadline (never a timing assertion).
func (b *browser) waitTrue(what, expr string) {
	b.t.Helper()
	for {
		if ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](expr)); err == nil && ok {
			return
		} else if b.ctx.Err() != nil {
			body, _ := chromedp.Run(context.WithoutCancel(b.ctx), chromedp.Evaluate[string](`document.getElementById('main').innerText.slice(0, 3000)`))
			b.t.Fatalf("never: %s (%s)\npage:\n%s", what, expr, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitText waits until the element of selector contains text.
func (b *browser) waitText(selector, text string) {
	b.t.Helper()
	b.waitTrue(fmt.Sprintf("%s shows %q", selector, text),
		fmt.Sprintf(`(() => { const el = document.querySelector(%q); return !!el && el.textContent.includes(%q); })()`, selector, text))
}

func (b *browser) click(selector string) {
	b.t.Helper()
	b.run("click "+selector, chromedp.WaitVisible(chromedp.CSS(selector)), chromedp.Click(chromedp.CSS(selector)))
}

// setValue sets a form field's value.
func (b *browser) setValue(selector, value string) {
	b.t.Helper()
	var ok bool
	b.eval(fmt.Sprintf(`(() => { const el = document.querySelector(%q); if (!el) return false; el.value = %q; return true; })()`, selector, value), &ok)
	if !ok {
		b.t.Fatalf("no field %s", selector)
	}
}

func (b *browser) goTo(u string) {
	b.t.Helper()
	b.run("navigate "+u, chromedp.Navigate(u))
}

// screenshot writes the viewport (1280x800) as PNG to console-screenshots/.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	b.run("settle", chromedp.Sleep(50*time.Millisecond)) // let the last poll paint
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	b.shotCount++
	path := filepath.Join(b.shots, fmt.Sprintf("%02d-%s.png", b.shotCount, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", path)
}

func (b *browser) checkNoJSErrors() {
	b.t.Helper()
	var errs []string
	b.eval(`window.__sluice.errors`, &errs)
	if len(errs) > 0 {
		b.t.Fatalf("JavaScript errors on the page: %v", errs)
	}
}

// row is the selector of a pipeline's cell on the pipelines page.
func row(name, col string) string {
	return fmt.Sprintf(`tr[data-pipeline=%q] td[data-col=%q]`, name, col)
}

func action(name, id string) string {
	return fmt.Sprintf(`button[data-pipeline=%q][data-action=%q]`, name, id)
}

func answer(name string) string { return fmt.Sprintf(`output[data-answer=%q]`, name) }

// TestConsoleInBrowser drives the console in headless Chromium against a
// real local stack: the key, creating and starting a pipeline from the
// buttons, a graceful stop whose suspend workflow's states light up in
// order on the execution page, the timeline, a forced stop cancelling a
// slow suspend, and a rejected action's error on the page.
func TestConsoleInBrowser(t *testing.T) {
	findChromium(t) // before the stack: a missing browser fails fast
	st := browserStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b := newBrowser(t, ctx)
	started := time.Now()

	// The key: asked for, entered once, kept in session storage.
	b.goTo(st.ConsoleURL)
	b.run("key form", chromedp.WaitVisible(chromedp.CSS(`#api-key`)))
	b.screenshot("key")
	b.run("wrong key", chromedp.SendKeys(chromedp.CSS(`#api-key`), "apikey:wrong"), chromedp.Click(chromedp.CSS(`#key-submit`)))
	b.waitText(`#key-error`, "AuthenticationFailed")
	b.run("enter key", chromedp.WaitVisible(chromedp.CSS(`#api-key`)), chromedp.SendKeys(chromedp.CSS(`#api-key`), st.APIKey), chromedp.Click(chromedp.CSS(`#key-submit`)))
	b.run("pipelines page", chromedp.WaitVisible(chromedp.CSS(`#create-submit`)))
	var href string
	b.eval(`location.href`, &href)
	if strings.Contains(href, "apikey") {
		t.Fatalf("the key is in the URL: %s", href)
	}

	// Create and start p1 from the form and the buttons. Its suspend takes
	// a moment (the sample runtime's fault injection), so the page sees the
	// suspend workflow run.
	create := func(name, runtimeConfig string) {
		b.setValue(`#new-name`, "")
		b.run("type the name", chromedp.SendKeys(chromedp.CSS(`#new-name`), name))
		b.setValue(`#new-description`, "from the browser test")
		b.setValue(`#new-runtime-config`, runtimeConfig)
		b.click(`#create-submit`)
		b.waitText(`#create-answer`, "Create "+name+": 201")
		b.run("row of "+name, chromedp.WaitVisible(chromedp.CSS(row(name, "status"))))
	}
	create("web1", `{"checkpoint_interval_secs": 1, "fault": {"suspend_delay_secs": 2}}`)
	b.click(action("web1", "start"))
	b.waitText(answer("web1"), "Start (running): 202 Accepted")
	b.waitText(row("web1", "status"), "Running")
	b.waitText(row("web1", "desired"), "Running")
	b.screenshot("pipelines")

	// The pipeline page: record, live stats.
	b.click(`a[href="#/pipelines/web1"]`)
	b.run("pipeline page", chromedp.WaitVisible(chromedp.CSS(`#record`)))
	b.waitTrue("the stats chart", `!!document.querySelector('#stats-chart svg polyline')`)
	b.waitText(`#stats`, "total processed records")

	// Stop gracefully from the button; follow the record's workflow link.
	b.click(action("web1", "stop"))
	b.waitText(answer("web1"), "Stop (graceful): 202 Accepted")
	b.waitText(`#workflow-link`, "-suspend")
	b.click(`#workflow-link`)
	b.run("execution page", chromedp.WaitVisible(chromedp.CSS(`#graph svg`)))
	b.waitTrue("the suspend execution ends", `document.querySelector('#exec-status')?.dataset.status === 'SUCCEEDED'`)
	b.waitTrue("the graph shows Stopped succeeded", `document.querySelector('g.node[data-state="Stopped"]')?.dataset.outcome === 'succeeded'`)
	b.screenshot("execution-suspend")

	// The states lit up in the order the execution entered them.
	var execName string
	b.eval(`document.getElementById('exec-name').textContent`, &execName)
	if !strings.HasPrefix(execName, "web1-") || !strings.HasSuffix(execName, "-suspend") {
		t.Fatalf("execution name %q: want the Step Functions name web1-<id>-g<n>-suspend", execName)
	}
	var stateLog []string
	b.eval(`window.__sluice.stateLog`, &stateLog)
	entered := enteredStates(t, st, execName)
	litOrder := firstAppearance(stateLog)
	if !slices.Equal(litOrder, dedupe(entered)) {
		t.Fatalf("states lit up in the order %v; the execution entered %v", litOrder, entered)
	}
	for _, want := range [][]string{{"MarkSuspending", "RequestSuspend", "WaitUntilSuspended", "WaitUntilSuspendedResult", "MarkSuspended", "Deprovision", "MarkStopped", "Stopped"}} {
		if !isSubsequence(want, litOrder) {
			t.Fatalf("states lit up %v: want the suspend path %v in order", litOrder, want)
		}
	}
	if !slices.ContainsFunc(stateLog, func(s string) bool { return strings.HasSuffix(s, ":current") }) {
		t.Fatalf("the page never saw a state current (log %v): it did not watch the execution run", stateLog)
	}
	var outcomes map[string]string
	b.eval(`Object.fromEntries([...document.querySelectorAll('g.node')].map(g => [g.dataset.state, g.dataset.outcome]))`, &outcomes)
	for _, s := range entered {
		if outcomes[s] != "succeeded" {
			t.Errorf("state %s shown %q, want succeeded (all: %v)", s, outcomes[s], outcomes)
		}
	}
	if outcomes["RecordError"] != "none" {
		t.Errorf("RecordError shown %q, want not entered", outcomes["RecordError"])
	}
	b.waitTrue("the loop edge is marked taken", `!!document.querySelector('g.edge-g.taken[data-from="WaitUntilSuspendedResult"][data-to="MarkSuspended"]')`)
	b.waitText(`#history`, "ExecutionSucceeded")
	b.waitText(`#history`, "LambdaFunctionScheduled")
	// A state's input and output from the keyboard.
	b.run("focus a state", chromedp.Focus(chromedp.CSS(`g.node[data-state="MarkSuspended"]`)), chromedp.KeyEvent("\r"))
	b.waitText(`#state-detail`, "MarkSuspended")
	b.waitText(`#state-detail`, "TaskStateExited")

	// The timeline on the pipeline page.
	b.click(`#exec-head a[href="#/pipelines/web1"]`)
	for _, a := range []string{"stop?force=false", "MarkSuspending", "MarkSuspended", "MarkStopped"} {
		b.waitTrue("timeline has "+a, fmt.Sprintf(`!!document.querySelector('#timeline li[data-action=%q]')`, a))
	}
	b.waitTrue("timeline shows Suspending then Stopped", `(() => { const s = [...document.querySelectorAll('#timeline li')].map(li => li.dataset.status);
		const i = s.indexOf('Stopped'), j = s.indexOf('Suspending'); return i >= 0 && j > i; })()`)
	b.waitText(`#executions`, execName)
	b.screenshot("pipeline")

	// A second pipeline whose suspend hangs: force-stop it mid-suspend and
	// see the suspend cancelled.
	b.goTo(st.ConsoleURL)
	b.run("pipelines page", chromedp.WaitVisible(chromedp.CSS(`#create-submit`)))
	create("web2", `{"checkpoint_interval_secs": 1, "fault": {"suspend_delay_secs": 3600}}`)
	b.click(action("web2", "start"))
	b.waitText(row("web2", "status"), "Running")
	b.click(action("web2", "stop"))
	b.waitText(answer("web2"), "Stop (graceful): 202 Accepted")
	b.waitText(row("web2", "status"), "Suspending")
	b.click(action("web2", "stop-force"))
	b.waitText(answer("web2"), "Stop (force): 202 Accepted")
	b.waitText(row("web2", "status"), "Stopped")

	// A rejected action: web1 still holds its storage, so it cannot be deleted.
	b.click(action("web1", "delete"))
	b.waitText(answer("web1"), "400 DeleteRestrictedToClearedStorage")
	b.screenshot("rejected-action")

	// The cancelled suspend on its execution page.
	b.click(`a[href="#/pipelines/web2"]`)
	b.waitTrue("web2's suspend execution is listed ended", `[...document.querySelectorAll('#executions tr[data-execution]')].some(tr => tr.dataset.execution.endsWith('-suspend') && !tr.textContent.includes('RUNNING'))`)
	b.waitText(`#timeline`, "stop?force=true")
	var suspendHref string
	b.eval(`[...document.querySelectorAll('#executions tr[data-execution]')].find(tr => tr.dataset.execution.endsWith('-suspend')).querySelector('a').getAttribute('href')`, &suspendHref)
	b.click(fmt.Sprintf(`#executions a[href=%q]`, suspendHref))
	b.waitTrue("the suspend execution has ended", `['ABORTED', 'SUCCEEDED', 'FAILED'].includes(document.querySelector('#exec-status')?.dataset.status)`)
	var status string
	b.eval(`document.querySelector('#exec-status').dataset.status`, &status)
	if status != "ABORTED" {
		t.Fatalf("the superseded suspend execution ended %s, want ABORTED (cancelled by the forced stop)", status)
	}
	b.waitTrue("a state shows aborted", `!!document.querySelector('g.node[data-outcome="aborted"]')`)
	b.screenshot("execution-cancelled")

	// A narrow window still works (no horizontal page overflow but the graph's).
	b.run("narrow", chromedp.EmulateViewport(420, 800))
	b.goTo(st.ConsoleURL)
	b.run("pipelines page narrow", chromedp.WaitVisible(chromedp.CSS(`#create-submit`)))
	b.waitText(row("web2", "status"), "Stopped")
	var overflow bool
	b.eval(`document.documentElement.scrollWidth > window.innerWidth + 1`, &overflow)
	if overflow {
		t.Errorf("the pipelines page scrolls sideways at 420 px")
	}
	b.run("wide again", chromedp.EmulateViewport(1280, 800))
	b.checkNoJSErrors()
	t.Logf("browser part took %s", time.Since(started).Round(time.Millisecond))

	if os.Getenv("SLUICE_CONSOLE_RECORD_FIXTURES") != "" {
		recordFixtures(t, st, execName, suspendHref)
	}
}

// enteredStates lists the states an execution entered, from Step Functions.
func enteredStates(t *testing.T, st *localstack.Stack, execName string) []string {
	t.Helper()
	arn := executionArn(t, st, execName)
	var out []string
	pages := sfn.NewGetExecutionHistoryPaginator(st.SFN, &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(arn)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range page.Events {
			if ev.StateEnteredEventDetails != nil {
				out = append(out, aws.ToString(ev.StateEnteredEventDetails.Name))
			}
		}
	}
	return out
}

func executionArn(t *testing.T, st *localstack.Stack, execName string) string {
	t.Helper()
	kind := execName[strings.LastIndexByte(execName, '-')+1:]
	for k, m := range st.Machines {
		if string(k) == kind {
			return strings.Replace(m, ":stateMachine:", ":execution:", 1) + ":" + execName
		}
	}
	t.Fatalf("no state machine for %s", execName)
	return ""
}

// firstAppearance is the states of "state:outcome" entries in the order
// they first appear.
func firstAppearance(log []string) []string {
	var out []string
	for _, e := range log {
		s := e[:strings.LastIndexByte(e, ':')]
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func dedupe(states []string) []string {
	var out []string
	for _, s := range states {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func isSubsequence(want, have []string) bool {
	i := 0
	for _, s := range have {
		if i < len(want) && s == want[i] {
			i++
		}
	}
	return i == len(want)
}

// recordFixtures (SLUICE_CONSOLE_RECORD_FIXTURES=1) writes the histories
// the outcome tests read to testdata/, from this run's real executions and
// one more: a suspend the runtime fails (caught, then RecordError).
func recordFixtures(t *testing.T, st *localstack.Stack, suspendExec, cancelledHref string) {
	t.Helper()
	get := func(path string) []byte {
		req, _ := http.NewRequest("GET", st.APIURL+path, nil)
		req.Header.Set("Authorization", "Bearer "+st.APIKey)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return b
	}
	post := func(path, body string) {
		req, _ := http.NewRequest("POST", st.APIURL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+st.APIKey)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
	}
	write := func(name, arn string) {
		var v console.ExecutionView
		if err := json.Unmarshal(get("/console/api/execution?arn="+url.QueryEscape(arn)), &v); err != nil {
			t.Fatal(err)
		}
		b, _ := json.MarshalIndent(v.Events, "", " ")
		if err := os.WriteFile(filepath.Join("testdata", name+".json"), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("suspend-succeeded", executionArn(t, st, suspendExec))
	cancelled, _ := url.PathUnescape(strings.TrimPrefix(cancelledHref, "#/executions/"))
	write("suspend-aborted", cancelled)

	post("/v0/pipelines", `{"name":"web3","runtime_config":{"checkpoint_interval_secs":1,"fault":{"suspend_error":"disk full (injected)"}}}`)
	post("/v0/pipelines/web3/start", "")
	var p struct {
		DeploymentStatus string `json:"deployment_status"`
		Workflow         struct {
			ExecutionName string `json:"execution_name"`
			Status        string `json:"status"`
		} `json:"workflow"`
	}
	wait := func(cond func() bool) {
		for !cond() {
			if time.Sleep(100 * time.Millisecond); t.Context().Err() != nil {
				t.Fatal("interrupted")
			}
			_ = json.Unmarshal(get("/v0/pipelines/web3"), &p)
		}
	}
	wait(func() bool { return p.DeploymentStatus == "Running" })
	post("/v0/pipelines/web3/stop", "")
	wait(func() bool {
		return strings.HasSuffix(p.Workflow.ExecutionName, "-suspend") && p.DeploymentStatus == "Stopped"
	})
	arn := executionArn(t, st, p.Workflow.ExecutionName)
	for {
		d, err := st.SFN.DescribeExecution(context.Background(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
		if err == nil && d.Status != "RUNNING" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	write("suspend-caught", arn)
}
