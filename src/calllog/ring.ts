/**
 * A byte ring in shared memory that carries encoded call-log rows from the thread that serves
 * requests (the one producer) to the log thread (the one consumer).
 *
 * Why shared memory and not `postMessage`: a message is structured-cloned, which cost the request
 * thread 5.6–8.4 µs an entry when measured (docs/benchmarks.md); writing the row's UTF-8 bytes
 * into this ring costs a copy, and the consumer is woken once per batch, not per entry.
 *
 * Layout. `data` holds records back to back, each 4-byte aligned: a u32 payload length, then the
 * payload. A record that does not fit before the end of the buffer is preceded by a wrap marker
 * (u32 {@link WRAP}) and starts again at offset 0. `HEAD == TAIL` means empty, so the producer
 * always leaves at least 4 bytes between its tail and the head.
 *
 * Synchronisation (https://tc39.es/ecma262/#sec-atomics-object: Atomics operations are
 * sequentially consistent, so a record's bytes written before `Atomics.store(TAIL)` are visible
 * to a consumer that `Atomics.load`s that tail):
 * - only the producer moves TAIL, after its bytes are in place;
 * - the consumer moves HEAD after it has decoded what it takes;
 * - the producer moves HEAD too, but only to evict the oldest record under an overload policy
 *   (`drop_oldest`, `sample`). Both HEAD moves happen under a small lock word, so a record is
 *   either evicted or taken, never both. The lock is never taken on the normal append path.
 */

/** Control words (an Int32Array over its own SharedArrayBuffer). */
export const Ctl = {
  HEAD: 0,
  TAIL: 1,
  /** Records the consumer has taken, wrapping at 2^32 (differences are taken modulo 2^32). */
  TAKEN: 2,
  LOCK: 3,
  /** Bumped by the producer to wake the consumer. */
  WAKE: 4,
  /** Bumped by the consumer whenever it frees space. */
  SPACE: 5,
} as const;
/** Control words this module uses; users of the ring put theirs after it. */
export const RING_CONTROL_WORDS = 6;

/** Marks the rest of the buffer as unused: the next record is at offset 0. */
const WRAP = 0xffffffff;
const HEADER = 4;
/** Smallest ring accepted: room for a few large rows (a 64 KiB upstream body, a replay body). */
export const MIN_RING_BYTES = 1024 * 1024;

function align4(n: number): number {
  return (n + 3) & ~3;
}

export class ByteRing {
  readonly capacity: number;
  readonly data: Buffer;
  readonly ctl: Int32Array;

  /** Wraps shared buffers made by {@link ByteRing.allocate} (possibly on another thread). */
  constructor(data: SharedArrayBuffer, control: SharedArrayBuffer) {
    if (data.byteLength % 4 !== 0 || data.byteLength < 64) throw new RangeError(`ring: capacity must be a multiple of 4 and >= 64, got ${data.byteLength}`);
    this.capacity = data.byteLength;
    this.data = Buffer.from(data);
    this.ctl = new Int32Array(control);
  }

  static allocate(capacity: number, controlWords: number): { data: SharedArrayBuffer; control: SharedArrayBuffer } {
    return {
      data: new SharedArrayBuffer(align4(capacity)),
      control: new SharedArrayBuffer(4 * Math.max(controlWords, RING_CONTROL_WORDS)),
    };
  }

  /** True when no record is queued. */
  empty(): boolean {
    return Atomics.load(this.ctl, Ctl.HEAD) === Atomics.load(this.ctl, Ctl.TAIL);
  }

  /**
   * Producer: where a payload of `bytes` bytes would start if written now, or -1 if it does not
   * fit. `reserve` does not change the ring; {@link commit} publishes what was written there.
   */
  reserve(bytes: number): number {
    const size = align4(HEADER + bytes);
    const head = Atomics.load(this.ctl, Ctl.HEAD);
    const tail = Atomics.load(this.ctl, Ctl.TAIL);
    if (tail < head) return tail + size <= head - 4 ? tail + HEADER : -1;
    // tail >= head: the free space is [tail, capacity) and then [0, head - 4].
    if (tail + size < this.capacity || (tail + size === this.capacity && head !== 0)) return tail + HEADER;
    return size <= head - 4 ? HEADER : -1;
  }

