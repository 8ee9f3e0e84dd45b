'use strict';
// Local Step Functions service (see server.js): Logging: one JSON object per line on stdout.

// ---------------------------------------------------------------------------
// logging: one JSON object per line on stdout
//
// Lines of one event-loop tick go out in one write: stdout to a pipe is
// synchronous in Node on Linux, so a write per line would cost a system call
// (and a wait whenever the reader is behind) per history event.

let pending = [];
let scheduled = false;

function flushLog() {
  scheduled = false;
  if (!pending.length) return;
  const text = pending.join('');
  pending = [];
  process.stdout.write(text);
}

function log(msg, fields) {
  pending.push(JSON.stringify({ time: new Date().toISOString(), msg, ...fields }) + '\n');
  if (!scheduled) {
    scheduled = true;
    setImmediate(flushLog);
  }
}

// The last lines before process.exit.
process.on('exit', flushLog);

module.exports = { log, flushLog };
