'use strict';
// Local Step Functions service (see server.js): the state file's persistence:
// a snapshot plus an append-only journal with group commit.
//
// On disk, for stateFile F:
//   F            the snapshot: {"version":2,"journal":G,"retired":[...],"executions":[...]}
//   F.journal.N  newline-delimited JSON records appended since a snapshot;
//                restore replays every N >= G in order.
// A version 1 snapshot (no "journal" field, from before the journal) reads
// as journal 0.
//
// Records appended in one event-loop tick are written with one write and one
// fdatasync (group commit); while a batch is being synced the next one
// gathers. durable() resolves once everything appended so far is on disk.
// Compaction writes a new snapshot (temp file, fsync, rename, fsync of the
// folder) and starts the next journal; the old journal is deleted only after
// the new snapshot is durable, so a crash at any point leaves a snapshot and
// the journals that complete it.

const fs = require('node:fs');
const path = require('node:path');

// Compact once the journal holds this many bytes, or more than the last
// snapshot, whichever is larger: each compaction then costs at most about
// what was appended since the last, O(1) amortised per record.
const COMPACT_MIN_BYTES = 16 << 20;

class Journal {
  constructor(stateFile, { onError = () => {}, compactMinBytes = COMPACT_MIN_BYTES } = {}) {
    this.stateFile = stateFile;
    this.dir = path.dirname(stateFile);
    this.base = path.basename(stateFile);
    this.onError = onError;
    this.compactMinBytes = compactMinBytes;
    this.generation = 0; // the journal being appended to
    this.fd = null;
    this.batches = []; // {fd, generation, lines, done, resolve, reject}; [0] may be in flight
    this.writing = false;
    this.scheduled = false;
    this.journalBytes = 0;
    this.snapshotBytes = 0;
    this.compacting = null; // the running compaction's promise
    this.snapshotText = null; // set by the owner: () => snapshot body text (without the version header)
  }

  journalPath(generation) {
    return path.join(this.dir, `${this.base}.journal.${generation}`);
  }

  // journalGenerations lists the generations of the journal files present, ascending.
  journalGenerations() {
    let names;
    try {
      names = fs.readdirSync(this.dir);
    } catch (e) {
      if (e.code === 'ENOENT') return [];
      throw e;
    }
    const prefix = `${this.base}.journal.`;
    return names
      .filter((n) => n.startsWith(prefix) && /^\d+$/.test(n.slice(prefix.length)))
      .map((n) => Number(n.slice(prefix.length)))
      .sort((a, b) => a - b);
  }

  // load passes the snapshot (null when there is none) to onSnapshot, then
  // every journal record after it to onRecord, in order. A line that does
  // not parse (the torn last write of a crash) is skipped and counted.
  load(onSnapshot, onRecord) {
    let snapshot = null;
    try {
      snapshot = JSON.parse(fs.readFileSync(this.stateFile, 'utf8'));
    } catch (e) {
      if (e.code !== 'ENOENT') throw new Error(`stateFile ${this.stateFile}: ${e.message}`);
    }
    onSnapshot(snapshot);
    const from = snapshot && Number.isInteger(snapshot.journal) ? snapshot.journal : 0;
    const stats = { records: 0, skipped: 0, journals: 0 };
    let last = from - 1;
    for (const g of this.journalGenerations()) {
      last = Math.max(last, g);
      if (g < from) continue;
      stats.journals++;
      const text = fs.readFileSync(this.journalPath(g), 'utf8');
      let start = 0;
      while (start < text.length) {
        let end = text.indexOf('\n', start);
        if (end < 0) end = text.length;
        const line = text.slice(start, end);
        start = end + 1;
        if (!line) continue;
        let record;
        try {
          record = JSON.parse(line);
        } catch (_) {
          stats.skipped++;
          continue;
        }
        onRecord(record);
        stats.records++;
      }
    }
    this.generation = last + 1;
    return stats;
  }

  // compactNow writes a snapshot synchronously and starts a fresh journal
  // (at startup: never appends after a torn tail).
  compactNow() {
    this.removeStaleTemps();
    const old = this.journalGenerations();
    const next = this.generation + (this.fd === null ? 0 : 1);
    this.writeSnapshotSync(next);
    this.openJournal(next);
    for (const g of old) if (g < next) unlinkQuietly(this.journalPath(g));
  }

  // removeStaleTemps deletes snapshot temp files a crash left behind.
  removeStaleTemps() {
    let names = [];
    try {
      names = fs.readdirSync(this.dir);
    } catch (_) { /* no folder yet */ }
    for (const n of names) if (n.startsWith(`${this.base}.`) && n.endsWith('.tmp')) unlinkQuietly(path.join(this.dir, n));
  }

