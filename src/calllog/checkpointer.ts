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
 * (`SAFETY_NET_PAGES`: it only fires if this thread stops keeping up) and this worker, with its own
 * connection, runs `PRAGMA wal_checkpoint(PASSIVE)` every `intervalMs`. PASSIVE never blocks the
 * writer or readers (https://www.sqlite.org/c3ref/wal_checkpoint_v2.html); frames committed while it
 * runs are copied by the next one, and the writer restarts the WAL from its start once a checkpoint
 * has caught up. `journal_size_limit` keeps the `-wal` file from staying large after a burst.
 *
 * Durability is unchanged: a committed batch is in the WAL whoever checkpoints it, and an
 * unfinished checkpoint is simply redone (the WAL stays valid until it is complete).
 */
import { Worker } from 'node:worker_threads';

/** The writer's own automatic checkpoint, kept only as a safety net: 16,384 pages (64 MiB at 4 KiB). */
export const SAFETY_NET_PAGES = 16_384;
/** Bytes the `-wal` file is truncated back to after a checkpoint reset it. */
export const JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024;
export const CHECKPOINT_INTERVAL_MS = 1000;

// CommonJS source for the worker (eval: true): a connection of its own, a timer, and a last
// checkpoint when told to stop. Errors are reported, never thrown: a failed checkpoint is retried
// by the next tick, and the safety net covers a worker that cannot checkpoint at all.
const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { DatabaseSync } = require('node:sqlite');
let db;
try {
  db = new DatabaseSync(workerData.path, { timeout: workerData.busyTimeoutMs });
} catch (err) {
  parentPort.postMessage({ error: 'cannot open for checkpoints: ' + (err && err.message || err) });
  process.exit(0);
}
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
const tick = () => {
  try { checkpoint.get(); } catch (err) { parentPort.postMessage({ error: 'checkpoint failed: ' + (err && err.message || err) }); }
};
const timer = setInterval(tick, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m !== 'stop') return;
  clearInterval(timer);
  tick();
  db.close();
  parentPort.close();
});
`;

export class Checkpointer {
  readonly #worker: Worker;

  constructor(path: string, busyTimeoutMs: number, onError: (message: string) => void, intervalMs = CHECKPOINT_INTERVAL_MS) {
    this.#worker = new Worker(SOURCE, { eval: true, workerData: { path, busyTimeoutMs, intervalMs } });
    this.#worker.on('message', (m: { error?: string }) => {
      if (typeof m.error === 'string') onError(m.error);
    });
    this.#worker.on('error', (err: Error) => onError(`checkpoint worker failed: ${err.message}`));
    // The timer must not keep a finished process alive; close() ends the thread explicitly.
    this.#worker.unref();
  }

  /** Asks for a last checkpoint and ends the thread; does not wait (the WAL is durable either way). */
  stop(): void {
    this.#worker.postMessage('stop');
  }
}
