package bench

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/sluicehq/sluice/internal/localsfn"
)

// The floor: what the local services take for the calls an API path cannot
// do without, measured raw (the SDK clients straight to DynamoDB Local and
// the local Step Functions service, no API, no Lambda), at the same
// concurrencies as the API latency.

// FloorMachine is the one-state machine (a Pass state) the local stack of
// the bench serves for the StartExecution floor.
const FloorMachine = "sluice-bench-floor"

var floorDefinition = []byte(`{"Comment":"bench floor: one Pass state","StartAt":"Done","States":{"Done":{"Type":"Pass","End":true}}}`)

// FloorResult is one raw call at one concurrency.
type FloorResult struct {
	Op          string  `json:"op"`
	Measures    string  `json:"measures"`
	Concurrency int     `json:"concurrency"`
	Dist        Dist    `json:"latency"`
	PerSec      float64 `json:"per_sec"`
}

// The floor operations.
const (
	FloorGetItem   = "GetItem"
	FloorTransact  = "TransactWriteItems"
	FloorStart     = "StartExecution"
	FloorWriteThen = "TransactWriteItems → StartExecution"
)

// floorOf names the floor of an API path (LatencyResult.Request).
func floorOf(request string) string {
	switch {
	case strings.HasPrefix(request, "GET "), strings.Contains(request, "(repeated)"):
		return FloorGetItem
	case strings.Contains(request, "(first"):
		return FloorWriteThen
	}
	return ""
}

func runFloor(ctx context.Context, fresh func() (*env, error), opts Options, res *Results) error {
	e, err := fresh()
	if err != nil {
		return err
	}
	db, table, sf := e.stack.Dynamo, e.stack.Table, e.stack.SFN
	use := func(next *env) { e, db, table, sf = next, next.stack.Dynamo, next.stack.Table, next.stack.SFN }
	arn := fmt.Sprintf("arn:aws:states:%s:%s:stateMachine:%s", localsfn.DefaultRegion, localsfn.DefaultAccount, FloorMachine)
	// An item the size of a bench pipeline's record (no program), and its event.
	payload := strings.Repeat("x", 1200)
	var seq atomic.Int64 // shared by the clients: every transaction writes new items
	transact := func(ctx context.Context) error {
		pk := fmt.Sprintf("floor#%d", seq.Add(1))
		cond := aws.String("attribute_not_exists(pk)")
		_, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []ddbtypes.TransactWriteItem{
			{Put: &ddbtypes.Put{TableName: aws.String(table), ConditionExpression: cond, Item: map[string]ddbtypes.AttributeValue{
				"pk": &ddbtypes.AttributeValueMemberS{Value: pk}, "sk": &ddbtypes.AttributeValueMemberS{Value: "floor"},
				"refresh_version": &ddbtypes.AttributeValueMemberN{Value: "1"}, "data": &ddbtypes.AttributeValueMemberS{Value: payload}}}},
			{Put: &ddbtypes.Put{TableName: aws.String(table), ConditionExpression: cond, Item: map[string]ddbtypes.AttributeValue{
				"pk": &ddbtypes.AttributeValueMemberS{Value: pk}, "sk": &ddbtypes.AttributeValueMemberS{Value: "floor-event#1"},
				"data": &ddbtypes.AttributeValueMemberS{Value: payload[:200]}}}},
		}})
		return err
	}
	get := func(ctx context.Context, i int) error {
		_, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
			Key: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: fmt.Sprintf("floor#%d", i%64+1)},
				"sk": &ddbtypes.AttributeValueMemberS{Value: "floor"}}})
		return err
	}
	start := func(ctx context.Context, name string) error {
		_, err := sf.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(arn), Name: aws.String(name), Input: aws.String(`{}`)})
		return err
	}
	timed := func(f func() error) (time.Duration, error) {
		t0 := time.Now()
		err := f()
		return time.Since(t0), err
	}
	// Warm-up: connections and DynamoDB Local's JIT (and the 64 items the
	// GETs read), and the first executions of the Step Functions service.
	warmUp := func() error {
		for i := range 200 {
			if err := transact(ctx); err != nil {
				return fmt.Errorf("floor warm-up: %w", err)
			}
			if err := get(ctx, i); err != nil {
				return fmt.Errorf("floor warm-up: %w", err)
			}
		}
		for i := range 20 {
			if err := start(ctx, fmt.Sprintf("warm-%d", i)); err != nil {
				return fmt.Errorf("floor warm-up: %w", err)
			}
		}
		return nil
	}
	if err := warmUp(); err != nil {
		return err
	}
	record := func(op, what string, c int, lat []time.Duration, rate float64) {
		res.Floor = append(res.Floor, FloorResult{Op: op, Measures: what, Concurrency: c, Dist: distOf(lat), PerSec: rate})
		e.logf("floor: %s at %d clients: %+v", op, c, distOf(lat))
	}
	for _, c := range concurrencies {
		lat, rate, err := measure(opts.Requests, c, func(i int) (time.Duration, error) {
			return timed(func() error { return get(ctx, i) })
		})
		if err != nil {
			return err
		}
		record(FloorGetItem, "strongly consistent GetItem of a 1.2 KB item (the floor of GET and of a repeated stop)", c, lat, rate)
	}
	for _, c := range concurrencies {
		lat, rate, err := measure(opts.Requests, c, func(int) (time.Duration, error) {
			return timed(func() error { return transact(ctx) })
		})
		if err != nil {
			return err
		}
		record(FloorTransact, "conditional TransactWriteItems of two new items (1.2 KB + 0.2 KB)", c, lat, rate)
	}
	// StartExecution: the local service's latency grows with the executions
	// it holds, so every level gets a fresh stack, as the API's first stops
	// do (each level of those: 192 start executions, then the 192 stops).
	// FirstStops raw starts, then FirstStops transactions each followed by
	// its StartExecution.
	for _, c := range concurrencies {
		next, err := fresh()
		if err != nil {
			return err
		}
		use(next)
		if err := warmUp(); err != nil {
			return err
		}
		lat, rate, err := measure(opts.FirstStops, c, func(i int) (time.Duration, error) {
			return timed(func() error { return start(ctx, fmt.Sprintf("start-c%d-%d", c, i)) })
		})
		if err != nil {
			return err
		}
		record(FloorStart, "StartExecution of the one-state (Pass) machine", c, lat, rate)
		lat, rate, err = measure(opts.FirstStops, c, func(i int) (time.Duration, error) {
			return timed(func() error {
				if err := transact(ctx); err != nil {
					return err
				}
				return start(ctx, fmt.Sprintf("both-c%d-%d", c, i))
			})
		})
		if err != nil {
			return err
		}
		record(FloorWriteThen, "the conditional transaction, then StartExecution of the one-state machine (the floor of a first stop or start)", c, lat, rate)
	}
	return nil
}

