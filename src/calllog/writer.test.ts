import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { SqliteCallLogStore } from './sqlite.ts';
import type { CallLogEntry, CallLogPage, CallLogQuery, CallLogScan, CallLogStore } from './types.ts';
import { CallLogWriter, RingQueue } from './writer.ts';
import type { CallLogWriterOptions, CallLogWriterStats, DropReason } from './writer.ts';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pinpoint-calllog-writer-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
let fileNo = 0;
function dbPath(): string {
  fileNo++;
  return path.join(root, `w${fileNo}.db`);
}

function entry(i: number, ts = 1_700_000_000_000 + i): CallLogEntry {
  return {
    ts,
    requestId: `r${i}`,
    clientIp: '198.51.100.1',
    consumer: 'acme',
    credentialId: 'k1',
    route: 'orders',
    method: 'GET',
    host: 'api.example.com',
    path: `/orders/${i}`,
    status: 200,
    code: null,
    layer: null,
    policy: null,
    latencyMs: 1.5,
    upstreamTarget: 'http://10.0.0.1',
    attempts: 1,
    bytesIn: 0,
    bytesOut: 10,
    userAgent: null,
    trace: [{ policy: 'router', type: 'router', outcome: 'allow', rule: 'GET /orders/{id}', us: 2 }],
    upstreamBody: null,
    monitorDenied: false,
    replay: null,
    ai: null,
  };
}

const ids = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, k) => `r${from + k}`);

/** Records every batch; fails the next `failNext` insertBatch calls (or all while `failAlways`). */
class FakeStore implements CallLogStore {
  batches: string[][] = [];
  failNext = 0;
  failAlways = false;
  insertCalls = 0;
  deleteCalls: number[] = [];
  deleteFails = false;
  closed = false;

  insertBatch(entries: readonly CallLogEntry[]): void {
    this.insertCalls++;
    if (this.failAlways || this.failNext > 0) {
      if (this.failNext > 0) this.failNext--;
      throw new Error('SQLITE_BUSY: database is locked');
    }
    this.batches.push(entries.map((e) => e.requestId));
  }
  query(_q: CallLogQuery): CallLogEntry[] {
    return [];
  }
  scan(_q: CallLogScan): CallLogPage {
    return { entries: [], next: null };
  }
  count(): number {
    return 0;
  }
  deleteBefore(before: number): number {
    this.deleteCalls.push(before);
    if (this.deleteFails) throw new Error('SQLITE_FULL: database or disk is full');
    return 0;
  }
  close(): void {
    this.closed = true;
  }
  get written(): string[] {
    return this.batches.flat();
  }
  get sizes(): number[] {
    return this.batches.map((b) => b.length);
  }
}

const HOUR = 3_600_000;

function opts(over: Partial<CallLogWriterOptions> = {}): CallLogWriterOptions {
  return {
    batchSize: 5,
    flushIntervalMs: HOUR, // timer flushes only where a test asks for them
    queueLimit: 10,
    overload: 'block',
    sampleRate: 1,
    retentionMs: null,
    ...over,
  };
}

/** Every entry offered is written, queued or counted as dropped. */
function assertAccounted(s: CallLogWriterStats): void {
  const dropped = s.dropped.drop_oldest + s.dropped.sample + s.dropped.write_failed;
  assert.equal(s.enqueued, s.written + s.queued + dropped, `accounting: ${JSON.stringify(s)}`);
}

void describe('RingQueue', () => {
  void test('FIFO across wrap-around and growth', () => {
    const q = new RingQueue<number>(2);
    const model: number[] = [];
    let next = 0;
    // Mixed pushes and shifts so head wraps before and after each growth.
    for (const [push, shift] of [[2, 1], [3, 2], [5, 1], [1, 4], [9, 3], [0, 9]] as const) {
      for (let i = 0; i < push; i++) {
        q.push(next);
        model.push(next++);
      }
      for (let i = 0; i < shift; i++) assert.equal(q.shift(), model.shift());
      assert.equal(q.size, model.length);
      assert.deepEqual(q.peek(100), model);
    }
    assert.equal(q.shift(), undefined);
    q.push(1);
    q.push(2);
    q.push(3);
    q.discard(2);
    assert.deepEqual(q.peek(10), [3]);
    q.clear();
    assert.equal(q.size, 0);
  });
});

