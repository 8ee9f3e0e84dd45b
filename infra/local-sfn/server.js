'use strict';
// Local Step Functions service for Sluice's local stack and tests.
//
// Serves the subset of the AWS Step Functions API (awsJson1_0 protocol) that
// Sluice uses, and runs the real statemachine/*.asl.json definitions with the
// aws-local-stepfunctions engine. Lambda Task states call a local Lambda
// Invoke API endpoint (internal/lambdalocal on the Go side).
//
//   node server.js CONFIG.json
//
// Needs Node >= 22 (the engine's requirement): use node_modules/node/bin/node,
// installed by the pinned `node` package of this directory.
// See README.md for the config format and the behaviour.

const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { StateMachine, ExecutionTimeoutError } = require('aws-local-stepfunctions');

// ---------------------------------------------------------------------------
// logging: one JSON object per line on stdout

function log(msg, fields) {
  process.stdout.write(JSON.stringify({ time: new Date().toISOString(), msg, ...fields }) + '\n');
}

// ---------------------------------------------------------------------------
// configuration

const OPTIMIZED_LAMBDA = 'arn:aws:states:::lambda:invoke';
// Step Functions has no default timeout for a Task; the engine defaults to 60 s.
// Tasks without TimeoutSeconds get the longest delay a Node timer can hold.
const MAX_TIMER_SECONDS = 2147483;

function loadConfig(file) {
  const raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  const cfg = {
    host: raw.host || '127.0.0.1',
    port: raw.port === undefined ? 0 : Number(raw.port),
    region: raw.region || 'us-east-1',
    account: raw.account || '123456789012',
    baseDir: raw.baseDir ? path.resolve(raw.baseDir) : process.cwd(),
    lambdaEndpoint: (raw.lambdaEndpoint || '').replace(/\/+$/, ''),
    // The credentials Lambda Invoke requests are signed with (SigV4): the
    // local Lambda endpoint only serves callers holding them. They come from
    // the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), never from
    // the config file.
    lambdaCredentials: {
      accessKeyId: process.env.AWS_ACCESS_KEY_ID || '',
      secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY || '',
    },
    taskInvoker: raw.taskInvoker || 'adapter',
    overrides: raw.overrides || {},
    stateFile: raw.stateFile ? path.resolve(raw.baseDir || process.cwd(), raw.stateFile) : '',
    stateMachines: raw.stateMachines || [],
    logHistoryEvents: raw.logHistoryEvents !== false,
    // Finished executions kept per state machine (the oldest are dropped):
    // bounds memory and the state file of a long-lived local stack.
    retainFinished: raw.retainFinished === undefined ? 1000 : Number(raw.retainFinished),
    // Eventual consistency (see EVENTUAL below): the number of ListExecutions
    // calls (per state machine) that do not yet list a newly started
    // execution, and of DescribeExecution calls that do not yet find it.
    // 0 (the default, and the local stack's setting): read-your-writes.
    listExecutionsLag: raw.listExecutionsLag === undefined ? 0 : Number(raw.listExecutionsLag),
    describeExecutionLag: raw.describeExecutionLag === undefined ? 0 : Number(raw.describeExecutionLag),
  };
  for (const k of ['listExecutionsLag', 'describeExecutionLag']) {
    if (!Number.isInteger(cfg[k]) || cfg[k] < 0) throw new Error(`${k} must be a non-negative integer, not ${JSON.stringify(raw[k])}`);
  }
  if (!['adapter', 'engine'].includes(cfg.taskInvoker)) {
    throw new Error(`taskInvoker must be "adapter" or "engine", not ${JSON.stringify(cfg.taskInvoker)}`);
  }
  return cfg;
}

// substitute replaces ${Key} placeholders (SAM DefinitionSubstitutions) in the
// definition text. A placeholder left without a value is an error.
function substitute(text, subs, where) {
  const out = text.replace(/\$\{([A-Za-z0-9_.:-]+)\}/g, (m, key) =>
    Object.prototype.hasOwnProperty.call(subs, key) ? String(subs[key]) : m);
  const left = out.match(/\$\{[A-Za-z0-9_.:-]+\}/g);
  if (left) {
    throw new Error(`${where}: no substitution for ${[...new Set(left)].join(', ')}`);
  }
  return out;
}

