/**
 * Moves call log entries off the request path: `enqueue` only touches an in-memory queue, and
 * batches go to the {@link CallLogStore} from a timer or right after the current event-loop turn.
 *
 * Guarantees:
 * - Nothing is lost silently. Every entry offered to `enqueue` ends up written, still queued, or
 *   counted in `stats().dropped` under the reason it was dropped, so
 *   `enqueued === written + queued + sum(dropped)` always holds. Drops are also reported through
 *   `onDrop` (or `onError` when no `onDrop` is given) at most once per second.
 * - A failed write (SQLITE_BUSY past the busy timeout, disk full…) leaves its batch at the front of
 *   the queue; the next timer tick retries it. While the store is failing, entries are only lost
 *   by the configured overload behaviour once the queue is full, and are counted.
 * - The queue never holds more than `queueLimit` entries, so a dead store cannot exhaust memory.
 */
import type { CallLogEntry, CallLogStore, OverloadBehaviour } from './types.ts';

/** Why entries were dropped. 'write_failed': the store kept failing and the entry could not be kept. */
export type DropReason = 'drop_oldest' | 'sample' | 'write_failed';

export const DROP_REASONS: readonly DropReason[] = ['drop_oldest', 'sample', 'write_failed'];

/** How often expired rows are deleted when retention is on. */
export const RETENTION_INTERVAL_MS = 60_000;
/** Drop warnings are rate limited to one per reason per this many ms. */
export const DROP_REPORT_INTERVAL_MS = 1000;

export interface CallLogWriterOptions {
  /** Most entries per insertBatch call; reaching it in the queue triggers a flush next turn. */
  readonly batchSize: number;
  readonly flushIntervalMs: number;
  /** Queue length at which the overload behaviour applies. Must be >= batchSize. */
  readonly queueLimit: number;
  /**
   * - 'block': flush synchronously in the enqueuing caller (backpressure, nothing lost while the
   *   store works). If the store is failing, the new entry is dropped as 'write_failed' instead of
   *   stalling every request on a store that will not take it; the timer keeps retrying.
   * - 'drop_oldest': evict the oldest queued entry to make room.
   * - 'sample': keep the new entry with probability sampleRate (evicting the oldest to make room),
   *   otherwise drop the new entry. Either way one entry is dropped and counted as 'sample'.
   */
  readonly overload: OverloadBehaviour;
  /** Probability (0..1) of keeping a new entry while overloaded with 'sample'. */
  readonly sampleRate: number;
  /** Delete entries older than this many ms, at start and every 60 s; null keeps everything. */
  readonly retentionMs: number | null;
  readonly onError?: (err: Error) => void;
  /** Called at most once per second per reason with the number of entries dropped since the last call. */
  readonly onDrop?: (count: number, reason: DropReason) => void;
  /** Clock for retention and drop-report rate limiting; defaults to Date.now. */
  readonly now?: () => number;
  /** Random source in [0, 1) for 'sample'; defaults to Math.random. Injected for tests. */
  readonly random?: () => number;
  /** Retention run interval; defaults to {@link RETENTION_INTERVAL_MS}. */
  readonly retentionIntervalMs?: number;
}

export interface CallLogWriterStats {
  /** Entries offered to enqueue (written + queued + dropped). */
  readonly enqueued: number;
  readonly written: number;
  readonly dropped: Readonly<Record<DropReason, number>>;
  /** insertBatch calls that threw. */
  readonly failedWrites: number;
  readonly queued: number;
  /** Synchronous flushes run inside enqueue because of overload 'block'. */
  readonly blockedFlushes: number;
}

/**
 * FIFO queue on a growable ring buffer: push, shift and discard-from-front are O(1) per element,
 * unlike Array.prototype.shift, which moves every remaining element.
 */
export class RingQueue<T> {
  #buf: (T | undefined)[];
  #head = 0;
  #size = 0;

  constructor(initialCapacity = 16) {
    this.#buf = new Array<T | undefined>(Math.max(1, Math.trunc(initialCapacity)));
  }

  get size(): number {
    return this.#size;
  }

  push(value: T): void {
    if (this.#size === this.#buf.length) this.#grow();
    this.#buf[(this.#head + this.#size) % this.#buf.length] = value;
    this.#size++;
  }

  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    const value = this.#buf[this.#head];
    this.#buf[this.#head] = undefined; // let the entry be collected
    this.#head = (this.#head + 1) % this.#buf.length;
    this.#size--;
    return value;
  }

