'use strict';
// Local Step Functions service (see server.js): The Step Functions API operations, executions and their persistence.

const crypto = require('node:crypto');
const { StateMachine, ExecutionTimeoutError } = require('aws-local-stepfunctions');
const { log } = require('./log');
const { ApiError, validName, MAX_INPUT_BYTES, MAX_RETIRED_NAMES, SM_ARN, EXEC_ARN, MAX_STOP_ERROR, MAX_STOP_CAUSE, TOKEN_TTL_MS, validationError, requiredArn, optionalString } = require('./rules');
const { OPTIMIZED_LAMBDA, loadMachines } = require('./config');
const { postJSON } = require('./sigv4');
const { Journal } = require('./journal');

// ---------------------------------------------------------------------------
// the service

const STATUSES = ['RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED', 'PENDING_REDRIVE'];
const seconds = (ms) => ms / 1000;
// The fields of an execution record that change after its start (journal "status" records).
const STATUS_FIELDS = ['status', 'stopDate', 'error', 'cause', 'output', 'closed'];
// The fields of an execution record that are persisted (not its engine
// runtime or the read-lag counters).
const PERSISTED_FIELDS = ['executionArn', 'stateMachineArn', 'name', 'status', 'startDate', 'stopDate', 'input', 'output', 'error', 'cause', 'seq', 'closed', 'events'];
function persisted(rec) {
  const out = {};
  for (const f of PERSISTED_FIELDS) if (rec[f] !== undefined) out[f] = rec[f];
  return out;
}

class Service {
  constructor(cfg) {
    this.cfg = cfg;
    this.machines = loadMachines(cfg);
    this.executions = new Map(); // executionArn -> record
    // executionArns of finished executions dropped by retainFinished, oldest
    // first: their names stay taken (MAX_RETIRED_NAMES).
    this.retired = new Set();
    // stateMachineArn -> its finished records, by seq ascending: retention
    // drops from the front without scanning every execution.
    this.finishedByMachine = new Map();
    // executionArn -> JSON of a finished execution (made at the first
    // snapshot that holds it): finished executions never change.
    this.closedJSON = new Map();
    this.seq = 0;
    this.journal = null;
    if (cfg.stateFile) this.restore();
  }

  // --- persistence -------------------------------------------------------
  //
  // journal.js: a snapshot (stateFile) plus an append-only journal of
  // records, written in group commits. Records:
  //   {k:"start", x: the persisted fields of a new execution, with its ExecutionStarted event}
  //   {k:"event", a: executionArn, e: a history event}
  //   {k:"status", a: executionArn, status, stopDate, error, cause, output, closed}
  // StartExecution and StopExecution answer once their record is durable.

  restore() {
    this.journal = new Journal(this.cfg.stateFile, {
      compactMinBytes: this.cfg.journalCompactBytes > 0 ? this.cfg.journalCompactBytes : undefined,
      onError: (e) => log('persistence error', { stateFile: this.cfg.stateFile, error: String(e && e.message ? e.message : e) }),
    });
    const stats = this.journal.load((snapshot) => {
      if (!snapshot) return;
      for (const arn of snapshot.retired || []) this.retired.add(arn);
      for (const rec of snapshot.executions || []) this.restored(rec);
    }, (r) => this.replay(r));
    const now = Date.now();
    let aborted = 0;
    for (const rec of this.executions.values()) {
      if (rec.closed) continue;
      // The engine's in-memory state is gone: the execution cannot resume.
      // One a StopExecution already marked ABORTED ends as that stop said.
      if (rec.status === 'RUNNING') {
        rec.status = 'ABORTED';
        rec.stopDate = now;
        rec.error = 'Local.ServiceRestarted';
        rec.cause = 'The local Step Functions service stopped while this execution was running; it was not resumed.';
        aborted++;
      }
      const d = {};
      if (rec.error !== undefined) d.error = rec.error;
      if (rec.cause !== undefined) d.cause = rec.cause;
      this.addEvent(rec, 'ExecutionAborted', { executionAbortedEventDetails: d }, rec.stopDate || now);
      rec.closed = true;
      this.closed(rec);
    }
    // A fresh snapshot and journal: restarts never append after a torn tail.
    this.journal.snapshotText = () => this.snapshotText();
    this.journal.compactNow();
    log('state restored', { stateFile: this.cfg.stateFile, executions: this.executions.size, abortedOnRestart: aborted, journalRecords: stats.records, journalLinesSkipped: stats.skipped });
  }

  restored(rec) {
    rec.runtime = null;
    this.seq = Math.max(this.seq, rec.seq || 0);
    this.executions.set(rec.executionArn, rec);
    if (rec.closed) this.closed(rec);
  }

