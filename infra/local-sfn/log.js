'use strict';
// Local Step Functions service (see server.js): Logging: one JSON object per line on stdout.



// ---------------------------------------------------------------------------
// logging: one JSON object per line on stdout

function log(msg, fields) {
  process.stdout.write(JSON.stringify({ time: new Date().toISOString(), msg, ...fields }) + '\n');
}

module.exports = { log };