// checkSupported rejects what aws-local-stepfunctions would silently get
// wrong: JSONata (it ignores QueryLanguage and the JSONata fields and passes
// the input through), variables (Assign), and Task resources other than
// Lambda (service integrations, .sync, .waitForTaskToken). HeartbeatSeconds
// is accepted and ignored (logged).
function checkSupported(machine, def) {
  const problems = [];
  if (def.QueryLanguage && def.QueryLanguage !== 'JSONPath') problems.push(`QueryLanguage ${def.QueryLanguage} (only JSONPath is supported)`);
  walkStates(def, (name, st) => {
    if (st.QueryLanguage && st.QueryLanguage !== 'JSONPath') problems.push(`state ${name}: QueryLanguage ${st.QueryLanguage} (only JSONPath is supported)`);
    for (const f of ['Assign', 'Arguments', 'Output']) {
      if (f in st) problems.push(`state ${name}: field ${f} (JSONata/variables are not supported by the local engine)`);
    }
    if (st.Type === 'Task' && !isLambdaResource(st.Resource)) {
      problems.push(`state ${name}: Resource ${st.Resource} (only Lambda function ARNs and ${OPTIMIZED_LAMBDA} are supported locally)`);
    }
    if (st.Type === 'Task' && (st.HeartbeatSeconds !== undefined || st.HeartbeatSecondsPath !== undefined)) {
      log('warning', { stateMachine: machine, state: name, warning: 'HeartbeatSeconds is ignored by the local engine' });
    }
  });
  if (problems.length) throw new Error(`state machine ${machine}: unsupported by the local Step Functions service:\n  ${problems.join('\n  ')}`);
}

// walkStates calls fn(name, state) for every state, nested ones included.
function walkStates(def, fn) {
  for (const [name, st] of Object.entries(def.States || {})) {
    fn(name, st);
    if (st.Type === 'Parallel') for (const b of st.Branches || []) walkStates(b, fn);
    if (st.Type === 'Map') {
      if (st.Iterator) walkStates(st.Iterator, fn);
      if (st.ItemProcessor) walkStates(st.ItemProcessor, fn);
    }
  }
}

function isLambdaResource(r) {
  return r === OPTIMIZED_LAMBDA || /^arn:[^:]+:lambda:[^:]*:[^:]*:function:[^:]+(:[^:]+)?$/.test(r);
}

// expandOverrides turns {"*": v, "Name": w} into a per-state-name map for the
// states of the definition that the override kind applies to.
function expandOverrides(map, names) {
  if (!map) return undefined;
  const out = {};
  for (const n of names) {
    if (Object.prototype.hasOwnProperty.call(map, n)) out[n] = map[n];
    else if (Object.prototype.hasOwnProperty.call(map, '*')) out[n] = map['*'];
  }
  return out;
}

// newEngine builds the engine's StateMachine. Its constructor validates the
// definition with asl-validator, which compiles its JSON schemas anew on each
// call (about half a second); a definition that validated once (same text,
// same engine and validator versions) is remembered in a marker file under the
// OS temp directory and not validated again.
const validatedDir = path.join(require('node:os').tmpdir(), 'sluice-local-sfn-validated');
const validatorVersions = ['aws-local-stepfunctions', 'asl-validator'].map((p) => {
  // package.json is not in the packages' exports: find it above the entry point.
  let dir = path.dirname(require.resolve(p));
  for (;;) {
    const f = path.join(dir, 'package.json');
    if (fs.existsSync(f)) {
      const pkg = JSON.parse(fs.readFileSync(f, 'utf8'));
      if (pkg.name === p) return `${p}@${pkg.version}`;
    }
    const up = path.dirname(dir);
    if (up === dir) return `${p}@?`;
    dir = up;
  }
}).join(',');

function newEngine(def, options) {
  const key = crypto.createHash('sha256').update(validatorVersions).update('\0').update(JSON.stringify(def)).digest('hex');
  const marker = path.join(validatedDir, key);
  if (fs.existsSync(marker)) {
    return new StateMachine(def, { ...options, validationOptions: { noValidate: true } });
  }
  const engine = new StateMachine(def, options); // throws on an invalid definition
  try {
    fs.mkdirSync(validatedDir, { recursive: true });
    fs.writeFileSync(marker, '');
  } catch (_) { /* the cache is an optimisation */ }
  return engine;
}