  replay(r) {
    if (r.k === 'start') {
      if (!this.executions.has(r.x.executionArn)) this.restored(r.x);
      return;
    }
    const rec = this.executions.get(r.a);
    if (!rec || rec.closed) return; // dropped by retainFinished since
    if (r.k === 'event') {
      if (r.e.id === rec.events.length + 1) rec.events.push(r.e);
    } else if (r.k === 'status') {
      for (const f of STATUS_FIELDS) if (r[f] !== undefined) rec[f] = r[f];
      if (r.closed) {
        rec.closed = true;
        this.closed(rec);
      }
    }
  }

  // persist appends a journal record (nothing without a stateFile).
  persist(record) {
    if (this.journal && this.journal.fd !== null) this.journal.append(record);
  }

  // durable resolves once every record persisted so far is on disk.
  async durable() {
    if (!this.journal) return;
    try {
      await this.journal.durable();
    } catch (e) {
      throw new ApiError('InternalFailure', `the local Step Functions service could not persist the change: ${e.message}`, 500);
    }
  }

  persistStatus(rec) {
    const r = { k: 'status', a: rec.executionArn };
    for (const f of STATUS_FIELDS) if (rec[f] !== undefined) r[f] = rec[f];
    this.persist(r);
  }

  snapshotText() {
    const parts = [];
    for (const rec of this.executions.values()) {
      if (rec.closed) {
        let cached = this.closedJSON.get(rec.executionArn);
        if (!cached) {
          cached = JSON.stringify(persisted(rec));
          this.closedJSON.set(rec.executionArn, cached);
        }
        parts.push(cached);
      } else parts.push(JSON.stringify(persisted(rec)));
    }
    return `"retired":${JSON.stringify([...this.retired])},"executions":[${parts.join(',')}]`;
  }

  // close waits until everything persisted so far is on disk (shutdown).
  async close() {
    if (this.journal) await this.journal.close();
  }

  // closed drops the oldest finished executions of rec's state machine
  // beyond cfg.retainFinished (by start order, seq).
  closed(rec) {
    const limit = this.cfg.retainFinished;
    if (!(limit > 0)) return;
    let finished = this.finishedByMachine.get(rec.stateMachineArn);
    if (!finished) this.finishedByMachine.set(rec.stateMachineArn, (finished = []));
    // Executions mostly finish in start order: the insertion point is near the end.
    let i = finished.length;
    while (i > 0 && (finished[i - 1].seq || 0) > (rec.seq || 0)) i--;
    finished.splice(i, 0, rec);
    while (finished.length > limit) {
      const old = finished.shift();
      this.executions.delete(old.executionArn);
      this.closedJSON.delete(old.executionArn);
      this.retired.add(old.executionArn);
    }
    while (this.retired.size > MAX_RETIRED_NAMES) this.retired.delete(this.retired.values().next().value);
  }

  // --- history -----------------------------------------------------------

  addEvent(rec, type, details, ts = Date.now()) {
    if (rec.closed) return;
    const id = rec.events.length + 1;
    const event = { timestamp: ts, type, id, previousEventId: id - 1, ...details };
    rec.events.push(event);
    if (this.cfg.logHistoryEvents) log('history event', { executionArn: rec.executionArn, id, type });
    if (rec.persisted) this.persist({ k: 'event', a: rec.executionArn, e: event });
  }

  // --- executions --------------------------------------------------------

  machine(arn) {
    requiredArn({ stateMachineArn: arn }, 'stateMachineArn', SM_ARN);
    // "StateMachineDoesNotExist: The specified state machine does not
    // exist." (HTTP 400; API_StartExecution, API_ListExecutions, Errors)
    const m = this.machines.get(arn);
    if (!m) throw new ApiError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${arn}'`);
    return m;
  }

  execution(arn) {
    requiredArn({ executionArn: arn }, 'executionArn', EXEC_ARN);
    // "ExecutionDoesNotExist: The specified execution does not exist."
    // (HTTP 400; API_DescribeExecution, API_StopExecution,
    // API_GetExecutionHistory, Errors)
    const rec = this.executions.get(arn);
    if (!rec) throw new ApiError('ExecutionDoesNotExist', `Execution Does Not Exist: '${arn}'`);
    return rec;
  }

