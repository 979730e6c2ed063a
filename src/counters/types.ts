/**
 * The counter store contract: the only state a stateful policy (rate-limit, ai-limits) touches. Policies
 * depend on this interface, never on an implementation, so `decide` stays pure and testable with
 * a fake clock, and the same policy runs against an in-process map, the cluster primary, or (later)
 * Redis.
 *
 * One call per request, all-or-nothing: {@link CounterStore.run} evaluates every limit a request
 * is subject to and commits them only if all conform. A request refused by its daily quota must
 * not burn a token of its per-minute rate, and a request refused by the rate must not hold a
 * concurrency slot. It also means one IPC round trip per request in cluster mode, and maps onto
 * one atomic Redis script.
 *
 * ## A Redis store later (not built yet) — how it fits
 * - `run` becomes one `EVALSHA` of a Lua script, which Redis executes atomically: it loops over the
 *   ops exactly like {@link MemoryCounterStore}, first checking all, then writing all.
 * - `gcra`: one key holding the theoretical arrival time, written with `PEXPIREAT <tat>` (after
 *   that moment the bucket is full, which is the same as the key being absent).
 * - `quota`: one key per window (`<key>:<windowStart>`), `INCR` + `PEXPIREAT <windowEnd>`.
 * - `concurrency`: a process that dies cannot release its slots, so Redis needs leases: a sorted set
 *   of lease ids scored by expiry, `ZREMRANGEBYSCORE` of dead leases, `ZCARD < max`, `ZADD`. The
 *   lease id comes back in {@link OpResult.lease} and is handed to {@link CounterStore.release}.
 * - `meter`: the same per-window key as a quota (`<key>:<windowStart>`), only read (`GET`, absent
 *   = 0) and compared with the limit inside the script; it never writes, so it cannot make a run
 *   partly committed.
 * - {@link MeteredCounterStore.add}: one `INCRBY <key>:<windowStart> <amount>` (`INCRBYFLOAT` for
 *   fractional amounts) + `PEXPIREAT <windowEnd>`, outside any script: adding is commutative, so
 *   adds from many gateways need no ordering. Per-window keys make the "newer window wins" rule of
 *   the memory store implicit; an add for a window that already ended writes a key nobody reads,
 *   which expires at once.
 * - `now` comes from the caller (the request's `facts.now`), not from Redis `TIME`, so decisions
 *   are reproducible in tests; gateways sharing Redis need synchronised clocks (NTP) either way.
 */

/**
 * Comparisons tolerate 1 µs. Times are epoch milliseconds (~1.8e12), where a double's resolution
 * is ~2.4e-4 ms, and an emission interval such as 1000/3 ms is not exact: without a tolerance,
 * rounding could flip a decision that falls exactly on a boundary.
 */
export const EPS_MS = 0.001;

/** A value now, or later: in-process stores answer synchronously, remote ones with a promise. */
export type MaybePromise<T> = T | Promise<T>;

/**
 * GCRA, the generic cell rate algorithm, in its virtual-scheduling form: GCRA(I, L) with
 * increment I = `emissionIntervalMs` and limit L = `burstToleranceMs`. Defined by the ATM Forum
 * Traffic Management Specification 4.0 (af-tm-0056.000, §4.4.2) and ITU-T Recommendation I.371.
 */
export interface GcraOp {
  readonly kind: 'gcra';
  readonly key: string;
  /** T: the time one request "costs" (window / limit). */
  readonly emissionIntervalMs: number;
  /** τ: how far ahead of schedule a caller may run ((burst - 1) × T). */
  readonly burstToleranceMs: number;
}

/** A counted fixed window [windowStart, windowEnd): used ≤ limit, reset at windowEnd. */
export interface QuotaOp {
  readonly kind: 'quota';
  readonly key: string;
  readonly limit: number;
  /** ms since the epoch. */
  readonly windowStart: number;
  /** ms since the epoch (exclusive). */
  readonly windowEnd: number;
}

/** Takes one in-flight slot out of `max`; given back by {@link CounterStore.release}. */
export interface ConcurrencyOp {
  readonly kind: 'concurrency';
  readonly key: string;
  readonly max: number;
}

/**
 * A metered amount over a fixed window [windowStart, windowEnd) (tokens in a minute, micro-dollars
 * in a UTC day): conforms while the amount used so far is below `limit`. Unlike a quota it never
 * counts anything itself: the amount is only known after the request (an AI response's usage) and
 * is added by {@link MeteredCounterStore.add}. A run with a meter op therefore changes the meter
 * in no case, and `ok` means `used < limit`; the request that crosses the limit is let through,
 * and the next one is refused (the same way providers enforce token limits).
 */
export interface MeterOp {
  readonly kind: 'meter';
  readonly key: string;
  readonly limit: number;
  /** ms since the epoch. */
  readonly windowStart: number;
  /** ms since the epoch (exclusive). */
  readonly windowEnd: number;
}

export type CounterOp = GcraOp | QuotaOp | ConcurrencyOp | MeterOp;

/**
 * The state of one counter as this request found it, BEFORE this request is counted (callers
 * that count it subtract one themselves). Plain data so it crosses IPC unchanged.
 */
export interface OpResult {
  /** This request conforms to this counter. */
  readonly ok: boolean;
  /** Units available before this request (0 when not ok). For concurrency: max − in flight. */
  readonly available: number;
  /** When not ok: ms until the request would conform (0 when ok, and for concurrency, which has no clock). */
  readonly retryAfterMs: number;
  /**
   * ms from now until the counter is back to full, before this request: GCRA `max(0, TAT − now)`,
   * a quota's `windowEnd − now`, 0 for concurrency.
   */
  readonly resetMs: number;
  /** Concurrency only, when a store hands out leases (Redis); pass it back to release. */
  readonly lease?: string;
  /** Meter only: the amount used in the current window (may exceed the limit). `available` is `max(0, limit − used)`. */
  readonly used?: number;
}

export interface CounterStore {
  /**
   * Evaluates every op against the current counters at time `now` (ms since the epoch). When all
   * are `ok` and `peekOnly` is false, all are committed together; otherwise nothing changes.
   * `peekOnly` is for dry runs (`diagnose`, `trace`): look, never consume.
   * Results are in the order of `ops`. A remote store's promise rejects when the store cannot
   * answer (the caller decides whether that fails open or closed).
   */
  run(ops: readonly CounterOp[], now: number, peekOnly: boolean): MaybePromise<readonly OpResult[]>;
  /** Gives back one concurrency slot taken by a committed `run`. Never throws; unknown keys are ignored. */
  release(key: string, lease?: string): void;
}

/**
 * A store that also meters amounts ({@link MeterOp}). A separate interface so that stores written
 * for request counting alone (test doubles among them) stay valid {@link CounterStore}s; both
 * stores of this folder implement it.
 */
export interface MeteredCounterStore extends CounterStore {
  /**
   * Adds `amount` to the meter `key` for the window [windowStart, windowEnd). A meter from an
   * earlier window is replaced (the amount starts it afresh); one from this window or, with clock
   * skew between processes, a later one, grows. Fire and forget: never throws, never rejects; an
   * amount that is not a positive finite number, or an empty window, is ignored. Dry runs never
   * call it (they have no usage to add).
   */
  add(key: string, amount: number, windowStart: number, windowEnd: number): void;
}