function loadMachines(cfg) {
  const machines = new Map();
  const created = Date.now();
  for (const m of cfg.stateMachines) {
    if (!m.name || !validName(m.name)) throw new Error(`invalid state machine name ${JSON.stringify(m.name)}`);
    let text;
    if (m.definitionFile) text = fs.readFileSync(path.resolve(cfg.baseDir, m.definitionFile), 'utf8');
    else if (typeof m.definition === 'string') text = m.definition;
    else if (m.definition) text = JSON.stringify(m.definition);
    else throw new Error(`state machine ${m.name}: definitionFile or definition is required`);
    text = substitute(text, m.substitutions || {}, `state machine ${m.name}`);
    const definition = JSON.parse(text);

    // The engine's copy: Tasks without a timeout get "no timeout" as in AWS.
    const engineDef = JSON.parse(text);
    const waitStates = [];
    const retryStates = [];
    const lambdaTasks = new Map(); // state name -> Resource (null when ambiguous)
    walkStates(engineDef, (name, st) => {
      if (st.Type === 'Wait') waitStates.push(name);
      if (Array.isArray(st.Retry) && st.Retry.length) retryStates.push(name);
      if (st.Type === 'Task') {
        if (st.TimeoutSeconds === undefined && st.TimeoutSecondsPath === undefined) st.TimeoutSeconds = MAX_TIMER_SECONDS;
        if (isLambdaResource(st.Resource)) {
          lambdaTasks.set(name, lambdaTasks.has(name) && lambdaTasks.get(name) !== st.Resource ? null : st.Resource);
        }
      }
    });
    checkSupported(m.name, engineDef);
    for (const [name, r] of lambdaTasks) {
      if (r === null) log('warning', { stateMachine: m.name, state: name, warning: 'several Task states share this name with different Resources: they use the engine\'s own Lambda client' });
    }
    const timeouts = new Map();
    walkStates(definition, (name, st) => {
      if (st.Type === 'Task' && st.TimeoutSeconds !== undefined) timeouts.set(name, st.TimeoutSeconds);
    });

    const engine = newEngine(engineDef, {
      awsConfig: {
        region: cfg.region,
        // The engine's own Lambda client (taskInvoker "engine") signs with
        // the same credentials as the adapter.
        credentials: { accessKeys: { accessKeyId: cfg.lambdaCredentials.accessKeyId || 'local', secretAccessKey: cfg.lambdaCredentials.secretAccessKey || 'local' } },
      },
    });
    const ov = { ...(cfg.overrides || {}) };
    const mov = m.overrides || {};
    const waitMap = { ...(ov.waitTimeOverrides || {}), ...(mov.waitTimeOverrides || {}) };
    const retryMap = { ...(ov.retryIntervalOverrides || {}), ...(mov.retryIntervalOverrides || {}) };
    const arn = `arn:aws:states:${cfg.region}:${cfg.account}:stateMachine:${m.name}`;
    machines.set(arn, {
      arn,
      name: m.name,
      definition,
      definitionText: text,
      roleArn: m.roleArn || `arn:aws:iam::${cfg.account}:role/${m.name}-role`,
      creationDate: created,
      engine,
      lambdaTasks,
      timeouts,
      overrides: {
        waitTimeOverrides: expandOverrides(waitMap, waitStates),
        retryIntervalOverrides: expandOverrides(retryMap, retryStates),
      },
    });
  }
  return machines;
}

// ---------------------------------------------------------------------------
// names and ARNs

