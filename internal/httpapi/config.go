package httpapi

import (
	"context"
	"net/http"

	"github.com/sluicehq/sluice/internal/version"
)

// configuration is Feldera's Configuration (GET /v0/config), which Feldera's
// SDK reads in its constructor. The fields describe Sluice, except two
// compatibility values: edition, which the SDK requires to be "Open source"
// or "Enterprise", and the telemetry keys, empty because Sluice sends no
// telemetry. The cargo_* and rustc fields of build_info are Feldera's Rust
// build; for Sluice they name the Go toolchain where one applies.
type configuration struct {
	Telemetry        string    `json:"telemetry"`
	Posthog          string    `json:"posthog"`
	Conceptualhq     string    `json:"conceptualhq"`
	ProductFruits    string    `json:"product_fruits"`
	Edition          string    `json:"edition"`
	Version          string    `json:"version"`
	Revision         string    `json:"revision"`
	RuntimeRevision  string    `json:"runtime_revision"`
	ChangelogURL     string    `json:"changelog_url"`
	BuildInfo        buildInfo `json:"build_info"`
	BuildSource      string    `json:"build_source"`
	LicenseValidity  any       `json:"license_validity"`
	UpdateInfo       any       `json:"update_info"`
	UnstableFeatures *string   `json:"unstable_features"`
}

type buildInfo struct {
	BuildTimestamp    string `json:"build_timestamp"`
	BuildCPU          string `json:"build_cpu"`
	BuildOS           string `json:"build_os"`
	CargoDependencies string `json:"cargo_dependencies"`
	CargoFeatures     string `json:"cargo_features"`
	CargoDebug        string `json:"cargo_debug"`
	CargoOptLevel     string `json:"cargo_opt_level"`
	CargoTargetTriple string `json:"cargo_target_triple"`
	RustcVersion      string `json:"rustc_version"`
}

// FelderaEdition is the edition GET /v0/config reports (see configuration).
const FelderaEdition = "Open source"

func (h *Handler) config(context.Context, *call) (Response, error) {
	b := version.Current()
	return jsonResponse(http.StatusOK, configuration{
		Edition: FelderaEdition, Version: b.Version, Revision: b.Revision,
		// The runtime is the operator's configured image, not part of this build.
		RuntimeRevision: "",
		ChangelogURL:    "",
		BuildSource:     "source",
		BuildInfo: buildInfo{
			BuildTimestamp: b.Time, BuildCPU: b.Arch, BuildOS: b.OS,
			CargoTargetTriple: b.Arch + "-" + b.OS, RustcVersion: b.GoVersion,
			CargoDebug: "false",
		},
	})
}