  openJournal(generation) {
    if (this.fd !== null) {
      const fd = this.fd;
      // The old journal closes after its last batch is written.
      this.whenWritten(fd).then(() => fs.close(fd, () => {}));
    }
    this.generation = generation;
    this.fd = fs.openSync(this.journalPath(generation), 'a');
    this.journalBytes = 0;
  }

  snapshotDocument(generation) {
    return `{"version":2,"journal":${generation},${this.snapshotText()}}`;
  }

  writeSnapshotSync(generation) {
    fs.mkdirSync(this.dir, { recursive: true });
    const text = this.snapshotDocument(generation);
    const tmp = `${this.stateFile}.${process.pid}.tmp`;
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.stateFile);
    fsyncDirSync(this.dir);
    this.snapshotBytes = Buffer.byteLength(text);
  }

  // append queues one record; it is written at the end of this tick.
  append(record) {
    const line = JSON.stringify(record) + '\n';
    let batch = this.batches[this.batches.length - 1];
    if (!batch || batch.fd !== this.fd || (this.writing && this.batches.length === 1)) {
      batch = newBatch(this.fd);
      this.batches.push(batch);
    }
    batch.lines.push(line);
    this.journalBytes += line.length;
    this.schedule();
  }

  schedule() {
    if (this.scheduled || this.writing) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.writeNext();
    });
  }

  // durable resolves when every record appended so far is written and
  // fdatasync'd (rejects if that write failed).
  durable() {
    const last = this.batches[this.batches.length - 1];
    return last ? last.done : Promise.resolve();
  }

  whenWritten(fd) {
    for (let i = this.batches.length - 1; i >= 0; i--) {
      if (this.batches[i].fd === fd) return this.batches[i].done.catch(() => {});
    }
    return Promise.resolve();
  }

  writeNext() {
    if (this.writing || !this.batches.length) return;
    const batch = this.batches[0];
    this.writing = true;
    const buf = Buffer.from(batch.lines.join(''));
    batch.lines = null;
    writeAll(batch.fd, buf, (err) => {
      if (err) return this.written(batch, err);
      fs.fdatasync(batch.fd, (err2) => this.written(batch, err2));
    });
  }

  written(batch, err) {
    this.batches.shift();
    this.writing = false;
    if (err) {
      this.onError(err);
      batch.reject(err);
    } else batch.resolve();
    // The batch that gathered during this write goes at once.
    if (this.batches.length) this.writeNext();
    this.maybeCompact();
  }

  maybeCompact() {
    if (this.compacting || this.journalBytes < Math.max(this.compactMinBytes, this.snapshotBytes)) return;
    this.compacting = this.compact().catch((e) => this.onError(e)).finally(() => {
      this.compacting = null;
    });
  }

  // compact switches appends to the next journal, then writes the snapshot
  // of the state at the switch off the event loop; the older journals are
  // deleted once it is durable.
  async compact() {
    const next = this.generation + 1;
    const text = this.snapshotDocument(next); // the state now: journal `next` holds what follows
    this.openJournal(next);
    const tmp = `${this.stateFile}.${process.pid}.tmp`;
    const fh = await fs.promises.open(tmp, 'w');
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, this.stateFile);
    fsyncDirSync(this.dir);
    this.snapshotBytes = Buffer.byteLength(text);
    for (const g of this.journalGenerations()) if (g < next) unlinkQuietly(this.journalPath(g));
  }

  // close waits for what was appended so far and for a running compaction.
  async close() {
    await this.durable().catch(() => {});
    if (this.compacting) await this.compacting;
  }
}

function newBatch(fd) {
  const batch = { fd, lines: [] };
  batch.done = new Promise((resolve, reject) => {
    batch.resolve = resolve;
    batch.reject = reject;
  });
  batch.done.catch(() => {}); // a failed write is reported by onError and to awaiting callers
  return batch;
}

function writeAll(fd, buf, cb) {
  fs.write(fd, buf, 0, buf.length, null, (err, n) => {
    if (err) return cb(err);
    if (n < buf.length) return writeAll(fd, buf.subarray(n), cb);
    cb(null);
  });
}

function fsyncDirSync(dir) {
  let fd;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (_) {
    /* not every file system syncs folders */
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function unlinkQuietly(file) {
  try {
    fs.unlinkSync(file);
  } catch (_) { /* already gone */ }
}

module.exports = { Journal, COMPACT_MIN_BYTES };
