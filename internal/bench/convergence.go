package bench

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/workflow"
)

// ConvergeResult is the time from a request's 202 (answer read by the
// client) to the record reaching the state it asked for, taken from the
// record's own timestamp of that write (deployment_resources_status_since,
// stamped by the workflow step that wrote it), so polling adds nothing.
type ConvergeResult struct {
	Action   string `json:"action"`
	Measures string `json:"measures"`
	Dist     Dist   `json:"convergence"`
}

// CostResult is what one execution of a workflow costs, counted from its
// GetExecutionHistory: state transitions (every *StateEntered event, as
// Step Functions Standard bills them) and Lambda invocations (every
// LambdaFunctionScheduled event).
type CostResult struct {
	Workflow          string  `json:"workflow"`
	Executions        int     `json:"executions"`
	TransitionsMin    int     `json:"transitions_min"`
	TransitionsMax    int     `json:"transitions_max"`
	TransitionsMean   float64 `json:"transitions_mean"`
	LambdasMin        int     `json:"lambda_invocations_min"`
	LambdasMax        int     `json:"lambda_invocations_max"`
	LambdasMean       float64 `json:"lambda_invocations_mean"`
	StepMedianMs      float64 `json:"step_invocation_median_ms"`
	StepFunctionsUSD  float64 `json:"step_functions_usd_per_million"`
	LambdaUSD         float64 `json:"lambda_usd_per_million"`
	TotalUSDPerMillon float64 `json:"total_usd_per_million"`
}

// Prices are the AWS list prices used (internal/steps/COST.md: us-east-1,
// as of 2026-11, free tiers ignored).
type Prices struct {
	PerStateTransitionUSD float64 `json:"per_state_transition_usd"`
	PerLambdaRequestUSD   float64 `json:"per_lambda_request_usd"`
	PerGBSecondArmUSD     float64 `json:"per_gb_second_arm64_usd"`
	StepsMemoryMB         int     `json:"steps_memory_mb"`
	AssumedBilledMs       int     `json:"assumed_billed_ms_per_step"`
	Source                string  `json:"source"`
}

// ListPrices are COST.md's prices.
var ListPrices = Prices{
	PerStateTransitionUSD: 0.025 / 1000,
	PerLambdaRequestUSD:   0.20 / 1e6,
	PerGBSecondArmUSD:     0.0000133334,
	StepsMemoryMB:         128,
	AssumedBilledMs:       50,
	Source:                "AWS list prices, us-east-1, as of 2026-11 (internal/steps/COST.md): Step Functions Standard $0.025 per 1,000 state transitions; Lambda $0.20 per 1M requests and $0.0000133334 per GB-second (arm64), the steps function at 128 MB and an assumed 50 ms billed per step invocation; free tiers ignored",
}

func (p Prices) perInvocation() float64 {
	return p.PerLambdaRequestUSD + float64(p.StepsMemoryMB)/1024*float64(p.AssumedBilledMs)/1000*p.PerGBSecondArmUSD
}

// executionCost counts one execution's history.
type executionCost struct {
	transitions, lambdas int
	durations            []time.Duration
}

