/**
 * Counters shared by `--workers N` (node:cluster): the primary owns one {@link MemoryCounterStore}
 * and answers workers over the cluster IPC channel, so a limit of 100 per minute is 100 for the
 * whole gateway, not 100 per worker.
 *
 * Why the primary and not a shared file or memory: node:cluster workers are separate processes
 * with separate heaps; the IPC channel already exists, the primary is single-threaded (so every
 * `run` is atomic without locks), and it outlives workers (so a crashed worker's concurrency slots
 * can be given back when it exits).
 *
 * Protocol (JSON over the IPC channel, the cluster default serialization):
 * - worker → primary `{ type: 'pinpoint:counters:run', id, ops, now, peek }`, answered by
 *   primary → worker `{ type: 'pinpoint:counters:result', id, results }` or `{ …, id, error }`;
 * - worker → primary `{ type: 'pinpoint:counters:release', key }`, not answered;
 * - worker → primary `{ type: 'pinpoint:counters:add', key, amount, windowStart, windowEnd }`
 *   (metering, e.g. an AI response's tokens), not answered: the IPC channel delivers one worker's
 *   messages in order, so a worker's later run already sees its own adds, and the primary applies
 *   each add atomically, so concurrent adds from several workers all count.
 * A worker that hears nothing within `timeoutMs` rejects the run; the rate-limit and ai-limits
 * policies then apply their `on_store_error` setting.
 *
 * Wiring (src/server/cluster.ts): in the primary, `attachCounterHost(cluster)` before forking; in
 * each worker, `setCounterStore(new ClusterCounterStore())` before the config is compiled.
 */
import type { Cluster, Worker } from 'node:cluster';
import { MemoryCounterStore } from './memory.ts';
import type { CounterOp, MeteredCounterStore, OpResult } from './types.ts';

const RUN = 'pinpoint:counters:run';
const RELEASE = 'pinpoint:counters:release';
const ADD = 'pinpoint:counters:add';
const RESULT = 'pinpoint:counters:result';

interface RunMessage {
  readonly type: typeof RUN;
  readonly id: number;
  readonly ops: readonly CounterOp[];
  readonly now: number;
  readonly peek: boolean;
}

interface ReleaseMessage {
  readonly type: typeof RELEASE;
  readonly key: string;
}

interface AddMessage {
  readonly type: typeof ADD;
  readonly key: string;
  readonly amount: number;
  readonly windowStart: number;
  readonly windowEnd: number;
}

