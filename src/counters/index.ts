/**
 * Counter stores for stateful policies (rate-limit, ai-limits), and the process-wide store they use.
 *
 * The policy contract's CompileContext has no store, so the process picks one here: by default an
 * in-process {@link MemoryCounterStore} (single process); in cluster mode each worker sets a
 * {@link ClusterCounterStore} and the primary calls {@link attachCounterHost}. The policies
 * resolve the store on every decision (not at compile), so a store set after the first config
 * load still takes effect, and counters survive config reloads.
 */
import { MemoryCounterStore } from './memory.ts';
import type { MeteredCounterStore } from './types.ts';

export type { ConcurrencyOp, CounterOp, CounterStore, GcraOp, MaybePromise, MeteredCounterStore, MeterOp, OpResult, QuotaOp } from './types.ts';
export { EPS_MS } from './types.ts';
export { runCounters } from './run.ts';
export { MemoryCounterStore, type MemoryCounterStats, type MemoryCounterStoreOptions } from './memory.ts';
export { attachCounterHost, ClusterCounterStore, type ClusterCounterStoreOptions, type CounterHost, type IpcChannel } from './cluster.ts';

let current: MeteredCounterStore | undefined;

/**
 * Sets the store every rate-limit and ai-limits policy in this process uses from now on. Counters
 * held by the previous store are not carried over. It must meter too (ai-limits adds usage).
 * @example setCounterStore(new ClusterCounterStore()); // in a cluster worker, before App.start
 */
export function setCounterStore(store: MeteredCounterStore): void {
  current = store;
}

/** The process-wide store; a MemoryCounterStore until {@link setCounterStore} is called. */
export function getCounterStore(): MeteredCounterStore {
  current ??= new MemoryCounterStore();
  return current;
}
