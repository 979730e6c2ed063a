/**
 * A bounded least-recently-used map whose entries each carry their own expiry: the one shape of
 * every per-caller memory in the gateway (introspection answers, ip-rules decisions, rate-limit
 * subjects, AI rest periods), so that none of them can grow with what clients send. Callers that
 * remember something about a secret key it by a hash of it, never the secret.
 *
 * A Map keeps insertion order, so "delete then set" moves an entry to the young end and the first
 * key is always the least recently used: O(1) per operation, no linked list to maintain. Entries
 * that never expire are stored with `expiresAt` = Infinity.
 */
export class TtlLru<V> {
  readonly #max: number;
  readonly #map = new Map<string, { readonly value: V; readonly expiresAt: number }>();

  constructor(maxEntries: number) {
    this.#max = maxEntries;
  }

  /**
   * The live value for `key` at time `now` (ms), or undefined. `touch: false` (dry runs, hot-path
   * memos) reads without changing the eviction order, so the entry is then evicted oldest-first.
   */
  get(key: string, now: number, touch = true): V | undefined {
    const e = this.#map.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAt <= now) {
      this.#map.delete(key);
      return undefined;
    }
    if (touch) {
      this.#map.delete(key);
      this.#map.set(key, e);
    }
    return e.value;
  }

  /** Stores `value` until `expiresAt` (ms); ignored when already expired or the cache is disabled. */
  set(key: string, value: V, expiresAt: number, now: number): void {
    if (this.#max === 0 || expiresAt <= now) return;
    this.#map.delete(key);
    this.#map.set(key, { value, expiresAt });
    while (this.#map.size > this.#max) {
      const oldest = this.#map.keys().next();
      if (oldest.done === true) break;
      this.#map.delete(oldest.value);
    }
  }

  delete(key: string): void {
    this.#map.delete(key);
  }

  /** A copy with the same bound, entries and order (a config reload carrying state over). */
  clone(): TtlLru<V> {
    const c = new TtlLru<V>(this.#max);
    for (const [k, e] of this.#map) c.#map.set(k, e);
    return c;
  }

  get size(): number {
    return this.#map.size;
  }
}
