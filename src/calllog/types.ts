/**
 * The call log: one entry per request the gateway handled, stored off the hot path.
 * The store sits behind {@link CallLogStore} so SQLite (embedded default) and PostgreSQL
 * (cluster mode, later) are interchangeable.
 */
import type { Code, Layer } from '../errors/catalog.ts';
import type { TraceEntry } from '../pipeline/types.ts';

export interface CallLogEntry {
  /** Start of the request, ms since the epoch. */
  readonly ts: number;
  readonly requestId: string;
  readonly clientIp: string;
  readonly consumer: string | null;
  /** Non-secret id of the credential used (key id). */
  readonly credentialId: string | null;
  readonly route: string | null;
  readonly method: string;
  readonly host: string;
  readonly path: string;
  readonly status: number;
  /** Catalog code when the gateway answered itself; null when the upstream answered. */
  readonly code: Code | null;
  /** Who produced the final status: 'gateway'/'client' for local replies, 'upstream' for passed-through errors. */
  readonly layer: Layer | null;
  /** Policy instance id that decided a denial (or 'router', 'upstream:<id>'). */
  readonly policy: string | null;
  /** Total latency in ms (float). */
  readonly latencyMs: number;
  /** The upstream target URL that served the request, if any. */
  readonly upstreamTarget: string | null;
  /** Number of upstream attempts (retries included). */
  readonly attempts: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly userAgent: string | null;
  readonly trace: readonly TraceEntry[];
  /** For upstream answers with status >= 400: the start of their body (bounded), for diagnosis. */
  readonly upstreamBody: string | null;
  /** True when a monitor-mode policy would have denied. */
  readonly monitorDenied: boolean;
  /**
   * What `pinpoint impact` needs to replay the request, secrets removed (see {@link ReplayRecord});
   * null when `call_log.replay` is off, absent on entries written before replay records existed.
   */
  readonly replay?: ReplayRecord | null;
  /** What an AI exchange used; null (or absent) on plain proxy requests. */
  readonly ai?: CallLogAi | null;
}

/** The AI part of an entry: one nullable column each (provider, model, served_model, …). */
export interface CallLogAi {
  readonly provider: string;
  /** The model the client asked for. */
  readonly model: string;
  /** The model that answered (a fallback or a provider alias may differ from `model`). */
  readonly servedModel: string;
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** Cost in micro-dollars (1e-6 USD). */
  readonly costMicroUsd: number;
  /** Time to first token in ms for streamed answers; null when not streamed or none arrived. */
  readonly ttftMs: number | null;
  readonly stream: boolean;
}

/**
 * A request as the policies saw it, with every secret replaced by a placeholder, so a new config
 * can be replayed against it. Method, host, path and client IP are the entry's own columns and are
 * not repeated here.
 *
 * Placeholders (src/calllog/replay-record.ts) read `[redacted#N …]`: N numbers the distinct secret
 * values of the request, so two places that carried the same value (a CSRF cookie and its header)
 * still compare equal, and annotations carry what the gateway knew about the value without the
 * value: `key=<id>` for an API key it matched, `user=<name>` or `malformed=<reason>` for HTTP Basic.
 */
export interface ReplayRecord {
  /** Format version of this record. */
  readonly v: 1;
  /** Raw query string without '?', secret parameters replaced by placeholders. */
  readonly query: string;
  /** The socket peer: with the forwarding headers, replay derives the client IP under the replayed config's trusted_proxies. */
  readonly peer: string;
  /** Where the logged client IP came from. */
  readonly ipSource: 'socket' | 'x-forwarded-for' | 'forwarded';
  /** Request headers by lower-case name, as Node parsed them; secret values are placeholders. */
  readonly headers: Readonly<Record<string, string | readonly string[]>>;
  /** Who the gateway identified (never the credential itself); null when nobody. */
  readonly identity: RecordedIdentity | null;
  /**
   * The verified token claims that policies read (standard ones and those the config names);
   * null when no token was verified.
   */
  readonly claims: Readonly<Record<string, unknown>> | null;
  /** Names of the other verified claims, whose values were not kept. */
  readonly otherClaims?: readonly string[];
  /** The first `call_log.replay_body_bytes` of a body a policy buffered, base64, and the body's full length. */
  readonly body?: { readonly base64: string; readonly bytes: number };
}

export interface RecordedIdentity {
  readonly consumer: string;
  readonly credentialType: string;
  /** A key id, a user name, a token's jti: never a secret. */
  readonly credentialId: string;
}

export interface CallLogQuery {
  readonly requestId?: string;
  /** Inclusive lower bound, ms since epoch. */
  readonly since?: number;
  /** Exclusive upper bound, ms since epoch. */
  readonly until?: number;
  readonly route?: string;
  readonly consumer?: string;
  readonly status?: number;
  readonly code?: string;
  /** Only entries where a monitor-mode policy would have denied. */
  readonly monitorDenied?: boolean;
  /** AI entries of this provider. */
  readonly provider?: string;
  /** AI entries for this requested model. */
  readonly model?: string;
  /** Newest first; default 100, max 1000. */
  readonly limit?: number;
}

/** Where a {@link CallLogStore.scan} page starts: after this (ts, id) position, oldest first. */
export interface ScanCursor {
  readonly ts: number;
  readonly id: number;
}

export interface CallLogScan {
  /** Inclusive lower bound, ms since epoch. */
  readonly since?: number;
  /** Exclusive upper bound, ms since epoch. */
  readonly until?: number;
  readonly route?: string;
  /** Continue after this position (the `next` of the previous page). */
  readonly after?: ScanCursor;
  /** Entries per page; default 500, max 1000. */
  readonly limit?: number;
}

export interface CallLogPage {
  /** Oldest first (by ts, then by insertion). */
  readonly entries: CallLogEntry[];
  /** Pass as `after` for the next page; null when this page was the last. */
  readonly next: ScanCursor | null;
}

export interface CallLogStore {
  /** Writes a batch atomically. Synchronous stores may block; callers batch off the hot path. */
  insertBatch(entries: readonly CallLogEntry[]): void;
  query(q: CallLogQuery): CallLogEntry[];
  /**
   * Pages through a time window oldest first, for tools that read every entry (`pinpoint impact`):
   * each call returns one bounded page and a cursor, so memory stays flat however long the window.
   */
  scan(q: CallLogScan): CallLogPage;
  /** How many entries {@link scan} would return for this window (progress reporting). */
  count(q: Omit<CallLogScan, 'after' | 'limit'>): number;
  /** Deletes entries older than `before` (ms epoch); returns how many were deleted. */
  deleteBefore(before: number): number;
  close(): void;
}

export type OverloadBehaviour = 'block' | 'drop_oldest' | 'sample';
