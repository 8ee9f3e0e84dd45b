// Package reliability holds the reliability suite of the control plane (part
// of `make test`): tests that run the whole local stack (DynamoDB Local, the
// local Step Functions service with the real statemachine/*.asl.json, the
// step Lambdas, the API over HTTP, the reconciler) under concurrent load and
// injected faults, and check invariants afterwards. The tests never assert on
// timings: the wall clock only bounds how long they run and how long they
// wait for a state (generous deadlines, polled).
//
// # TestSoak
//
// 32 clients send random lifecycle actions (start, start?initial=paused,
// stop, stop?force=true, pause, resume, checkpoint, clear, dismiss_error,
// GET) to 8 pipelines for 60 s, each request tagged with its own
// X-Request-Id, against a stack with the real local process driver and the
// sample runtime. The pipelines' runtime_config inject faults: unavailable at
// start (unavailable_secs), slow suspends (suspend_delay_secs), failing
// suspends (suspend_error), crashes (crash_after_secs), mixed. The
// reconciler runs every 2 s. A poller reads every pipeline's /stats through
// the API meanwhile. Afterwards:
//
//   - Exactness: every /stats answer of a sample runtime (every incarnation,
//     so after every resume from a checkpoint) has count ==
//     last_sequence_number+1 and sum == last*(last+1)/2; within an
//     incarnation the count never goes back, and a resumed one is never
//     behind the checkpoint it resumed from. The test also requires that
//     resumed incarnations were seen at all (the check is not vacuous).
//   - Convergence: after the clients stop, every pipeline reaches its last
//     desired state (status == desired for the combined view, nothing
//     pending) within a bound, with the reconciler running and without the
//     test re-sending anything: a pause or resume whose forwarding to the
//     runtime was refused (5xx) leaves the runtime in its old state while
//     the desired one is recorded, and the reconciler forwards it again. A
//     runtime still in the other of Running/Paused after some ten
//     reconciler passes counts as a redrive the test would have needed;
//     the soak fails on any.
//   - Then every pipeline is force-stopped (the histories stop growing) and
//     each history is checked (see checkHistory): gap-free refresh
//     versions, the last event equals the record, every acknowledged action
//     is in the history with the generation it produced (or was a no-op by
//     the domain rules on a version of the record current while it was in
//     flight), every user write was made by one of our requests, and the
//     workflow writes of each generation are fenced and serial.
//   - Linearizability (porcupine): each pipeline's calls (invocation and
//     return time, action, result: the history event it wrote, no-op, the
//     error_code of a refusal, the record a GET returned) must linearize
//     against the sequential model of linearizability_test.go (the domain's
//     action rules on the record, the workflows' and reconciler's
//     transitions as concurrent moves within a generation). The number of
//     operations checked is logged.
//
// # TestChaos
//
//   - SupervisedParts: on one persistent stack (DataDir, the real process
//     driver, the reconciler every second), each part is killed
//     mid-workflow: the Step Functions service (SIGKILL) while a graceful
//     stop suspends a slow runtime, DynamoDB Local (SIGKILL) while a start
//     waits for a slowly initializing runtime, the Lambda endpoint (its
//     server closed with its connections) during a suspend, and a runtime
//     process (SIGKILL). Right after each kill an action goes to a bystander
//     pipeline. The test neither re-sends nor redrives anything. Checked:
//     /healthz answers 503 degraded naming the dead part, then 200 with the
//     part up and its restart count grown; every pipeline converges (the
//     killed Step Functions execution came back ABORTED and a later attempt
//     finished the stop); a bystander whose action was acknowledged reaches
//     it; no deployment_error but the runtime's ComputeVanished; every
//     history passes checkHistory (no acknowledged action lost). The faults
//     and their outcomes are logged.
//   - RestartDynamoDB: a persistent stack (DataDir) takes creates and
//     lifecycle actions from 8 clients while DynamoDB Local is restarted
//     mid-run: every record and every history event acknowledged before the
//     restart is there, unchanged, after it; every acknowledged action is in
//     the history; every pipeline converges.
//   - RuntimeCrashMidCheckpoint: a sample runtime crashes in the middle of
//     writing its third checkpoint (checkpoint_crash): the reconciler
//     force-stops the pipeline with ComputeVanished; the torn temp file is
//     there and the two acknowledged checkpoints are intact; the pipeline,
//     started again, resumes from the newest complete checkpoint and the
//     exactness invariant holds.
//
// # TestBadInputUnderLoad
//
// The API fuzz corpus (FuzzHandler's seeds, copied here, plus any corpus
// files in internal/httpapi/testdata/fuzz/FuzzHandler) and a few hundred
// generated bad requests are replayed by 64 concurrent clients against the
// local stack's HTTP server. Every answer is JSON; every error has exactly
// the {message, error_code, details} shape; no 5xx but the SPEC's runtime
// answers (501 FeatureNotAvailable, 503 PipelineInteractionNotDeployed /
// PipelineUnavailable / PipelineInteractionUnreachable, the same rule as
// FuzzHandler); /healthz answers during and after; the heap after a forced
// GC grows by less than 64 MiB.
package reliability
