package reconciler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
)

// Sharded passes (README, "Going to 100,000"): with Shards > 1 the minute's
// scheduled invocation is a coordinator. It invokes the same function
// asynchronously once per shard with a ShardRequest and returns; each of
// those invocations is an ordinary pass over its shard (Reconciler.Shards,
// Shard) with its own deadline. With Shards ≤ 1 the scheduled invocation is
// the pass, as before.

// MaxShards bounds Shards (a coordinator's invocations per minute).
const MaxShards = 100

// EnvShards names the environment variable of the reconciler Lambda that
// sets Entry.Shards (an integer in [1, MaxShards]; unset: 1).
const EnvShards = "SLUICE_RECONCILER_SHARDS"

// ShardsFromEnv reads EnvShards through getenv (1 when unset).
func ShardsFromEnv(getenv func(string) string) (int, error) {
	return intFromEnv(getenv, EnvShards, 1, MaxShards, 1)
}

// ShardRequest is the payload of one shard's invocation.
type ShardRequest struct {
	Shard  int `json:"shard"`
	Shards int `json:"shards"`
}

func (s ShardRequest) validate() error {
	if s.Shards < 1 || s.Shards > MaxShards || s.Shard < 0 || s.Shard >= s.Shards {
		return fmt.Errorf("reconciler: shard %d of %d: want 0 ≤ shard < shards ≤ %d", s.Shard, s.Shards, MaxShards)
	}
	return nil
}

// parseInvocation tells a coordinator's ShardRequest (an object with a
// "shards" member) from anything else (the schedule's event, or {}: nil).
func parseInvocation(payload []byte) (*ShardRequest, error) {
	var probe map[string]json.RawMessage
	if len(bytes.TrimSpace(payload)) == 0 || json.Unmarshal(payload, &probe) != nil {
		return nil, nil // not an object: the schedule's (or a manual) invocation
	}
	if _, ok := probe["shards"]; !ok {
		return nil, nil
	}
	var req ShardRequest
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("reconciler: shard request: %w", err)
	}
	if err := req.validate(); err != nil {
		return nil, err
	}
	return &req, nil
}

// Invoker starts one asynchronous invocation of the reconciler function
// (awswire/reconcilerlambda.Invoker: Lambda's Invoke, InvocationType Event).
type Invoker interface {
	InvokeAsync(ctx context.Context, payload []byte) error
}

// FanOutReport is what a coordinator did.
type FanOutReport struct {
	Shards  int `json:"shards"`
	Invoked int `json:"shards_invoked"`
	Failed  int `json:"shards_failed"`
}

// Entry is the reconciler function's handler: a shard's pass, the pass
// itself (Shards ≤ 1), or the coordinator (Shards > 1).
type Entry struct {
	// Pass is the reconciler every pass copies (its Shards and Shard are
	// set per invocation).
	Pass *Reconciler
	// Shards is the configured number of shards (≤ 1: no fan-out).
	Shards int
	// Invoker starts the shards' invocations (needed when Shards > 1).
	Invoker Invoker
}

// fanOutConcurrency bounds the coordinator's invokes in flight.
const fanOutConcurrency = 16

// Handle runs one invocation. Its result is the pass's Report or the
// coordinator's FanOutReport.
func (e *Entry) Handle(ctx context.Context, payload json.RawMessage) (any, error) {
	req, err := parseInvocation(payload)
	if err != nil {
		return nil, err
	}
	pass := *e.Pass
	if req != nil {
		pass.Shards, pass.Shard = req.Shards, req.Shard
		pass.Logger = pass.logger().With("shard", req.Shard, "shards", req.Shards)
		return pass.Run(ctx)
	}
	if e.Shards <= 1 {
		return pass.Run(ctx)
	}
	return e.fanOut(ctx)
}

// fanOut invokes one pass per shard. A failed invoke is logged and
// counted; the others still go out, and the handler's error says how many
// failed (the next minute's coordinator invokes every shard again).
func (e *Entry) fanOut(ctx context.Context) (FanOutReport, error) {
	log := e.Pass.logger()
	rep := FanOutReport{Shards: e.Shards}
	if e.Invoker == nil {
		return rep, errors.New("reconciler: sharded (Shards > 1) without an Invoker")
	}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, fanOutConcurrency)
	)
	for shard := range e.Shards {
		payload, _ := json.Marshal(ShardRequest{Shard: shard, Shards: e.Shards})
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := e.Invoker.InvokeAsync(ctx, payload)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				rep.Failed++
				log.Error("reconciler shard not invoked", "shard", shard, "shards", e.Shards, "error", err.Error())
				return
			}
			rep.Invoked++
		}()
	}
	wg.Wait()
	log.Info("reconciler shards invoked", "shards", e.Shards, "invoked", rep.Invoked, "failed", rep.Failed)
	if rep.Failed > 0 {
		return rep, fmt.Errorf("reconciler: %d of %d shards not invoked", rep.Failed, e.Shards)
	}
	return rep, nil
}