void describe('CallLogWriter', () => {
  void test('rejects invalid options', () => {
    const cases: Partial<CallLogWriterOptions>[] = [
      { batchSize: 0 },
      { batchSize: 1.5 },
      { flushIntervalMs: 0 },
      { queueLimit: 4 }, // < batchSize
      { sampleRate: -0.1 },
      { sampleRate: 1.1 },
      { retentionMs: 0 },
      { retentionIntervalMs: 0 },
    ];
    for (const c of cases) {
      assert.throws(() => new CallLogWriter(new FakeStore(), opts(c)), RangeError, JSON.stringify(c));
    }
  });

  void test('enqueue does no I/O; reaching batchSize flushes once on the next turn', async () => {
    const store = new FakeStore();
    const w = new CallLogWriter(store, opts({ batchSize: 3, queueLimit: 100 }));
    for (let i = 0; i < 7; i++) w.enqueue(entry(i));
    assert.equal(store.insertCalls, 0);
    assert.equal(w.stats().queued, 7);
    await nextTurn();
    assert.deepEqual(store.sizes, [3, 3, 1]);
    assert.deepEqual(store.written, ids(0, 7));
    // Below batchSize nothing is scheduled.
    w.enqueue(entry(7));
    w.enqueue(entry(8));
    await nextTurn();
    assert.equal(store.insertCalls, 3);
    assert.equal(w.stats().queued, 2);
    w.close();
    assert.deepEqual(store.written, ids(0, 9));
  });

  void test('the timer flushes a partial batch every flushIntervalMs', (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    const store = new FakeStore();
    const w = new CallLogWriter(store, opts({ batchSize: 10, queueLimit: 100, flushIntervalMs: 1000 }));
    for (let i = 0; i < 4; i++) w.enqueue(entry(i));
    t.mock.timers.tick(999);
    assert.equal(store.insertCalls, 0);
    t.mock.timers.tick(1);
    assert.deepEqual(store.batches, [ids(0, 4)]);
    w.enqueue(entry(4));
    t.mock.timers.tick(1000);
    assert.deepEqual(store.batches, [ids(0, 4), ['r4']]);
    t.mock.timers.tick(5000); // empty queue: no empty batches
    assert.equal(store.insertCalls, 2);
    assert.deepEqual(w.stats(), {
      enqueued: 5,
      written: 5,
      dropped: { drop_oldest: 0, sample: 0, write_failed: 0 },
      failedWrites: 0,
      queued: 0,
      blockedFlushes: 0,
    });
    w.close();
  });

  void describe('overload', () => {
    void test("'block' flushes synchronously in the caller and loses nothing", async () => {
      const store = new FakeStore();
      const w = new CallLogWriter(store, opts({ overload: 'block', batchSize: 5, queueLimit: 10 }));
      for (let i = 0; i < 25; i++) w.enqueue(entry(i));
      // 11th and 21st enqueue found the queue full and wrote 10 each, in the caller.
      assert.deepEqual(store.sizes, [5, 5, 5, 5]);
      assert.deepEqual(w.stats(), {
        enqueued: 25,
        written: 20,
        dropped: { drop_oldest: 0, sample: 0, write_failed: 0 },
        failedWrites: 0,
        queued: 5,
        blockedFlushes: 2,
      });
      await nextTurn();
      assert.deepEqual(store.written, ids(0, 25));
      w.close();
    });

    void test("'drop_oldest' evicts the oldest and counts each drop", () => {
      const store = new FakeStore();
      const drops: [number, DropReason][] = [];
      const w = new CallLogWriter(
        store,
        opts({ overload: 'drop_oldest', queueLimit: 10, onDrop: (n, r) => drops.push([n, r]), now: () => 0 }),
      );
      for (let i = 0; i < 25; i++) w.enqueue(entry(i));
      assert.equal(store.insertCalls, 0); // no I/O in enqueue
      assert.deepEqual(w.stats().dropped, { drop_oldest: 15, sample: 0, write_failed: 0 });
      assert.equal(w.stats().queued, 10);
      w.flush();
      assert.deepEqual(store.written, ids(15, 25));
      assertAccounted(w.stats());
      w.close();
      // First drop reported at once, the other 14 held by the 1/s limit and reported at close.
      assert.deepEqual(drops, [
        [1, 'drop_oldest'],
        [14, 'drop_oldest'],
      ]);
    });

    const sampleCases: { name: string; sampleRate: number; random?: number[]; kept: string[] }[] = [
      { name: 'rate 0 keeps the queued entries, drops every new one', sampleRate: 0, kept: ids(0, 10) },
      { name: 'rate 1 keeps every new one, evicting the oldest', sampleRate: 1, kept: ids(10, 20) },
      {
        name: 'rate 0.5 keeps new entries whose draw is below the rate',
        sampleRate: 0.5,
        random: [0.1, 0.9], // keep, drop, keep, drop…
        kept: [...ids(5, 10), 'r10', 'r12', 'r14', 'r16', 'r18'],
      },
      {
        name: 'rate 0.25 with draws on both sides of the threshold',
        sampleRate: 0.25,
        random: [0.25, 0.2499, 0.9, 0, 0.5], // drop, keep, drop, keep, drop, repeating
        kept: [...ids(4, 10), 'r11', 'r13', 'r16', 'r18'],
      },
    ];
    for (const c of sampleCases) {
      void test(`'sample': ${c.name}`, () => {
        const store = new FakeStore();
        let k = 0;
        const draws = c.random;
        const w = new CallLogWriter(
          store,
          opts({
            overload: 'sample',
            queueLimit: 10,
            sampleRate: c.sampleRate,
            ...(draws ? { random: () => draws[k++ % draws.length] ?? 0 } : {}),
          }),
        );
        for (let i = 0; i < 20; i++) w.enqueue(entry(i));
        // Each of the 10 enqueues made while full drops exactly one entry (the new or the oldest).
        assert.deepEqual(w.stats().dropped, { drop_oldest: 0, sample: 10, write_failed: 0 });
        w.flush();
        assert.deepEqual(store.written, c.kept);
        assertAccounted(w.stats());
        w.close();
      });
    }

    void test("real store with 'drop_oldest': only the newest queueLimit entries land", () => {
      const store = new SqliteCallLogStore(dbPath());
      const w = new CallLogWriter(store, opts({ overload: 'drop_oldest', batchSize: 4, queueLimit: 8 }));
      for (let i = 0; i < 30; i++) w.enqueue(entry(i));
      w.flush();
      assert.deepEqual(
        store.query({ limit: 1000 }).map((e) => e.requestId),
        ids(22, 30).reverse(),
      );
      assert.deepEqual(w.stats().dropped, { drop_oldest: 22, sample: 0, write_failed: 0 });
      assert.equal(w.stats().written, 8);
      w.close();
    });

    void test("real store with 'block': every entry lands and round-trips", () => {
      const p = dbPath();
      const store = new SqliteCallLogStore(p);
      const w = new CallLogWriter(store, opts({ overload: 'block', batchSize: 7, queueLimit: 20 }));
      for (let i = 0; i < 101; i++) w.enqueue(entry(i));
      w.close();
      const check = new SqliteCallLogStore(p);
      const rows = check.query({ limit: 1000 });
      assert.equal(rows.length, 101);
      assert.deepEqual(rows.at(-1), entry(0));
      assert.equal(w.stats().blockedFlushes, 5);
      check.close();
    });
  });

  void test('drop warnings go to onError when no onDrop is given, at most once per second', () => {
    const store = new FakeStore();
    const errors: Error[] = [];
    let now = 10_000;
    const w = new CallLogWriter(
      store,
      opts({ overload: 'drop_oldest', queueLimit: 10, onError: (e) => errors.push(e), now: () => now }),
    );
    for (let i = 0; i < 13; i++) w.enqueue(entry(i)); // 3 drops
    assert.equal(errors.length, 1);
    now += 999;
    w.enqueue(entry(13));
    assert.equal(errors.length, 1);
    now += 1;
    w.enqueue(entry(14));
    assert.equal(errors.length, 2);
    assert.equal(w.stats().dropped.drop_oldest, 5);
    w.close();
    assert.equal(errors.length, 2); // nothing left unreported
  });

  void test('pending drop counts are reported by the timer even if drops stop', (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    const store = new FakeStore();
    store.failAlways = true; // keep the queue full so the timer does not empty it
    const drops: [number, DropReason][] = [];
    let now = 0;
    const w = new CallLogWriter(
      store,
      opts({
        overload: 'drop_oldest',
        queueLimit: 10,
        flushIntervalMs: 500,
        onDrop: (n, r) => drops.push([n, r]),
        now: () => now,
      }),
    );
    for (let i = 0; i < 14; i++) w.enqueue(entry(i));
    assert.deepEqual(drops, [[1, 'drop_oldest']]);
    now = 500;
    t.mock.timers.tick(500);
    assert.deepEqual(drops, [[1, 'drop_oldest']]);
    now = 1000;
    t.mock.timers.tick(500);
    assert.deepEqual(drops, [
      [1, 'drop_oldest'],
      [3, 'drop_oldest'],
    ]);
    store.failAlways = false;
    w.close();
  });

  void describe('store failures', () => {
    void test('a failed batch stays at the front and is retried on the next tick; nothing lost', async (t) => {
      t.mock.timers.enable({ apis: ['setInterval'] });
      const store = new FakeStore();
      store.failNext = 2;
      const errors: Error[] = [];
      const w = new CallLogWriter(
        store,
        opts({ batchSize: 5, queueLimit: 50, flushIntervalMs: 1000, onError: (e) => errors.push(e) }),
      );
      for (let i = 0; i < 5; i++) w.enqueue(entry(i));
      await nextTurn(); // size-triggered flush fails
      assert.equal(store.insertCalls, 1);
      assert.equal(errors.length, 1);
      assert.match(errors[0]?.message ?? '', /SQLITE_BUSY/);
      assert.equal(w.stats().queued, 5);
      // While failing, reaching batchSize again does not retry every turn: only the timer does.
      for (let i = 5; i < 12; i++) w.enqueue(entry(i));
      await nextTurn();
      assert.equal(store.insertCalls, 1);
      t.mock.timers.tick(1000); // retry fails
      assert.equal(store.insertCalls, 2);
      assert.equal(w.stats().queued, 12);
      t.mock.timers.tick(1000); // recovers, writes everything in order
      assert.deepEqual(store.batches, [ids(0, 5), ids(5, 10), ids(10, 12)]);
      assert.deepEqual(w.stats(), {
        enqueued: 12,
        written: 12,
        dropped: { drop_oldest: 0, sample: 0, write_failed: 0 },
        failedWrites: 2,
        queued: 0,
        blockedFlushes: 0,
      });
      assert.equal(errors.length, 2);
      // Recovered: size-triggered flushes are back.
      for (let i = 12; i < 17; i++) w.enqueue(entry(i));
      await nextTurn();
      assert.deepEqual(store.written, ids(0, 17));
      w.close();
    });

    void test('flush() throws the store error and keeps the entries queued', () => {
      const store = new FakeStore();
      store.failNext = 1;
      const w = new CallLogWriter(store, opts({ batchSize: 3, queueLimit: 30 }));
      for (let i = 0; i < 7; i++) w.enqueue(entry(i));
      store.failNext = 0;
      w.flush(); // first batch succeeds
      for (let i = 7; i < 10; i++) w.enqueue(entry(i));
      store.failNext = 1;
      assert.throws(() => w.flush(), /SQLITE_BUSY/);
      assert.equal(w.stats().queued, 3);
      assert.equal(w.stats().failedWrites, 1);
      w.flush();
      assert.deepEqual(store.written, ids(0, 10));
      w.close();
    });

    void test("'block' with a failing store: one synchronous attempt, then new entries are dropped and counted", () => {
      const store = new FakeStore();
      store.failAlways = true;
      const errors: Error[] = [];
      const w = new CallLogWriter(
        store,
        opts({ overload: 'block', batchSize: 5, queueLimit: 10, onError: (e) => errors.push(e), now: () => 0 }),
      );
      for (let i = 0; i < 14; i++) w.enqueue(entry(i));
      assert.equal(store.insertCalls, 1); // only the 11th enqueue tried; later ones do not stall
      assert.deepEqual(w.stats(), {
        enqueued: 14,
        written: 0,
        dropped: { drop_oldest: 0, sample: 0, write_failed: 4 },
        failedWrites: 1,
        queued: 10,
        blockedFlushes: 1,
      });
      store.failAlways = false;
      w.flush();
      assert.deepEqual(store.written, ids(0, 10));
      assertAccounted(w.stats());
      w.close();
      // One write-failure error, one drop warning (rate limited), one pending-drop report at close.
      assert.equal(errors.length, 3);
    });

    void test("'drop_oldest' with a failing store stays bounded by queueLimit", () => {
      const store = new FakeStore();
      store.failAlways = true;
      const w = new CallLogWriter(store, opts({ overload: 'drop_oldest', batchSize: 5, queueLimit: 10 }));
      for (let i = 0; i < 100; i++) {
        w.enqueue(entry(i));
        if (i % 10 === 9) assert.throws(() => w.flush());
      }
      assert.equal(w.stats().queued, 10);
      assert.equal(w.stats().dropped.drop_oldest, 90);
      store.failAlways = false;
      w.close();
      assert.deepEqual(store.written, ids(90, 100));
      assertAccounted(w.stats());
    });
  });

  void describe('close', () => {
    void test('flushes everything, closes the store, then enqueue throws', () => {
      const store = new FakeStore();
      const w = new CallLogWriter(store, opts({ batchSize: 4, queueLimit: 100 }));
      for (let i = 0; i < 23; i++) w.enqueue(entry(i));
      w.close();
      assert.deepEqual(store.sizes, [4, 4, 4, 4, 4, 3]);
      assert.deepEqual(store.written, ids(0, 23));
      assert.equal(store.closed, true);
      assert.equal(w.stats().queued, 0);
      assert.throws(() => w.enqueue(entry(99)), /after close/);
      assert.doesNotThrow(() => w.close());
      assert.equal(w.stats().enqueued, 23);
    });

    void test('a final write failure is counted as dropped, still closes the store, and throws', () => {
      const store = new FakeStore();
      store.failAlways = true;
      const w = new CallLogWriter(store, opts({ batchSize: 4, queueLimit: 100 }));
      for (let i = 0; i < 6; i++) w.enqueue(entry(i));
      assert.throws(() => w.close(), /6 entries could not be written/);
      assert.equal(store.closed, true);
      assert.deepEqual(w.stats().dropped, { drop_oldest: 0, sample: 0, write_failed: 6 });
      assert.equal(w.stats().queued, 0);
      assertAccounted(w.stats());
    });
  });

  void describe('retention', () => {
    void test('deletes before now - retentionMs at start and every 60 s', (t) => {
      t.mock.timers.enable({ apis: ['setInterval'] });
      const store = new FakeStore();
      let now = 1_000_000;
      const w = new CallLogWriter(store, opts({ retentionMs: 5000, now: () => now }));
      assert.deepEqual(store.deleteCalls, [995_000]);
      now += 59_999;
      t.mock.timers.tick(59_999);
      assert.deepEqual(store.deleteCalls, [995_000]);
      now += 1;
      t.mock.timers.tick(1);
      assert.deepEqual(store.deleteCalls, [995_000, 1_055_000]);
      w.close();
      t.mock.timers.tick(120_000);
      assert.equal(store.deleteCalls.length, 2); // stopped by close
    });

    void test('no retention runs when retentionMs is null', (t) => {
      t.mock.timers.enable({ apis: ['setInterval'] });
      const store = new FakeStore();
      const w = new CallLogWriter(store, opts({ retentionMs: null }));
      t.mock.timers.tick(600_000);
      assert.deepEqual(store.deleteCalls, []);
      w.close();
    });

    void test('retention errors go to onError', () => {
      const store = new FakeStore();
      store.deleteFails = true;
      const errors: Error[] = [];
      const w = new CallLogWriter(store, opts({ retentionMs: 1000, onError: (e) => errors.push(e) }));
      assert.equal(errors.length, 1);
      assert.match(errors[0]?.message ?? '', /SQLITE_FULL/);
      w.close();
    });

    void test('real store: rows older than the retention window are deleted at start', () => {
      const p = dbPath();
      const seed = new SqliteCallLogStore(p);
      const now = 10_000_000;
      seed.insertBatch([entry(0, now - 7200_000), entry(1, now - 3600_001), entry(2, now - 3600_000), entry(3, now - 1)]);
      seed.close();
      const store = new SqliteCallLogStore(p);
      const w = new CallLogWriter(store, opts({ retentionMs: 3600_000, now: () => now }));
      assert.deepEqual(
        store.query({}).map((e) => e.requestId),
        ['r3', 'r2'],
      );
      w.close();
    });
  });
});