interface ResultMessage {
  readonly type: typeof RESULT;
  readonly id: number;
  readonly results?: readonly OpResult[];
  readonly error?: string;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Checks an op that arrived over IPC: the primary must not crash or corrupt state on a bad one. */
function isOp(v: unknown): v is CounterOp {
  if (!isObject(v) || typeof v.key !== 'string') return false;
  switch (v.kind) {
    case 'gcra':
      return finite(v.emissionIntervalMs) && v.emissionIntervalMs > 0 && finite(v.burstToleranceMs) && v.burstToleranceMs >= 0;
    case 'quota':
      return finite(v.limit) && finite(v.windowStart) && finite(v.windowEnd);
    case 'concurrency':
      return finite(v.max);
    case 'meter':
      return finite(v.limit) && finite(v.windowStart) && finite(v.windowEnd);
    default:
      return false;
  }
}

function isRun(m: unknown): m is RunMessage {
  return isObject(m) && m.type === RUN && finite(m.id) && finite(m.now) && typeof m.peek === 'boolean' && Array.isArray(m.ops);
}

function isRelease(m: unknown): m is ReleaseMessage {
  return isObject(m) && m.type === RELEASE && typeof m.key === 'string';
}

function isAdd(m: unknown): m is AddMessage {
  return isObject(m) && m.type === ADD && typeof m.key === 'string' && finite(m.amount) && finite(m.windowStart) && finite(m.windowEnd);
}

function isResult(m: unknown): m is ResultMessage {
  return isObject(m) && m.type === RESULT && finite(m.id);
}

export interface CounterHost {
  /** The primary's store (inspect it in tests; it is the source of truth). */
  readonly store: MemoryCounterStore;
  /** Concurrency slots a worker holds right now. */
  held(worker: Pick<Worker, 'id'>): number;
  /** Stops answering and stops the store's sweep timer. */
  detach(): void;
}

/**
 * Primary side: answers every worker's counter requests from one in-process store, and gives back
 * the concurrency slots of a worker that exits (a crashed worker never calls release).
 *
 * @example
 * import cluster from 'node:cluster';
 * if (cluster.isPrimary) attachCounterHost(cluster);
 */
export function attachCounterHost(cluster: Pick<Cluster, 'on' | 'off'>, store: MemoryCounterStore = new MemoryCounterStore()): CounterHost {
  /** worker id → key → slots held. */
  const held = new Map<number, Map<string, number>>();

  const onMessage = (worker: Worker, m: unknown): void => {
    if (isAdd(m)) {
      // The store ignores amounts that are not positive and empty windows.
      store.add(m.key, m.amount, m.windowStart, m.windowEnd);
      return;
    }
    if (isRelease(m)) {
      const mine = held.get(worker.id);
      const n = mine?.get(m.key);
      // Only slots this worker took: a confused worker cannot free another's.
      if (mine === undefined || n === undefined) return;
      if (n <= 1) mine.delete(m.key);
      else mine.set(m.key, n - 1);
      store.release(m.key);
      return;
    }
    if (!isRun(m)) return;
    if (!m.ops.every(isOp)) {
      send(worker, { type: RESULT, id: m.id, error: 'malformed counter op' });
      return;
    }
    let results: readonly OpResult[];
    try {
      results = store.run(m.ops, m.now, m.peek);
    } catch (err) {
      send(worker, { type: RESULT, id: m.id, error: (err as Error).message });
      return;
    }
    const committed = !m.peek && results.every((r) => r.ok);
    if (committed) {
      let mine = held.get(worker.id);
      for (const op of m.ops) {
        if (op.kind !== 'concurrency') continue;
        mine ??= new Map();
        mine.set(op.key, (mine.get(op.key) ?? 0) + 1);
      }
      if (mine !== undefined) held.set(worker.id, mine);
    }
    if (!send(worker, { type: RESULT, id: m.id, results }) && committed) giveBack(worker);
  };

  const giveBack = (worker: Pick<Worker, 'id'>): void => {
    const mine = held.get(worker.id);
    if (mine === undefined) return;
    for (const [key, n] of mine) for (let i = 0; i < n; i++) store.release(key);
    held.delete(worker.id);
  };

  const onExit = (worker: Worker): void => giveBack(worker);

  cluster.on('message', onMessage);
  cluster.on('exit', onExit);
  return {
    store,
    held: (worker) => [...(held.get(worker.id)?.values() ?? [])].reduce((a, b) => a + b, 0),
    detach: () => {
      cluster.off('message', onMessage);
      cluster.off('exit', onExit);
      store.close();
    },
  };
}

/** False when the worker is gone (its slots are then given back by the exit handler). */
function send(worker: Worker, m: ResultMessage): boolean {
  if (!worker.isConnected()) return false;
  try {
    worker.send(m);
    return true;
  } catch {
    return false;
  }
}

/** The part of `process` a worker uses; injectable for tests. */
export interface IpcChannel {
  send?: ((message: unknown, sendHandle?: undefined, options?: undefined, callback?: (error: Error | null) => void) => boolean) | undefined;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

export interface ClusterCounterStoreOptions {
  /** Longest wait for the primary's answer, ms (default 1000). */
  readonly timeoutMs?: number;
  /** The IPC channel to the primary (default: `process`). */
  readonly channel?: IpcChannel;
}

interface Pending {
  readonly resolve: (r: readonly OpResult[]) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
  readonly ops: readonly CounterOp[];
}

/** Late answers remembered after a timeout, so slots the primary granted anyway are given back. */
const LATE_LIMIT = 1000;

/**
 * Worker side: every run is a round trip to the primary, so it answers with a promise (the
 * pipeline goes asynchronous for that request; see src/pipeline/run.ts).
 *
 * @example
 * if (cluster.isWorker) setCounterStore(new ClusterCounterStore({ timeoutMs: 500 }));
 */
export class ClusterCounterStore implements MeteredCounterStore {
  readonly #channel: IpcChannel;
  readonly #timeoutMs: number;
  readonly #pending = new Map<number, Pending>();
  /** id → ops of committing runs that timed out; an answer arriving later is undone (slots released). */
  readonly #late = new Map<number, readonly CounterOp[]>();
  #next = 1;
  readonly #onMessage = (m: unknown): void => this.#receive(m);

