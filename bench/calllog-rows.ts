/**
 * What one call-log row costs the thread that writes it, in isolation from the proxy:
 *   node bench/calllog-rows.ts
 *
 * Inserts rows shaped like the policies scenario's (bench/configs/policies.yaml: a two-entry trace
 * and a four-header replay record) through the real SqliteCallLogStore, in batches of 500 as the
 * writer sends them under load, into a fresh WAL file per run. Each round runs every
 * rows-per-statement setting once, in shuffled order, and the table shows the median CPU per row
 * of the process (all threads, so the checkpoint thread is counted) and the ratio to one row per
 * statement within each round.
 *
 * Environment (all optional):
 *   CALLLOG_ROWS=20000  CALLLOG_ROUNDS=5  CALLLOG_BATCH=500  CALLLOG_SETTINGS=1,16,50
 *
 * Wall-clock CPU on a shared host moves ±20 % between runs; for a count that does not, run one
 * setting under valgrind and compare the instruction totals of two row counts:
 *   CALLLOG_SETTINGS=50 CALLLOG_ROUNDS=1 CALLLOG_ROWS=5000 valgrind --tool=callgrind node bench/calllog-rows.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteCallLogStore } from '../src/calllog/sqlite.ts';
import type { CallLogEntry } from '../src/calllog/types.ts';
import { envInt, median } from './lib.ts';

const ROWS = envInt('CALLLOG_ROWS', 20_000, 1, 10_000_000);
const ROUNDS = envInt('CALLLOG_ROUNDS', 5, 1, 100);
const BATCH = envInt('CALLLOG_BATCH', 500, 1, 100_000);
const SETTINGS = (process.env['CALLLOG_SETTINGS'] ?? '1,16,50').split(',').map((s) => {
  const n = Number(s.trim());
  if (!Number.isInteger(n) || n < 1) throw new Error(`CALLLOG_SETTINGS: ${s} is not a positive integer`);
  return n;
});

function row(i: number): CallLogEntry {
  return {
    ts: Date.now(),
    // Time-ordered like the UUIDv7 request ids the gateway generates.
    requestId: `0193${(1e12 + i).toString(16)}-7abc-8def-0123456789ab`,
    clientIp: '127.0.0.1',
    consumer: 'bench',
    credentialId: 'bench-key',
    route: 'orders',
    method: 'POST',
    host: '127.0.0.1:19082',
    path: '/orders',
    status: 200,
    code: null,
    layer: null,
    policy: null,
    latencyMs: 1.234,
    upstreamTarget: 'http://127.0.0.1:19101',
    attempts: 1,
    bytesIn: 1024,
    bytesOut: 214,
    userAgent: null,
    trace: [
      { policy: 'allow-local', type: 'ip-rules', outcome: 'allow', rule: 'allow 127.0.0.0/8', evidence: { client_ip: '127.0.0.1', source: 'socket' }, us: 1 },
      { policy: 'key', type: 'api-key', outcome: 'allow', rule: 'key valid', evidence: { key_id: 'bench-key', consumer: 'bench', where: 'header x-api-key', scopes: ['orders:write'] }, us: 2 },
    ],
    upstreamBody: null,
    monitorDenied: false,
    replay: {
      v: 1,
      query: '',
      peer: '127.0.0.1',
      ipSource: 'socket',
      headers: { host: '127.0.0.1:19082', 'content-type': 'application/json', 'content-length': '1024', 'x-api-key': '[redacted#1 key=bench-key]' },
      identity: { consumer: 'bench', credentialType: 'api-key', credentialId: 'bench-key' },
      claims: null,
    },
    ai: null,
  };
}

const dir = mkdtempSync(join(tmpdir(), 'pinpoint-calllog-rows-'));
const rows = Array.from({ length: ROWS }, (_, i) => row(i));

/** CPU µs per row of inserting every row with `rowsPerInsert`, into a new file. */
function run(rowsPerInsert: number): number {
  const path = join(dir, `r${rowsPerInsert}.db`);
  const store = new SqliteCallLogStore(path, { rowsPerInsert });
  const c0 = process.cpuUsage();
  for (let i = 0; i < rows.length; i += BATCH) store.insertBatch(rows.slice(i, i + BATCH));
  store.close(); // waits for the checkpoint thread, whose CPU belongs to these rows
  const c = process.cpuUsage(c0);
  for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true });
  return (c.user + c.system) / rows.length;
}

/** The setting the others are divided by: one row per statement when it is run, else the first. */
const BASE = SETTINGS.includes(1) ? 1 : (SETTINGS[0] as number);
const perRow = new Map<number, number[]>(SETTINGS.map((k) => [k, []]));
const ratio = new Map<number, number[]>(SETTINGS.map((k) => [k, []]));
try {
  for (let r = 0; r < ROUNDS; r++) {
    const order = [...SETTINGS].sort(() => Math.random() - 0.5);
    const got = new Map<number, number>();
    for (const k of order) got.set(k, run(k));
    const base = got.get(BASE) ?? 1;
    for (const [k, us] of got) {
      perRow.get(k)?.push(us);
      ratio.get(k)?.push(us / base);
    }
    console.log(`round ${r + 1}/${ROUNDS}: ${order.map((k) => `${k} rows/statement ${(got.get(k) ?? 0).toFixed(2)} µs/row`).join(', ')}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

console.log(`\n${ROWS} rows in batches of ${BATCH}, median of ${ROUNDS} round(s):`);
console.log(`| rows per INSERT | CPU µs per row | ÷ ${BASE} row(s) per INSERT |`);
console.log('|---:|---:|---:|');
for (const k of SETTINGS) {
  console.log(`| ${k} | ${(median(perRow.get(k) ?? []) ?? Number.NaN).toFixed(2)} | ${(median(ratio.get(k) ?? []) ?? Number.NaN).toFixed(2)} |`);
}
