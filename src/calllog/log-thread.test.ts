import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import { ThreadedCallLogWriter } from './log-thread.ts';
import type { ThreadedCallLogWriterOptions } from './log-thread.ts';
import { MIN_RING_BYTES } from './ring.ts';
import { SqliteCallLogStore } from './sqlite.ts';
import type { CallLogEntry } from './types.ts';
import type { CallLogWriterStats } from './writer.ts';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pinpoint-log-thread-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
let fileNo = 0;
/** A new log file, created and migrated as the gateway does before it starts the thread. */
function newLog(): { file: string; store: SqliteCallLogStore } {
  const file = path.join(root, `t${++fileNo}.db`);
  return { file, store: new SqliteCallLogStore(file) };
}

const T0 = 1_700_000_000_000;
function entry(i: number, over: Partial<CallLogEntry> = {}): CallLogEntry {
  return {
    ts: T0 + i,
    requestId: `r${i}`,
    clientIp: i % 2 === 0 ? '198.51.100.1' : '2001:db8::1',
    consumer: i % 3 === 0 ? null : 'acme',
    credentialId: i % 3 === 0 ? null : 'k1',
    route: 'orders',
    method: i % 2 === 0 ? 'GET' : 'POST',
    host: 'api.example.com',
    path: `/orders/${i}/ünïcødé/😀`,
    status: i % 7 === 0 ? 403 : 200,
    code: i % 7 === 0 ? 'AUTH_KEY_SCOPE_MISSING' : null,
    layer: i % 7 === 0 ? 'gateway' : null,
    policy: i % 7 === 0 ? 'keys' : null,
    latencyMs: 1.5 + i / 3,
    upstreamTarget: i % 7 === 0 ? null : 'http://10.0.0.1:8080',
    attempts: 1,
    bytesIn: 1024,
    bytesOut: 10 * i,
    userAgent: i % 4 === 0 ? null : 'curl/8 "quoted" \\ back',
    trace: [
      { policy: 'router', type: 'router', outcome: 'allow', rule: 'POST /orders', us: 2 },
      { policy: 'keys', type: 'api-key', outcome: i % 7 === 0 ? 'deny' : 'allow', rule: 'scope', us: 3.25, evidence: { key_id: 'k1', scopes: ['orders:read'] } },
    ],
    upstreamBody: i % 5 === 0 ? `{"error":"nope ${i}"}` : null,
    monitorDenied: i % 11 === 0,
    replay:
      i % 2 === 0
        ? { v: 1, query: 'a=1&b=%20', peer: '127.0.0.1', ipSource: 'socket', headers: { 'x-api-key': '[redacted#1 key=k1]', accept: ['a', 'b'] }, identity: { consumer: 'acme', credentialType: 'api-key', credentialId: 'k1' }, claims: null }
        : null,
    ai:
      i % 6 === 0
        ? { provider: 'openai', model: 'gpt-x', servedModel: 'gpt-x-2', promptTokens: 12, completionTokens: 34, costMicroUsd: 56, ttftMs: i % 12 === 0 ? null : 78.5, stream: i % 12 !== 0 }
        : null,
    ...over,
  };
}

function opts(file: string, over: Partial<ThreadedCallLogWriterOptions> = {}): ThreadedCallLogWriterOptions {
  return {
    path: file,
    queueBytes: 8 * MIN_RING_BYTES,
    nice: 19,
    batchSize: 50,
    flushIntervalMs: 20,
    queueLimit: 100_000,
    overload: 'block',
    sampleRate: 1,
    retentionMs: null,
    busyTimeoutMs: 20,
    ...over,
  };
}

function assertAccounted(s: CallLogWriterStats): void {
  const dropped = s.dropped.drop_oldest + s.dropped.sample + s.dropped.write_failed;
  assert.equal(s.enqueued, s.written + s.queued + dropped, `accounting: ${JSON.stringify(s)}`);
}

/** Request ids in the file, in insertion order. */
function idsIn(file: string): string[] {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return db.prepare('SELECT request_id FROM calls ORDER BY id').all().map((r) => String(r['request_id']));
  } finally {
    db.close();
  }
}

/** Holds the file's write lock from another connection, as another process writing would. */
function lockWrites(file: string): () => void {
  const db = new DatabaseSync(file);
  db.exec('BEGIN IMMEDIATE');
  return () => {
    db.exec('ROLLBACK');
    db.close();
  };
}

