'use strict';
// Local Step Functions service (see server.js): The service configuration and the state machines it loads.

const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { StateMachine } = require('aws-local-stepfunctions');
const { log } = require('./log');
const { validName } = require('./rules');

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
    // Compact the journal into a new snapshot past this many bytes (and more
    // than the last snapshot); 0: journal.js's default.
    journalCompactBytes: raw.journalCompactBytes === undefined ? 0 : Number(raw.journalCompactBytes),
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

module.exports = { OPTIMIZED_LAMBDA, MAX_TIMER_SECONDS, loadConfig, substitute, checkSupported, walkStates, isLambdaResource, expandOverrides, validatedDir, validatorVersions, newEngine, loadMachines };
