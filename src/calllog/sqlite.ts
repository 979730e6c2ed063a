/**
 * The embedded call log store: one SQLite file shared by every gateway worker process on the host.
 *
 * Design notes (why, with the SQLite docs that back each choice):
 * - WAL journal mode (https://www.sqlite.org/wal.html): readers do not block the writer and the
 *   writer does not block readers, so the console can query while workers insert. The mode is
 *   persistent in the file, so setting it on every open is a cheap no-op after the first.
 * - synchronous=NORMAL (https://www.sqlite.org/pragma.html#pragma_synchronous): in WAL mode this
 *   stays consistent after a crash and only loses the last transactions on power loss, which is an
 *   acceptable trade for a log; FULL would fsync on every batch commit.
 * - busy_timeout=5000 (https://www.sqlite.org/c3ref/busy_timeout.html): WAL still allows only one
 *   writer at a time, so a worker that finds the write lock held sleeps and retries for up to 5 s
 *   instead of failing at once with SQLITE_BUSY.
 * - Writes use BEGIN IMMEDIATE (https://www.sqlite.org/lang_transaction.html): it takes the write
 *   lock up front, where the busy handler applies. A deferred transaction that first reads and then
 *   tries to upgrade to a write can get SQLITE_BUSY without the busy handler being invoked.
 * - A store that writes checkpoints its WAL on a worker thread (./checkpointer.ts), started by the
 *   first insert, so readers (the CLI) never start one: about half of a row's cost on the request
 *   thread was the automatic checkpoint and its fsync.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { SQLInputValue, SQLOutputValue, StatementSync } from 'node:sqlite';
import type { Code, Layer } from '../errors/catalog.ts';
import type { Evidence, TraceEntry } from '../pipeline/types.ts';
import { Checkpointer, JOURNAL_SIZE_LIMIT, SAFETY_NET_BYTES } from './checkpointer.ts';
import type { CallLogAi, CallLogEntry, CallLogPage, CallLogQuery, CallLogScan, CallLogStore, ReplayRecord } from './types.ts';

/**
 * Page size of a new call log file. Measured with 50,000 logged rows of the benchmark scenarios
 * (batches of 500, file on this machine's disk, several runs, noisy host): 16 KiB pages cost the
 * request thread ~9.5 µs a row for a policies-scenario row (~0.7 KB of trace and replay) against
 * ~11.3 µs with SQLite's default 4 KiB, and 12–20 % less for full-chain rows (~1.7 KB): fewer
 * B-tree page splits and fewer WAL frames per commit across the table and its seven indexes.
 * 32 KiB measured no better.
 */
export const PAGE_SIZE = 16_384;

/** Milliseconds a connection waits for another process's lock before failing with SQLITE_BUSY. */
export const BUSY_TIMEOUT_MS = 5000;
export const DEFAULT_QUERY_LIMIT = 100;
export const MAX_QUERY_LIMIT = 1000;
export const DEFAULT_SCAN_PAGE = 500;
/**
 * Rows per DELETE statement in {@link SqliteCallLogStore.deleteBefore}. Each chunk is its own
 * transaction, so other workers can take the write lock between chunks.
 */
export const DELETE_CHUNK_ROWS = 5000;

/** Columns added by migration 1 -> 2. */
const ADDED_IN_2: readonly (readonly [string, string])[] = [
  ['replay', 'TEXT'],
  ['provider', 'TEXT'],
  ['model', 'TEXT'],
  ['served_model', 'TEXT'],
  ['tokens_in', 'INTEGER'],
  ['tokens_out', 'INTEGER'],
  ['cost_micro_usd', 'INTEGER'],
  ['ttft_ms', 'REAL'],
  ['stream', 'INTEGER'],
];

/**
 * Schema migrations, index i upgrades user_version i to i + 1. Append only: a released migration
 * is never edited, because files written by older versions already ran it. A step is SQL, or a
 * function for steps that must look at the file first.
 */
