/**
 * A bounded least-recently-used cache whose entries each carry their own expiry. Keys are the
 * SHA-256 of the token (hex), so a heap dump or a debugger never finds a usable token here.
 *
 * A Map keeps insertion order, so "delete then set" moves an entry to the young end and the first
 * key is always the least recently used: O(1) per operation, no linked list to maintain.
 */
export class TtlLru<V> {
  readonly #max: number;
  readonly #map = new Map<string, { readonly value: V; readonly expiresAt: number }>();

  constructor(maxEntries: number) {
    this.#max = maxEntries;
  }

  /**
   * The live value for `key` at time `now` (ms), or undefined. `touch: false` (dry runs) reads
   * without changing the eviction order, so diagnosing leaves no trace in the live cache.
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

  get size(): number {
    return this.#map.size;
  }
}