  /** Copies of the first `n` values (fewer if the queue is shorter), without removing them. */
  peek(n: number): T[] {
    const count = Math.min(n, this.#size);
    const out = new Array<T>(count);
    for (let i = 0; i < count; i++) out[i] = this.#buf[(this.#head + i) % this.#buf.length] as T;
    return out;
  }

  /** Removes the first `n` values. */
  discard(n: number): void {
    const count = Math.min(n, this.#size);
    for (let i = 0; i < count; i++) this.shift();
  }

  clear(): void {
    this.#buf.fill(undefined);
    this.#head = 0;
    this.#size = 0;
  }

  #grow(): void {
    const next = new Array<T | undefined>(this.#buf.length * 2);
    for (let i = 0; i < this.#size; i++) next[i] = this.#buf[(this.#head + i) % this.#buf.length];
    this.#buf = next;
    this.#head = 0;
  }
}

export function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new RangeError(`CallLogWriter: ${message}`);
}

/** Checks the options both writers share; throws a RangeError naming the bad one. */
export function checkWriterOptions(o: CallLogWriterOptions): void {
  check(Number.isInteger(o.batchSize) && o.batchSize >= 1, `batchSize must be an integer >= 1, got ${o.batchSize}`);
  check(Number.isFinite(o.flushIntervalMs) && o.flushIntervalMs > 0, `flushIntervalMs must be > 0, got ${o.flushIntervalMs}`);
  check(
    Number.isInteger(o.queueLimit) && o.queueLimit >= o.batchSize,
    `queueLimit must be an integer >= batchSize (${o.batchSize}), got ${o.queueLimit}`,
  );
  check(o.sampleRate >= 0 && o.sampleRate <= 1, `sampleRate must be within 0..1, got ${o.sampleRate}`);
  check(
    o.retentionMs === null || (Number.isFinite(o.retentionMs) && o.retentionMs > 0),
    `retentionMs must be > 0 or null, got ${String(o.retentionMs)}`,
  );
  check((o.retentionIntervalMs ?? RETENTION_INTERVAL_MS) > 0, `retentionIntervalMs must be > 0, got ${String(o.retentionIntervalMs)}`);
}

/** What both writers offer the gateway: entries in, counts out. */
export interface CallLogSink {
  enqueue(entry: CallLogEntry): void;
  flush(): void;
  close(): void;
  stats(): CallLogWriterStats;
}

/** Calls `fn` and swallows what it throws: a failing listener must not break the writer (the counts stay in stats()). */
export function callQuietly(fn: () => void): void {
  try {
    fn();
  } catch {
    // deliberately ignored, see above
  }
}

/**
 * Counts dropped entries by reason and reports them through `onDrop` (or `onError` when there is
 * no `onDrop`) at most once per {@link DROP_REPORT_INTERVAL_MS} per reason.
 */
export class DropLedger {
  readonly #onDrop: ((count: number, reason: DropReason) => void) | undefined;
  readonly #onError: ((err: Error) => void) | undefined;
  readonly #now: () => number;
  readonly #dropped: Record<DropReason, number> = { drop_oldest: 0, sample: 0, write_failed: 0 };
  readonly #unreported: Record<DropReason, number> = { drop_oldest: 0, sample: 0, write_failed: 0 };
  #lastReport = Number.NEGATIVE_INFINITY;

  constructor(o: Pick<CallLogWriterOptions, 'onDrop' | 'onError' | 'now'>) {
    this.#onDrop = o.onDrop;
    this.#onError = o.onError;
    this.#now = o.now ?? (() => Date.now());
  }

  get dropped(): Readonly<Record<DropReason, number>> {
    return { ...this.#dropped };
  }

  total(): number {
    return this.#dropped.drop_oldest + this.#dropped.sample + this.#dropped.write_failed;
  }

  note(reason: DropReason, count = 1): void {
    if (count <= 0) return;
    this.#dropped[reason] += count;
    this.#unreported[reason] += count;
    this.report(false);
  }

  /** Emits accumulated counts, at most once per DROP_REPORT_INTERVAL_MS unless forced. */
  report(force: boolean): void {
    if (DROP_REASONS.every((r) => this.#unreported[r] === 0)) return;
    const t = this.#now();
    if (!force && t - this.#lastReport < DROP_REPORT_INTERVAL_MS) return;
    this.#lastReport = t;
    for (const reason of DROP_REASONS) {
      const count = this.#unreported[reason];
      if (count === 0) continue;
      this.#unreported[reason] = 0;
      const onDrop = this.#onDrop;
      const onError = this.#onError;
      if (onDrop !== undefined) callQuietly(() => onDrop(count, reason));
      else if (onError !== undefined) callQuietly(() => onError(new Error(`CallLogWriter: dropped ${count} call log entries (${reason})`)));
    }
  }
}

export class CallLogWriter implements CallLogSink {
  readonly #store: CallLogStore;
  readonly #batchSize: number;
  readonly #queueLimit: number;
  readonly #overload: OverloadBehaviour;
  readonly #sampleRate: number;
  readonly #retentionMs: number | null;
  readonly #onError: ((err: Error) => void) | undefined;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #queue: RingQueue<CallLogEntry>;

  #flushTimer: NodeJS.Timeout | undefined;
  #retentionTimer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #closed = false;
  /** Set when the last write failed, cleared by the next success; suppresses eager retries. */
  #storeFailing = false;

  #enqueued = 0;
  #written = 0;
  #failedWrites = 0;
  #blockedFlushes = 0;
  readonly #drops: DropLedger;

  constructor(store: CallLogStore, options: CallLogWriterOptions) {
    const o = options;
    checkWriterOptions(o);
    const retentionIntervalMs = o.retentionIntervalMs ?? RETENTION_INTERVAL_MS;

    this.#store = store;
    this.#batchSize = o.batchSize;
    this.#queueLimit = o.queueLimit;
    this.#overload = o.overload;
    this.#sampleRate = o.sampleRate;
    this.#retentionMs = o.retentionMs;
    this.#onError = o.onError;
    this.#drops = new DropLedger(o);
    this.#now = o.now ?? (() => Date.now());
    this.#random = o.random ?? Math.random;
    this.#queue = new RingQueue<CallLogEntry>(Math.min(o.queueLimit, 1024));

    // Timers are unref'd: a pending log flush must not keep the process alive; close() flushes.
    this.#flushTimer = setInterval(() => this.#tick(), o.flushIntervalMs);
    this.#flushTimer.unref();
    if (this.#retentionMs !== null) {
      this.#runRetention();
      this.#retentionTimer = setInterval(() => this.#runRetention(), retentionIntervalMs);
      this.#retentionTimer.unref();
    }
  }

  /** Queues one entry. O(1) and no I/O, except a synchronous flush under overload 'block'. */
  enqueue(entry: CallLogEntry): void {
    if (this.#closed) throw new Error('CallLogWriter: enqueue after close');
    this.#enqueued++;
    if (this.#queue.size >= this.#queueLimit) {
      switch (this.#overload) {
        case 'block':
          if (!this.#storeFailing) {
            this.#blockedFlushes++;
            this.#drainReporting();
          }
          if (this.#queue.size >= this.#queueLimit) {
            this.#drops.note('write_failed');
            return;
          }
          break;
        case 'drop_oldest':
          this.#queue.shift();
          this.#drops.note('drop_oldest');
          break;
        case 'sample':
          this.#drops.note('sample');
          if (this.#random() >= this.#sampleRate) return; // the new entry is the one dropped
          this.#queue.shift(); // keep the new entry: the oldest makes room
          break;
      }
    }
    this.#queue.push(entry);
    // While the store is failing, retries wait for the timer instead of hammering it every turn.
    if (this.#queue.size >= this.#batchSize && !this.#storeFailing) this.#scheduleImmediate();
  }

  /**
   * Writes everything queued, synchronously. Throws the store's error if a write fails; the
   * unwritten entries stay queued for the next attempt.
   */
  flush(): void {
    this.#drain();
  }

  /**
   * Stops timers, writes everything queued and closes the store. If the final write fails, the
   * entries still queued are counted as dropped ('write_failed'), the store is closed anyway and
   * the error is thrown. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#flushTimer);
    clearInterval(this.#retentionTimer);
    if (this.#immediate !== undefined) clearImmediate(this.#immediate);
    this.#flushTimer = this.#retentionTimer = this.#immediate = undefined;

    let failure: Error | undefined;
    try {
      this.#drain();
    } catch (err) {
      const lost = this.#queue.size;
      this.#queue.clear();
      this.#drops.note('write_failed', lost);
      failure = new Error(`CallLogWriter: ${lost} entries could not be written at close: ${toError(err).message}`, {
        cause: err,
      });
    }
    this.#drops.report(true);
    this.#store.close();
    if (failure !== undefined) throw failure;
  }

  stats(): CallLogWriterStats {
    return {
      enqueued: this.#enqueued,
      written: this.#written,
      dropped: this.#drops.dropped,
      failedWrites: this.#failedWrites,
      queued: this.#queue.size,
      blockedFlushes: this.#blockedFlushes,
    };
  }

  /** Writes batches until the queue is empty; on failure the failed batch stays at the front. */
  #drain(): void {
    while (this.#queue.size > 0) {
      // Peek, write, then discard: if insertBatch throws, the batch is still queued, in order.
      const batch = this.#queue.peek(this.#batchSize);
      try {
        this.#store.insertBatch(batch);
      } catch (err) {
        this.#failedWrites++;
        this.#storeFailing = true;
        throw err;
      }
      this.#queue.discard(batch.length);
      this.#written += batch.length;
      this.#storeFailing = false;
    }
  }

  #drainReporting(): void {
    try {
      this.#drain();
    } catch (err) {
      const e = toError(err);
      this.#report(
        new Error(`CallLogWriter: write failed, ${this.#queue.size} entries queued for retry: ${e.message}`, {
          cause: err,
        }),
      );
    }
  }

  #tick(): void {
    if (this.#queue.size > 0) this.#drainReporting();
    this.#drops.report(false);
  }

  #scheduleImmediate(): void {
    if (this.#immediate !== undefined) return;
    this.#immediate = setImmediate(() => {
      this.#immediate = undefined;
      this.#drainReporting();
    });
  }

  #runRetention(): void {
    if (this.#retentionMs === null) return;
    try {
      this.#store.deleteBefore(this.#now() - this.#retentionMs);
    } catch (err) {
      this.#report(new Error(`CallLogWriter: retention delete failed: ${toError(err).message}`, { cause: err }));
    }
  }

  #report(err: Error): void {
    if (this.#onError === undefined) return;
    try {
      this.#onError(err);
    } catch {
      // A failing listener must not break the writer; stats() still has the counts.
    }
  }
}