  // startExecution enforces StartExecution's rules as the Step Functions API
  // reference states them (API_StartExecution; each check cites its source),
  // for a Standard state machine (the only type served here).
  async startExecution(req) {
    const m = this.machine(req.stateMachineArn);
    // "If you don't provide a name for the execution, Step Functions
    // automatically generates a universally unique identifier (UUID) as the
    // execution name." (API_StartExecution, `name`)
    const name = req.name === undefined || req.name === null ? crypto.randomUUID() : req.name;
    // Name: 1..80 characters, none of the forbidden ones (validName) → InvalidName.
    if (!validName(name)) throw new ApiError('InvalidName', `Invalid Name: '${name}'`);
    // "If you don't include any JSON input data, you still must include the
    // two braces" (API_StartExecution, `input`): absent input runs with {}.
    const input = req.input === undefined || req.input === null ? '{}' : req.input;
    if (typeof input !== 'string') throw new ApiError('InvalidExecutionInput', 'Invalid State Machine Execution Input: input must be a string');
    // At most 262144 bytes of UTF-8 (MAX_INPUT_BYTES) → InvalidExecutionInput.
    if (Buffer.byteLength(input, 'utf8') > MAX_INPUT_BYTES) {
      throw new ApiError('InvalidExecutionInput', `Invalid State Machine Execution Input: ${Buffer.byteLength(input, 'utf8')} bytes, more than the ${MAX_INPUT_BYTES} allowed`);
    }
    // "InvalidExecutionInput: The provided JSON input data is invalid."
    // (API_StartExecution, Errors; HTTP 400)
    let inputValue;
    try {
      inputValue = JSON.parse(input);
    } catch (e) {
      throw new ApiError('InvalidExecutionInput', `Invalid State Machine Execution Input: '${e.message}'`);
    }
    const executionArn = `arn:aws:states:${this.cfg.region}:${this.cfg.account}:execution:${m.name}:${name}`;
    // "StartExecution is idempotent for STANDARD workflows. For a STANDARD
    // workflow, if you call StartExecution with the same name and input as a
    // running execution, the call succeeds and return the same response as
    // the original request. If the execution is closed or if the input is
    // different, it returns a 400 ExecutionAlreadyExists error. You can reuse
    // names after 90 days." (API_StartExecution)
    const existing = this.executions.get(executionArn);
    if (existing) {
      if (existing.status === 'RUNNING' && existing.input === input) {
        await this.durable(); // the original may not be on disk yet
        return { executionArn, startDate: seconds(existing.startDate) };
      }
      throw new ApiError('ExecutionAlreadyExists', `Execution Already Exists: '${executionArn}'`);
    }
    // A closed execution that retainFinished dropped: its name is still taken.
    if (this.retired.has(executionArn)) {
      throw new ApiError('ExecutionAlreadyExists', `Execution Already Exists: '${executionArn}'`);
    }
    const now = Date.now();
    const rec = {
      executionArn,
      stateMachineArn: m.arn,
      name,
      status: 'RUNNING',
      startDate: now,
      input,
      seq: ++this.seq,
      events: [],
      runtime: null,
      // EVENTUAL: calls still to answer as if it had not started.
      listHidden: this.cfg.listExecutionsLag,
      describeHidden: this.cfg.describeExecutionLag,
    };
    this.executions.set(executionArn, rec);
    this.addEvent(rec, 'ExecutionStarted', {
      executionStartedEventDetails: { input, inputDetails: { truncated: false }, roleArn: m.roleArn },
    }, now);
    this.persist({ k: 'start', x: persisted(rec) });
    rec.persisted = true;
    log('execution started', { executionArn, stateMachine: m.name });
    this.run(m, rec, inputValue);
    await this.durable(); // an acknowledged StartExecution survives a crash
    return { executionArn, startDate: seconds(now) };
  }

  run(m, rec, inputValue) {
    const rt = {
      abort: null,
      done: null,
      pendingParams: new Map(), // state name -> [effective input], adapter mode
      openCalls: new Map(), // state name -> [call]
    };
    rec.runtime = rt;
    const overrides = { ...m.overrides };
    if (this.cfg.taskInvoker === 'adapter') {
      const handlers = {};
      for (const [stateName, resource] of m.lambdaTasks) {
        if (resource) handlers[stateName] = (input) => this.invokeLambda(m, rec, stateName, resource, input);
      }
      overrides.taskResourceLocalHandlers = handlers;
    }
    const execution = m.engine.run(inputValue, {
      overrides,
      noThrowOnAbort: true,
      context: {
        Execution: { Id: rec.executionArn, Name: rec.name, RoleArn: m.roleArn, RedriveCount: 0 },
        StateMachine: { Id: m.arn, Name: m.name },
      },
    });
    rt.abort = execution.abort;
    const consumed = (async () => {
      try {
        for await (const ev of execution.eventLogs) this.onEngineEvent(m, rec, ev);
      } catch (e) {
        log('event stream error', { executionArn: rec.executionArn, error: String(e) });
      }
    })();
    rt.done = (async () => {
      let outcome;
      try {
        outcome = { ok: true, output: await execution.result };
      } catch (err) {
        outcome = { ok: false, err };
      }
      // The engine settles the result before its last events are read.
      await Promise.race([consumed, new Promise((r) => setTimeout(r, 2000))]);
      this.finish(rec, outcome);
    })();
  }

