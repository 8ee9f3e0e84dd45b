// Package version says which Sluice build is running: the version a release
// sets with -ldflags, and the VCS revision and Go toolchain the binary was
// built from (runtime/debug build info).
package version

import (
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/sluicehq/sluice/internal/domain"
)

// Version is Sluice's release version (set at link time:
// -ldflags "-X github.com/sluicehq/sluice/internal/version.Version=1.2.3").
var Version = "0.2.0"

// Build describes the running binary.
type Build struct {
	Version   string // Sluice's version
	Revision  string // VCS revision, "unknown" outside a checkout
	Time      string // VCS commit time, "" when unknown
	Modified  bool   // built from a tree with uncommitted changes
	GoVersion string
	OS, Arch  string
}

// Current reads the running binary's build information.
func Current() Build {
	b := Build{Version: Version, Revision: "unknown", GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.time":
				b.Time = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	return b
}

// Platform is the platform_version recorded with a pipeline's program:
// "sluice-<version>" and the short revision when known.
func (b Build) Platform() string {
	p := "sluice-" + b.Version
	if b.Revision != "unknown" && b.Revision != "" {
		p += "+" + strings.TrimSpace(b.Revision[:min(12, len(b.Revision))])
	}
	return p
}

func init() { domain.PlatformVersion = Current().Platform() }
