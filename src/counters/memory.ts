/**
 * In-process counters: a Map, synchronous, bounded.
 *
 * Memory stays bounded two ways:
 * - every rate, quota and meter entry carries the moment it stops mattering (a GCRA bucket is full
 *   again at its TAT; a quota or meter window ends) and a periodic sweep deletes entries past it; a
 *   concurrency entry is deleted as soon as its last slot is released;
 * - a hard cap on entries (`maxKeys`): when full, a sweep runs first; if that frees nothing, the
 *   oldest entries are dropped. Dropping a live entry forgets that caller's usage, i.e. fails open
 *   for it, which is the right side to fail on for a limiter whose memory is being flooded with
 *   keys (say, per-IP limits under a spoofed-address flood). Drops are counted in {@link stats}.
 *   Concurrency slots are never dropped: they are bounded by the requests in flight.
 */
import { EPS_MS, type ConcurrencyOp, type CounterOp, type GcraOp, type MeteredCounterStore, type MeterOp, type OpResult, type QuotaOp } from './types.ts';

export { EPS_MS } from './types.ts';


interface GcraEntry {
  readonly kind: 'gcra';
  /** Theoretical arrival time of the next conforming request. */
  readonly tat: number;
  readonly expiresAt: number;
}

interface QuotaEntry {
  readonly kind: 'quota';
  readonly windowStart: number;
  readonly count: number;
  readonly expiresAt: number;
}

interface MeterEntry {
  readonly kind: 'meter';
  readonly windowStart: number;
  /** Amount added in this window (tokens, micro-dollars). */
  readonly used: number;
  readonly expiresAt: number;
}

type Entry = GcraEntry | QuotaEntry | MeterEntry;

export interface MemoryCounterStoreOptions {
  /** Most rate/quota/meter entries kept (default 1,000,000, roughly 150 MB at worst). */
  readonly maxKeys?: number;
  /** How often expired entries are swept, ms (default 60,000; 0 disables the timer). */
  readonly sweepIntervalMs?: number;
  /** Clock for the periodic sweep (requests bring their own `now`). */
  readonly clock?: () => number;
}

export interface MemoryCounterStats {
  readonly keys: number;
  readonly inFlightKeys: number;
  /** Live entries dropped because maxKeys was reached. */
  readonly evicted: number;
}

/** A staged change, committed only when every op of a run conforms. */
type Staged = { readonly key: string; readonly entry: Entry } | { readonly key: string; readonly inFlight: number };

/**
 * @example
 * const store = new MemoryCounterStore();
 * const [r] = store.run([{ kind: 'gcra', key: 'k', emissionIntervalMs: 600, burstToleranceMs: 59400 }], Date.now(), false);
 */
export class MemoryCounterStore implements MeteredCounterStore {
  readonly #entries = new Map<string, Entry>();
  readonly #inFlight = new Map<string, number>();
  readonly #maxKeys: number;
  readonly #clock: () => number;
  readonly #timer: NodeJS.Timeout | undefined;
  #evicted = 0;

  constructor(opts: MemoryCounterStoreOptions = {}) {
    this.#maxKeys = opts.maxKeys ?? 1_000_000;
    this.#clock = opts.clock ?? Date.now;
    const every = opts.sweepIntervalMs ?? 60_000;
    if (every > 0) {
      this.#timer = setInterval(() => this.sweep(this.#clock()), every);
      // The sweep must never keep a process alive on its own.
      this.#timer.unref();
    }
  }

  run(ops: readonly CounterOp[], now: number, peekOnly: boolean): readonly OpResult[] {
    const staged: Staged[] = [];
    const results: OpResult[] = [];
    let allOk = true;
    for (const op of ops) {
      let r: OpResult;
      switch (op.kind) {
        case 'gcra':
          r = this.#gcra(op, now, staged);
          break;
        case 'quota':
          r = this.#quota(op, now, staged);
          break;
        case 'concurrency':
          r = this.#concurrency(op, staged);
          break;
        case 'meter':
          r = this.#meter(op, now, staged);
          break;
      }
      if (!r.ok) allOk = false;
      results.push(r);
    }
    if (allOk && !peekOnly) for (const s of staged) this.#commit(s, now);
    return results;
  }