  finish(rec, outcome) {
    if (rec.closed) return;
    const now = Date.now();
    if (rec.status === 'ABORTED') {
      const d = {};
      if (rec.error !== undefined) d.error = rec.error;
      if (rec.cause !== undefined) d.cause = rec.cause;
      this.addEvent(rec, 'ExecutionAborted', { executionAbortedEventDetails: d }, rec.stopDate);
    } else if (outcome.ok) {
      rec.status = 'SUCCEEDED';
      rec.output = JSON.stringify(outcome.output === undefined ? null : outcome.output);
      rec.stopDate = now;
      this.addEvent(rec, 'ExecutionSucceeded', {
        executionSucceededEventDetails: { output: rec.output, outputDetails: { truncated: false } },
      }, now);
    } else if (outcome.err instanceof ExecutionTimeoutError) {
      rec.status = 'TIMED_OUT';
      rec.error = 'States.Timeout';
      rec.stopDate = now;
      this.addEvent(rec, 'ExecutionTimedOut', { executionTimedOutEventDetails: { error: rec.error } }, now);
    } else {
      const cause = outcome.err && outcome.err.cause ? outcome.err.cause : outcome.err;
      rec.status = 'FAILED';
      rec.error = (cause && cause.name) || 'States.Runtime';
      rec.cause = causeText(cause);
      rec.stopDate = now;
      this.addEvent(rec, 'ExecutionFailed', { executionFailedEventDetails: { error: rec.error, cause: rec.cause } }, now);
    }
    rec.closed = true;
    rec.runtime = null;
    this.persistStatus(rec);
    this.closed(rec);
    log('execution finished', { executionArn: rec.executionArn, status: rec.status, error: rec.error });
  }

  async stopExecution(req) {
    // error ≤ 256 and cause ≤ 32768 characters (MAX_STOP_ERROR,
    // MAX_STOP_CAUSE) → ValidationException, checked before the execution
    // is looked up (a request invalid in itself is invalid whatever it names).
    const error = optionalString(req, 'error', MAX_STOP_ERROR);
    const cause = optionalString(req, 'cause', MAX_STOP_CAUSE);
    const rec = this.execution(req.executionArn);
    // An execution that already ended: the API reference documents no error
    // for it (API_StopExecution, Errors: ExecutionDoesNotExist, InvalidArn,
    // KmsAccessDeniedException, KmsInvalidStateException,
    // KmsThrottlingException, ValidationException); it is answered with its
    // stop date and left as it ended (status, error and cause unchanged).
    if (rec.status !== 'RUNNING') {
      await this.durable(); // its end may not be on disk yet
      return { stopDate: seconds(rec.stopDate || Date.now()) };
    }
    rec.status = 'ABORTED';
    rec.stopDate = Date.now();
    if (error !== undefined) rec.error = error;
    if (cause !== undefined) rec.cause = cause;
    // Durable before the engine has wound down: a restart ends it as stopped.
    this.persistStatus(rec);
    const rt = rec.runtime;
    if (rt && rt.abort) {
      rt.abort();
      await Promise.race([rt.done, new Promise((r) => setTimeout(r, 2000))]);
    } else {
      this.finish(rec, { ok: false });
    }
    await this.durable();
    return { stopDate: seconds(rec.stopDate) };
  }

  // --- Task invocation (adapter mode) -------------------------------------

