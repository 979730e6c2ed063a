import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { Worker } from 'node:worker_threads';
import {
  DEFAULT_QUERY_LIMIT,
  DELETE_CHUNK_ROWS,
  MAX_QUERY_LIMIT,
  MAX_ROWS_PER_INSERT,
  PAGE_SIZE,
  ROWS_PER_INSERT,
  SCHEMA_VERSION,
  SqliteCallLogStore,
} from './sqlite.ts';
import type { CallLogEntry, CallLogQuery } from './types.ts';
import type { TraceEntry } from '../pipeline/types.ts';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pinpoint-calllog-sqlite-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

let fileNo = 0;
function dbPath(): string {
  fileNo++;
  return path.join(root, `t${fileNo}`, 'calls.db');
}

function entry(over: Partial<CallLogEntry> = {}): CallLogEntry {
  return {
    ts: 1_700_000_000_000,
    requestId: 'req-1',
    clientIp: '203.0.113.7',
    consumer: 'acme',
    credentialId: 'k_live_1',
    route: 'orders',
    method: 'GET',
    host: 'api.example.com',
    path: '/orders/42',
    status: 200,
    code: null,
    layer: null,
    policy: null,
    latencyMs: 12.5,
    upstreamTarget: 'http://10.0.0.5:8080',
    attempts: 1,
    bytesIn: 0,
    bytesOut: 512,
    userAgent: 'curl/8.5.0',
    trace: [],
    upstreamBody: null,
    monitorDenied: false,
    replay: null,
    ai: null,
    ...over,
  };
}

function openRaw(p: string): DatabaseSync {
  return new DatabaseSync(p, { readOnly: true });
}


/** The process's OS threads, counted from /proc (Linux); undefined where there is no /proc. */
function threadCount(): number | undefined {
  return process.platform === 'linux' ? fs.readdirSync('/proc/self/task').length : undefined;
}

