/**
 * One store run as a policy decision needs it: the store answers synchronously (in-process) or with
 * a promise (cluster primary), and may throw or reject; both policies over counters (rate-limit,
 * ai-limits) turn a failure into their `on_store_error` answer. The result never rejects when
 * `failed` does not throw.
 */
import type { CounterOp, CounterStore, MaybePromise, OpResult } from './types.ts';

export function runCounters<T>(
  store: CounterStore,
  ops: readonly CounterOp[],
  now: number,
  peekOnly: boolean,
  done: (results: readonly OpResult[]) => T,
  failed: (err: unknown) => T,
): MaybePromise<T> {
  let answer: MaybePromise<readonly OpResult[]>;
  try {
    answer = store.run(ops, now, peekOnly);
  } catch (err) {
    return failed(err);
  }
  if (typeof (answer as { then?: unknown }).then === 'function') return (answer as Promise<readonly OpResult[]>).then(done, failed);
  return done(answer as readonly OpResult[]);
}