  // invokeLambda runs a Lambda Task the way Step Functions does: it calls the
  // Lambda Invoke API (the local endpoint unwraps the optimized integration),
  // and a function error fails the Task with Error = errorType and Cause = the
  // function's error document as a JSON string.
  invokeLambda(m, rec, stateName, resource, input) {
    if (rec.closed || rec.status !== 'RUNNING') {
      // After an abort the engine still finishes the current state, and its
      // Retry skips the pause and runs the Task again: do not invoke, and end
      // with an error no Retry or Catch can match.
      const err = new Error('the execution is no longer running');
      err.name = 'States.Runtime';
      err.isRetryable = false;
      err.isCatchable = false;
      return Promise.reject(err);
    }
    const queue = rt(rec, 'pendingParams', stateName);
    queue.push(input); // read synchronously by the history for the Scheduled event
    const call = { open: true };
    rt(rec, 'openCalls', stateName).push(call);
    const closeCall = () => {
      call.open = false;
      const calls = rt(rec, 'openCalls', stateName);
      const i = calls.indexOf(call);
      if (i >= 0) calls.splice(i, 1);
    };
    const fail = (name, cause) => {
      if (call.open) {
        closeCall();
        this.taskEvent(rec, stateName, resource, 'Failed', { error: name, cause });
      }
      const err = new Error(cause);
      err.name = name;
      return err;
    };
    if (!this.cfg.lambdaEndpoint) {
      return Promise.reject(fail('Lambda.SdkClientException', 'no lambdaEndpoint configured for the local Step Functions service'));
    }
    return postJSON(`${this.cfg.lambdaEndpoint}/2015-03-31/functions/${encodeURIComponent(resource)}/invocations`, input,
      { credentials: this.cfg.lambdaCredentials, region: this.cfg.region, service: 'lambda' }).then(
      (res) => {
        if (res.status >= 300) {
          let msg = res.body;
          try {
            msg = JSON.parse(res.body).Message || msg;
          } catch (_) { /* keep the raw body */ }
          throw fail(`Lambda.${res.headers['x-amzn-errortype'] || 'ServiceException'}`, msg);
        }
        if (res.headers['x-amz-function-error']) {
          let type = 'Lambda.Unknown';
          try {
            type = JSON.parse(res.body).errorType || type;
          } catch (_) { /* keep Lambda.Unknown */ }
          throw fail(type, res.body);
        }
        let value = null;
        if (res.body.length) {
          try {
            value = JSON.parse(res.body);
          } catch (e) {
            throw fail('States.Runtime', `the Lambda function returned a result that is not JSON: ${e.message}`);
          }
        }
        if (call.open) {
          closeCall();
          this.taskEvent(rec, stateName, resource, 'Succeeded', { output: JSON.stringify(value), outputDetails: { truncated: false } });
        }
        return value;
      },
      (e) => {
        throw fail('Lambda.SdkClientException', `Unable to execute HTTP request: ${e.message}`);
      });
  }

  // taskEvent records a Task lifecycle event in the form Step Functions uses
  // for the Task's resource: LambdaFunction* for a function ARN, Task* with
  // resourceType "lambda" for the optimized integration.
  taskEvent(rec, stateName, resource, phase, details) {
    if (resource === OPTIMIZED_LAMBDA) {
      const base = { resourceType: 'lambda', resource: 'invoke' };
      const key = { Scheduled: 'taskScheduledEventDetails', Started: 'taskStartedEventDetails', Succeeded: 'taskSucceededEventDetails', Failed: 'taskFailedEventDetails', TimedOut: 'taskTimedOutEventDetails' }[phase];
      let d = { ...base, ...details };
      if (phase === 'Scheduled') {
        d = { ...base, region: this.cfg.region, parameters: details.input };
        if (details.timeoutInSeconds !== undefined) d.timeoutInSeconds = details.timeoutInSeconds;
      }
      this.addEvent(rec, `Task${phase}`, { [key]: d });
      return;
    }
    const key = { Scheduled: 'lambdaFunctionScheduledEventDetails', Started: null, Succeeded: 'lambdaFunctionSucceededEventDetails', Failed: 'lambdaFunctionFailedEventDetails', TimedOut: 'lambdaFunctionTimedOutEventDetails' }[phase];
    let d = details;
    if (phase === 'Scheduled') {
      d = { resource, input: details.input, inputDetails: { truncated: false } };
      if (details.timeoutInSeconds !== undefined) d.timeoutInSeconds = details.timeoutInSeconds;
    }
    this.addEvent(rec, `LambdaFunction${phase}`, key ? { [key]: d } : {});
  }

