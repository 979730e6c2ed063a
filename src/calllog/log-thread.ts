/**
 * The call log written by a thread of its own (`call_log.writer: thread`, the default).
 *
 * Why: the SQLite row, its JSON and its commit cost the request thread about 100k instructions a
 * logged request when they ran on its event loop (docs/benchmarks.md), and every 500-row commit
 * paused that loop. Here the request thread only encodes the row into a shared-memory ring
 * (./ring.ts, ./row-codec.ts); the log thread decodes, inserts and commits with its own
 * connection, and runs retention.
 *
 * The log thread runs at a lower scheduling priority (`call_log.thread_nice`, 19 by default:
 * setpriority(2) on its thread id, which Linux keeps per thread, see sched(7) "The nice value").
 * When the process shares a core with a saturated proxy, the kernel then gives the core to the
 * proxy and the log thread writes in the gaps; the ring absorbs a burst. What happens when the ring
 * fills is the configured overload behaviour, as with the in-loop writer: `block` makes the request
 * thread wait for room (which lets the log thread run), `drop_oldest` and `sample` drop and count.
 *
 * Accounting is the same as CallLogWriter's: `enqueued === written + queued + sum(dropped)` holds
 * whenever the log thread is between batches (after flush() it always holds).
 */
import { Worker } from 'node:worker_threads';
import { ByteRing, Ctl, MIN_RING_BYTES, RING_CONTROL_WORDS } from './ring.ts';
import { encodeRow, exactPayloadBytes, maxPayloadBytes, writeRow } from './row-codec.ts';
import type { CallLogEntry } from './types.ts';
import { checkWriterOptions, DropLedger, RETENTION_INTERVAL_MS, toError, callQuietly } from './writer.ts';
import type { CallLogSink, CallLogWriterOptions, CallLogWriterStats } from './writer.ts';

/** Control words after the ring's own (shared with ./log-thread-worker.ts). */
export const W = {
  /** Rows committed, wrapping at 2^32. */
  COMMITTED: RING_CONTROL_WORDS,
  FAILED_WRITES: RING_CONTROL_WORDS + 1,
  /** 1 while the last write (or opening the store) failed. */
  FAILING: RING_CONTROL_WORDS + 2,
  /** Rows the thread has taken and not yet committed. */
  PENDING: RING_CONTROL_WORDS + 3,
  STATE: RING_CONTROL_WORDS + 4,
  FLUSH_REQ: RING_CONTROL_WORDS + 5,
  FLUSH_DONE: RING_CONTROL_WORDS + 6,
  /** Rows that could not be written when the thread closed. */
  CLOSE_DROPPED: RING_CONTROL_WORDS + 7,
  /** Byte length of the last error's text in the error buffer. */
  ERROR_BYTES: RING_CONTROL_WORDS + 8,
  /** Rows the thread could not decode (dropped, counted as write_failed). */
  UNREADABLE: RING_CONTROL_WORDS + 9,
  /** 1 once the thread's loop died; the exit restarts it. */
  DEAD: RING_CONTROL_WORDS + 10,
} as const;
export const CONTROL_WORDS = RING_CONTROL_WORDS + 11;
export const RUN = 0;
export const CLOSING = 1;
export const CLOSED = 2;
export const ERROR_TEXT_BYTES = 1024;

/** Default `call_log.queue_bytes`: a few seconds of a saturated core's rows (≈ 1 KB each). */
export const DEFAULT_QUEUE_BYTES = 64 * 1024 * 1024;
/** The longest flush() and close() wait for the thread, and `block` waits for room. */
export const WAIT_LIMIT_MS = 30_000;
/** A thread that exits unexpectedly is restarted, at most this many times in RESPAWN_WINDOW_MS. */
export const MAX_RESPAWNS = 3;
export const RESPAWN_WINDOW_MS = 10_000;

export interface ThreadedCallLogWriterOptions extends CallLogWriterOptions {
  /** The SQLite file; it must exist (the gateway opens it first, which creates and migrates it). */
  readonly path: string;
  /** Size of the shared ring in bytes (at least {@link MIN_RING_BYTES}). */
  readonly queueBytes: number;
  /** Nice value of the log thread, 0 (as the request thread) to 19 (only idle time). */
  readonly nice: number;
  readonly busyTimeoutMs?: number;
  /** Hears what is worth a warning but lost nothing (a nice value not applied, a failed checkpoint); defaults to onError. */
  readonly onWarning?: (message: string) => void;
}

