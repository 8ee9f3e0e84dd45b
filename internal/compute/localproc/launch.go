package localproc

// What a runtime is started as: the operator's command and a minimal environment.

import (
	"encoding/json"
	"errors"
	"os"
)

// command is the runtime's argv: the operator's RuntimeCommand, else
// RuntimeBinary. A pipeline's runtime_config never changes it (records from
// before the API refused runtime_config.command keep the key; it is ignored).
func (d *Driver) command(json.RawMessage) ([]string, error) {
	if len(d.cfg.RuntimeCommand) > 0 {
		return append([]string(nil), d.cfg.RuntimeCommand...), nil
	}
	if d.cfg.RuntimeBinary == "" {
		return nil, errors.New("localproc: no runtime configured (RuntimeBinary or RuntimeCommand)")
	}
	return []string{d.cfg.RuntimeBinary}, nil
}

// runtimeEnv is the runtime's whole environment: a minimal base, the
// operator's RuntimeEnv, then the launch contract's variables.
func (d *Driver) runtimeEnv(vars ...string) []string {
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + os.TempDir(), "TMPDIR=" + os.TempDir()}
	env = append(env, d.cfg.RuntimeEnv...)
	return append(env, vars...)
}