  // onEngineEvent maps the engine's event log onto Step Functions history events.
  onEngineEvent(m, rec, ev) {
    if (rec.closed) return;
    const ts = ev.timestamp || Date.now();
    const st = ev.state;
    const resourceOf = (name) => {
      const r = m.lambdaTasks.get(name);
      return r || null;
    };
    const schedule = (name, rawInput) => {
      const resource = resourceOf(name);
      if (!resource) return;
      const q = rt(rec, 'pendingParams', name);
      const params = q.length ? q.shift() : rawInput;
      const details = { input: JSON.stringify(params === undefined ? null : params) };
      if (m.timeouts.has(name)) details.timeoutInSeconds = m.timeouts.get(name);
      this.taskEvent(rec, name, resource, 'Scheduled', details);
      this.taskEvent(rec, name, resource, 'Started', {});
      if (this.cfg.taskInvoker === 'engine') rt(rec, 'openCalls', name).push({ open: true });
    };
    const closeOldest = (name) => {
      const calls = rt(rec, 'openCalls', name);
      const call = calls.shift();
      if (call) call.open = false;
      return call;
    };
    switch (ev.type) {
      case 'StateEntered':
        this.addEvent(rec, `${st.type}StateEntered`, {
          stateEnteredEventDetails: { name: st.name, input: JSON.stringify(st.input), inputDetails: { truncated: false } },
        }, ts);
        if (st.type === 'Task') schedule(st.name, st.input);
        if (st.type === 'Map') this.addEvent(rec, 'MapStateStarted', { mapStateStartedEventDetails: {} }, ts);
        if (st.type === 'Parallel') this.addEvent(rec, 'ParallelStateStarted', {}, ts);
        break;
      case 'StateRetried':
        if (st.type === 'Task') schedule(st.name, st.input);
        break;
      case 'StateFailed': {
        if (st.type === 'Task' && resourceOf(st.name)) {
          const resource = resourceOf(st.name);
          if (ev.Error === 'States.Timeout') {
            if (closeOldest(st.name)) {
              this.taskEvent(rec, st.name, resource, 'TimedOut', { error: 'States.Timeout', cause: causeText(ev.Cause) });
            }
          } else if (this.cfg.taskInvoker === 'engine' && closeOldest(st.name)) {
            this.taskEvent(rec, st.name, resource, 'Failed', { error: ev.Error, cause: causeText(ev.Cause) });
          }
        }
        if (st.type === 'Map') this.addEvent(rec, 'MapStateFailed', {}, ts);
        if (st.type === 'Parallel') this.addEvent(rec, 'ParallelStateFailed', {}, ts);
        break;
      }
      case 'StateExited':
        if (st.type === 'Task' && this.cfg.taskInvoker === 'engine' && resourceOf(st.name) && closeOldest(st.name)) {
          this.taskEvent(rec, st.name, resourceOf(st.name), 'Succeeded', { output: JSON.stringify(st.output), outputDetails: { truncated: false } });
        }
        if (st.type === 'Map') this.addEvent(rec, 'MapStateSucceeded', {}, ts);
        if (st.type === 'Parallel') this.addEvent(rec, 'ParallelStateSucceeded', {}, ts);
        this.addEvent(rec, `${st.type}StateExited`, {
          stateExitedEventDetails: { name: st.name, output: JSON.stringify(st.output === undefined ? null : st.output), outputDetails: { truncated: false } },
        }, ts);
        break;
      case 'MapIterationStarted':
      case 'MapIterationSucceeded':
      case 'MapIterationFailed': {
        const key = { MapIterationStarted: 'mapIterationStartedEventDetails', MapIterationSucceeded: 'mapIterationSucceededEventDetails', MapIterationFailed: 'mapIterationFailedEventDetails' }[ev.type];
        this.addEvent(rec, ev.type, { [key]: { name: ev.parentState ? ev.parentState.name : undefined, index: ev.index } }, ts);
        break;
      }
      default:
        // ExecutionStarted/Succeeded/Failed/Aborted/Timeout are recorded from
        // the execution's outcome (finish); StateCaught and the Parallel
        // branch events have no Step Functions history counterpart.
        break;
    }
  }

  // --- read APIs ---------------------------------------------------------

  // EVENTUAL: DescribeExecution and ListExecutions are documented as
  // "This operation is eventually consistent. The results are best effort
  // and may not reflect very recent updates and changes."
  // (https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html,
  // .../API_ListExecutions.html). With describeExecutionLag /
  // listExecutionsLag > 0 a newly started execution is not yet visible to
  // that many calls: DescribeExecution answers ExecutionDoesNotExist, and
  // ListExecutions leaves it out. StartExecution and StopExecution see it.

  describeExecution(req) {
    const rec = this.execution(req.executionArn);
    if (rec.describeHidden > 0) {
      rec.describeHidden--;
      throw new ApiError('ExecutionDoesNotExist', `Execution Does Not Exist: '${rec.executionArn}'`);
    }
    const out = {
      executionArn: rec.executionArn,
      stateMachineArn: rec.stateMachineArn,
      name: rec.name,
      status: rec.status,
      startDate: seconds(rec.startDate),
      input: rec.input,
      inputDetails: { included: true },
    };
    if (rec.stopDate) out.stopDate = seconds(rec.stopDate);
    if (rec.output !== undefined) {
      out.output = rec.output;
      out.outputDetails = { included: true };
    }
    if (rec.error !== undefined) out.error = rec.error;
    if (rec.cause !== undefined) out.cause = rec.cause;
    return out;
  }