void describe('SqliteCallLogStore', () => {
  void test('creates the parent directory, WAL mode and schema version', () => {
    const p = dbPath();
    assert.equal(fs.existsSync(path.dirname(p)), false);
    const store = new SqliteCallLogStore(p);
    store.close();
    assert.equal(fs.existsSync(p), true);
    const raw = openRaw(p);
    try {
      assert.deepEqual({ ...raw.prepare('PRAGMA journal_mode').get() }, { journal_mode: 'wal' });
      assert.deepEqual({ ...raw.prepare('PRAGMA user_version').get() }, { user_version: SCHEMA_VERSION });
      assert.equal(SCHEMA_VERSION, 4);
      const indexes = raw
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'calls' ORDER BY name")
        .all()
        .map((r) => r['name']);
      assert.deepEqual(indexes, [
        'calls_code_ts',
        'calls_consumer_ts',
        'calls_model_ts',
        'calls_provider_ts',
        'calls_request_id',
        'calls_route_ts',
        'calls_ts',
      ]);
    } finally {
      raw.close();
    }
  });

  void test('a new file gets 16 KiB pages; an existing 4 KiB file keeps its pages and its rows', () => {
    const fresh = dbPath();
    new SqliteCallLogStore(fresh).close();
    const raw = openRaw(fresh);
    try {
      assert.deepEqual({ ...raw.prepare('PRAGMA page_size').get() }, { page_size: PAGE_SIZE });
    } finally {
      raw.close();
    }
    assert.equal(PAGE_SIZE, 16_384);

    const old = dbPath();
    fs.mkdirSync(path.dirname(old), { recursive: true });
    const made = new DatabaseSync(old);
    made.exec('PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE t (x)');
    made.close();
    const store = new SqliteCallLogStore(old);
    store.insertBatch([entry({ requestId: 'on-4k' })]);
    assert.deepEqual(store.query({}).map((e) => e.requestId), ['on-4k']);
    store.close();
    const raw4k = openRaw(old);
    try {
      assert.deepEqual({ ...raw4k.prepare('PRAGMA page_size').get() }, { page_size: 4096 });
    } finally {
      raw4k.close();
    }
  });

  void test('reopening an existing file keeps its rows and does not re-run migrations', () => {
    const p = dbPath();
    const a = new SqliteCallLogStore(p);
    a.insertBatch([entry({ requestId: 'kept' })]);
    a.close();
    const b = new SqliteCallLogStore(p);
    assert.deepEqual(
      b.query({}).map((e) => e.requestId),
      ['kept'],
    );
    b.close();
  });

  void test('round-trips every field', () => {
    const store = new SqliteCallLogStore(dbPath());
    const full = entry({
      ts: 1_700_000_123_456,
      requestId: 'req-full',
      clientIp: '2001:db8::1',
      consumer: 'acme',
      credentialId: 'k_read',
      route: 'orders',
      method: 'POST',
      host: 'api.example.com:8443',
      path: '/orders/%E2%9C%93?',
      status: 403,
      code: 'AUTH_KEY_MISSING',
      layer: 'gateway',
      policy: 'auth-main',
      latencyMs: 3.141592653589793,
      upstreamTarget: null,
      attempts: 3,
      bytesIn: 1_048_576,
      bytesOut: 2 ** 40,
      userAgent: 'Mozilla/5.0 "quoted" \u00e9',
      trace: [
        { policy: 'router', type: 'router', outcome: 'allow', rule: 'GET /orders/{id}', us: 4 },
        {
          policy: 'auth-main',
          type: 'api-key',
          outcome: 'deny',
          rule: 'no key',
          code: 'AUTH_KEY_MISSING',
          evidence: { accepted: ['header x-api-key'], n: 2, ok: false, none: null, s: 'x' },
          us: 17.25,
        },
      ],
      upstreamBody: '{"error":"nope"}\n\u0000tail',
      monitorDenied: true,
      replay: {
        v: 1,
        query: 'a=1&api_key=%5Bredacted%231%5D',
        peer: '::ffff:10.0.0.9',
        ipSource: 'x-forwarded-for',
        headers: { host: 'api.example.com:8443', 'x-api-key': '[redacted#1 key=k_read]', accept: ['a', 'b'] },
        identity: { consumer: 'acme', credentialType: 'jwt', credentialId: 'j-1' },
        claims: { sub: 'acme', aud: ['x', 'y'], exp: 1_700_000_999 },
        otherClaims: ['email'],
        body: { base64: 'aGk=', bytes: 2 },
      },
      ai: { provider: 'openai', model: 'gpt-x', servedModel: 'gpt-x-2026', promptTokens: 12, completionTokens: 34, costMicroUsd: 567, ttftMs: 89.5, stream: true },
    });
    const allNull = entry({
      ts: 1_700_000_000_001,
      requestId: 'req-null',
      consumer: null,
      credentialId: null,
      route: null,
      code: null,
      layer: null,
      policy: null,
      upstreamTarget: null,
      userAgent: null,
      upstreamBody: null,
      trace: [],
      monitorDenied: false,
      latencyMs: 0,
      attempts: 0,
    });
    store.insertBatch([full, allNull]);
    assert.deepEqual(store.query({ requestId: 'req-full' }), [full]);
    assert.deepEqual(store.query({ requestId: 'req-null' }), [allNull]);
    // Booleans come back as booleans, not 0/1.
    assert.equal(store.query({ requestId: 'req-full' })[0]?.monitorDenied, true);
    assert.equal(store.query({ requestId: 'req-null' })[0]?.monitorDenied, false);
    store.close();
  });

  void describe('query filters', () => {
    const store = new SqliteCallLogStore(dbPath());
    // [requestId, ts, route, consumer, status, code]
    const rows: [string, number, string | null, string | null, number, CallLogEntry['code']][] = [
      ['a', 1000, 'orders', 'acme', 200, null],
      ['b', 2000, 'orders', 'globex', 401, 'AUTH_KEY_MISSING'],
      ['c', 3000, 'users', 'acme', 404, 'ROUTE_NOT_FOUND'],
      ['d', 4000, 'users', null, 401, 'AUTH_KEY_MISSING'],
      ['e', 5000, 'orders', 'acme', 401, 'AUTH_KEY_MISSING'],
      ['f', 6000, null, 'acme', 404, 'ROUTE_NOT_FOUND'],
    ];
    store.insertBatch(
      rows.map(([requestId, ts, route, consumer, status, code]) =>
        entry({ requestId, ts, route, consumer, status, code }),
      ),
    );
    after(() => store.close());

    const cases: { name: string; q: CallLogQuery; want: string[] }[] = [
      { name: 'no filter, newest first', q: {}, want: ['f', 'e', 'd', 'c', 'b', 'a'] },
      { name: 'requestId', q: { requestId: 'c' }, want: ['c'] },
      { name: 'requestId unknown', q: { requestId: 'zzz' }, want: [] },
      { name: 'since is inclusive', q: { since: 4000 }, want: ['f', 'e', 'd'] },
      { name: 'until is exclusive', q: { until: 3000 }, want: ['b', 'a'] },
      { name: 'since + until window', q: { since: 2000, until: 5000 }, want: ['d', 'c', 'b'] },
      { name: 'route', q: { route: 'users' }, want: ['d', 'c'] },
      { name: 'consumer', q: { consumer: 'acme' }, want: ['f', 'e', 'c', 'a'] },
      { name: 'status', q: { status: 401 }, want: ['e', 'd', 'b'] },
      { name: 'code', q: { code: 'ROUTE_NOT_FOUND' }, want: ['f', 'c'] },
      { name: 'route + status', q: { route: 'orders', status: 401 }, want: ['e', 'b'] },
      { name: 'consumer + code + since', q: { consumer: 'acme', code: 'AUTH_KEY_MISSING', since: 1 }, want: ['e'] },
      {
        name: 'all filters at once',
        q: { requestId: 'e', since: 5000, until: 5001, route: 'orders', consumer: 'acme', status: 401, code: 'AUTH_KEY_MISSING' },
        want: ['e'],
      },
      { name: 'all filters, one mismatching', q: { requestId: 'e', route: 'users' }, want: [] },
      { name: 'filters + limit', q: { consumer: 'acme', limit: 2 }, want: ['f', 'e'] },
      { name: 'value is bound, not spliced into SQL', q: { route: "orders' OR '1'='1" }, want: [] },
      { name: 'consumer value with SQL comment', q: { consumer: 'acme --' }, want: [] },
    ];
    for (const c of cases) {
      void test(c.name, () => {
        assert.deepEqual(
          store.query(c.q).map((e) => e.requestId),
          c.want,
        );
      });
    }
  });

  void test('limit: default, cap and small values', () => {
    const store = new SqliteCallLogStore(dbPath());
    const n = MAX_QUERY_LIMIT + 200;
    store.insertBatch(Array.from({ length: n }, (_, i) => entry({ requestId: `r${i}`, ts: i })));
    const cases: { limit: number | undefined; want: number }[] = [
      { limit: undefined, want: DEFAULT_QUERY_LIMIT },
      { limit: 3, want: 3 },
      { limit: 0, want: 0 },
      { limit: -5, want: 0 },
      { limit: MAX_QUERY_LIMIT, want: MAX_QUERY_LIMIT },
      { limit: MAX_QUERY_LIMIT + 1, want: MAX_QUERY_LIMIT },
      { limit: 1_000_000, want: MAX_QUERY_LIMIT },
      { limit: Number.NaN, want: DEFAULT_QUERY_LIMIT },
    ];
    for (const c of cases) {
      const got = store.query(c.limit === undefined ? {} : { limit: c.limit });
      assert.equal(got.length, c.want, `limit ${String(c.limit)}`);
      if (got.length > 0) {
        // Newest first: the first row is the latest ts, the rows strictly descend.
        assert.equal(got[0]?.ts, n - 1);
        assert.equal(got.at(-1)?.ts, n - got.length);
      }
    }
    store.close();
  });

  void test('deleteBefore deletes only older rows, across several chunks', () => {
    const store = new SqliteCallLogStore(dbPath());
    const n = DELETE_CHUNK_ROWS * 2 + 345;
    const cutoff = DELETE_CHUNK_ROWS * 2 + 100; // more than two full chunks to delete
    store.insertBatch(Array.from({ length: n }, (_, i) => entry({ requestId: `r${i}`, ts: i })));
    assert.equal(store.deleteBefore(cutoff), cutoff);
    const left = store.query({ limit: MAX_QUERY_LIMIT });
    assert.equal(left.length, n - cutoff);
    assert.equal(left.at(-1)?.ts, cutoff); // the row at exactly `before` is kept
    assert.equal(store.deleteBefore(cutoff), 0);
    assert.equal(store.deleteBefore(Number.MAX_SAFE_INTEGER), n - cutoff);
    assert.deepEqual(store.query({}), []);
    store.close();
  });

  void test('a batch longer than one multi-row INSERT lands whole, in order, every field kept', () => {
    const store = new SqliteCallLogStore(dbPath());
    // Two full chunks and a remainder; every third row has an AI part so both shapes share chunks.
    const n = ROWS_PER_INSERT * 2 + 7;
    const batch = Array.from({ length: n }, (_, i) =>
      entry({
        ts: 1_700_000_000_000 + i,
        requestId: `req-${String(i).padStart(4, '0')}`,
        status: 200 + (i % 7),
        trace: [{ policy: 'k', type: 'api-key', outcome: 'allow', rule: `row ${i}`, us: i }],
        ai:
          i % 3 === 0
            ? { provider: 'p', model: `m${i}`, servedModel: 'm', promptTokens: i, completionTokens: 1, costMicroUsd: 2, ttftMs: null, stream: false }
            : null,
      }),
    );
    store.insertBatch(batch);
    const page = store.scan({ limit: 1000 });
    assert.deepEqual(page.entries, batch);
    // Row ids follow the batch order, across chunk boundaries.
    const raw = new DatabaseSync(store.path, { readOnly: true });
    const ids = raw.prepare('SELECT request_id FROM calls ORDER BY id').all().map((r) => r['request_id']);
    raw.close();
    assert.deepEqual(ids, batch.map((e) => e.requestId));
    store.close();
  });

  void test('rowsPerInsert: 1 writes the same rows; out-of-range values are refused before opening', () => {
    const store = new SqliteCallLogStore(dbPath(), { rowsPerInsert: 1 });
    const batch = Array.from({ length: 7 }, (_, i) => entry({ ts: 1_700_000_000_000 + i, requestId: `one-${i}` }));
    store.insertBatch(batch);
    assert.deepEqual(store.scan({}).entries, batch);
    store.close();
    for (const bad of [0, 1.5, MAX_ROWS_PER_INSERT + 1]) {
      const p = dbPath();
      assert.throws(() => new SqliteCallLogStore(p, { rowsPerInsert: bad }), /rowsPerInsert must be an integer within 1\.\.1000/);
      assert.equal(fs.existsSync(p), false);
    }
  });

  void test('a failing row inside a multi-row chunk rolls the whole batch back', () => {
    const store = new SqliteCallLogStore(dbPath());
    const bad = { ...entry({ requestId: 'bad' }), requestId: null } as unknown as CallLogEntry;
    const batch = Array.from({ length: ROWS_PER_INSERT + 3 }, (_, i) => entry({ requestId: `r${i}` }));
    batch[ROWS_PER_INSERT + 1] = bad; // in the remainder, after a full chunk went in
    assert.throws(() => store.insertBatch(batch), /NOT NULL/);
    batch[ROWS_PER_INSERT + 1] = entry({ requestId: 'fixed' });
    batch[3] = bad; // inside the first chunk
    assert.throws(() => store.insertBatch(batch), /NOT NULL/);
    assert.deepEqual(store.query({}), []);
    store.close();
  });

  void test('insertBatch is atomic: a failing row rolls back the whole batch and rethrows', () => {
    const store = new SqliteCallLogStore(dbPath());
    // requestId is NOT NULL: the third row fails after two rows were inserted in the transaction.
    const bad = { ...entry({ requestId: 'bad' }), requestId: null } as unknown as CallLogEntry;
    assert.throws(() => store.insertBatch([entry({ requestId: 'x1' }), entry({ requestId: 'x2' }), bad]), /NOT NULL/);
    assert.deepEqual(store.query({}), []);
    // The connection is usable afterwards (no transaction left open).
    store.insertBatch([entry({ requestId: 'ok' })]);
    assert.deepEqual(
      store.query({}).map((e) => e.requestId),
      ['ok'],
    );
    store.insertBatch([]);
    assert.equal(store.query({}).length, 1);
    store.close();
  });

  void test('open errors name the file path', () => {
    const notADir = path.join(root, 'plain-file');
    fs.writeFileSync(notADir, 'x');
    const garbage = path.join(root, 'garbage.db');
    fs.writeFileSync(garbage, Buffer.alloc(4096, 0x5a));
    const newer = path.join(root, 'newer', 'calls.db');
    fs.mkdirSync(path.dirname(newer));
    const raw = new DatabaseSync(newer);
    raw.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();

    const cases: { name: string; file: string; cause: RegExp }[] = [
      { name: 'parent is a regular file', file: path.join(notADir, 'calls.db'), cause: /ENOTDIR|EEXIST/ },
      { name: 'file is not a database', file: garbage, cause: /not a database/ },
      { name: 'schema from a newer build', file: newer, cause: /newer/ },
    ];
    for (const c of cases) {
      assert.throws(
        () => new SqliteCallLogStore(c.file),
        (err: unknown) => {
          assert.ok(err instanceof Error, c.name);
          assert.ok(err.message.includes(c.file), `${c.name}: message names ${c.file}: ${err.message}`);
          assert.match(err.message, c.cause, c.name);
          return true;
        },
      );
    }
  });

  void test('two instances on one file: interleaved writes and reads see each other (WAL)', () => {
    const p = dbPath();
    const a = new SqliteCallLogStore(p);
    const b = new SqliteCallLogStore(p);
    for (let i = 0; i < 10; i++) {
      a.insertBatch([entry({ requestId: `a${i}`, ts: i * 2 })]);
      b.insertBatch([entry({ requestId: `b${i}`, ts: i * 2 + 1 })]);
    }
    const fromA = a.query({ limit: 1000 }).map((e) => e.requestId);
    const fromB = b.query({ limit: 1000 }).map((e) => e.requestId);
    assert.equal(fromA.length, 20);
    assert.deepEqual(fromA, fromB);
    assert.deepEqual(fromA.slice(0, 2), ['b9', 'a9']);
    // A deletes, B sees it.
    assert.equal(a.deleteBefore(10), 10);
    assert.equal(b.query({ limit: 1000 }).length, 10);
    a.close();
    b.close();
  });

  void test('two writers in parallel threads on one file: every row lands (busy_timeout + WAL)', async () => {
    const p = dbPath();
    // Create the schema first so both workers race only on inserts, then again with a fresh file
    // below where they also race on creation and migration.
    const fresh = dbPath();
    new SqliteCallLogStore(p).close();
    const batches = 40;
    const perBatch = 50;
    const moduleUrl = new URL('./sqlite.ts', import.meta.url).href;
    const workerCode = `
      const { workerData, parentPort } = require('node:worker_threads');
      import(workerData.moduleUrl).then(({ SqliteCallLogStore }) => {
        const gate = new Int32Array(workerData.gate);
        Atomics.add(gate, 0, 1);
        while (Atomics.load(gate, 0) < 2) Atomics.wait(gate, 0, 1, 5);
        const store = new SqliteCallLogStore(workerData.path);
        for (let b = 0; b < workerData.batches; b++) {
          const batch = [];
          for (let i = 0; i < workerData.perBatch; i++) {
            batch.push({ ...workerData.template, requestId: workerData.name + '-' + b + '-' + i, ts: b });
          }
          store.insertBatch(batch);
        }
        store.close();
        parentPort.postMessage('ok');
      }).catch((err) => parentPort.postMessage('error: ' + (err && err.stack || err)));
    `;
    const run = (file: string, name: string, gate: SharedArrayBuffer): Promise<string> =>
      new Promise((resolve, reject) => {
        const w = new Worker(workerCode, {
          eval: true,
          workerData: { moduleUrl, path: file, name, batches, perBatch, template: entry(), gate },
        });
        w.once('message', (m: string) => resolve(m));
        w.once('error', reject);
      });
    for (const file of [p, fresh]) {
      const gate = new SharedArrayBuffer(4);
      const results = await Promise.all([run(file, 'w1', gate), run(file, 'w2', gate)]);
      assert.deepEqual(results, ['ok', 'ok']);
      const raw = openRaw(file);
      try {
        const counts = raw
          .prepare("SELECT substr(request_id, 1, 2) AS w, count(*) AS n FROM calls GROUP BY w ORDER BY w")
          .all()
          .map((r) => ({ ...r }));
        assert.deepEqual(counts, [
          { w: 'w1', n: batches * perBatch },
          { w: 'w2', n: batches * perBatch },
        ]);
      } finally {
        raw.close();
      }
    }
  });

  void test('close is idempotent', () => {
    const store = new SqliteCallLogStore(dbPath());
    store.close();
    assert.doesNotThrow(() => store.close());
  });
});