  constructor(opts: ClusterCounterStoreOptions = {}) {
    this.#channel = opts.channel ?? process;
    this.#timeoutMs = opts.timeoutMs ?? 1000;
    this.#channel.on('message', this.#onMessage);
  }

  run(ops: readonly CounterOp[], now: number, peekOnly: boolean): Promise<readonly OpResult[]> {
    const send = this.#channel.send;
    if (send === undefined) return Promise.reject(new Error('counter store: no IPC channel to the cluster primary'));
    const id = this.#next++;
    return new Promise<readonly OpResult[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        if (!peekOnly) this.#late.set(id, ops);
        if (this.#late.size > LATE_LIMIT) {
          const oldest = this.#late.keys().next();
          if (oldest.done !== true) this.#late.delete(oldest.value);
        }
        reject(new Error(`counter store: the cluster primary did not answer within ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
      timer.unref();
      this.#pending.set(id, { resolve, reject, timer, ops });
      const message: RunMessage = { type: RUN, id, ops, now, peek: peekOnly };
      try {
        send.call(this.#channel, message, undefined, undefined, (err) => {
          if (err !== null) this.#fail(id, err);
        });
      } catch (err) {
        this.#fail(id, err as Error);
      }
    });
  }

  release(key: string): void {
    const send = this.#channel.send;
    if (send === undefined) return;
    const message: ReleaseMessage = { type: RELEASE, key };
    try {
      // Fire and forget: if the channel is gone the worker is going too, and the primary gives
      // back every slot of an exited worker.
      send.call(this.#channel, message, undefined, undefined, () => {});
    } catch {
      // Same as above.
    }
  }

  /**
   * Sends the amount to the primary, not answered. If the channel is gone the amount is lost: this
   * worker is going away, and a meter errs on the side of the caller (under-counts) rather than
   * failing a response that already happened.
   */
  add(key: string, amount: number, windowStart: number, windowEnd: number): void {
    const send = this.#channel.send;
    if (send === undefined || !Number.isFinite(amount) || amount <= 0) return;
    const message: AddMessage = { type: ADD, key, amount, windowStart, windowEnd };
    try {
      send.call(this.#channel, message, undefined, undefined, () => {});
    } catch {
      // Same as above.
    }
  }

  /** Stops listening; runs still waiting are rejected. */
  close(): void {
    this.#channel.off('message', this.#onMessage);
    for (const id of [...this.#pending.keys()]) this.#fail(id, new Error('counter store closed'));
  }

  #fail(id: number, err: Error): void {
    const p = this.#pending.get(id);
    if (p === undefined) return;
    clearTimeout(p.timer);
    this.#pending.delete(id);
    p.reject(new Error(`counter store: ${err.message}`));
  }

  #receive(m: unknown): void {
    if (!isResult(m)) return;
    const p = this.#pending.get(m.id);
    if (p === undefined) {
      const ops = this.#late.get(m.id);
      if (ops === undefined) return;
      this.#late.delete(m.id);
      // The primary committed a run this worker already reported as failed: give its slots back.
      if (m.results !== undefined && m.results.every((r) => r.ok)) {
        for (const op of ops) if (op.kind === 'concurrency') this.release(op.key);
      }
      return;
    }
    clearTimeout(p.timer);
    this.#pending.delete(m.id);
    if (m.results !== undefined && m.results.length === p.ops.length) p.resolve(m.results);
    else p.reject(new Error(`counter store: ${m.error ?? 'malformed answer from the cluster primary'}`));
  }
}
