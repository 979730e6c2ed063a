/**
 * The log thread (see ./log-thread.ts): takes encoded rows from the ring, writes them to SQLite in
 * batches with its own connection, and runs retention.
 *
 * It waits with `Atomics.waitAsync`, not `Atomics.wait`, so its event loop keeps running: the
 * store's checkpoint thread reports through messages, which a blocked loop would never deliver.
 * Errors are reported to the request thread and written to the shared error text (which a
 * blocked flush() can read), never thrown: a failed batch stays with this thread and is retried
 * every flush interval.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import type { SQLInputValue } from 'node:sqlite';
import { ByteRing, Ctl } from './ring.ts';
import { readRow } from './row-codec.ts';
import { SqliteCallLogStore } from './sqlite.ts';
import { CLOSED, CLOSING, ERROR_TEXT_BYTES, W } from './log-thread.ts';
import type { LogThreadData, LogThreadMessage } from './log-thread.ts';

const d = workerData as LogThreadData;
const ring = new ByteRing(d.data, d.control);
const ctl = ring.ctl;
const errorText = Buffer.from(d.errorText);

function post(m: LogThreadMessage): void {
  parentPort?.postMessage(m);
}

function fail(what: string, err: unknown): void {
  const message = `${what}: ${err instanceof Error ? err.message : String(err)}`;
  const n = errorText.write(message.slice(0, ERROR_TEXT_BYTES / 3), 0, 'utf8');
  Atomics.store(ctl, W.ERROR_BYTES, n);
  post({ error: `call log ${d.path}: ${message}` });
}

/**
 * Lowers this thread's priority. Linux gives every thread its own nice value, and a thread's id
 * is what setpriority(2) takes as `who` for PRIO_PROCESS (sched(7), "The nice value"); Node has no
 * gettid(), but /proc/thread-self links to /proc/<pid>/task/<tid> (proc(5)).
 */
function lowerPriority(nice: number): void {
  if (nice === 0 || process.platform !== 'linux') return;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    setPriority(tid, nice);
  } catch (err) {
    post({ warning: `call log thread: cannot set nice ${nice}, it runs at the request thread's priority: ${(err as Error).message}` });
  }
}

let store: SqliteCallLogStore | undefined;
function openStore(): SqliteCallLogStore | undefined {
  if (store !== undefined) return store;
  try {
    store = new SqliteCallLogStore(d.path, {
      ...(d.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: d.busyTimeoutMs }),
      onCheckpointError: (message) => post({ warning: `call log ${d.path}: ${message}` }),
    });
  } catch (err) {
    fail('cannot open the store', err);
  }
  return store;
}

let pending: SQLInputValue[][] = [];

/**
 * Writes one batch: 'failed' if it failed (the batch stays in `pending`), 'partial' when it took
 * fewer than batch_size rows from the ring (so emptied it), else 'written'.
 */
function writeOne(): 'written' | 'partial' | 'failed' {
  let took = d.batchSize;
  if (pending.length === 0) {
    // PENDING goes up before TAKEN does (inside take), so a reader never sees rows in neither.
    const rows = ring.take(
      d.batchSize,
      (at, bytes) => {
        try {
          return readRow(ring, at, bytes);
        } catch (err) {
          // Cannot happen unless memory was corrupted; such a row is counted, never retried for ever.
          fail('an unreadable row was dropped', err);
          return null;
        }
      },
      (n) => Atomics.add(ctl, W.PENDING, n),
    );
    if (rows.length === 0) return 'partial';
    took = rows.length;
    pending = rows.filter((r) => r !== null);
    const unreadable = rows.length - pending.length;
    if (unreadable > 0) {
      Atomics.sub(ctl, W.PENDING, unreadable);
      Atomics.add(ctl, W.UNREADABLE, unreadable);
    }
    if (pending.length === 0) return took < d.batchSize ? 'partial' : 'written';
  }
  const s = openStore();
  if (s === undefined) {
    Atomics.add(ctl, W.FAILED_WRITES, 1);
    Atomics.store(ctl, W.FAILING, 1);
    return 'failed';
  }
  try {
    s.insertParamRows(pending);
  } catch (err) {
    Atomics.add(ctl, W.FAILED_WRITES, 1);
    Atomics.store(ctl, W.FAILING, 1);
    fail(`write failed, ${pending.length} entries kept for retry`, err);
    return 'failed';
  }
  Atomics.add(ctl, W.COMMITTED, pending.length);
  Atomics.sub(ctl, W.PENDING, pending.length);
  Atomics.store(ctl, W.FAILING, 0);
  pending = [];
  return took < d.batchSize ? 'partial' : 'written';
}

/** Batches written before the loop turns (retention, messages) even if more rows are waiting. */
const BATCHES_PER_TURN = 20;

