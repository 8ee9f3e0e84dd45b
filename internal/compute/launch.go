package compute

// The environment of a runtime process as localproc launches it and as a
// runtime run that way (sampleruntime) reads it: the launch contract of
// localproc's package doc. Each name is defined once, here, for both sides.
const (
	EnvRuntimeConfig = "SLUICE_RUNTIME_CONFIG"
	// EnvProgramDir is the directory holding the pipeline's program:
	// program.json (every program field) and, for a runtime that reads
	// files, program.sql, udf.rs and udf.toml.
	EnvProgramDir   = "SLUICE_PROGRAM_DIR"
	EnvStorageDir   = "SLUICE_STORAGE_DIR"
	EnvInitial      = "SLUICE_INITIAL"
	EnvListen       = "SLUICE_LISTEN"
	EnvPortFile     = "SLUICE_PORT_FILE"
	EnvPipeline     = "SLUICE_PIPELINE"
	EnvDeploymentID = "SLUICE_DEPLOYMENT_ID"
)