void describe('ThreadedCallLogWriter', () => {
  void test('rows cross the thread exactly: what the thread stored reads back as what the in-loop store stores', () => {
    const viaThread = newLog();
    const direct = newLog();
    const entries = Array.from({ length: 600 }, (_, i) => entry(i));
    const w = new ThreadedCallLogWriter(opts(viaThread.file));
    for (const e of entries) w.enqueue(e);
    w.flush();
    direct.store.insertBatch(entries);
    const got = viaThread.store.query({ limit: 1000 });
    assert.equal(got.length, 600);
    assert.deepEqual(got, direct.store.query({ limit: 1000 }));
    // And the values themselves, not only agreement between two paths.
    const e42 = got.find((e) => e.requestId === 'r42');
    assert.deepEqual(e42, entries[42]);
    assert.deepEqual(w.stats(), { enqueued: 600, written: 600, dropped: { drop_oldest: 0, sample: 0, write_failed: 0 }, failedWrites: 0, queued: 0, blockedFlushes: 0 });
    w.close();
    viaThread.store.close();
    direct.store.close();
  });

  void test('the ring wraps many times and keeps order; a full ring makes `block` wait, losing nothing', () => {
    const { file, store } = newLog();
    // 1 MiB ring, rows of ~20 KB: the ring holds ~50 rows and wraps ~40 times.
    const w = new ThreadedCallLogWriter(opts(file, { queueBytes: MIN_RING_BYTES, batchSize: 10 }));
    const n = 2000;
    for (let i = 0; i < n; i++) w.enqueue(entry(i, { upstreamBody: 'x'.repeat(20_000 + (i % 97)) }));
    w.flush();
    const s = w.stats();
    assert.equal(s.written, n);
    assert.ok(s.blockedFlushes > 0, 'the ring filled up at least once');
    assert.deepEqual(idsIn(file), Array.from({ length: n }, (_, i) => `r${i}`));
    assert.equal(store.query({ requestId: 'r1999' })[0]?.upstreamBody?.length, 20_000 + (1999 % 97));
    w.close();
    store.close();
  });

  void test('queue_limit counts rows: drop_oldest evicts the oldest queued rows while the store is locked, and counts them', async () => {
    const { file, store } = newLog();
    const unlock = lockWrites(file);
    const errors: string[] = [];
    const w = new ThreadedCallLogWriter(opts(file, { overload: 'drop_oldest', queueLimit: 20, batchSize: 5, onError: (e) => errors.push(e.message) }));
    for (let i = 0; i < 100; i++) w.enqueue(entry(i));
    assert.throws(() => w.flush(), /database is locked/);
    const s = w.stats();
    assertAccounted(s);
    assert.ok(s.dropped.drop_oldest >= 100 - 20 - 5, `dropped ${s.dropped.drop_oldest}`);
    assert.ok(s.failedWrites >= 1);
    unlock();
    await sleep(100); // the thread retries on its interval
    w.flush();
    const after = w.stats();
    assertAccounted(after);
    assert.equal(after.queued, 0);
    const ids = idsIn(file);
    assert.equal(ids.length, after.written);
    assert.equal(ids.at(-1), 'r99', 'the newest row is kept');
    assert.ok(!ids.includes('r30'), 'an evicted row is not written');
    assert.ok(errors.some((m) => m.includes('database is locked')), 'the failure is reported through onError');
    w.close();
    store.close();
  });

  void test('flush() on a failing store answers with the store\'s error at once, not after the flush interval', () => {
    const { file, store } = newLog();
    const unlock = lockWrites(file);
    const w = new ThreadedCallLogWriter(opts(file, { flushIntervalMs: 60_000 }));
    w.enqueue(entry(0));
    assert.throws(() => w.flush(), /database is locked/);
    const t = performance.now();
    assert.throws(() => w.flush(), /database is locked/); // the thread now waits out its failure
    assert.ok(performance.now() - t < 5000, `second flush took ${Math.round(performance.now() - t)} ms`);
    unlock();
    w.flush();
    assert.deepEqual(idsIn(file), ['r0']);
    w.close();
    store.close();
  });

  void test('block with a failing store drops new rows as write_failed instead of stalling requests', () => {
    const { file, store } = newLog();
    const unlock = lockWrites(file);
    const w = new ThreadedCallLogWriter(opts(file, { overload: 'block', queueLimit: 10, batchSize: 5 }));
    w.enqueue(entry(0));
    assert.throws(() => w.flush(), /database is locked/); // the thread has now failed once
    const t = performance.now();
    for (let i = 1; i < 50; i++) w.enqueue(entry(i));
    assert.ok(performance.now() - t < 1000, 'enqueue did not wait for the failing store');
    const s = w.stats();
    assertAccounted(s);
    assert.ok(s.dropped.write_failed > 0);
    unlock();
    w.close();
    assertAccounted(w.stats());
    assert.equal(w.stats().queued, 0);
    store.close();
  });

  void test('sample keeps a share of new rows at queue_limit and counts every row it gives up', () => {
    const { file, store } = newLog();
    const unlock = lockWrites(file);
    let flip = 0;
    const w = new ThreadedCallLogWriter(opts(file, { overload: 'sample', sampleRate: 0.5, queueLimit: 10, batchSize: 5, random: () => (flip++ % 2 === 0 ? 0.1 : 0.9) }));
    for (let i = 0; i < 60; i++) w.enqueue(entry(i));
    unlock();
    w.close();
    const s = w.stats();
    assertAccounted(s);
    assert.ok(s.dropped.sample > 0);
    assert.equal(s.queued, 0);
    assert.equal(idsIn(file).length, s.written);
    store.close();
  });

  void test('an idle thread stays up: rows enqueued after quiet spells are still written', async () => {
    const { file, store } = newLog();
    const w = new ThreadedCallLogWriter(opts(file, { flushIntervalMs: 10 }));
    for (let i = 0; i < 3; i++) {
      await sleep(150); // many flush intervals with nothing to do
      w.enqueue(entry(i));
      w.flush();
    }
    assert.deepEqual(idsIn(file), ['r0', 'r1', 'r2']);
    w.close();
    store.close();
  });

  void test('rows short of a batch are written by the flush interval alone, without flush()', async () => {
    const { file, store } = newLog();
    const w = new ThreadedCallLogWriter(opts(file, { batchSize: 500, flushIntervalMs: 20 }));
    // Rows that arrive while a partial batch is being committed wait for the next interval.
    for (let i = 0; i < 40; i++) {
      w.enqueue(entry(i));
      if (i % 10 === 9) await sleep(5);
    }
    const deadline = Date.now() + 5000;
    while (idsIn(file).length < 40 && Date.now() < deadline) await sleep(20);
    assert.deepEqual(idsIn(file), Array.from({ length: 40 }, (_, i) => `r${i}`));
    w.close();
    store.close();
  });

  void test('close() writes everything queued, however long the flush interval', () => {
    const { file, store } = newLog();
    const w = new ThreadedCallLogWriter(opts(file, { flushIntervalMs: 3_600_000, batchSize: 500 }));
    for (let i = 0; i < 700; i++) w.enqueue(entry(i));
    w.close();
    assert.equal(idsIn(file).length, 700);
    assert.equal(w.stats().written, 700);
    assert.throws(() => w.enqueue(entry(1)), /after close/);
    w.close(); // idempotent
    store.close();
  });

  void test('close() on a store that stays locked counts what it could not write and throws, naming the cause', () => {
    const { file, store } = newLog();
    const unlock = lockWrites(file);
    const w = new ThreadedCallLogWriter(opts(file, { flushIntervalMs: 3_600_000 }));
    for (let i = 0; i < 30; i++) w.enqueue(entry(i));
    assert.throws(() => w.close(), /30 entries could not be written at close: .*database is locked/);
    const s = w.stats();
    assert.equal(s.dropped.write_failed, 30);
    assertAccounted(s);
    unlock();
    store.close();
  });

  void test('retention runs on the thread: rows older than retention are deleted at start', async () => {
    const { file, store } = newLog();
    store.insertBatch([entry(1, { ts: Date.now() - 10 * 86_400_000 }), entry(2, { ts: Date.now() })]);
    const w = new ThreadedCallLogWriter(opts(file, { retentionMs: 86_400_000 }));
    w.flush();
    for (let i = 0; i < 50 && idsIn(file).length !== 1; i++) await sleep(20);
    assert.deepEqual(idsIn(file), ['r2']);
    w.close();
    store.close();
  });

  void test('the log thread runs at the configured nice value (Linux)', { skip: process.platform !== 'linux' }, () => {
    // The ids of the threads at nice 19: a thread of an earlier test may end meanwhile, so a
    // new id is looked for, not a higher count.
    const niceThreads = (): string[] =>
      fs.readdirSync('/proc/self/task').filter((tid) => {
        let stat: string;
        try {
          stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
        } catch {
          return false; // a thread that ended since the directory was read
        }
        // Fields after the parenthesised name: state is field 3, nice is field 19 (proc(5)).
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]) === 19;
      });
    const before = new Set(niceThreads());
    const { file, store } = newLog();
    const w = new ThreadedCallLogWriter(opts(file, { nice: 19 }));
    w.enqueue(entry(1));
    w.flush(); // the thread is up and has set its priority before it answers
    const now = niceThreads();
    assert.ok(now.some((tid) => !before.has(tid)), `threads at nice 19: before ${[...before].join(',')}, now ${now.join(',')}`);
    w.close();
    store.close();
  });

  void test('options are checked, naming the bad one', () => {
    const { file, store } = newLog();
    assert.throws(() => new ThreadedCallLogWriter(opts(file, { queueBytes: 1000 })), /queueBytes must be an integer >= 1048576/);
    assert.throws(() => new ThreadedCallLogWriter(opts(file, { nice: 20 })), /nice must be an integer within 0\.\.19/);
    assert.throws(() => new ThreadedCallLogWriter(opts(file, { batchSize: 0 })), /batchSize/);
    store.close();
  });
});