/**
 * Writes until the ring is empty or BATCHES_PER_TURN batches are written; 'failed' if a write
 * failed. A batch that took fewer than batch_size rows emptied the ring when it was taken, so it
 * ends the turn (unless closing): rows that arrived while it was committed wait for the next wake,
 * which comes batch_size rows or flush_interval_ms later. Taking them at once made commits of a
 * handful of rows whenever the request thread kept pace with the commits (each commit writes every
 * page it touched, a dozen 16 KiB pages for the table and its indexes, whatever the row count):
 * counted under callgrind over 20,000 logged requests, 2,200 commits before this rule, 571 after.
 */
function drain(closing: boolean): 'idle' | 'more' | 'failed' {
  for (let i = 0; i < BATCHES_PER_TURN; i++) {
    if (pending.length === 0 && ring.empty()) return 'idle';
    const w = writeOne();
    if (w === 'failed') return 'failed';
    if (w === 'partial' && !closing) return 'idle';
  }
  return pending.length === 0 && ring.empty() ? 'idle' : 'more';
}

let nextRetention = Date.now();
function retention(): void {
  if (d.retentionMs === null || Date.now() < nextRetention) return;
  nextRetention = Date.now() + d.retentionIntervalMs;
  const s = openStore();
  if (s === undefined) return;
  try {
    s.deleteBefore(Date.now() - d.retentionMs);
  } catch (err) {
    fail('retention delete failed', err);
  }
}

async function run(): Promise<void> {
  // A pending Atomics.waitAsync does not keep an event loop alive: with nothing else to do, the
  // thread's loop would end and the thread exit mid-wait. This timer is the loop's reason to live
  // until close.
  const keepAlive = setInterval(() => undefined, 2 ** 30);
  lowerPriority(d.nice);
  openStore();
  for (;;) {
    // WAKE first: a flush() or close() that lands between these loads then changes WAKE after
    // it was read, and the wait below returns at once instead of sleeping a flush interval.
    const wake = Atomics.load(ctl, Ctl.WAKE);
    const closing = Atomics.load(ctl, W.STATE) === CLOSING;
    const flushReq = Atomics.load(ctl, W.FLUSH_REQ);
    let result = drain(closing);
    while (result === 'more' && (closing || Atomics.load(ctl, W.FLUSH_REQ) !== Atomics.load(ctl, W.FLUSH_DONE))) result = drain(closing);
    if (closing) {
      if (result === 'failed') {
        // The last chance went: what is still here cannot be written, and is counted.
        let left = pending.length;
        pending = [];
        left += ring.take(Number.MAX_SAFE_INTEGER, () => 1).length;
        Atomics.store(ctl, W.PENDING, 0);
        Atomics.store(ctl, W.CLOSE_DROPPED, left);
      }
      break;
    }
    if (result !== 'more') {
      Atomics.store(ctl, W.FLUSH_DONE, flushReq);
      Atomics.notify(ctl, W.FLUSH_DONE);
    }
    retention();
    if (result === 'more') {
      await new Promise((resolve) => setImmediate(resolve)); // let messages and timers through
      continue;
    }
    // Sleep until woken (a batch is ready, a flush or close was asked) or the flush interval
    // passes. After a failure, only flush() and close() wake it (both bump FLUSH_REQ, which was
    // read before the drain, so a request made since is seen even if its notify came early):
    // retries must not hammer a failing store.
    const r = result === 'idle' ? Atomics.waitAsync(ctl, Ctl.WAKE, wake, d.flushIntervalMs) : Atomics.waitAsync(ctl, W.FLUSH_REQ, flushReq, d.flushIntervalMs);
    if (r.async) await r.value;
  }
  try {
    store?.close();
  } catch (err) {
    fail('closing the store failed', err);
  }
  clearInterval(keepAlive);
  Atomics.store(ctl, W.STATE, CLOSED);
  Atomics.notify(ctl, W.STATE);
  // A flush() that raced with close() must not wait for an answer that will not come.
  Atomics.store(ctl, W.FLUSH_DONE, Atomics.load(ctl, W.FLUSH_REQ));
  Atomics.notify(ctl, W.FLUSH_DONE);
}

run().catch((err: unknown) => {
  // Whatever killed the loop, a request thread blocked in flush(), close() or a `block` wait
  // must hear of it now, not after its 30 s limit; the exit then restarts the thread.
  fail('the log thread stopped', err);
  Atomics.store(ctl, W.DEAD, 1);
  Atomics.store(ctl, W.FLUSH_DONE, Atomics.load(ctl, W.FLUSH_REQ));
  for (const word of [W.FLUSH_DONE, W.STATE, Ctl.SPACE]) Atomics.notify(ctl, word);
  throw err;
});