func (e *env) executionCost(ctx context.Context, ref domain.WorkflowRef) (executionCost, error) {
	arn, err := workflow.ExecutionARN(e.stack.Machines[ref.Kind], ref.ExecutionName)
	if err != nil {
		return executionCost{}, err
	}
	// Wait until it has ended (its last states may still run after the
	// record says Stopped).
	for i := 0; ; i++ {
		out, err := e.stack.SFN.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
		if err != nil {
			return executionCost{}, err
		}
		if out.Status != sfntypes.ExecutionStatusRunning {
			if out.Status != sfntypes.ExecutionStatusSucceeded {
				return executionCost{}, fmt.Errorf("%s ended %s", ref.ExecutionName, out.Status)
			}
			break
		}
		if i > 600 {
			return executionCost{}, fmt.Errorf("%s still running", ref.ExecutionName)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var c executionCost
	var scheduled time.Time
	pages := sfn.NewGetExecutionHistoryPaginator(e.stack.SFN, &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(arn)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return c, err
		}
		for _, ev := range page.Events {
			switch {
			case strings.HasSuffix(string(ev.Type), "StateEntered"):
				c.transitions++
			case ev.Type == sfntypes.HistoryEventTypeLambdaFunctionScheduled:
				c.lambdas++
				scheduled = aws.ToTime(ev.Timestamp)
			case ev.Type == sfntypes.HistoryEventTypeLambdaFunctionSucceeded:
				c.durations = append(c.durations, aws.ToTime(ev.Timestamp).Sub(scheduled))
			}
		}
	}
	return c, nil
}

func costOf(name string, costs []executionCost) CostResult {
	r := CostResult{Workflow: name, Executions: len(costs), TransitionsMin: 1 << 30, LambdasMin: 1 << 30}
	var durs []time.Duration
	for _, c := range costs {
		r.TransitionsMin, r.TransitionsMax = min(r.TransitionsMin, c.transitions), max(r.TransitionsMax, c.transitions)
		r.LambdasMin, r.LambdasMax = min(r.LambdasMin, c.lambdas), max(r.LambdasMax, c.lambdas)
		r.TransitionsMean += float64(c.transitions)
		r.LambdasMean += float64(c.lambdas)
		durs = append(durs, c.durations...)
	}
	if len(costs) > 0 {
		r.TransitionsMean /= float64(len(costs))
		r.LambdasMean /= float64(len(costs))
	}
	if len(durs) > 0 {
		sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
		r.StepMedianMs = float64(durs[len(durs)/2].Microseconds()) / 1000
	}
	r.StepFunctionsUSD = r.TransitionsMean * ListPrices.PerStateTransitionUSD * 1e6
	r.LambdaUSD = r.LambdasMean * ListPrices.perInvocation() * 1e6
	r.TotalUSDPerMillon = r.StepFunctionsUSD + r.LambdaUSD
	return r
}

// runConvergence starts and stops opts.Convergence pipelines one at a time
// for each kind of stop (each cycle on a fresh pipeline, nothing else
// running), and counts the cost of every execution.
func runConvergence(ctx context.Context, fresh func() (*env, error), opts Options, res *Results) error {
	kinds := []struct {
		prefix, path, action, measures string
		kind                           domain.WorkflowKind
	}{
		{"conv-forced", "/stop?force=true", "stop?force=true", "202 of the forced stop → Stopped (MarkStopping, Deprovision, MarkStopped)", domain.WorkflowStop},
		{"conv-graceful", "/stop", "stop (graceful, instant checkpoint)", "202 of the graceful stop → Stopped (MarkSuspending, RequestSuspend, one suspend check that finds it Suspended, MarkSuspended, Deprovision, MarkStopped)", domain.WorkflowSuspend},
	}
	var startLat []time.Duration
	var startCosts []executionCost
	for _, k := range kinds {
		e, err := fresh() // a fresh stack per series (see Run)
		if err != nil {
			return err
		}
		names := make([]string, opts.Convergence)
		for i := range names {
			names[i] = fmt.Sprintf("%s-%03d", k.prefix, i)
		}
		if err := e.createAll(ctx, names); err != nil {
			return err
		}
		var lat []time.Duration
		var costs []executionCost
		for _, name := range names {
			if _, err := e.must(ctx, "POST", "/v0/pipelines/"+name+"/start", nil, 202); err != nil {
				return err
			}
			acked := time.Now()
			p, err := e.waitOne(ctx, name, isRunning)
			if err != nil {
				return err
			}
			startLat = append(startLat, p.ResourcesStatusSince.Sub(acked))
			if c, err := e.executionCost(ctx, *p.Workflow); err == nil {
				startCosts = append(startCosts, c)
			} else {
				return err
			}
			if _, err := e.must(ctx, "POST", "/v0/pipelines/"+name+k.path, nil, 202); err != nil {
				return err
			}
			acked = time.Now()
			p, err = e.waitOne(ctx, name, isStopped)
			if err != nil {
				return err
			}
			if p.DeploymentError != nil {
				return fmt.Errorf("%s stopped with an error: %+v", name, p.DeploymentError)
			}
			lat = append(lat, p.ResourcesStatusSince.Sub(acked))
			if p.Workflow == nil || p.Workflow.Kind != k.kind {
				return fmt.Errorf("%s: workflow %+v, want %s", name, p.Workflow, k.kind)
			}
			c, err := e.executionCost(ctx, *p.Workflow)
			if err != nil {
				return err
			}
			costs = append(costs, c)
		}
		res.Convergence = append(res.Convergence, ConvergeResult{Action: k.action, Measures: k.measures, Dist: distOf(lat)})
		res.Cost = append(res.Cost, costOf(k.action, costs))
		e.logf("convergence: %s: %+v; cost %+v", k.action, distOf(lat), costOf(k.action, costs))
	}
	res.Convergence = append(res.Convergence, ConvergeResult{Action: "start", Measures: "202 of the start → Running (MarkProvisioning, Provision, one readiness check, MarkProvisioned)", Dist: distOf(startLat)})
	res.Cost = append(res.Cost, costOf("start", startCosts))
	return nil
}

// waitOne polls one record (every 10 ms) until cond holds.
func (e *env) waitOne(ctx context.Context, name string, cond func(domain.Pipeline) bool) (domain.Pipeline, error) {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		p, err := e.stack.Store.Get(ctx, name)
		if err == nil && cond(p) && p.Workflow != nil && p.Workflow.Generation == p.Generation {
			return p, nil
		}
		if time.Now().After(deadline) {
			return p, fmt.Errorf("%s never reached the state (%s/%s, %v)", name, p.DeploymentStatus(), p.DeploymentDesiredStatus(), err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
