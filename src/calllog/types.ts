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
  /** Newest first; default 100, max 1000. */
  readonly limit?: number;
}

export interface CallLogStore {
  /** Writes a batch atomically. Synchronous stores may block; callers batch off the hot path. */
  insertBatch(entries: readonly CallLogEntry[]): void;
  query(q: CallLogQuery): CallLogEntry[];
  /** Deletes entries older than `before` (ms epoch); returns how many were deleted. */
  deleteBefore(before: number): number;
  close(): void;
}

export type OverloadBehaviour = 'block' | 'drop_oldest' | 'sample';
