/**
 * Admission for password checks: at most `maxConcurrent` scrypt runs at once, at most `maxQueued`
 * waiting, and a refusal (not an unbounded wait) beyond that.
 *
 * Why: each check is one crypto.scrypt on libuv's thread pool (4 threads unless UV_THREADPOOL_SIZE
 * says otherwise), ~16 MiB and tens of milliseconds at the default cost. Every wrong password and
 * every unknown user pays one on purpose (the verification cache only holds successes, and the
 * decoy keeps unknown users as slow as known ones), so a flood of bogus logins would otherwise
 * queue without bound inside libuv, where it delays every legitimate login and everything else the
 * pool serves: dns.lookup, fs and zlib. Leaving threads free keeps DNS and file I/O moving; a
 * bounded queue keeps the wait for an admitted check short, and the rest are told when to retry.
 *
 * The running count and the queue belong to the process (one thread pool), not to a policy
 * instance or a config generation: every basic-auth instance and the config being replaced by a
 * reload share them, so two instances or an overlapping reload do not double the load. Each
 * caller passes its own policy's limits, so with one basic-auth policy (the usual case) they are
 * exact process-wide bounds; with several that disagree, the largest of them bounds the process.
 */

export interface AdmissionLimits {
  /** scrypt runs allowed at once (checks.max_concurrent). */
  readonly maxConcurrent: number;
  /** Checks allowed to wait for a slot (checks.max_queued); 0 refuses as soon as every slot is taken. */
  readonly maxQueued: number;
}

/** The answer when the queue is full: nothing was run or queued. */
export interface AdmissionRefused {
  readonly refused: true;
  /** Seconds after which a retry is likely to be admitted (RFC 9110 §10.2.3 delay-seconds). */
  readonly retryAfterS: number;
  readonly running: number;
  readonly queued: number;
}

interface Waiter {
  readonly maxConcurrent: number;
  readonly start: () => void;
}

/** Retry-After bounds: at least 1 s (the header's unit), at most a minute whatever was measured. */
const MIN_RETRY_S = 1;
const MAX_RETRY_S = 60;
/** Weight of the newest run in the average duration (an exponentially weighted moving average). */
const EWMA_WEIGHT = 0.2;

export class PasswordCheckAdmission {
  #running = 0;
  /** FIFO: the oldest waiter starts first, so a waiting check's delay is bounded by the queue ahead of it. */
  readonly #queue: Waiter[] = [];
  /** Average duration of one run in ms; undefined until one finished. */
  #avgMs: number | undefined;
  #peakQueued = 0;

  get running(): number {
    return this.#running;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** The longest the queue has been since this admission was made (tests, diagnostics). */
  get peakQueued(): number {
    return this.#peakQueued;
  }

  /**
   * Runs `task` now, queues it, or refuses it. Refusal is synchronous (no promise), so the caller
   * can answer at once without touching the thread pool.
   */
  run<T>(limits: AdmissionLimits, task: () => Promise<T>): Promise<T> | AdmissionRefused {
    // A free slot is taken only when nobody is waiting, so a newcomer never overtakes the queue.
    if (this.#queue.length === 0 && this.#running < limits.maxConcurrent) return this.#start(task);
    if (this.#queue.length >= limits.maxQueued) {
      return { refused: true, retryAfterS: this.#retryAfterS(limits), running: this.#running, queued: this.#queue.length };
    }
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ maxConcurrent: limits.maxConcurrent, start: () => void this.#start(task).then(resolve, reject) });
      this.#peakQueued = Math.max(this.#peakQueued, this.#queue.length);
    });
  }

  #start<T>(task: () => Promise<T>): Promise<T> {
    this.#running++;
    const t0 = performance.now();
    let p: Promise<T>;
    try {
      p = task();
    } catch (err) {
      p = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return p.finally(() => {
      this.#running--;
      const ms = performance.now() - t0;
      this.#avgMs = this.#avgMs === undefined ? ms : this.#avgMs + EWMA_WEIGHT * (ms - this.#avgMs);
      this.#drain();
    });
  }

  #drain(): void {
    // The head waits until there is room under its own policy's limit; those behind it wait too.
    for (let head = this.#queue[0]; head !== undefined && this.#running < head.maxConcurrent; head = this.#queue[0]) {
      this.#queue.shift();
      head.start();
    }
  }

  /**
   * Time for the checks ahead to finish at the measured pace: (running + queued) / slots runs of
   * the average duration. An estimate, not a promise: other clients may refill the queue first.
   */
  #retryAfterS(limits: AdmissionLimits): number {
    if (this.#avgMs === undefined) return MIN_RETRY_S;
    const s = Math.ceil((((this.#running + this.#queue.length) / limits.maxConcurrent) * this.#avgMs) / 1000);
    return Math.min(MAX_RETRY_S, Math.max(MIN_RETRY_S, s));
  }
}

/** The one admission of this process (see the module comment for why it is not per policy). */
export const PASSWORD_CHECKS = new PasswordCheckAdmission();