/** The calls table exactly as schema version 1 created it, to test the upgrade on a real old file. */
const V1_SCHEMA = `
  CREATE TABLE calls (
    id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, request_id TEXT NOT NULL, client_ip TEXT NOT NULL,
    consumer TEXT, credential_id TEXT, route TEXT, method TEXT NOT NULL, host TEXT NOT NULL,
    path TEXT NOT NULL, status INTEGER NOT NULL, code TEXT, layer TEXT, policy TEXT,
    latency_ms REAL NOT NULL, upstream_target TEXT, attempts INTEGER NOT NULL, bytes_in INTEGER NOT NULL,
    bytes_out INTEGER NOT NULL, user_agent TEXT, trace TEXT NOT NULL, upstream_body TEXT, monitor_denied INTEGER NOT NULL
  );
  CREATE INDEX calls_request_id ON calls (request_id);
  CREATE INDEX calls_ts ON calls (ts);
  CREATE INDEX calls_route_ts ON calls (route, ts);
  CREATE INDEX calls_consumer_ts ON calls (consumer, ts);
  CREATE INDEX calls_code_ts ON calls (code, ts);
  PRAGMA user_version = 1;
`;

function oldFile(extra = ''): string {
  const p = dbPath();
  fs.mkdirSync(path.dirname(p), { recursive: true });
  const raw = new DatabaseSync(p);
  raw.exec(V1_SCHEMA + extra);
  raw.exec(
    `INSERT INTO calls (ts, request_id, client_ip, method, host, path, status, latency_ms, attempts, bytes_in, bytes_out, trace, monitor_denied)
     VALUES (1700000000000, 'old-row', '192.0.2.1', 'GET', 'h', '/a', 200, 1.0, 1, 0, 0, '[]', 0)`,
  );
  raw.close();
  return p;
}

