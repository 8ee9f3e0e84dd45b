package localproc

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/sluicehq/sluice/internal/compute"
)

// programDirName is the program's directory inside a deployment's run
// directory: written anew at every provisioning, so the runtime always runs
// the program_version it was started for.
const programDirName = "program"

// writeProgram writes the program into runDir/program and returns that
// directory (SLUICE_PROGRAM_DIR).
func writeProgram(runDir string, p compute.Program) (string, error) {
	dir := filepath.Join(runDir, programDirName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("localproc: program dir: %w", err)
	}
	js, err := p.ProgramJSON()
	if err != nil {
		return "", fmt.Errorf("localproc: program: %w", err)
	}
	files := map[string][]byte{
		"program.json": js,
		"program.sql":  []byte(p.Code),
		"udf.rs":       []byte(p.UdfRust),
		"udf.toml":     []byte(p.UdfToml),
	}
	for name, b := range files {
		if err := writeFileAtomic(filepath.Join(dir, name), b); err != nil {
			return "", fmt.Errorf("localproc: program: %w", err)
		}
	}
	return dir, nil
}