  /** Producer: publishes a payload of `bytes` bytes written at `at` (a value {@link reserve} returned). */
  commit(at: number, bytes: number): void {
    const start = at - HEADER;
    const tail = Atomics.load(this.ctl, Ctl.TAIL);
    if (start !== tail) this.data.writeUInt32LE(WRAP, tail); // reserve() chose offset 0
    this.data.writeUInt32LE(bytes, start);
    let next = start + align4(HEADER + bytes);
    if (next === this.capacity) next = 0;
    Atomics.store(this.ctl, Ctl.TAIL, next);
  }

  /** Consumer: wakes it (cheap when it is not waiting). */
  wake(): void {
    Atomics.add(this.ctl, Ctl.WAKE, 1);
    Atomics.notify(this.ctl, Ctl.WAKE);
  }

  /**
   * Producer: drops the oldest queued record. Returns false if the ring was empty (the consumer
   * may have taken everything meanwhile).
   */
  evictOldest(): boolean {
    this.#lock();
    try {
      const head = Atomics.load(this.ctl, Ctl.HEAD);
      if (head === Atomics.load(this.ctl, Ctl.TAIL)) return false;
      const [, next] = this.#recordAt(head);
      Atomics.store(this.ctl, Ctl.HEAD, next);
      return true;
    } finally {
      this.#unlock();
    }
  }

  /**
   * Consumer: decodes and removes up to `max` records, oldest first. `decode` receives each
   * payload's offset and length in {@link data} and must copy what it keeps: the bytes are reused
   * once this returns.
   */
  take<T>(max: number, decode: (at: number, bytes: number) => T, onTaken?: (n: number) => void): T[] {
    const out: T[] = [];
    this.#lock();
    try {
      let head = Atomics.load(this.ctl, Ctl.HEAD);
      const tail = Atomics.load(this.ctl, Ctl.TAIL);
      let n = 0;
      while (head !== tail && n < max) {
        const [at, next, bytes] = this.#recordAt(head);
        out.push(decode(at, bytes));
        n++;
        head = next;
      }
      // Counted before HEAD moves: a reader of the counters never sees a record in neither place.
      if (n > 0) {
        onTaken?.(n);
        Atomics.add(this.ctl, Ctl.TAKEN, n);
      }
      Atomics.store(this.ctl, Ctl.HEAD, head);
    } finally {
      this.#unlock();
    }
    if (out.length > 0) {
      Atomics.add(this.ctl, Ctl.SPACE, 1);
      Atomics.notify(this.ctl, Ctl.SPACE);
    }
    return out;
  }

  /**
   * Producer: an empty ring whose head is mid-buffer only has half its room in one piece; moving
   * both ends back to 0 gives a large row the whole buffer. Under the lock, so the consumer
   * cannot be reading meanwhile.
   */
  rewindIfEmpty(): void {
    this.#lock();
    try {
      if (Atomics.load(this.ctl, Ctl.HEAD) === Atomics.load(this.ctl, Ctl.TAIL)) {
        Atomics.store(this.ctl, Ctl.HEAD, 0);
        Atomics.store(this.ctl, Ctl.TAIL, 0);
      }
    } finally {
      this.#unlock();
    }
  }

  /** [payload offset, offset of the next record, payload length] of the record at `head`, past a wrap marker. */
  #recordAt(head: number): [number, number, number] {
    let start = head;
    let bytes = this.data.readUInt32LE(start);
    if (bytes === WRAP) {
      start = 0;
      bytes = this.data.readUInt32LE(0);
    }
    let next = start + align4(HEADER + bytes);
    if (next === this.capacity) next = 0;
    return [start + HEADER, next, bytes];
  }

  // The lock is held for a decode of at most one batch (consumer) or one header read (producer).
  // A waiter sleeps in Atomics.wait instead of spinning: on a shared core, spinning would keep the
  // holder from running.
  #lock(): void {
    while (Atomics.compareExchange(this.ctl, Ctl.LOCK, 0, 1) !== 0) Atomics.wait(this.ctl, Ctl.LOCK, 1, 10);
  }

  #unlock(): void {
    Atomics.store(this.ctl, Ctl.LOCK, 0);
    Atomics.notify(this.ctl, Ctl.LOCK, 1);
  }
}