const AI = { provider: 'anthropic', model: 'claude-x', servedModel: 'claude-x', promptTokens: 5, completionTokens: 7, costMicroUsd: 42, ttftMs: null, stream: false } as const;

void describe('SqliteCallLogStore: schema 2 (replay records, AI columns)', () => {
  void test('a file written by schema 1 is upgraded in place: old rows read back without replay or AI part, new rows keep both', () => {
    const p = oldFile();
    const store = new SqliteCallLogStore(p);
    const [old] = store.query({ requestId: 'old-row' });
    assert.equal(old?.replay, null);
    assert.equal(old?.ai, null);
    const rec = { v: 1, query: '', peer: '192.0.2.9', ipSource: 'socket', headers: { host: 'h' }, identity: null, claims: null } as const;
    store.insertBatch([entry({ requestId: 'new-row', replay: rec, ai: AI })]);
    const [fresh] = store.query({ requestId: 'new-row' });
    assert.deepEqual(fresh?.replay, rec);
    assert.deepEqual(fresh?.ai, AI);
    store.close();
    const raw = openRaw(p);
    try {
      assert.deepEqual({ ...raw.prepare('PRAGMA user_version').get() }, { user_version: SCHEMA_VERSION });
      const cols = raw.prepare('PRAGMA table_info(calls)').all().map((r) => r['name']);
      for (const c of ['replay', 'provider', 'model', 'served_model', 'tokens_in', 'tokens_out', 'cost_micro_usd', 'ttft_ms', 'stream']) assert.ok(cols.includes(c), c);
    } finally {
      raw.close();
    }
  });

  void test('a schema-1 file that already has one of the new columns still upgrades (columns added only when missing)', () => {
    const p = oldFile('ALTER TABLE calls ADD COLUMN replay TEXT;');
    const store = new SqliteCallLogStore(p);
    store.insertBatch([entry({ requestId: 'n', ai: AI })]);
    assert.deepEqual(store.query({ requestId: 'n' })[0]?.ai, AI);
    store.close();
  });

  void test('AI entries are queried by provider and model through partial indexes', () => {
    const p = dbPath();
    const store = new SqliteCallLogStore(p);
    store.insertBatch([
      entry({ requestId: 'plain' }),
      entry({ requestId: 'a1', ai: AI }),
      entry({ requestId: 'o1', ai: { ...AI, provider: 'openai', model: 'gpt-y' } }),
    ]);
    assert.deepEqual(store.query({ provider: 'anthropic' }).map((e) => e.requestId), ['a1']);
    assert.deepEqual(store.query({ model: 'gpt-y' }).map((e) => e.requestId), ['o1']);
    assert.deepEqual(store.query({ provider: 'openai', model: 'claude-x' }), []);
    store.close();
    const raw = openRaw(p);
    try {
      const plan = (sql: string): string => raw.prepare(`EXPLAIN QUERY PLAN ${sql}`).all().map((r) => String(r['detail'])).join('; ');
      assert.match(plan("SELECT id FROM calls WHERE model = 'x' ORDER BY ts DESC"), /calls_model_ts/);
      assert.match(plan("SELECT id FROM calls WHERE provider = 'x' ORDER BY ts DESC"), /calls_provider_ts/);
    } finally {
      raw.close();
    }
  });

  void test('scan pages through a window oldest first, each entry once, however the rows were inserted', () => {
    const p = dbPath();
    const store = new SqliteCallLogStore(p);
    const base = 1_700_000_000_000;
    // Inserted out of time order, with ties on ts: slow requests are logged after fast later ones.
    const rows = Array.from({ length: 40 }, (_, i) => entry({ requestId: `s${i}`, ts: base + ((i * 7) % 13), route: i % 3 === 0 ? 'r0' : 'r1' }));
    store.insertBatch(rows);
    const collect = (q: { since?: number; until?: number; route?: string }, limit: number): string[] => {
      const out: string[] = [];
      let after: { ts: number; id: number } | undefined;
      for (let pages = 0; pages < 100; pages++) {
        const page = store.scan({ ...q, ...(after !== undefined ? { after } : {}), limit });
        out.push(...page.entries.map((e) => e.requestId));
        if (page.next === null) return out;
        after = page.next;
      }
      throw new Error('scan did not end');
    };
    const expected = (pred: (e: CallLogEntry) => boolean): string[] =>
      rows
        .map((e, i) => ({ e, i }))
        .filter(({ e }) => pred(e))
        .sort((a, b) => a.e.ts - b.e.ts || a.i - b.i)
        .map(({ e }) => e.requestId);
    assert.deepEqual(collect({}, 7), expected(() => true));
    assert.deepEqual(collect({ route: 'r0' }, 3), expected((e) => e.route === 'r0'));
    assert.deepEqual(collect({ since: base + 3, until: base + 9 }, 4), expected((e) => e.ts >= base + 3 && e.ts < base + 9));
    assert.equal(store.count({}), 40);
    assert.equal(store.count({ route: 'r0' }), expected((e) => e.route === 'r0').length);
    assert.equal(store.count({ since: base + 3, until: base + 9 }), expected((e) => e.ts >= base + 3 && e.ts < base + 9).length);
    store.close();
    const raw = openRaw(p);
    try {
      const plan = raw
        .prepare('EXPLAIN QUERY PLAN SELECT id FROM calls WHERE ts >= ? AND ts < ? AND (ts, id) > (?, ?) ORDER BY ts, id LIMIT 10')
        .all()
        .map((r) => String(r['detail']))
        .join('; ');
      // An index range, not a scan of the table and no sort step per page.
      assert.match(plan, /USING (COVERING )?INDEX calls_ts/);
      assert.doesNotMatch(plan, /TEMP B-TREE/);
    } finally {
      raw.close();
    }
  });
});