  /** One GCRA check (see {@link GcraOp}); the same as a run of one op. */
  gcra(key: string, emissionIntervalMs: number, burstToleranceMs: number, now: number, peekOnly: boolean): OpResult {
    return this.run([{ kind: 'gcra', key, emissionIntervalMs, burstToleranceMs }], now, peekOnly)[0] as OpResult;
  }

  /** One quota check (see {@link QuotaOp}). */
  quota(key: string, limit: number, windowStart: number, windowEnd: number, now: number, peekOnly: boolean): OpResult {
    return this.run([{ kind: 'quota', key, limit, windowStart, windowEnd }], now, peekOnly)[0] as OpResult;
  }

  /** One meter check (see {@link MeterOp}); never changes anything. */
  meter(key: string, limit: number, windowStart: number, windowEnd: number, now: number): OpResult {
    return this.run([{ kind: 'meter', key, limit, windowStart, windowEnd }], now, true)[0] as OpResult;
  }

  add(key: string, amount: number, windowStart: number, windowEnd: number): void {
    if (!Number.isFinite(amount) || amount <= 0 || !Number.isFinite(windowStart) || !(windowEnd > windowStart)) return;
    const e = this.#entries.get(key);
    // The same rule as the meter check: a meter of this window, or of a later one (a worker whose
    // clock lags), grows; an older one is over and the amount starts the new window.
    const entry: MeterEntry =
      e?.kind === 'meter' && e.windowStart >= windowStart
        ? { kind: 'meter', windowStart: e.windowStart, used: e.used + amount, expiresAt: e.expiresAt }
        : { kind: 'meter', windowStart, used: amount, expiresAt: windowEnd };
    // No request time here: windowStart is never later than now, so a sweep at windowStart while
    // making room can only under-sweep, never drop a live entry early.
    this.#commit({ key, entry }, windowStart);
  }

  /** Takes one slot of `max` (see {@link ConcurrencyOp}); `inFlight` is the count before this request. */
  acquire(key: string, max: number, peekOnly: boolean): { readonly ok: boolean; readonly inFlight: number } {
    const r = this.run([{ kind: 'concurrency', key, max }], 0, peekOnly)[0] as OpResult;
    return { ok: r.ok, inFlight: max - r.available };
  }

  release(key: string): void {
    const n = this.#inFlight.get(key);
    if (n === undefined) return;
    if (n <= 1) this.#inFlight.delete(key);
    else this.#inFlight.set(key, n - 1);
  }

  /** Slots held for a key right now. */
  inFlight(key: string): number {
    return this.#inFlight.get(key) ?? 0;
  }

  /** Deletes entries that no longer matter at `now`; returns how many. */
  sweep(now: number): number {
    let n = 0;
    for (const [key, e] of this.#entries) {
      if (e.expiresAt <= now) {
        this.#entries.delete(key);
        n++;
      }
    }
    return n;
  }

  stats(): MemoryCounterStats {
    return { keys: this.#entries.size, inFlightKeys: this.#inFlight.size, evicted: this.#evicted };
  }

  /** Stops the sweep timer. */
  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }

  #entry(key: string, staged: readonly Staged[]): Entry | undefined {
    for (let i = staged.length - 1; i >= 0; i--) {
      const s = staged[i] as Staged;
      if (s.key === key && 'entry' in s) return s.entry;
    }
    return this.#entries.get(key);
  }

  /**
   * GCRA virtual scheduling (ATM Forum TM 4.0 §4.4.2): on arrival at t, TAT := max(TAT, t);
   * if TAT − t > τ the request does not conform; otherwise it does and TAT := TAT + T.
   */
  #gcra(op: GcraOp, now: number, staged: Staged[]): OpResult {
    const e = this.#entry(op.key, staged);
    const T = op.emissionIntervalMs;
    const tau = op.burstToleranceMs;
    const tat = Math.max(e?.kind === 'gcra' ? e.tat : now, now);
    const backlog = tat - now;
    if (backlog > tau + EPS_MS) return { ok: false, available: 0, retryAfterMs: backlog - tau, resetMs: backlog };
    // How many requests could arrive back-to-back right now: each adds T to the backlog, which may
    // reach τ + T (the last one is checked at backlog ≤ τ).
    const available = Math.floor((tau - backlog + EPS_MS) / T) + 1;
    const next = tat + T;
    staged.push({ key: op.key, entry: { kind: 'gcra', tat: next, expiresAt: next } });
    return { ok: true, available, retryAfterMs: 0, resetMs: backlog };
  }

  #quota(op: QuotaOp, now: number, staged: Staged[]): OpResult {
    const e = this.#entry(op.key, staged);
    // A counter from this window (or, with clock skew between processes, a later one) counts;
    // one from an earlier window is over: the quota reset at that window's end.
    const current = e?.kind === 'quota' && e.windowStart >= op.windowStart ? e : undefined;
    const used = current?.count ?? 0;
    const windowStart = current?.windowStart ?? op.windowStart;
    const windowEnd = current !== undefined ? current.expiresAt : op.windowEnd;
    const resetMs = Math.max(0, windowEnd - now);
    if (used >= op.limit) return { ok: false, available: 0, retryAfterMs: resetMs, resetMs };
    staged.push({ key: op.key, entry: { kind: 'quota', windowStart, count: used + 1, expiresAt: windowEnd } });
    return { ok: true, available: op.limit - used, retryAfterMs: 0, resetMs };
  }

  /** Reads a meter; stages nothing, so a run's all-or-nothing commit never touches it. */
  #meter(op: MeterOp, now: number, staged: readonly Staged[]): OpResult {
    const e = this.#entry(op.key, staged);
    const current = e?.kind === 'meter' && e.windowStart >= op.windowStart ? e : undefined;
    const used = current?.used ?? 0;
    const windowEnd = current !== undefined ? current.expiresAt : op.windowEnd;
    const resetMs = Math.max(0, windowEnd - now);
    if (used >= op.limit) return { ok: false, available: 0, retryAfterMs: resetMs, resetMs, used };
    return { ok: true, available: op.limit - used, retryAfterMs: 0, resetMs, used };
  }

  #concurrency(op: ConcurrencyOp, staged: Staged[]): OpResult {
    let n = this.#inFlight.get(op.key) ?? 0;
    for (const s of staged) if (s.key === op.key && 'inFlight' in s) n = s.inFlight;
    if (n >= op.max) return { ok: false, available: 0, retryAfterMs: 0, resetMs: 0 };
    staged.push({ key: op.key, inFlight: n + 1 });
    return { ok: true, available: op.max - n, retryAfterMs: 0, resetMs: 0 };
  }

  #commit(s: Staged, now: number): void {
    if ('inFlight' in s) {
      this.#inFlight.set(s.key, s.inFlight);
      return;
    }
    if (!this.#entries.has(s.key) && this.#entries.size >= this.#maxKeys) this.#makeRoom(now);
    this.#entries.set(s.key, s.entry);
  }

  #makeRoom(now: number): void {
    // Free at least 1% at once, so a flood of new keys pays for a full scan once per 1% of the
    // cap, not on every insert. Map iteration is insertion order: the oldest entries go first.
    let drop = Math.max(1, Math.ceil(this.#maxKeys / 100)) - this.sweep(now);
    for (const key of this.#entries.keys()) {
      if (drop-- <= 0) break;
      this.#entries.delete(key);
      this.#evicted++;
    }
  }
}