// printFloor writes the floor and each API path's ratio over its floor (at
// the same concurrency, from the same run).
func printFloor(w io.Writer, res *Results) {
	if len(res.Floor) == 0 {
		return
	}
	floor := map[string]map[int]Dist{}
	fmt.Fprintf(w, "Floor: raw calls to the local services (SDK client → DynamoDB Local / the local Step Functions service), ms\n\n| call | clients | p50 | p95 | p99 | per s | n |\n|---|---|---|---|---|---|---|\n")
	for _, f := range res.Floor {
		if floor[f.Op] == nil {
			floor[f.Op] = map[int]Dist{}
		}
		floor[f.Op][f.Concurrency] = f.Dist
		fmt.Fprintf(w, "| %s | %d | %.1f | %.1f | %.1f | %.0f | %d |\n", f.Op, f.Concurrency, f.Dist.P50, f.Dist.P95, f.Dist.P99, f.PerSec, f.Dist.N)
	}
	fmt.Fprintf(w, "\nAPI paths over their floor (same clients; GET and repeated stop over GetItem, first stops and start over TransactWriteItems → StartExecution)\n\n| request | clients | p50 | floor p50 | **p50 ratio** | p99 | floor p99 | **p99 ratio** |\n|---|---|---|---|---|---|---|---|\n")
	for _, l := range res.Latency {
		f, ok := floor[floorOf(l.Request)][l.Concurrency]
		if !ok || f.P50 <= 0 || f.P99 <= 0 {
			continue
		}
		fmt.Fprintf(w, "| %s | %d | %.1f | %.1f | **%.2fx** | %.1f | %.1f | **%.2fx** |\n", l.Request, l.Concurrency,
			l.Dist.P50, f.P50, l.Dist.P50/f.P50, l.Dist.P99, f.P99, l.Dist.P99/f.P99)
	}
	fmt.Fprintln(w)
}
