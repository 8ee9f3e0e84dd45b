package ecsfargate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// fargateSize is one Fargate CPU size and the memory (MiB) it allows:
// from MinMem to MaxMem in steps of Step.
type fargateSize struct {
	CPU                  int
	MinMem, MaxMem, Step int
}

// fargateSizes are the Linux task sizes Fargate supports, smallest first.
var fargateSizes = []fargateSize{
	{256, 512, 2048, 512}, // 512, 1024, 2048 (1536 is not allowed: handled below)
	{512, 1024, 4096, 1024},
	{1024, 2048, 8192, 1024},
	{2048, 4096, 16384, 1024},
	{4096, 8192, 30720, 1024},
	{8192, 16384, 61440, 4096},
	{16384, 32768, 122880, 8192},
}

func (s fargateSize) allows(mem int) bool {
	if s.CPU == 256 {
		return mem == 512 || mem == 1024 || mem == 2048
	}
	return mem >= s.MinMem && mem <= s.MaxMem && (mem-s.MinMem)%s.Step == 0
}

// smallestMem is the smallest memory of this size that is >= want, or 0 if none.
func (s fargateSize) smallestMem(want int) int {
	for m := s.MinMem; m <= s.MaxMem; m += s.Step {
		if m >= want && s.allows(m) {
			return m
		}
	}
	return 0
}

// validFargate reports whether cpu units and memory MiB are a Fargate combination.
func validFargate(cpu, mem int) bool {
	for _, s := range fargateSizes {
		if s.CPU == cpu {
			return s.allows(mem)
		}
	}
	return false
}

// roundUpFargate returns the smallest Fargate combination with at least cpu units
// and mem MiB (either may be 0: no requirement).
func roundUpFargate(cpu, mem int) (int, int, bool) {
	for _, s := range fargateSizes {
		if s.CPU < cpu {
			continue
		}
		if m := s.smallestMem(mem); m != 0 {
			return s.CPU, m, true
		}
	}
	return 0, 0, false
}

// taskSize is the task-level cpu/memory override derived from runtime_config.
type taskSize struct {
	CPU, Memory string // empty: no override
}

// sizeFromRuntimeConfig reads runtime_config.resources. Two spellings:
//   - {"cpu": 1024, "memory": 2048} (numbers or strings, Fargate units: CPU units and
//     MiB); when both are numeric they must be a valid Fargate combination;
//     non-numeric strings ("1 vCPU", "2 GB") are passed to ECS as they are.
//   - Feldera's {"cpu_cores_max"/"cpu_cores_min", "memory_mb_max"/"memory_mb_min"}:
//     rounded up to the smallest Fargate size that fits.
func sizeFromRuntimeConfig(rc json.RawMessage) (taskSize, error) {
	if len(bytes.TrimSpace(rc)) == 0 {
		return taskSize{}, nil
	}
	var doc struct {
		Resources map[string]json.RawMessage `json:"resources"`
	}
	if err := json.Unmarshal(rc, &doc); err != nil {
		return taskSize{}, fmt.Errorf("runtime_config is not a JSON object: %w", err)
	}
	r := doc.Resources
	if len(r) == 0 {
		return taskSize{}, nil
	}
	cpu, err := scalar(r["cpu"])
	if err != nil {
		return taskSize{}, fmt.Errorf("runtime_config.resources.cpu: %w", err)
	}
	mem, err := scalar(r["memory"])
	if err != nil {
		return taskSize{}, fmt.Errorf("runtime_config.resources.memory: %w", err)
	}
	if cpu != "" || mem != "" {
		c, cErr := strconv.Atoi(cpu)
		m, mErr := strconv.Atoi(mem)
		if cErr == nil && mErr == nil && !validFargate(c, m) {
			return taskSize{}, fmt.Errorf("runtime_config.resources: cpu %d with memory %d MiB is not a Fargate task size", c, m)
		}
		return taskSize{CPU: cpu, Memory: mem}, nil
	}
	cores, err := firstNumber(r, "cpu_cores_max", "cpu_cores_min")
	if err != nil {
		return taskSize{}, err
	}
	memMB, err := firstNumber(r, "memory_mb_max", "memory_mb_min")
	if err != nil {
		return taskSize{}, err
	}
	if cores == 0 && memMB == 0 {
		return taskSize{}, nil
	}
	wantCPU := int(math.Ceil(cores * 1024))
	wantMem := int(math.Ceil(memMB))
	c, m, ok := roundUpFargate(wantCPU, wantMem)
	if !ok {
		return taskSize{}, fmt.Errorf("runtime_config.resources: %g cores and %g MB exceed the largest Fargate task size", cores, memMB)
	}
	return taskSize{CPU: strconv.Itoa(c), Memory: strconv.Itoa(m)}, nil
}

// scalar turns a JSON number or string into its string form ("" when absent or null).
func scalar(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return strings.TrimSpace(s), nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return "", fmt.Errorf("want a number or a string, got %s", raw)
	}
	if i, err := n.Int64(); err == nil {
		return strconv.FormatInt(i, 10), nil
	}
	return "", fmt.Errorf("want a whole number, got %s", raw)
}

func firstNumber(r map[string]json.RawMessage, keys ...string) (float64, error) {
	for _, k := range keys {
		raw := bytes.TrimSpace(r[k])
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		var f float64
		if err := json.Unmarshal(raw, &f); err != nil || f < 0 {
			return 0, fmt.Errorf("runtime_config.resources.%s: want a non-negative number, got %s", k, raw)
		}
		if f > 0 {
			return f, nil
		}
	}
	return 0, nil
}