// validName is Step Functions' rule for execution (and state machine) names.
//
// Length 1..80: the Step Functions API reference's "Name" shape has
// "min": 1, "max": 80 (botocore/data/stepfunctions/2016-11-23/service-2.json,
// the model the StartExecution page is generated from). The length counts
// characters (code points), not UTF-16 units.
//
// Forbidden characters, from StartExecution's `name` parameter
// (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html):
// "A name must not contain: white space; brackets < > { } [ ]; wildcard
// characters ? *; special characters " # % \ ^ | ~ ` $ & , ; : /; control
// characters (U+0000-001F, U+007F-009F)". The current text of the reference
// (e.g. the AWS SDK for Kotlin's StartExecutionRequest.name page) adds
// U+FFFE-FFFF, surrogates (U+D800-DFFF) and U+10FFFF. Violations answer
// InvalidName (400).
const FORBIDDEN_NAME_CHARS = /[\s<>{}[\]?*"#%\\^|~`$&,;:/\u0000-\u001f\u007f-\u009f\ufffe\uffff\ud800-\udfff\u{10ffff}]/u;

function validName(name) {
  if (typeof name !== 'string') return false;
  const length = [...name].length;
  return length >= 1 && length <= 80 && !FORBIDDEN_NAME_CHARS.test(name);
}

// MAX_INPUT_BYTES: StartExecution's `input` is of shape "SensitiveData",
// "max": 262144 (service-2.json), and "Length constraints apply to the
// payload size, and are expressed as bytes in UTF-8 encoding" (API_StartExecution).
// A larger input answers InvalidExecutionInput (400).
const MAX_INPUT_BYTES = 262144;

// MAX_RETIRED_NAMES bounds the names of finished executions that
// retainFinished dropped but that stay taken (AWS keeps an execution's name
// 90 days): far more than a local stack starts in that time.
const MAX_RETIRED_NAMES = 100000;

const SM_ARN = /^arn:[^:]+:states:[^:]+:\d{12}:stateMachine:[^:]+$/;
const EXEC_ARN = /^arn:[^:]+:states:[^:]+:\d{12}:execution:[^:]+:[^:]+$/;

// MAX_ARN_LENGTH: executionArn and stateMachineArn are of the "Arn" shape,
// "Length Constraints: Minimum length of 1. Maximum length of 256.",
// "Required: Yes" (API_DescribeExecution, API_StopExecution,
// API_GetExecutionHistory: executionArn; API_StartExecution: stateMachineArn;
// https://docs.aws.amazon.com/step-functions/latest/apireference/).
const MAX_ARN_LENGTH = 256;
// StopExecution: "error ... Length Constraints: Minimum length of 0. Maximum
// length of 256." and "cause ... Minimum length of 0. Maximum length of
// 32768." (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StopExecution.html)
const MAX_STOP_ERROR = 256;
const MAX_STOP_CAUSE = 32768;
// Page tokens: "Keep all other arguments unchanged. Each pagination token
// expires after 24 hours. Using an expired pagination token will return an
// HTTP 400 InvalidToken error." (API_ListExecutions, API_GetExecutionHistory,
// `nextToken`)
const TOKEN_TTL_MS = 24 * 3600 * 1000;

// validationError is the awsJson1_0 ValidationException that AWS answers
// for a request member outside its modelled constraints ("ValidationError:
// The input fails to satisfy the constraints specified by an AWS service",
// HTTP 400, Common Errors of the Step Functions API reference; the SFN model's
// error shape is ValidationException), in the wording of AWS's validator.
function validationError(member, value, constraint) {
  const v = value === undefined || value === null ? 'null' : `'${String(value).slice(0, 64)}'`;
  return new ApiError('ValidationException', `1 validation error detected: Value ${v} at '${member}' failed to satisfy constraint: ${constraint}`);
}

// requiredArn checks a required ARN member: present ("Required: Yes"), a
// string of 1..256 characters (MAX_ARN_LENGTH) → ValidationException; then
// of the resource's ARN form → InvalidArn ("InvalidArn: The provided Amazon
// Resource Name (ARN) is not valid.", HTTP 400, in every operation's Errors).
function requiredArn(req, member, form) {
  const arn = req[member];
  if (arn === undefined || arn === null) throw validationError(member, arn, 'Member must not be null');
  if (typeof arn !== 'string') throw new ApiError('SerializationException', `${member} must be a string`);
  if (arn.length < 1) throw validationError(member, arn, 'Member must have length greater than or equal to 1');
  if (arn.length > MAX_ARN_LENGTH) throw validationError(member, arn, `Member must have length less than or equal to ${MAX_ARN_LENGTH}`);
  if (!form.test(arn)) throw new ApiError('InvalidArn', `Invalid Arn: '${arn}'`);
  return arn;
}

// optionalString checks an optional string member's maximum length.
function optionalString(req, member, max) {
  const v = req[member];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new ApiError('SerializationException', `${member} must be a string`);
  if ([...v].length > max) throw validationError(member, '…', `Member must have length less than or equal to ${max}`);
  return v;
}

// ---------------------------------------------------------------------------
// API errors

class ApiError extends Error {
  constructor(type, message, status = 400) {
    super(message);
    this.type = type;
    this.status = status;
  }
}

// ---------------------------------------------------------------------------
// the service

const STATUSES = ['RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED', 'PENDING_REDRIVE'];
const seconds = (ms) => ms / 1000;

class Service {
  constructor(cfg) {
    this.cfg = cfg;
    this.machines = loadMachines(cfg);
    this.executions = new Map(); // executionArn -> record
    // executionArns of finished executions dropped by retainFinished, oldest
    // first: their names stay taken (MAX_RETIRED_NAMES).
    this.retired = new Set();
    // executionArn -> JSON of a finished execution: finished executions never
    // change, so a flush serializes only the running ones.
    this.closedJSON = new Map();
    this.seq = 0;
    this.flushTimer = null;
    if (cfg.stateFile) this.restore();
  }

  // --- persistence -------------------------------------------------------

  restore() {
    let data;
    try {
      data = JSON.parse(fs.readFileSync(this.cfg.stateFile, 'utf8'));
    } catch (e) {
      if (e.code === 'ENOENT') return;
      throw new Error(`stateFile ${this.cfg.stateFile}: ${e.message}`);
    }
    const now = Date.now();
    let aborted = 0;
    for (const arn of data.retired || []) this.retired.add(arn);
    for (const rec of data.executions || []) {
      rec.runtime = null;
      this.seq = Math.max(this.seq, rec.seq || 0);
      if (rec.status === 'RUNNING') {
        // The engine's in-memory state is gone: the execution cannot resume.
        rec.status = 'ABORTED';
        rec.stopDate = now;
        rec.error = 'Local.ServiceRestarted';
        rec.cause = 'The local Step Functions service stopped while this execution was running; it was not resumed.';
        this.addEvent(rec, 'ExecutionAborted', { executionAbortedEventDetails: { error: rec.error, cause: rec.cause } }, now);
        rec.closed = true;
        aborted++;
      }
      this.executions.set(rec.executionArn, rec);
    }
    for (const rec of this.executions.values()) if (rec.closed) this.closed(rec);
    log('state restored', { stateFile: this.cfg.stateFile, executions: this.executions.size, abortedOnRestart: aborted });
    if (aborted) this.flush();
  }

  // closed caches a finished execution's JSON and drops the oldest finished
  // executions of its state machine beyond cfg.retainFinished.
  closed(rec) {
    const { runtime, ...plain } = rec;
    this.closedJSON.set(rec.executionArn, JSON.stringify(plain));
    const limit = this.cfg.retainFinished;
    if (!(limit > 0)) return;
    const finished = [...this.executions.values()].filter((r) => r.closed && r.stateMachineArn === rec.stateMachineArn);
    if (finished.length <= limit) return;
    finished.sort((a, b) => (a.seq || 0) - (b.seq || 0));
    for (const old of finished.slice(0, finished.length - limit)) {
      this.executions.delete(old.executionArn);
      this.closedJSON.delete(old.executionArn);
      this.retired.add(old.executionArn);
    }
    while (this.retired.size > MAX_RETIRED_NAMES) this.retired.delete(this.retired.values().next().value);
  }

  persistSoon() {
    if (!this.cfg.stateFile || this.flushTimer) return;
    this.flushTimer = setTimeout(() => this.flush(), 25);
  }

  flush() {
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    if (!this.cfg.stateFile) return;
    const parts = [];
    for (const rec of this.executions.values()) {
      const cached = rec.closed && this.closedJSON.get(rec.executionArn);
      if (cached) {
        parts.push(cached);
        continue;
      }
      const { runtime, ...plain } = rec;
      parts.push(JSON.stringify(plain));
    }
    const tmp = `${this.cfg.stateFile}.${process.pid}.tmp`;
    fs.mkdirSync(path.dirname(this.cfg.stateFile), { recursive: true });
    fs.writeFileSync(tmp, `{"version":1,"retired":${JSON.stringify([...this.retired])},"executions":[${parts.join(',')}]}`);
    fs.renameSync(tmp, this.cfg.stateFile);
  }

  // --- history -----------------------------------------------------------

  addEvent(rec, type, details, ts = Date.now()) {
    if (rec.closed) return;
    const id = rec.events.length + 1;
    rec.events.push({ timestamp: ts, type, id, previousEventId: id - 1, ...details });
    if (this.cfg.logHistoryEvents) log('history event', { executionArn: rec.executionArn, id, type });
    this.persistSoon();
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
  startExecution(req) {
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
    this.flush(); // an accepted StartExecution survives a crash
    log('execution started', { executionArn, stateMachine: m.name });
    this.run(m, rec, inputValue);
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
    this.closed(rec);
    this.flush();
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
    if (rec.status !== 'RUNNING') return { stopDate: seconds(rec.stopDate || Date.now()) };
    rec.status = 'ABORTED';
    rec.stopDate = Date.now();
    if (error !== undefined) rec.error = error;
    if (cause !== undefined) rec.cause = cause;
    const rt = rec.runtime;
    if (rt && rt.abort) {
      rt.abort();
      await Promise.race([rt.done, new Promise((r) => setTimeout(r, 2000))]);
    } else {
      this.finish(rec, { ok: false });
    }
    this.flush();
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

// rfc3986 is encodeURIComponent plus the characters it leaves alone that
// SigV4's URI encoding escapes.
function rfc3986(str) {
  return encodeURIComponent(str).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

const hmac = (key, data) => crypto.createHmac('sha256', key).update(data, 'utf8').digest();
const sha256hex = (data) => crypto.createHash('sha256').update(data).digest('hex');

// signV4 returns the headers that sign a request with AWS Signature Version 4
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html):
// the canonical request (method, the path with each segment URI-encoded once
// more, as for every service but S3, the sorted query, the signed headers
// host, content-type, content-length and x-amz-date, the body's SHA-256), the
// string to sign over the credential scope DATE/REGION/SERVICE/aws4_request,
// and the HMAC-SHA256 key derived from the secret.
function signV4(method, url, headers, body, { credentials, region, service }, now = new Date()) {
  const u = new URL(url);
  const amzDate = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const date = amzDate.slice(0, 8);
  const all = { ...headers, host: u.host, 'x-amz-date': amzDate };
  const names = Object.keys(all).map((k) => k.toLowerCase()).sort();
  const lower = Object.fromEntries(Object.entries(all).map(([k, v]) => [k.toLowerCase(), String(v).trim().replace(/\s+/g, ' ')]));
  const canonicalHeaders = names.map((n) => `${n}:${lower[n]}\n`).join('');
  const signedHeaders = names.join(';');
  const canonicalURI = u.pathname.split('/').map(rfc3986).join('/') || '/';
  const query = [...u.searchParams.entries()].map(([k, v]) => `${rfc3986(k)}=${rfc3986(v)}`).sort().join('&');
  const canonicalRequest = [method, canonicalURI, query, canonicalHeaders, signedHeaders, sha256hex(body)].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256hex(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${credentials.secretAccessKey}`, date), region), service), 'aws4_request');
  const signature = crypto.createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');
  return {
    ...all,
    authorization: `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
  };
}

// postJSON POSTs a JSON body without a client-side timeout (a Lambda may run
// for up to 15 minutes; the Task's TimeoutSeconds is enforced by the engine),
// signed with SigV4 when signing.credentials are set.
function postJSON(url, value, signing) {
  return new Promise((resolve, reject) => {
    const body = Buffer.from(JSON.stringify(value === undefined ? null : value));
    let headers = { 'content-type': 'application/json', 'content-length': body.length };
    if (signing && signing.credentials && signing.credentials.accessKeyId && signing.credentials.secretAccessKey) {
      headers = signV4('POST', url, headers, body, signing);
    }
    headers['user-agent'] = 'sluice-local-sfn'; // not signed, as in the AWS SDKs
    const req = http.request(url, {
      method: 'POST',
      headers,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

// ---------------------------------------------------------------------------
// HTTP: awsJson1_0

const OPERATIONS = {
  StartExecution: (s, r) => s.startExecution(r),
  DescribeExecution: (s, r) => s.describeExecution(r),
  StopExecution: (s, r) => s.stopExecution(r),
  ListExecutions: (s, r) => s.listExecutions(r),
  GetExecutionHistory: (s, r) => s.getExecutionHistory(r),
  DescribeStateMachine: (s, r) => s.describeStateMachine(r),
  DescribeStateMachineForExecution: (s, r) => s.describeStateMachineForExecution(r),
  ListStateMachines: (s, r) => s.listStateMachines(r),
};

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.0',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': crypto.randomUUID(),
  });
  res.end(text);
}

function serve(service) {
  return http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      if (req.method === 'GET' && (req.url === '/healthz' || req.url === '/')) {
        send(res, 200, { status: 'ok', stateMachines: service.machines.size, executions: service.executions.size });
        return;
      }
      const started = Date.now();
      const target = String(req.headers['x-amz-target'] || '');
      const op = target.startsWith('AWSStepFunctions.') ? target.slice('AWSStepFunctions.'.length) : '';
      let status = 200;
      let out;
      try {
        if (req.method !== 'POST') throw new ApiError('UnknownOperationException', `unsupported method ${req.method}`, 404);
        const fn = OPERATIONS[op];
        if (!fn) throw new ApiError('UnknownOperationException', `operation not supported by the local Step Functions service: ${target || '(no X-Amz-Target)'}`);
        let body = {};
        const text = Buffer.concat(chunks).toString('utf8');
        if (text.trim()) {
          try {
            body = JSON.parse(text);
          } catch (e) {
            throw new ApiError('SerializationException', `request body is not JSON: ${e.message}`);
          }
        }
        out = await fn(service, body || {});
      } catch (e) {
        if (e instanceof ApiError) {
          status = e.status;
          out = { __type: e.type, message: e.message };
        } else {
          status = 500;
          out = { __type: 'InternalFailure', message: String(e && e.stack ? e.stack : e) };
        }
      }
      send(res, status, out);
      log('api', { op: op || target, status, ms: Date.now() - started, error: out && out.__type });
    });
  });
}

// ---------------------------------------------------------------------------
// main

function main() {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node server.js CONFIG.json\n');
    process.exit(2);
  }
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 22) {
    log('startup failed', { error: `Node ${process.version}: aws-local-stepfunctions needs Node >= 22; run this with node_modules/node/bin/node` });
    process.exit(1);
  }
  let cfg;
  let service;
  try {
    cfg = loadConfig(file);
    // For taskInvoker "engine": the engine's own AWS SDK Lambda client honours
    // the service-specific endpoint variable.
    if (cfg.lambdaEndpoint) process.env.AWS_ENDPOINT_URL_LAMBDA = cfg.lambdaEndpoint;
    service = new Service(cfg);
  } catch (e) {
    log('startup failed', { error: String(e && e.message ? e.message : e) });
    process.exit(1);
  }
  const server = serve(service);
  server.keepAliveTimeout = 65000;
  server.listen(cfg.port, cfg.host, () => {
    const addr = server.address();
    log('listening', {
      endpoint: `http://${addr.address}:${addr.port}`,
      port: addr.port,
      stateMachines: [...service.machines.keys()],
      taskInvoker: cfg.taskInvoker,
      lambdaEndpoint: cfg.lambdaEndpoint,
      stateFile: cfg.stateFile || null,
      node: process.version,
    });
  });
  server.on('error', (e) => {
    log('server error', { error: e.message });
    process.exit(1);
  });
  const shutdown = (sig) => {
    // RUNNING executions stay RUNNING in the state file; the next start
    // records them as ABORTED (they cannot be resumed).
    try {
      service.flush();
    } catch (e) {
      log('flush failed', { error: e.message });
    }
    log('shutdown', { signal: sig });
    process.exit(0);
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

if (require.main === module) main();

module.exports = { validName, substitute, Service, loadConfig, signV4 };