/** What the worker receives (./log-thread-worker.ts). */
export interface LogThreadData {
  readonly data: SharedArrayBuffer;
  readonly control: SharedArrayBuffer;
  readonly errorText: SharedArrayBuffer;
  readonly path: string;
  readonly batchSize: number;
  readonly flushIntervalMs: number;
  readonly retentionMs: number | null;
  readonly retentionIntervalMs: number;
  readonly nice: number;
  readonly busyTimeoutMs: number | undefined;
}

/** Messages from the worker. */
export type LogThreadMessage = { readonly error: string } | { readonly warning: string };

export class ThreadedCallLogWriter implements CallLogSink {
  readonly #ring: ByteRing;
  readonly #ctl: Int32Array;
  readonly #errorText: Buffer;
  readonly #data: LogThreadData;
  readonly #opts: ThreadedCallLogWriterOptions;
  readonly #drops: DropLedger;
  readonly #random: () => number;
  #worker: Worker;
  /** When the thread last exited unexpectedly (within RESPAWN_WINDOW_MS). */
  #exits: number[] = [];
  #closed = false;
  /** Set once the thread kept exiting and was not restarted. */
  #gaveUp = false;
  /** Rows still queued when the thread was given up on; counted as dropped instead. */
  #abandoned = 0;
  #enqueued = 0;
  #produced = 0;
  #evicted = 0;
  #blockedFlushes = 0;
  /** Rows produced since the thread was last woken. */
  #sinceWake = 0;
  // Running totals of the thread's wrapping counters.
  #taken = 0;
  #lastTaken = 0;
  #written = 0;
  #lastCommitted = 0;
  #lastUnreadable = 0;