  // listExecutions enforces API_ListExecutions
  // (https://docs.aws.amazon.com/step-functions/latest/apireference/API_ListExecutions.html).
  listExecutions(req) {
    // "You can specify either a mapRunArn or a stateMachineArn, but not
    // both." AWS answers a request with neither "ValidationException: Must
    // provide a StateMachine ARN or MapRun ARN" (as observed from AWS in
    // cloudquery/cloudquery#7911). No Map Runs are served here: a mapRunArn
    // names nothing ("ResourceNotFound: Could not find the referenced
    // resource.", in the operation's Errors).
    const hasSM = req.stateMachineArn !== undefined && req.stateMachineArn !== null;
    const hasMR = req.mapRunArn !== undefined && req.mapRunArn !== null;
    if (hasSM && hasMR) throw new ApiError('ValidationException', 'Must provide a StateMachine ARN or MapRun ARN, not both');
    if (!hasSM && !hasMR) throw new ApiError('ValidationException', 'Must provide a StateMachine ARN or MapRun ARN');
    if (hasMR) throw new ApiError('ResourceNotFound', `Resource not found: '${req.mapRunArn}'`);
    const m = this.machine(req.stateMachineArn);
    // statusFilter: "Valid Values: RUNNING | SUCCEEDED | FAILED | TIMED_OUT |
    // ABORTED | PENDING_REDRIVE" → ValidationException otherwise.
    if (req.statusFilter !== undefined && req.statusFilter !== null && !STATUSES.includes(req.statusFilter)) {
      throw validationError('statusFilter', req.statusFilter, `Member must satisfy enum value set: [${STATUSES.join(', ')}]`);
    }
    // maxResults: "Valid Range: Minimum value of 0. Maximum value of 1000."
    // "The default is 100 ... A value of 0 uses the default." (pageSize)
    const max = pageSize(req.maxResults);
    const filter = req.statusFilter || '';
    const mine = [...this.executions.values()].filter((r) => r.stateMachineArn === m.arn);
    let list = mine.filter((r) => !(r.listHidden > 0) && (!filter || r.status === filter));
    for (const r of mine) if (r.listHidden > 0) r.listHidden--;
    // "Results are sorted by time, with the most recent execution first."
    list.sort((a, b) => b.startDate - a.startDate || b.seq - a.seq);
    if (req.nextToken !== undefined && req.nextToken !== null) {
      // The token must be one this operation issued for the same arguments
      // ("Keep all other arguments unchanged"), within 24 hours: else
      // InvalidToken (TOKEN_TTL_MS).
      const c = checkToken(req.nextToken, 'exec', { m: m.arn, f: filter });
      if (typeof c.d !== 'number' || typeof c.s !== 'number') throw invalidToken(req.nextToken);
      list = list.filter((r) => r.startDate < c.d || (r.startDate === c.d && r.seq < c.s));
    }
    const page = list.slice(0, max);
    const out = {
      executions: page.map((r) => {
        const e = { executionArn: r.executionArn, stateMachineArn: r.stateMachineArn, name: r.name, status: r.status, startDate: seconds(r.startDate) };
        if (r.stopDate) e.stopDate = seconds(r.stopDate);
        return e;
      }),
    };
    if (list.length > max) {
      const last = page[page.length - 1];
      out.nextToken = issueToken('exec', { m: m.arn, f: filter, d: last.startDate, s: last.seq });
    }
    return out;
  }

  // getExecutionHistory enforces API_GetExecutionHistory
  // (https://docs.aws.amazon.com/step-functions/latest/apireference/API_GetExecutionHistory.html):
  // executionArn required (requiredArn), maxResults 0..1000 (default 100),
  // "By default, the results are returned in ascending order of the
  // timeStamp of the events. Use the reverseOrder parameter to get the
  // latest events first.", includeExecutionData "The default is true.",
  // and nextToken as for ListExecutions.
  getExecutionHistory(req) {
    const rec = this.execution(req.executionArn);
    const max = pageSize(req.maxResults);
    const reverse = req.reverseOrder === true;
    const data = req.includeExecutionData !== false;
    let events = rec.events.map((e) => ({ ...e, timestamp: seconds(e.timestamp) }));
    if (reverse) events.reverse();
    if (!data) events = events.map(stripData);
    let start = 0;
    if (req.nextToken !== undefined && req.nextToken !== null) {
      const c = checkToken(req.nextToken, 'hist', { a: rec.executionArn, r: reverse, i: data });
      if (typeof c.o !== 'number') throw invalidToken(req.nextToken);
      start = c.o;
    }
    const out = { events: events.slice(start, start + max) };
    if (start + max < events.length) out.nextToken = issueToken('hist', { a: rec.executionArn, r: reverse, i: data, o: start + max });
    return out;
  }

