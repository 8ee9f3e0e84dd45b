package sampleruntime

// The Feldera part of GET /stats: the shape of Feldera's ControllerStatus
// (global_metrics, inputs, outputs), which Feldera's Python SDK parses (its
// PipelineStatistics), filled in truthfully for the sample job: one input
// endpoint, the event generator, and no output endpoints. Values the job does
// not have (bytes of an event, memory pressure, transactions, bootstrapping)
// are 0, false or the neutral enum value.

// GeneratorEndpoint is the name of the runtime's only input endpoint (the
// event generator); GeneratorStream is the stream it feeds.
const (
	GeneratorEndpoint = "generator"
	GeneratorStream   = "events"
)

// GlobalMetrics is Feldera's GlobalControllerMetrics, every required field.
type GlobalMetrics struct {
	// State is Running while events are ingested, Paused otherwise
	// (Initializing, Paused, Suspending, Suspended): Feldera's PipelineState.
	State                    string                `json:"state"`
	BootstrapInProgress      bool                  `json:"bootstrap_in_progress"`
	TransactionStatus        string                `json:"transaction_status"`
	TransactionID            int64                 `json:"transaction_id"`
	TransactionInitiators    TransactionInitiators `json:"transaction_initiators"`
	ConcurrentBootstrapPhase string                `json:"concurrent_bootstrap_phase"`
	RSSBytes                 uint64                `json:"rss_bytes"`
	MemoryPressure           string                `json:"memory_pressure"`
	MemoryPressureEpoch      uint64                `json:"memory_pressure_epoch"`
	CPUMsecs                 uint64                `json:"cpu_msecs"`
	UptimeMsecs              uint64                `json:"uptime_msecs"`
	// StartTime is when this incarnation started, in seconds since the epoch.
	StartTime int64 `json:"start_time"`
	// IncarnationUUID is the same uuid as the checkpoints' incarnation_uuid.
	IncarnationUUID string `json:"incarnation_uuid"`
	// InitialStartTime is the start of the first incarnation of the chain
	// this one resumed (its own start when it started from scratch).
	InitialStartTime int64 `json:"initial_start_time"`
	// StorageBytes is the size of the stored checkpoints.
	StorageBytes          uint64 `json:"storage_bytes"`
	StorageMBSecs         uint64 `json:"storage_mb_secs"`
	RuntimeElapsedMsecs   uint64 `json:"runtime_elapsed_msecs"`
	BufferedInputRecords  uint64 `json:"buffered_input_records"`
	BufferedInputBytes    uint64 `json:"buffered_input_bytes"`
	TotalInputRecords     uint64 `json:"total_input_records"`
	TotalInputBytes       uint64 `json:"total_input_bytes"`
	TotalProcessedRecords uint64 `json:"total_processed_records"`
	TotalProcessedBytes   uint64 `json:"total_processed_bytes"`
	TotalCompletedRecords uint64 `json:"total_completed_records"`
	OutputStallMsecs      uint64 `json:"output_stall_msecs"`
	// TotalInitiatedSteps and TotalCompletedSteps count this incarnation's
	// ingest ticks that processed at least one event (a step is processed
	// to completion at once: there are no outputs).
	TotalInitiatedSteps uint64 `json:"total_initiated_steps"`
	TotalCompletedSteps uint64 `json:"total_completed_steps"`
	// PipelineComplete is always false: the event stream is unbounded.
	PipelineComplete bool `json:"pipeline_complete"`
}

// TransactionInitiators is Feldera's TransactionInitiators (no transaction).
type TransactionInitiators struct {
	InitiatedByConnectors map[string]any `json:"initiated_by_connectors"`
}

// InputEndpoint is Feldera's InputEndpointStatus.
type InputEndpoint struct {
	EndpointName string               `json:"endpoint_name"`
	Config       EndpointConfig       `json:"config"`
	Metrics      InputEndpointMetrics `json:"metrics"`
	Paused       bool                 `json:"paused"`
	Barrier      bool                 `json:"barrier"`
}

// EndpointConfig is Feldera's ShortEndpointConfig.
type EndpointConfig struct {
	Stream string `json:"stream"`
}

// InputEndpointMetrics is Feldera's InputEndpointMetrics.
type InputEndpointMetrics struct {
	TotalBytes         uint64 `json:"total_bytes"`
	TotalRecords       uint64 `json:"total_records"`
	BufferedRecords    uint64 `json:"buffered_records"`
	BufferedBytes      uint64 `json:"buffered_bytes"`
	NumTransportErrors uint64 `json:"num_transport_errors"`
	NumParseErrors     uint64 `json:"num_parse_errors"`
	EndOfInput         bool   `json:"end_of_input"`
}

// OutputEndpoint is Feldera's OutputEndpointStatus (the job has none).
type OutputEndpoint struct {
	EndpointName string         `json:"endpoint_name"`
	Config       EndpointConfig `json:"config"`
	Metrics      map[string]any `json:"metrics"`
}

// pipelineState maps a runtime status to Feldera's PipelineState.
func pipelineState(status string) string {
	if status == StatusRunning {
		return "Running"
	}
	return "Paused"
}
