// Package ecsfargate is the compute driver that runs each pipeline deployment as
// one Amazon ECS task on AWS Fargate, with the pipeline's storage in Amazon S3.
//
// # Compute
//
// Provision is one RunTask of the configured task definition (awsvpc networking
// from Config, count 1, FARGATE launch type unless a capacity provider strategy is
// configured). The deployment id is both the clientToken (RunTask's idempotency
// token: a retried Step Functions step never starts a second task) and startedBy
// (so ListTasks finds the deployment's task without any state of our own; ECS
// allows startedBy only as ListTasks' sole filter, which lists the tasks desired
// RUNNING, so stopped tasks are found by listing the task definition family's
// STOPPED tasks and matching startedBy in DescribeTasks). Before
// RunTask, Provision looks the deployment's task up by startedBy and returns it if
// one exists, which keeps a late retry idempotent after the token has expired. The
// runtime container gets its inputs as environment overrides: SLUICE_RUNTIME_CONFIG
// (runtime_config JSON), SLUICE_INITIAL, SLUICE_PIPELINE, SLUICE_PIPELINE_ID,
// SLUICE_DEPLOYMENT_ID, SLUICE_STORAGE_URI and SLUICE_LISTEN (0.0.0.0:<port>).
// runtime_config.resources {cpu, memory} (Fargate units, exact) or Feldera's
// {cpu_cores_max, memory_mb_max} (rounded up to the smallest Fargate size) become
// task-level cpu/memory overrides. The task is tagged sluice:pipeline,
// sluice:pipeline-id and sluice:deployment-id (plus Config.Tags).
//
// The runtime's location is http://<task ENI private IPv4>:<RuntimePort>; it is
// known once Fargate has attached the network interface, so Provision may return
// an empty Location and Check fills it in. Check maps the task's lastStatus:
// PROVISIONING/PENDING/ACTIVATING → Starting; RUNNING, DEACTIVATING, STOPPING →
// Running (containers may still be writing checkpoints, so the compute is not yet
// gone); DEPROVISIONING/STOPPED or no task → Gone, with the stop code, stopped
// reason and the runtime container's exit code as the reason. Deprovision stops
// every task of the deployment; a missing or stopped task is success.
//
// # Storage
//
// Each pipeline owns the S3 prefix s3://<StorageBucket>/<StoragePrefix>/<name>-<id>/
// (SLUICE_STORAGE_URI); it outlives every task and ClearStorage deletes every object
// under it. S3 rather than EFS: there is no per-pipeline access point or directory
// to create and delete, no mount targets per subnet/AZ, IAM can confine the task
// role and the control plane to the prefix, lifecycle rules can expire abandoned
// checkpoints, and a task needs no NFS port or platform-version constraint. The
// bucket should be unversioned (or expire noncurrent versions by lifecycle rule),
// since ClearStorage deletes current objects only.
//
// # Errors
//
// Throttling, 5xx, connection failures and capacity failures (RunTask failures
// RESOURCE:*, "capacity is unavailable", the PROVISIONING-tasks quota) wrap
// compute.ErrTemporary; everything else is permanent. Error messages carry the
// operation, the AWS error code and message, never an AWS request id.
//
// # Limits
//
// ECS overrides are capped at 8192 characters, so a very large runtime_config is
// refused (permanent error). The ECS API is eventually consistent: a task just
// started may not be listed, or described, yet. Provision relies on RunTask's
// clientToken for that (a repeat returns the first task); Check and Deprovision,
// finding no task at all, look again after 1, 2 and 4 seconds before answering
// Gone or success; a task listed but not yet described is Starting. A listing
// that lags longer is not covered; tasks carry the sluice:* tags for a sweeper.
package ecsfargate
