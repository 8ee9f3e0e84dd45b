// Package sampleruntime is the sample pipeline runtime: a real, stateful streaming
// job that speaks the runtime protocol of SPEC §7 (Feldera-compatible), so the
// control plane's stop/resume exactness can be checked from outside.
//
// # The job
//
// It ingests a deterministic unbounded stream of events numbered 0, 1, 2, … at
// runtime_config.events_per_sec (processed in small batches every tick) and keeps
// count, sum (of the processed sequence numbers) and last_sequence_number (−1
// before the first event). Nothing was lost or counted twice exactly when
//
//	count == last_sequence_number+1 && sum == last*(last+1)/2
//
// (State.Consistent). Checkpoints go to the storage directory: each is one JSON
// file written atomically (temp file, fsync, rename, fsync of the directory) and
// carries a SHA-256 checksum of its payload, so a torn or corrupt file is detected,
// logged and skipped, never loaded. The last keep_checkpoints (default 5) are kept.
// On start the runtime resumes from the newest valid checkpoint.
//
// # HTTP endpoints (SPEC §7)
//
//	GET  /status             200 {runtime_status, runtime_desired_status, storage_status_details}
//	POST /suspend            202, idempotent; stop ingesting, write a final checkpoint, then Suspended
//	POST /checkpoint         200 {checkpoint_sequence_number, incarnation_uuid} once written
//	GET  /checkpoint_status  200 {success, failure}
//	GET  /pause, GET /start  202 (POST accepted too)
//	GET  /stats              200 Stats
//
// /stats is Feldera's statistics shape (ControllerStatus: global_metrics,
// inputs, outputs, as Feldera's Python SDK parses it): state Running or Paused,
// the incarnation uuid of the checkpoints, start_time in epoch seconds, the
// record totals, the process's RSS and CPU time, one input endpoint
// ("generator", stream "events") and no outputs; fields the job has no value
// for are 0, false or the neutral enum value. The job's own fields (count,
// sum, last_sequence_number, restored_from_checkpoint, …) sit beside them.
//
// Errors use Feldera's shape {message, error_code, details}. runtime_status is
// Initializing while the checkpoint is loaded, then Running or Paused (the launch's
// initial state), Suspending while a suspend is pending and Suspended after it; the
// process stays up answering /status until it is stopped. /pause, /start and
// /checkpoint answer 400 IllegalPipelineAction once a suspend was asked for.
// With storage disabled, /checkpoint and /suspend answer 400 FeatureNotAvailable.
//
// # runtime_config keys
//
//	events_per_sec            float, default 1000 (0: ingest nothing)
//	checkpoint_interval_secs  float, default 60; 0 disables periodic checkpoints
//	storage                   bool, default true; false: no checkpoints at all
//	keep_checkpoints          int, default 5
//	fault                     object, all optional:
//	  unavailable_secs        answer 503 (with Retry-After) to every request, /status
//	                          included, for that long after start
//	  initializing_secs       stay Initializing that long before loading the checkpoint
//	  suspend_delay_secs      a suspend stays pending (Suspending) that long before
//	                          its checkpoint is written
//	  suspend_error           string: the suspend fails with that message. POST
//	                          /suspend still answers 202 (suspend is asynchronous, as
//	                          in Feldera); once the suspend has failed (after
//	                          suspend_delay_secs), /status, /suspend, /checkpoint,
//	                          /pause and /start answer 500 {message: <suspend_error>,
//	                          error_code: "SuspendError"}. /stats and
//	                          /checkpoint_status keep answering.
//	  crash_after_secs        exit abruptly (exit code 3, no cleanup) that long after start
//	  checkpoint_crash        bool: crash (exit code 3) in the middle of writing a
//	                          checkpoint file, after part of the temp file is written
//	  checkpoint_crash_after  int, default 0: how many checkpoints this incarnation
//	                          writes successfully before the crashing one
//
// Other keys (command, resources, …) are ignored.
//
// # Launch (environment variables, see LaunchFromEnv)
//
//	SLUICE_RUNTIME_CONFIG  the runtime_config JSON (default {})
//	SLUICE_STORAGE_DIR     the storage directory (required unless storage is false)
//	SLUICE_INITIAL         Running (default) or Paused
//	SLUICE_LISTEN          listen address, default 127.0.0.1:0
//	SLUICE_PORT_FILE       if set, the bound port number is written to this file
//	                       atomically (temp file + rename) once listening
//	SLUICE_PIPELINE        pipeline name, for logs and /stats
//	SLUICE_DEPLOYMENT_ID   deployment id, for logs and /stats
//
// Logs are JSON (log/slog) on stderr, tagged with pipeline and deployment_id.
// SIGTERM (or SIGINT) stops ingesting and exits 0 without a checkpoint: being
// deprovisioned is a forced stop. Exit codes: 0 graceful, 2 bad launch
// configuration or listen failure, 3 injected crash.
package sampleruntime
