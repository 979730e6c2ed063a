/**
 * WAL checkpoints on a worker thread, off the event loop that serves requests.
 *
 * In WAL mode every committed page is written twice: appended to the `-wal` file by the commit,
 * then copied into the database file by a checkpoint (https://www.sqlite.org/wal.html#ckpt). By
 * default the committing connection runs that checkpoint itself whenever the WAL passes 1000 pages,
 * and in synchronous=NORMAL a checkpoint is also where SQLite fsyncs. Measured on the call log
 * (40,000 rows of a policies-scenario request, batches of 500): 13.1–13.5 µs of the request thread
 * per row with the automatic checkpoint, 6.3–6.5 µs without it; most of the difference is waiting
 * on the disk, not CPU. So the writer turns the automatic checkpoint down to a safety net
 * (`SAFETY_NET_BYTES`: it only fires if this thread stops keeping up) and this worker, with its own
 * connection, runs `PRAGMA wal_checkpoint(PASSIVE)` every `intervalMs`. PASSIVE never blocks the
 * writer or readers (https://www.sqlite.org/c3ref/wal_checkpoint_v2.html); frames committed while it
 * runs are copied by the next one, and the writer restarts the WAL from its start once a checkpoint
 * has caught up. `journal_size_limit` keeps the `-wal` file from staying large after a burst.
 *
 * Durability is unchanged: a committed batch is in the WAL whoever checkpoints it, and an
 * unfinished checkpoint is simply redone (the WAL stays valid until it is complete).
 */
import { Worker } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';

/** The writer's own automatic checkpoint, kept only as a safety net: once the WAL holds 64 MiB. */
export const SAFETY_NET_BYTES = 64 * 1024 * 1024;
/** Bytes the `-wal` file is truncated back to after a checkpoint reset it. */
export const JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024;
export const CHECKPOINT_INTERVAL_MS = 1000;
/**
 * How long stop() waits for the thread to close its connection. It is normally well under a
 * millisecond; the wait only runs long if a PASSIVE checkpoint of a large WAL is in progress, and
 * the store's own close() checkpoints whatever is left anyway, so a bounded wait loses nothing.
 */
export const STOP_WAIT_MS = 2000;

// Control words shared with the thread (Int32Array over a SharedArrayBuffer).
const STATE = 0; // RUN, then STOP when the store closes
const CLOSED = 1; // set to 1 by the thread once its connection is closed (or was never opened)
const RUN = 0;
const STOP = 1;

// CommonJS source for the worker (eval: true). Why a blocking loop on Atomics.wait instead of a
// timer and a 'stop' message: stop() must be synchronous and complete. The store's close() is
// synchronous, and the files must be quiet when it returns: callers remove the directory, and a
// thread still holding (or, worse, still opening) a connection recreated `calls.db` in a directory
// being removed. So the thread sleeps on the STATE word, checkpoints whenever the wait times out,
// and on STOP closes its connection and raises CLOSED, which stop() waits for; the writer's own
// close then runs last and, as the last connection, checkpoints and deletes the WAL.
// The database is opened `mode=rw` (https://www.sqlite.org/uri.html): it must already exist, so
// this thread never creates a file. Errors are reported, never thrown: a failed checkpoint is
// retried at the next tick, and the safety net covers a thread that cannot checkpoint at all.
const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { DatabaseSync } = require('node:sqlite');
const ctl = new Int32Array(workerData.control);
const report = (what, err) => parentPort.postMessage({ error: what + (err && err.message || err) });
let db;
try {
  try {
    if (Atomics.load(ctl, ${STATE}) === ${RUN}) db = new DatabaseSync(new URL(workerData.url), { timeout: workerData.busyTimeoutMs });
  } catch (err) {
    report('cannot open for checkpoints: ', err);
  }
  if (db !== undefined) {
    let checkpoint;
    try { checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)'); } catch (err) { report('cannot prepare the checkpoint: ', err); }
    while (checkpoint !== undefined && Atomics.wait(ctl, ${STATE}, ${RUN}, workerData.intervalMs) === 'timed-out') {
      try { checkpoint.get(); } catch (err) { report('checkpoint failed: ', err); }
    }
    try { db.close(); } catch (err) { report('closing the checkpoint connection failed: ', err); }
  }
} finally {
  // Whatever happened above, stop() must not wait for a thread that is done.
  Atomics.store(ctl, ${CLOSED}, 1);
  Atomics.notify(ctl, ${CLOSED});
}
`;

export class Checkpointer {
  readonly #worker: Worker;
  readonly #control = new Int32Array(new SharedArrayBuffer(8));
  #exited = false;

  constructor(path: string, busyTimeoutMs: number, onError: (message: string) => void, intervalMs = CHECKPOINT_INTERVAL_MS) {
    const url = pathToFileURL(path);
    url.searchParams.set('mode', 'rw');
    this.#worker = new Worker(SOURCE, {
      eval: true,
      workerData: { url: url.href, busyTimeoutMs, intervalMs, control: this.#control.buffer },
    });
    this.#worker.on('message', (m: { error?: string }) => {
      if (typeof m.error === 'string') onError(m.error);
    });
    this.#worker.on('error', (err: Error) => onError(`checkpoint worker failed: ${err.message}`));
    this.#worker.on('exit', () => {
      this.#exited = true;
    });
    // The thread must not keep a finished process alive; stop() ends it explicitly.
    this.#worker.unref();
  }

  /**
   * Ends the thread's work synchronously: when this returns, its connection is closed (or was
   * never opened) and it touches no file again. Waits at most STOP_WAIT_MS (a checkpoint in
   * progress finishes first); returns false if the thread did not confirm in time.
   */
  stop(): boolean {
    Atomics.store(this.#control, STATE, STOP);
    Atomics.notify(this.#control, STATE);
    if (this.#exited) return true;
    const deadline = Date.now() + STOP_WAIT_MS;
    while (Atomics.load(this.#control, CLOSED) === 0) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      Atomics.wait(this.#control, CLOSED, 0, left);
    }
    return true;
  }
}
