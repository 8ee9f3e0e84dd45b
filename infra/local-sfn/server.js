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
//
// Modules by job: log.js, rules.js (API rules and errors), config.js,
// sigv4.js, service.js (operations, executions), journal.js (their persistence),
// http.js.

const { log } = require('./log');
const { loadConfig } = require('./config');
const { Service } = require('./service');
const { serve } = require('./http');

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
  let shuttingDown = false;
  const shutdown = async (sig) => {
    if (shuttingDown) return;
    shuttingDown = true;
    // RUNNING executions stay RUNNING in the journal; the next start records
    // them as ABORTED (they cannot be resumed). Wait for the journal's last
    // writes, but not forever.
    try {
      await Promise.race([service.close(), new Promise((r) => setTimeout(r, 3000))]);
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

module.exports = { validName: require('./rules').validName, substitute: require('./config').substitute, Service: require('./service').Service, loadConfig: require('./config').loadConfig, signV4: require('./sigv4').signV4 };