void describe('SqliteCallLogStore: WAL checkpoints on a worker thread', () => {
  void test('committed batches reach the database file without the writer checkpointing', async () => {
    const p = dbPath();
    const store = new SqliteCallLogStore(p);
    // Far below the writer's safety-net checkpoint (64 MiB), so only the worker can copy pages.
    store.insertBatch([entry()]);
    const before = fs.statSync(p).size;
    for (let b = 0; b < 20; b++) {
      store.insertBatch(Array.from({ length: 100 }, (_, i) => entry({ requestId: `req-${b}-${i}`, path: `/orders/${'x'.repeat(200)}` })));
    }
    assert.ok(fs.statSync(`${p}-wal`).size > 500_000, 'the rows are in the WAL');
    const deadline = Date.now() + 5000;
    // A checkpoint copies pages one by one: wait for the whole batch to have arrived.
    while (fs.statSync(p).size <= before + 500_000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(fs.statSync(p).size > before + 500_000, `database file grew from ${before} to ${fs.statSync(p).size}`);
    assert.equal(store.count({}), 2001);
    store.close();
  });

  void test('close() leaves only the database file, whenever it comes: the thread touches nothing after', async () => {
    // Regression: close() used to only ask the thread to stop; a thread still opening its
    // connection recreated calls.db in a directory being removed (ENOTEMPTY), and one still
    // running kept files open. Closing right away, before the thread opened, and after a tick.
    const n = threadCount();
    for (const waitMs of [0, 0, 5, 30, 1100]) {
      const p = dbPath();
      const store = new SqliteCallLogStore(p);
      store.insertBatch([entry()]);
      if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
      store.close();
      assert.deepEqual(fs.readdirSync(path.dirname(p)), ['calls.db'], `after ${waitMs} ms`);
      fs.rmSync(path.dirname(p), { recursive: true });
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(fs.existsSync(path.dirname(p)), false, `nothing recreated after ${waitMs} ms`);
    }
    // Every thread has ended (an ended worker's OS thread is joined shortly after it exits).
    if (n === undefined) return; // no /proc/self/task to count threads with (not Linux)
    const deadline = Date.now() + 5000;
    while ((threadCount() ?? 0) > n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok((threadCount() ?? 0) <= n, `${threadCount()} threads now, ${n} before`);
  });

  void test('a store that only reads starts no checkpoint thread', () => {
    const p = dbPath();
    new SqliteCallLogStore(p).close();
    const reader = new SqliteCallLogStore(p);
    const n = threadCount();
    reader.query({});
    assert.equal(threadCount(), n);
    reader.close();
  });
});

void describe('SqliteCallLogStore: schema 3 (partial code and consumer indexes)', () => {
  void test('queries by code and by consumer are served by the partial indexes', () => {
    const p = dbPath();
    const store = new SqliteCallLogStore(p);
    store.insertBatch([entry({ requestId: 'a', code: 'AUTH_KEY_MISSING', status: 401, consumer: null }), entry({ requestId: 'b' })]);
    assert.deepEqual(store.query({ code: 'AUTH_KEY_MISSING' }).map((e) => e.requestId), ['a']);
    assert.deepEqual(store.query({ consumer: 'acme' }).map((e) => e.requestId), ['b']);
    store.close();
    const raw = openRaw(p);
    try {
      const plan = (sql: string): string => raw.prepare(`EXPLAIN QUERY PLAN ${sql}`).all('x', 100).map((r) => String(r['detail'])).join(' | ');
      assert.match(plan('SELECT id FROM calls WHERE code = ? ORDER BY ts DESC LIMIT ?'), /USING (COVERING )?INDEX calls_code_ts/);
      assert.match(plan('SELECT id FROM calls WHERE consumer = ? ORDER BY ts DESC LIMIT ?'), /USING (COVERING )?INDEX calls_consumer_ts/);
      const sql = (name: string): string => String(raw.prepare("SELECT sql FROM sqlite_master WHERE name = ?").get(name)?.['sql']);
      assert.match(sql('calls_code_ts'), /WHERE code IS NOT NULL/);
      assert.match(sql('calls_consumer_ts'), /WHERE consumer IS NOT NULL/);
    } finally {
      raw.close();
    }
  });
});

void describe('SqliteCallLogStore: schema 4 (positional trace entries)', () => {
  const TRACE: readonly TraceEntry[] = [
    { policy: 'router', type: 'router', outcome: 'allow', rule: 'route orders (/orders)', us: 0 },
    { policy: 'ip', type: 'ip-rules', outcome: 'allow', rule: 'allow 10.0.0.0/8', evidence: { client_ip: '10.1.2.3' }, us: 3 },
    { policy: 'key', type: 'api-key', outcome: 'monitor', rule: 'no key', code: 'AUTH_KEY_MISSING', us: 1 },
    { policy: 'rbac', type: 'rbac', outcome: 'skip', rule: 'no rule for GET', us: 0 },
    { policy: 'scope', type: 'rbac', outcome: 'deny', rule: 'needs orders:write', code: 'RBAC_PERMISSION_MISSING', evidence: { required: 'orders:write', held: ['orders:read'], ratio: 1.5, none: null }, us: 12 },
  ];

  void test('a trace is stored as one array per entry and reads back as the entries it was', () => {
    const p = dbPath();
    const store = new SqliteCallLogStore(p);
    store.insertBatch([entry({ requestId: 't', trace: [...TRACE] })]);
    assert.deepEqual(store.query({ requestId: 't' })[0]?.trace, TRACE);
    store.close();
    const raw = openRaw(p);
    try {
      const stored = JSON.parse(String(raw.prepare("SELECT trace FROM calls WHERE request_id = 't'").get()?.['trace'])) as unknown[];
      assert.deepEqual(stored[1], ['ip', 'ip-rules', 'allow', 'allow 10.0.0.0/8', null, { client_ip: '10.1.2.3' }, 3]);
      assert.deepEqual(stored[2], ['key', 'api-key', 'monitor', 'no key', 'AUTH_KEY_MISSING', null, 1]);
    } finally {
      raw.close();
    }
  });

  const REPLAY = {
    v: 1,
    query: 'page=2&api_key=[redacted#1 key=k1]',
    peer: '192.0.2.7',
    ipSource: 'x-forwarded-for',
    headers: { host: 'api.example.com', 'x-forwarded-for': '198.51.100.4', 'set-cookie': ['a=1', 'b=2'], authorization: 'Bearer [redacted#2]' },
    identity: { consumer: 'acme', credentialType: 'jwt', credentialId: 'jti-9' },
    claims: { sub: 'u1', scope: 'orders:read', nested: { roles: ['admin'] } },
    otherClaims: ['email'],
    body: { base64: 'eyJhIjoxfQ==', bytes: 7 },
  } as const;

  void test('a replay record is stored positionally and reads back whole, optional parts included', () => {
    const p = dbPath();
    const store = new SqliteCallLogStore(p);
    const bare = { v: 1, query: '', peer: '127.0.0.1', ipSource: 'socket', headers: {}, identity: null, claims: null } as const;
    store.insertBatch([entry({ requestId: 'full', replay: REPLAY }), entry({ requestId: 'bare', replay: bare })]);
    assert.deepEqual(store.query({ requestId: 'full' })[0]?.replay, REPLAY);
    assert.deepEqual(store.query({ requestId: 'bare' })[0]?.replay, bare);
    store.close();
    const raw = openRaw(p);
    try {
      const stored = JSON.parse(String(raw.prepare("SELECT replay FROM calls WHERE request_id = 'full'").get()?.['replay'])) as unknown[];
      assert.ok(Array.isArray(stored));
      assert.deepEqual(stored[5], ['acme', 'jwt', 'jti-9']);
    } finally {
      raw.close();
    }
  });

  void test('rows written before schema 4 (trace entries and replay records as objects) still read back', () => {
    // An older file with a replay column, as schemas 2 and 3 wrote it.
    const p = oldFile('ALTER TABLE calls ADD COLUMN replay TEXT;');
    const raw = new DatabaseSync(p);
    raw.prepare("UPDATE calls SET trace = ?, replay = ? WHERE request_id = 'old-row'").run(JSON.stringify(TRACE), JSON.stringify(REPLAY));
    raw.close();
    const store = new SqliteCallLogStore(p);
    const [old] = store.query({ requestId: 'old-row' });
    assert.deepEqual(old?.trace, TRACE);
    assert.deepEqual(old?.replay, REPLAY);
    store.close();
  });
});
