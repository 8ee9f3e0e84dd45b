package workflow

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/sluicehq/sluice/internal/domain"
)

// Environment variables read by StateMachinesFromEnv.
const (
	// EnvStateMachineARNs holds every kind's ARN at once, as a JSON object
	// {"start": "arn:…", "suspend": "arn:…", "stop": "arn:…", "clear": "arn:…"}
	// or as a list "start=arn:…,suspend=arn:…,…".
	EnvStateMachineARNs = "SLUICE_STATE_MACHINE_ARNS"
	// EnvStateMachineARNPrefix + the upper-case kind (SLUICE_STATE_MACHINE_ARN_START,
	// …_SUSPEND, …_STOP, …_CLEAR) holds one kind's ARN; it wins over the list.
	EnvStateMachineARNPrefix = "SLUICE_STATE_MACHINE_ARN_"
)

// StateMachinesFromEnv reads the state machine ARN of every workflow kind from
// the environment (see EnvStateMachineARNs and EnvStateMachineARNPrefix).
// Kinds without an ARN are left out; NewSFN reports them.
func StateMachinesFromEnv(getenv func(string) string) (map[domain.WorkflowKind]string, error) {
	out := map[domain.WorkflowKind]string{}
	if raw := strings.TrimSpace(getenv(EnvStateMachineARNs)); raw != "" {
		if strings.HasPrefix(raw, "{") {
			var m map[string]string
			if err := json.Unmarshal([]byte(raw), &m); err != nil {
				return nil, fmt.Errorf("workflow: $%s is not a JSON object of strings: %w", EnvStateMachineARNs, err)
			}
			for k, v := range m {
				out[domain.WorkflowKind(k)] = strings.TrimSpace(v)
			}
		} else {
			for _, item := range strings.Split(raw, ",") {
				item = strings.TrimSpace(item)
				if item == "" {
					continue
				}
				k, v, ok := strings.Cut(item, "=")
				if !ok {
					return nil, fmt.Errorf("workflow: $%s: %q is not kind=arn", EnvStateMachineARNs, item)
				}
				out[domain.WorkflowKind(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
	}
	for _, k := range domain.AllWorkflowKinds {
		if v := strings.TrimSpace(getenv(EnvStateMachineARNPrefix + strings.ToUpper(string(k)))); v != "" {
			out[k] = v
		}
	}
	for k := range out {
		if !slices.Contains(domain.AllWorkflowKinds, k) {
			return nil, fmt.Errorf("workflow: unknown workflow kind %q in $%s (kinds: %v)", k, EnvStateMachineARNs, domain.AllWorkflowKinds)
		}
	}
	return out, nil
}