const MIGRATIONS: readonly (string | ((db: DatabaseSync) => void))[] = [
  // 0 -> 1: the calls table and the indexes behind CallLogQuery's filters (each filter is paired
  // with ts because every query orders by ts DESC).
  `
  CREATE TABLE IF NOT EXISTS calls (
    id               INTEGER PRIMARY KEY,
    ts               INTEGER NOT NULL,
    request_id       TEXT    NOT NULL,
    client_ip        TEXT    NOT NULL,
    consumer         TEXT,
    credential_id    TEXT,
    route            TEXT,
    method           TEXT    NOT NULL,
    host             TEXT    NOT NULL,
    path             TEXT    NOT NULL,
    status           INTEGER NOT NULL,
    code             TEXT,
    layer            TEXT,
    policy           TEXT,
    latency_ms       REAL    NOT NULL,
    upstream_target  TEXT,
    attempts         INTEGER NOT NULL,
    bytes_in         INTEGER NOT NULL,
    bytes_out        INTEGER NOT NULL,
    user_agent       TEXT,
    trace            TEXT    NOT NULL,
    upstream_body    TEXT,
    monitor_denied   INTEGER NOT NULL
  );
  -- Every index costs each logged request an insert (status, a low-cardinality filter, is served by
  -- the ts range plus a filter). request_id stays cheap because generated ids are time-ordered
  -- UUIDv7 (src/server/request-id.ts), so its index grows at the end.
  CREATE INDEX IF NOT EXISTS calls_request_id ON calls (request_id);
  CREATE INDEX IF NOT EXISTS calls_ts ON calls (ts);
  CREATE INDEX IF NOT EXISTS calls_route_ts ON calls (route, ts);
  CREATE INDEX IF NOT EXISTS calls_consumer_ts ON calls (consumer, ts);
  CREATE INDEX IF NOT EXISTS calls_code_ts ON calls (code, ts);
  `,
  // 1 -> 2: the replay record (JSON) and the AI columns, all nullable so existing rows stay valid.
  // ALTER TABLE ADD COLUMN is O(1) in SQLite (the row format tolerates missing trailing columns),
  // so upgrading a large log does not rewrite it. Columns are added only when missing, so a file
  // someone already patched by hand still upgrades.
  (db) => {
    const have = new Set(db.prepare('PRAGMA table_info(calls)').all().map((r) => String(r['name'])));
    for (const [name, type] of ADDED_IN_2) {
      // Names and types are this module's constants, never input.
      if (!have.has(name)) db.exec(`ALTER TABLE calls ADD COLUMN ${name} ${type}`);
    }
    // Partial indexes: rows without an AI part (most of them) cost these indexes nothing.
    db.exec(`
      CREATE INDEX IF NOT EXISTS calls_provider_ts ON calls (provider, ts) WHERE provider IS NOT NULL;
      CREATE INDEX IF NOT EXISTS calls_model_ts ON calls (model, ts) WHERE model IS NOT NULL;
    `);
  },
  // 2 -> 3: the code and consumer indexes become partial. Most rows are allowed calls (code NULL)
  // and many are anonymous (consumer NULL); such rows now cost these indexes nothing, about a
  // microsecond each per logged call. Queries are unaffected: `code = ?` and `consumer = ?` imply
  // IS NOT NULL, which is when SQLite uses a partial index (https://www.sqlite.org/partialindex.html
  // §3). Rebuilding them is the one cost of this step, paid once when an older log is opened.
  `
  DROP INDEX IF EXISTS calls_code_ts;
  CREATE INDEX calls_code_ts ON calls (code, ts) WHERE code IS NOT NULL;
  DROP INDEX IF EXISTS calls_consumer_ts;
  CREATE INDEX calls_consumer_ts ON calls (consumer, ts) WHERE consumer IS NOT NULL;
  `,
  // 3 -> 4: new rows store their trace entries and replay records positionally (storedTrace,
  // storedReplay). Nothing is rewritten: the reader takes both forms. The version is bumped so
  // that an older build, which reads only the object form, refuses the file rather than misread it.
  'SELECT 1',
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Column order shared by INSERT and SELECT; keep in step with entryParams/fromRow. */
const COLUMNS = [
  'ts',
  'request_id',
  'client_ip',
  'consumer',
  'credential_id',
  'route',
  'method',
  'host',
  'path',
  'status',
  'code',
  'layer',
  'policy',
  'latency_ms',
  'upstream_target',
  'attempts',
  'bytes_in',
  'bytes_out',
  'user_agent',
  'trace',
  'upstream_body',
  'monitor_denied',
  'replay',
  'provider',
  'model',
  'served_model',
  'tokens_in',
  'tokens_out',
  'cost_micro_usd',
  'ttft_ms',
  'stream',
] as const;

function readUserVersion(db: DatabaseSync): number {
  const row = db.prepare('PRAGMA user_version').get();
  return Number(row?.['user_version'] ?? 0);
}

/**
 * Brings the schema up to {@link SCHEMA_VERSION}. Several workers may open a fresh file at the
 * same moment, so each step runs in a write transaction and re-reads user_version inside it: the
 * loser of the race sees the winner's version and does nothing.
 */
export function migrate(db: DatabaseSync): void {
  for (;;) {
    const seen = readUserVersion(db);
    if (seen > SCHEMA_VERSION) {
      throw new Error(
        `schema version ${seen} is newer than this build supports (${SCHEMA_VERSION}); upgrade Pinpoint`,
      );
    }
    if (seen === SCHEMA_VERSION) return;
    db.exec('BEGIN IMMEDIATE');
    try {
      const version = readUserVersion(db);
      if (version < SCHEMA_VERSION) {
        const step = MIGRATIONS[version];
        if (step === undefined) throw new Error(`no migration from schema version ${version}`);
        if (typeof step === 'string') db.exec(step);
        else step(db);
        // PRAGMA does not accept bound parameters; the value is our own integer, not input.
        db.exec(`PRAGMA user_version = ${version + 1}`);
      }
      db.exec('COMMIT');
    } catch (err) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw err;
    }
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function text(row: Record<string, SQLOutputValue>, col: string): string {
  const v = row[col];
  if (typeof v !== 'string') throw new Error(`call log row: column ${col} is not text`);
  return v;
}

function textOrNull(row: Record<string, SQLOutputValue>, col: string): string | null {
  const v = row[col];
  if (v === null || v === undefined) return null;
  if (typeof v !== 'string') throw new Error(`call log row: column ${col} is not text`);
  return v;
}

function num(row: Record<string, SQLOutputValue>, col: string): number {
  const v = row[col];
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  throw new Error(`call log row: column ${col} is not a number`);
}

function numOrNull(row: Record<string, SQLOutputValue>, col: string): number | null {
  const v = row[col];
  return v === null || v === undefined ? null : num(row, col);
}

/**
 * Rows per multi-row INSERT in {@link SqliteCallLogStore.insertBatch}; a batch's remainder goes
 * one row per statement. The per-statement work (reset, clearing 31 bindings, the result object
 * node:sqlite builds for each run()) is then paid once per 50 rows. Counted with valgrind
 * --tool=callgrind over bench/calllog-rows.ts (instructions of all threads, checkpoints included,
 * rows 5,001 to 10,000 of policies-scenario rows in batches of 500): 90.9k instructions a row with
 * one-row statements, 77.2k with 50 rows a statement. 50 × 31 = 1,550 bound parameters, well
 * inside SQLITE_MAX_VARIABLE_NUMBER (32,766 since 3.32: https://www.sqlite.org/limits.html). A
 * multi-row VALUES inserts its rows in order (https://www.sqlite.org/lang_insert.html), so row
 * ids still follow the queue.
 */
export const ROWS_PER_INSERT = 50;
/** Bound on the `rowsPerInsert` option: 1,000 × 31 parameters stays inside SQLite's limit. */
export const MAX_ROWS_PER_INSERT = 1000;

export interface SqliteCallLogStoreOptions {
  /** Hears of failed background checkpoints (default: a process warning). */
  readonly onCheckpointError?: (message: string) => void;
  /** Rows per multi-row INSERT (default {@link ROWS_PER_INSERT}); 1 is one statement per row. */
  readonly rowsPerInsert?: number;
  /** How long a statement waits for another connection's lock (default {@link BUSY_TIMEOUT_MS}). */
  readonly busyTimeoutMs?: number;
}

function insertSql(rows: number): string {
  const row = `(${COLUMNS.map(() => '?').join(', ')})`;
  return `INSERT INTO calls (${COLUMNS.join(', ')}) VALUES ${Array.from({ length: rows }, () => row).join(', ')}`;
}


/** Positions of the two JSON columns in a row of {@link entryParams}. */
export const TRACE_COLUMN = COLUMNS.indexOf('trace');
export const REPLAY_COLUMN = COLUMNS.indexOf('replay');

/** Appends one entry's values to `out`, in {@link COLUMNS} order. */
function appendParams(out: SQLInputValue[], e: CallLogEntry): void {
  for (const v of entryParams(e)) out.push(v);
}

/**
 * One entry's row values in {@link COLUMNS} order (the trace and replay record as JSON text), as
 * one array literal: the request thread makes one per logged call (src/calllog/row-codec.ts), and
 * 31 pushes onto an empty array grew it three times.
 */
export function entryParams(e: CallLogEntry): SQLInputValue[] {
  const ai = e.ai ?? null;
  return [
    e.ts,
    e.requestId,
    e.clientIp,
    e.consumer,
    e.credentialId,
    e.route,
    e.method,
    e.host,
    e.path,
    e.status,
    e.code,
    e.layer,
    e.policy,
    e.latencyMs,
    e.upstreamTarget,
    e.attempts,
    e.bytesIn,
    e.bytesOut,
    e.userAgent,
    traceJson(e.trace),
    e.upstreamBody,
    e.monitorDenied ? 1 : 0,
    // Serialised here, in the batch write, not when the response closed.
    e.replay === undefined || e.replay === null ? null : replayJson(e.replay),
    ai?.provider ?? null,
    ai?.model ?? null,
    ai?.servedModel ?? null,
    ai?.promptTokens ?? null,
    ai?.completionTokens ?? null,
    ai?.costMicroUsd ?? null,
    ai?.ttftMs ?? null,
    ai === null ? null : ai.stream ? 1 : 0,
  ];
}

/**
 * The replay column, positional like the trace (see traceJson), from schema 4:
 * `[1, query, peer, ipSource, [name, value, …], [consumer, credentialType, credentialId] | null,
 * claims | null, otherClaims | null, [base64, bytes] | null]`. Counted under callgrind on the
 * policies scenario's record: 8.5k instructions against 11.4k for the object form. Older rows
 * hold the object; storedReplay reads both.
 */
export function replayJson(r: ReplayRecord): string {
  const headers: (string | readonly string[])[] = [];
  const h = r.headers;
  for (const name in h) headers.push(name, h[name] as string | readonly string[]);
  const id = r.identity;
  return JSON.stringify([
    r.v,
    r.query,
    r.peer,
    r.ipSource,
    headers,
    id === null ? null : [id.consumer, id.credentialType, id.credentialId],
    r.claims,
    r.otherClaims ?? null,
    r.body === undefined ? null : [r.body.base64, r.body.bytes],
  ]);
}

type StoredReplay = [1, string, string, ReplayRecord['ipSource'], (string | string[])[], [string, string, string] | null, Record<string, unknown> | null, string[] | null, [string, number] | null];

/** A parsed replay column back as the record, from either form (see replayJson). */
export function storedReplay(parsed: unknown): ReplayRecord {
  if (!Array.isArray(parsed)) return parsed as ReplayRecord; // a row from before schema version 4
  const [v, query, peer, ipSource, flat, id, claims, otherClaims, body] = parsed as StoredReplay;
  const headers: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) headers[flat[i] as string] = flat[i + 1] as string | string[];
  return {
    v,
    query,
    peer,
    ipSource,
    headers,
    identity: id === null ? null : { consumer: id[0], credentialType: id[1], credentialId: id[2] },
    claims,
    ...(otherClaims !== null ? { otherClaims } : {}),
    ...(body !== null ? { body: { base64: body[0], bytes: body[1] } } : {}),
  };
}

function replayOf(row: Record<string, SQLOutputValue>): ReplayRecord | null {
  const raw = textOrNull(row, 'replay');
  if (raw === null) return null;
  try {
    // Only this module writes the column, from a ReplayRecord.
    return storedReplay(JSON.parse(raw));
  } catch (err) {
    throw new Error(`call log row ${num(row, 'id')}: replay is not valid JSON: ${errorMessage(err)}`, { cause: err });
  }
}

function aiOf(row: Record<string, SQLOutputValue>): CallLogAi | null {
  const provider = textOrNull(row, 'provider');
  if (provider === null) return null;
  return {
    provider,
    model: textOrNull(row, 'model') ?? '',
    servedModel: textOrNull(row, 'served_model') ?? '',
    promptTokens: numOrNull(row, 'tokens_in') ?? 0,
    completionTokens: numOrNull(row, 'tokens_out') ?? 0,
    costMicroUsd: numOrNull(row, 'cost_micro_usd') ?? 0,
    ttftMs: numOrNull(row, 'ttft_ms'),
    stream: numOrNull(row, 'stream') === 1,
  };
}

/**
 * The trace column: a JSON array with one `[policy, type, outcome, rule, code, evidence, us]`
 * array per entry (code and evidence null when absent). Positional, not objects keyed by name:
 * V8's JSON.stringify walks an object's properties one descriptor at a time, and the trace is
 * serialised on the request thread for every logged call. Counted under callgrind on the
 * policies scenario's three-entry trace: 9.2k instructions against 14.0k for the objects
 * (docs/benchmarks.md). Rows written before schema version 4 hold objects; storedTrace reads both.
 */
export function traceJson(trace: readonly TraceEntry[]): string {
  const rows: unknown[] = new Array(trace.length);
  for (let i = 0; i < trace.length; i++) {
    const e = trace[i] as TraceEntry;
    rows[i] = [e.policy, e.type, e.outcome, e.rule, e.code ?? null, e.evidence ?? null, e.us];
  }
  return JSON.stringify(rows);
}

/** A parsed trace column back as entries, from either form (see traceJson). */
export function storedTrace(parsed: unknown): TraceEntry[] {
  if (!Array.isArray(parsed)) throw new Error('not an array');
  return parsed.map((e: unknown): TraceEntry => {
    if (!Array.isArray(e)) return e as TraceEntry; // a row from before schema version 4
    const [policy, type, outcome, rule, code, evidence, us] = e as [string, string, TraceEntry['outcome'], string, Code | null, Evidence | null, number];
    return { policy, type, outcome, rule, ...(code !== null ? { code } : {}), ...(evidence !== null ? { evidence } : {}), us };
  });
}

function fromRow(row: Record<string, SQLOutputValue>): CallLogEntry {
  let trace: TraceEntry[];
  try {
    trace = storedTrace(JSON.parse(text(row, 'trace')));
  } catch (err) {
    throw new Error(`call log row ${num(row, 'id')}: trace is not valid JSON: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  return {
    ts: num(row, 'ts'),
    requestId: text(row, 'request_id'),
    clientIp: text(row, 'client_ip'),
    consumer: textOrNull(row, 'consumer'),
    credentialId: textOrNull(row, 'credential_id'),
    route: textOrNull(row, 'route'),
    method: text(row, 'method'),
    host: text(row, 'host'),
    path: text(row, 'path'),
    status: num(row, 'status'),
    // Only this module writes these columns, from values already typed as Code / Layer.
    code: textOrNull(row, 'code') as Code | null,
    layer: textOrNull(row, 'layer') as Layer | null,
    policy: textOrNull(row, 'policy'),
    latencyMs: num(row, 'latency_ms'),
    upstreamTarget: textOrNull(row, 'upstream_target'),
    attempts: num(row, 'attempts'),
    bytesIn: num(row, 'bytes_in'),
    bytesOut: num(row, 'bytes_out'),
    userAgent: textOrNull(row, 'user_agent'),
    trace,
    upstreamBody: textOrNull(row, 'upstream_body'),
    monitorDenied: num(row, 'monitor_denied') !== 0,
    replay: replayOf(row),
    ai: aiOf(row),
  };
}

/** Clamps a requested limit: default when absent or not a number, then into [0, MAX_QUERY_LIMIT]. */
export function effectiveLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return DEFAULT_QUERY_LIMIT;
  return Math.min(Math.max(Math.trunc(limit), 0), MAX_QUERY_LIMIT);
}

export class SqliteCallLogStore implements CallLogStore {
  readonly path: string;
  readonly #db: DatabaseSync;
  readonly #insert: StatementSync;
  /** `#rowsPerInsert` rows at once. */
  readonly #insertMany: StatementSync;
  readonly #rowsPerInsert: number;
  readonly #busyTimeoutMs: number;
  readonly #deleteChunk: StatementSync;
  /** Prepared SELECTs keyed by which filters are present (at most 2^9 shapes). */
  readonly #queries = new Map<string, StatementSync>();
  #closed = false;
  #checkpointer: Checkpointer | undefined;
  readonly #onCheckpointError: (message: string) => void;

  /**
   * Opens (creating if needed) the database file at `path`; ':memory:' gives a private store.
   */
  constructor(path: string, opts: SqliteCallLogStoreOptions = {}) {
    const rowsPerInsert = opts.rowsPerInsert ?? ROWS_PER_INSERT;
    if (!Number.isInteger(rowsPerInsert) || rowsPerInsert < 1 || rowsPerInsert > MAX_ROWS_PER_INSERT) {
      throw new RangeError(`call log: rowsPerInsert must be an integer within 1..${MAX_ROWS_PER_INSERT}, got ${rowsPerInsert}`);
    }
    this.#rowsPerInsert = rowsPerInsert;
    const busyTimeoutMs = opts.busyTimeoutMs ?? BUSY_TIMEOUT_MS;
    if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0) throw new RangeError(`call log: busyTimeoutMs must be an integer >= 0, got ${busyTimeoutMs}`);
    this.#busyTimeoutMs = busyTimeoutMs;
    this.path = path;
    this.#onCheckpointError = opts.onCheckpointError ?? ((m) => process.emitWarning(`call log ${path}: ${m}`));
    let db: DatabaseSync | undefined;
    try {
      if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
      // The `timeout` option sets the busy timeout before the first statement runs, so even the
      // journal_mode and migration statements below wait for a lock held by another worker.
      db = new DatabaseSync(path, { timeout: busyTimeoutMs });
      db.exec(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
      // Only a new, empty file takes a page size (an existing one keeps its own until VACUUM), and
      // it must be set before WAL mode is: https://www.sqlite.org/pragma.html#pragma_page_size.
      db.exec(`PRAGMA page_size = ${PAGE_SIZE}`);
      db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA synchronous = NORMAL');
      migrate(db);
      this.#insert = db.prepare(insertSql(1));
      this.#insertMany = db.prepare(insertSql(rowsPerInsert));
      // Chunked by rowid so each statement holds the write lock only briefly.
      this.#deleteChunk = db.prepare(
        'DELETE FROM calls WHERE id IN (SELECT id FROM calls WHERE ts < ? LIMIT ?)',
      );
    } catch (err) {
      try {
        db?.close();
      } catch {
        // Already failing; the open error below is the one worth reporting.
      }
      throw new Error(`call log: cannot open SQLite database at ${path}: ${errorMessage(err)}`, {
        cause: err,
      });
    }
    this.#db = db;
  }

  insertBatch(entries: readonly CallLogEntry[]): void {
    this.#insertRows(entries.length, (out, i) => appendParams(out, entries[i] as CallLogEntry));
  }

  /**
   * Writes rows already in {@link COLUMNS} order, as {@link entryParams} makes them: the log
   * thread receives rows encoded, not entries (./log-thread.ts).
   */
  insertParamRows(rows: readonly (readonly SQLInputValue[])[]): void {
    this.#insertRows(rows.length, (out, i) => {
      for (const v of rows[i] as readonly SQLInputValue[]) out.push(v);
    });
  }

  /** One transaction for `n` rows; `fill(out, i)` appends row i's values to `out`. */
  #insertRows(n: number, fill: (out: SQLInputValue[], i: number) => void): void {
    if (n === 0) return;
    if (this.#checkpointer === undefined && this.path !== ':memory:') this.#startCheckpoints();
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const params: SQLInputValue[] = [];
      let i = 0;
      const k = this.#rowsPerInsert;
      for (; k > 1 && i + k <= n; i += k) {
        params.length = 0;
        for (let j = i; j < i + k; j++) fill(params, j);
        this.#insertMany.run(...params);
      }
      for (; i < n; i++) {
        params.length = 0;
        fill(params, i);
        this.#insert.run(...params);
      }
      this.#db.exec('COMMIT');
    } catch (err) {
      // A failed COMMIT (e.g. SQLITE_BUSY) can leave the transaction open; a failed statement
      // inside it may already have ended it. Roll back only if one is still active.
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw err;
    }
  }

  query(q: CallLogQuery): CallLogEntry[] {
    const where: string[] = [];
    const params: SQLInputValue[] = [];
    const add = (clause: string, value: SQLInputValue | undefined): void => {
      if (value === undefined) return;
      where.push(clause);
      params.push(value);
    };
    add('request_id = ?', q.requestId);
    add('ts >= ?', q.since);
    add('ts < ?', q.until);
    add('route = ?', q.route);
    add('consumer = ?', q.consumer);
    add('status = ?', q.status);
    add('code = ?', q.code);
    add('monitor_denied = ?', q.monitorDenied === undefined ? undefined : q.monitorDenied ? 1 : 0);
    add('provider = ?', q.provider);
    add('model = ?', q.model);
    const key = where.join(' AND ');
    let stmt = this.#queries.get(key);
    if (stmt === undefined) {
      // Only fixed clause text is concatenated; every value is a bound parameter.
      stmt = this.#db.prepare(
        `SELECT id, ${COLUMNS.join(', ')} FROM calls` +
          (where.length > 0 ? ` WHERE ${key}` : '') +
          // id breaks ties between rows with the same ts: newest insert first.
          ' ORDER BY ts DESC, id DESC LIMIT ?',
      );
      this.#queries.set(key, stmt);
    }
    params.push(effectiveLimit(q.limit));
    return stmt.all(...params).map(fromRow);
  }

  scan(q: CallLogScan): CallLogPage {
    const limit = q.limit === undefined || !Number.isFinite(q.limit) ? DEFAULT_SCAN_PAGE : Math.min(Math.max(Math.trunc(q.limit), 1), MAX_QUERY_LIMIT);
    const route = q.route !== undefined;
    const key = `scan${route ? ':route' : ''}`;
    let stmt = this.#queries.get(key);
    if (stmt === undefined) {
      // Keyset pagination on (ts, id): served by calls_ts (or calls_route_ts), whose entries carry
      // the rowid, so each page is an index range scan however deep into the window it starts,
      // unlike OFFSET, which walks every skipped row again.
      stmt = this.#db.prepare(
        `SELECT id, ${COLUMNS.join(', ')} FROM calls WHERE ${route ? 'route = ? AND ' : ''}ts >= ? AND ts < ? AND (ts, id) > (?, ?) ORDER BY ts, id LIMIT ?`,
      );
      this.#queries.set(key, stmt);
    }
    const params: SQLInputValue[] = route ? [q.route ?? null] : [];
    params.push(q.since ?? Number.MIN_SAFE_INTEGER, q.until ?? Number.MAX_SAFE_INTEGER, q.after?.ts ?? Number.MIN_SAFE_INTEGER, q.after?.id ?? 0, limit);
    const rows = stmt.all(...params);
    const entries = rows.map(fromRow);
    const last = rows.at(-1);
    return { entries, next: rows.length === limit && last !== undefined ? { ts: num(last, 'ts'), id: num(last, 'id') } : null };
  }

  count(q: Omit<CallLogScan, 'after' | 'limit'>): number {
    const route = q.route !== undefined;
    const stmt = this.#db.prepare(`SELECT count(*) AS n FROM calls WHERE ${route ? 'route = ? AND ' : ''}ts >= ? AND ts < ?`);
    const params: SQLInputValue[] = route ? [q.route ?? null] : [];
    params.push(q.since ?? Number.MIN_SAFE_INTEGER, q.until ?? Number.MAX_SAFE_INTEGER);
    const row = stmt.get(...params);
    return row === undefined ? 0 : num(row, 'n');
  }

  deleteBefore(before: number): number {
    let total = 0;
    for (;;) {
      const n = Number(this.#deleteChunk.run(before, DELETE_CHUNK_ROWS).changes);
      total += n;
      if (n < DELETE_CHUNK_ROWS) return total;
    }
  }

  #startCheckpoints(): void {
    // wal_autocheckpoint counts pages, and an older file may still have 4 KiB ones.
    const pageSize = Number(this.#db.prepare('PRAGMA page_size').get()?.['page_size'] ?? PAGE_SIZE);
    // PRAGMA takes no bound parameters; the values are this module's numbers.
    this.#db.exec(`PRAGMA wal_autocheckpoint = ${Math.ceil(SAFETY_NET_BYTES / pageSize)}`);
    this.#db.exec(`PRAGMA journal_size_limit = ${JOURNAL_SIZE_LIMIT}`);
    this.#checkpointer = new Checkpointer(this.path, this.#busyTimeoutMs, this.#onCheckpointError);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // The checkpoint thread closes its connection first, so this one is the last and its close
    // checkpoints and removes the WAL: the directory holds just the database file afterwards.
    if (this.#checkpointer?.stop() === false) this.#onCheckpointError('the checkpoint thread did not stop in time');
    this.#db.close();
  }
}