  describeStateMachine(req) {
    const m = this.machine(req.stateMachineArn);
    return {
      stateMachineArn: m.arn,
      name: m.name,
      status: 'ACTIVE',
      definition: m.definitionText,
      roleArn: m.roleArn,
      type: 'STANDARD',
      creationDate: seconds(m.creationDate),
      loggingConfiguration: { level: 'OFF', includeExecutionData: false },
      tracingConfiguration: { enabled: false },
    };
  }

  describeStateMachineForExecution(req) {
    const rec = this.execution(req.executionArn);
    const m = this.machines.get(rec.stateMachineArn);
    if (!m) throw new ApiError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${rec.stateMachineArn}'`);
    return {
      stateMachineArn: m.arn,
      name: m.name,
      definition: m.definitionText,
      roleArn: m.roleArn,
      updateDate: seconds(m.creationDate),
      loggingConfiguration: { level: 'OFF', includeExecutionData: false },
      tracingConfiguration: { enabled: false },
    };
  }

  listStateMachines(req) {
    const all = [...this.machines.values()].sort((a, b) => a.name.localeCompare(b.name));
    const max = pageSize(req.maxResults);
    let start = 0;
    if (req.nextToken) {
      const c = checkToken(req.nextToken, 'sm', {});
      if (typeof c.o !== 'number') throw invalidToken(req.nextToken);
      start = c.o;
    }
    const out = {
      stateMachines: all.slice(start, start + max).map((m) => ({
        stateMachineArn: m.arn, name: m.name, type: 'STANDARD', creationDate: seconds(m.creationDate),
      })),
    };
    if (start + max < all.length) out.nextToken = issueToken('sm', { o: start + max });
    return out;
  }
}

function rt(rec, field, name) {
  const map = rec.runtime ? rec.runtime[field] : new Map();
  if (!map.has(name)) map.set(name, []);
  return map.get(name);
}

function causeText(c) {
  if (c === undefined || c === null) return undefined;
  if (typeof c === 'string') return c;
  if (c instanceof Error) return c.cause !== undefined && c.cause !== null ? causeText(c.cause) : c.message;
  return JSON.stringify(c);
}

function stripData(e) {
  const out = {};
  for (const [k, v] of Object.entries(e)) {
    if (v && typeof v === 'object' && k.endsWith('EventDetails')) {
      const d = { ...v };
      for (const f of ['input', 'output', 'parameters']) {
        if (f in d) delete d[f];
      }
      out[k] = d;
    } else out[k] = v;
  }
  return out;
}

// pageSize: maxResults "Valid Range: Minimum value of 0. Maximum value of
// 1000.", "The default is 100 ... A value of 0 uses the default."
// (API_ListExecutions, API_GetExecutionHistory, API_ListStateMachines)
function pageSize(n) {
  if (n === undefined || n === null || n === 0) return 100;
  if (!Number.isInteger(n)) throw new ApiError('SerializationException', `maxResults must be an integer, not ${JSON.stringify(n)}`);
  if (n < 0) throw validationError('maxResults', n, 'Member must have value greater than or equal to 0');
  if (n > 1000) throw validationError('maxResults', n, 'Member must have value less than or equal to 1000');
  return n;
}

// Page tokens carry the operation (k), the arguments they were issued for,
// and their issue time (t); checkToken answers InvalidToken for anything
// else: garbage, another operation's or other arguments' token, or one
// older than TOKEN_TTL_MS.
const encodeToken = (o) => Buffer.from(JSON.stringify(o)).toString('base64');
const issueToken = (k, fields) => encodeToken({ k, t: Date.now(), ...fields });
const invalidToken = (t) => new ApiError('InvalidToken', `Invalid Token: '${String(t).slice(0, 64)}'`);
function decodeToken(t) {
  try {
    return JSON.parse(Buffer.from(String(t), 'base64').toString('utf8'));
  } catch (_) {
    return null;
  }
}
function checkToken(token, kind, args) {
  const c = typeof token === 'string' && token.length > 0 ? decodeToken(token) : null;
  if (!c || typeof c !== 'object' || c.k !== kind || typeof c.t !== 'number') throw invalidToken(token);
  for (const [key, v] of Object.entries(args)) if (c[key] !== v) throw invalidToken(token);
  if (Date.now() - c.t > TOKEN_TTL_MS) throw invalidToken(token);
  return c;
}

module.exports = { STATUSES, STATUS_FIELDS, PERSISTED_FIELDS, persisted, seconds, Service, rt, causeText, stripData, pageSize, encodeToken, issueToken, invalidToken, decodeToken, checkToken };