  constructor(options: ThreadedCallLogWriterOptions) {
    checkWriterOptions(options);
    if (!Number.isInteger(options.queueBytes) || options.queueBytes < MIN_RING_BYTES) {
      throw new RangeError(`CallLogWriter: queueBytes must be an integer >= ${MIN_RING_BYTES}, got ${options.queueBytes}`);
    }
    if (!Number.isInteger(options.nice) || options.nice < 0 || options.nice > 19) {
      throw new RangeError(`CallLogWriter: nice must be an integer within 0..19, got ${options.nice}`);
    }
    this.#opts = options;
    this.#drops = new DropLedger(options);
    this.#random = options.random ?? Math.random;
    const { data, control } = ByteRing.allocate(options.queueBytes, CONTROL_WORDS);
    const errorText = new SharedArrayBuffer(ERROR_TEXT_BYTES);
    this.#ring = new ByteRing(data, control);
    this.#ctl = this.#ring.ctl;
    this.#errorText = Buffer.from(errorText);
    this.#data = {
      data,
      control,
      errorText,
      path: options.path,
      batchSize: options.batchSize,
      flushIntervalMs: options.flushIntervalMs,
      retentionMs: options.retentionMs,
      retentionIntervalMs: options.retentionIntervalMs ?? RETENTION_INTERVAL_MS,
      nice: options.nice,
      busyTimeoutMs: options.busyTimeoutMs,
    };
    this.#worker = this.#spawn();
  }

  enqueue(entry: CallLogEntry): void {
    if (this.#closed) throw new Error('CallLogWriter: enqueue after close');
    this.#enqueued++;
    const row = encodeRow(entry);
    let bytes = maxPayloadBytes(row);
    let at = this.#ring.reserve(bytes);
    if (at < 0) {
      // Near full, the bound may be far above the row's size: ask for exactly what it needs.
      bytes = exactPayloadBytes(row);
      at = this.#ring.reserve(bytes);
    }
    if (at < 0 || this.#queuedInRing() >= this.#opts.queueLimit) {
      at = this.#makeRoom(bytes);
      if (at < 0) return;
    }
    const written = writeRow(this.#ring.data, at, row);
    this.#ring.commit(at, written);
    this.#produced++;
    if (++this.#sinceWake >= this.#opts.batchSize && Atomics.load(this.#ctl, W.FAILING) === 0) {
      this.#sinceWake = 0;
      this.#ring.wake();
    }
  }

  /**
   * Waits until the thread has written everything queued before this call. Throws the store's
   * error if a write failed (the rows stay queued for the thread's next attempt), or if the thread
   * did not answer within {@link WAIT_LIMIT_MS}.
   */
  flush(): void {
    if (this.#closed) return;
    if (this.#gaveUp) throw new Error(`CallLogWriter: the log thread is not running (${this.#lastError()})`);
    const req = Atomics.add(this.#ctl, W.FLUSH_REQ, 1) + 1;
    this.#sinceWake = 0;
    this.#ring.wake();
    Atomics.notify(this.#ctl, W.FLUSH_REQ); // a thread waiting out a failure retries now
    const deadline = Date.now() + WAIT_LIMIT_MS;
    for (;;) {
      const done = Atomics.load(this.#ctl, W.FLUSH_DONE);
      if (((done - req) | 0) >= 0) break;
      if (Atomics.load(this.#ctl, W.DEAD) === 1) break;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`CallLogWriter: the log thread did not finish a flush within ${WAIT_LIMIT_MS} ms`);
      Atomics.wait(this.#ctl, W.FLUSH_DONE, done, left);
    }
    if (Atomics.load(this.#ctl, W.DEAD) === 1) throw new Error(`CallLogWriter: the log thread stopped: ${this.#lastError()}`);
    if (Atomics.load(this.#ctl, W.FAILING) === 1 && this.stats().queued > 0) {
      throw new Error(`CallLogWriter: write failed, ${this.stats().queued} entries queued for retry: ${this.#lastError()}`);
    }
  }

  /**
   * Writes everything queued and stops the thread (its connection closed). If the final write
   * fails, what was still queued is counted as dropped ('write_failed') and the error is thrown.
   * Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#gaveUp) {
      const lost = this.stats().queued;
      this.#abandoned += lost;
      this.#drops.note('write_failed', lost);
      this.#drops.report(true);
      if (lost > 0) throw new Error(`CallLogWriter: the log thread is not running; ${lost} entries lost`);
      return;
    }
    Atomics.store(this.#ctl, W.STATE, CLOSING);
    // A thread waiting out a failure waits for FLUSH_REQ to change.
    Atomics.add(this.#ctl, W.FLUSH_REQ, 1);
    Atomics.notify(this.#ctl, W.FLUSH_REQ);
    this.#ring.wake();
    const deadline = Date.now() + WAIT_LIMIT_MS;
    let state = Atomics.load(this.#ctl, W.STATE);
    while (state !== CLOSED && Atomics.load(this.#ctl, W.DEAD) === 0) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      Atomics.wait(this.#ctl, W.STATE, state, left);
      state = Atomics.load(this.#ctl, W.STATE);
    }
    let failure: Error | undefined;
    if (state !== CLOSED) {
      const lost = this.stats().queued;
      this.#abandoned += lost;
      void this.#worker.terminate();
      this.#drops.note('write_failed', lost);
      const why = Atomics.load(this.#ctl, W.DEAD) === 1 ? `stopped (${this.#lastError()})` : `did not close within ${WAIT_LIMIT_MS} ms`;
      failure = new Error(`CallLogWriter: the log thread ${why}; ${lost} entries lost`);
    } else {
      const lost = Atomics.load(this.#ctl, W.CLOSE_DROPPED);
      if (lost > 0) {
        this.#drops.note('write_failed', lost);
        failure = new Error(`CallLogWriter: ${lost} entries could not be written at close: ${this.#lastError()}`);
      }
    }
    this.#drops.report(true);
    if (failure !== undefined) throw failure;
  }

  stats(): CallLogWriterStats {
    this.#refresh();
    const queued = this.#produced - this.#taken - this.#evicted + Atomics.load(this.#ctl, W.PENDING) - this.#abandoned;
    return {
      enqueued: this.#enqueued,
      written: this.#written,
      dropped: this.#drops.dropped,
      failedWrites: Atomics.load(this.#ctl, W.FAILED_WRITES),
      queued: Math.max(0, queued),
      blockedFlushes: this.#blockedFlushes,
    };
  }

  #spawn(): Worker {
    const worker = new Worker(new URL('./log-thread-worker.ts', import.meta.url), { workerData: this.#data });
    worker.on('message', (m: LogThreadMessage) => {
      if ('error' in m) this.#report(new Error(m.error));
      else this.#warn(m.warning);
    });
    worker.on('error', (err: Error) => this.#report(new Error(`call log thread failed: ${err.message}`)));
    worker.on('exit', (code) => {
      if (this.#closed || this.#worker !== worker) return;
      const now = Date.now();
      this.#exits = this.#exits.filter((t) => now - t < RESPAWN_WINDOW_MS);
      this.#exits.push(now);
      // The rows it had taken and not committed are gone with it; the ring itself is intact.
      const lost = Atomics.exchange(this.#ctl, W.PENDING, 0);
      this.#drops.note('write_failed', lost);
      Atomics.store(this.#ctl, Ctl.LOCK, 0); // the dead thread may have held it
      if (this.#exits.length > MAX_RESPAWNS) {
        // A thread that dies at once every time (a store it cannot load, say) is not restarted
        // in a loop: the log is marked failing, so `block` drops (counted) instead of waiting.
        Atomics.store(this.#ctl, W.FAILING, 1);
        this.#gaveUp = true;
        this.#report(new Error(`call log thread exited (code ${code}) ${this.#exits.length} times within ${RESPAWN_WINDOW_MS / 1000} s; not restarted, entries are dropped and counted`));
        return;
      }
      this.#report(new Error(`call log thread exited (code ${code}); ${lost} entries lost, starting a new one`));
      Atomics.store(this.#ctl, W.DEAD, 0);
      this.#worker = this.#spawn();
    });
    // The thread must not keep a finished process alive; close() ends it explicitly.
    worker.unref();
    return worker;
  }

  /** Applies the overload behaviour; returns where to write the row, or -1 if it was dropped. */
  #makeRoom(bytes: number): number {
    if (bytes + 8 > this.#ring.capacity) {
      // No eviction or wait can make room for it; say so instead of only counting it.
      this.#drops.note('write_failed');
      this.#report(new Error(`a call log entry of ${bytes} bytes is larger than call_log.queue_bytes (${this.#ring.capacity}); dropped`));
      return -1;
    }
    const fits = (): number => (this.#queuedInRing() < this.#opts.queueLimit ? this.#ring.reserve(bytes) : -1);
    switch (this.#opts.overload) {
      case 'block': {
        this.#blockedFlushes++;
        const deadline = Date.now() + WAIT_LIMIT_MS;
        for (;;) {
          // A failing store will not take the row: drop it rather than stall every request.
          if (Atomics.load(this.#ctl, W.FAILING) === 1 || Atomics.load(this.#ctl, W.DEAD) === 1) break;
          if (this.#ring.empty()) this.#ring.rewindIfEmpty();
          const at = fits();
          if (at >= 0) return at;
          const left = deadline - Date.now();
          if (left <= 0 || this.#ring.empty()) break; // empty and still no room: larger than the ring
          const space = Atomics.load(this.#ctl, Ctl.SPACE);
          this.#ring.wake();
          Atomics.wait(this.#ctl, Ctl.SPACE, space, Math.min(left, 50));
        }
        this.#drops.note('write_failed');
        return -1;
      }
      case 'drop_oldest':
        return this.#evictFor(fits, 'drop_oldest');
      case 'sample':
        if (this.#random() >= this.#opts.sampleRate) {
          this.#drops.note('sample'); // the new entry is the one dropped
          return -1;
        }
        return this.#evictFor(fits, 'sample');
    }
  }

  /** Evicts the oldest rows until the new one fits, counting each under `reason`. */
  #evictFor(fits: () => number, reason: 'drop_oldest' | 'sample'): number {
    for (;;) {
      if (this.#ring.empty()) this.#ring.rewindIfEmpty();
      const at = fits();
      if (at >= 0) return at;
      if (!this.#ring.evictOldest()) {
        this.#drops.note('write_failed'); // the ring is empty and the row still does not fit
        return -1;
      }
      this.#evicted++;
      this.#drops.note(reason);
    }
  }

  #queuedInRing(): number {
    const taken = Atomics.load(this.#ctl, Ctl.TAKEN);
    this.#taken += (taken - this.#lastTaken) >>> 0;
    this.#lastTaken = taken;
    return this.#produced - this.#taken - this.#evicted;
  }

  #refresh(): void {
    this.#queuedInRing();
    const committed = Atomics.load(this.#ctl, W.COMMITTED);
    this.#written += (committed - this.#lastCommitted) >>> 0;
    this.#lastCommitted = committed;
    const unreadable = Atomics.load(this.#ctl, W.UNREADABLE);
    if (unreadable !== this.#lastUnreadable) {
      this.#drops.note('write_failed', (unreadable - this.#lastUnreadable) >>> 0);
      this.#lastUnreadable = unreadable;
    }
  }

  #lastError(): string {
    const n = Math.min(Atomics.load(this.#ctl, W.ERROR_BYTES), ERROR_TEXT_BYTES);
    return this.#errorText.toString('utf8', 0, n) || 'unknown error';
  }

  #warn(message: string): void {
    const onWarning = this.#opts.onWarning;
    if (onWarning !== undefined) callQuietly(() => onWarning(message));
    else this.#report(new Error(message));
  }

  #report(err: Error): void {
    const onError = this.#opts.onError;
    if (onError !== undefined) callQuietly(() => onError(toError(err)));
  }
}
