'use strict';
// Local Step Functions service (see server.js): HTTP: the awsJson1_0 protocol.

const http = require('node:http');
const crypto = require('node:crypto');
const { log } = require('./log');
const { ApiError } = require('./rules');

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

module.exports = { OPERATIONS, send, serve };
