/**
 * The rate-limit decision: build each limit's key from the request, ask the counter store about
 * all limits in one all-or-nothing call, and turn the answer into allow (with RateLimit headers
 * and, for concurrency limits, a release) or a 429 naming the limit.
 *
 * Headers follow draft-ietf-httpapi-ratelimit-headers-11 (May 2026), the structured-field form
 * (RFC 9651 Lists of Strings with parameters):
 * - `RateLimit-Policy` (§3): per limit `"id";q=<quota>;w=<window s>`; a month quota omits w (a
 *   calendar month has no fixed length and w is OPTIONAL, §3.1.3); a concurrency limit says
 *   `qu="concurrent-requests"` (§3.1.2) and has no window.
 * - `RateLimit` (§4): per limit `"id";r=<available>;t=<seconds>` where, per §4.1.2, t is the time
 *   within which the client can use no more than r: for a rate, until the next unit is credited;
 *   for a quota, until the window ends; a concurrency limit has no clock, so no t.
 * - On a refusal `RateLimit` lists only the violated limits, whose t never exceeds Retry-After
 *   (§6: Retry-After SHOULD NOT point earlier than the end of the effective window).
 * No partition key (pk) is sent: keys hold consumer ids and client addresses, and §6.1 asks
 * servers to avoid partition keys that carry sensitive information.
 */
import { hash } from 'node:crypto';
import type { TtlLru } from '../../cache/ttl-lru.ts';
import { runCounters } from '../../counters/run.ts';
import { EPS_MS, type CounterOp, type CounterStore, type OpResult } from '../../counters/types.ts';
import { ipBucket } from '../../net/cidr.ts';
import type { Decision, DecisionContext, Evidence } from '../../pipeline/types.ts';

/** One part of a limit's key. */
export type KeySpec =
  | { readonly part: 'consumer' }
  | { readonly part: 'credential' }
  | { readonly part: 'ip' }
  | { readonly part: 'route' }
  | { readonly part: 'header'; readonly name: string };

interface LimitBase {
  readonly id: string;
  readonly by: readonly KeySpec[];
  /** The RateLimit-Policy list item, built once. */
  readonly policyItem: string;
  /** Subjects of a one-part identity or route key, by that part (see subjectOf). */
  readonly subjects: TtlLru<Subject>;
}

export interface CompiledRate extends LimitBase {
  readonly kind: 'rate';
  readonly limit: number;
  /** As configured, for evidence (`1m`). */
  readonly window: string;
  readonly burst: number;
  /** GCRA T = window / limit. */
  readonly emissionIntervalMs: number;
  /** GCRA τ = (burst − 1) × T. */
  readonly burstToleranceMs: number;
}

export interface CompiledQuota extends LimitBase {
  readonly kind: 'quota';
  readonly limit: number;
  readonly period: 'day' | 'month';
}

export interface CompiledConcurrency extends LimitBase {
  readonly kind: 'concurrency';
  readonly max: number;
}

export type CompiledLimit = CompiledRate | CompiledQuota | CompiledConcurrency;

export interface RateLimitCompiled {
  /** Policy instance id: part of every counter key, so two instances never share counters. */
  readonly policyId: string;
  readonly limits: readonly CompiledLimit[];
  readonly headers: boolean;
  /** The RateLimit-Policy field value, built once. */
  readonly policyHeader: string;
  /** The trace rule of an allowed request (`within per-consumer, per-day`), built once. */
  readonly allowRule: string;
  readonly concurrencyRetryAfterS: number;
  readonly onStoreError: 'allow' | 'deny';
}

/** An RFC 9651 §3.3.3 String. Ids are restricted to [A-Za-z0-9._-] by the schema; escaping is belt and braces. */
export function sfString(s: string): string {
  return `"${s.replace(/[\\"]/g, '\\$&')}"`;
}

/**
 * Seconds for a delay-seconds field (RFC 9110 §10.2.3): rounded up, never under-stating a wait.
 * The EPS_MS tolerance keeps float noise at epoch magnitudes (30000.0002 ms) from adding a second.
 */
function ceilSeconds(ms: number): number {
  return Math.max(0, Math.ceil((ms - EPS_MS) / 1000));
}

/** Longest header value kept as is in a counter key and in evidence. */
const MAX_VALUE = 128;

/** The UTC calendar window holding `now`. */
export function calendarWindow(period: 'day' | 'month', now: number): { readonly start: number; readonly end: number } {
  const d = new Date(now);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  if (period === 'month') return { start: Date.UTC(y, m, 1), end: Date.UTC(y, m + 1, 1) };
  const day = d.getUTCDate();
  return { start: Date.UTC(y, m, day), end: Date.UTC(y, m, day + 1) };
}

/** Whom a limit counted for this request. */
export interface Subject {
  readonly storeKey: string;
  /** For evidence: `consumer=alice, route=orders`. */
  readonly key: string;
  /** For evidence: `consumer+route`, or `ip (no consumer)` for an anonymous caller. */
  readonly countedBy: string;
  /** For evidence: `per-consumer by consumer: consumer=alice`. */
  readonly counted: string;
}

/**
 * Subjects of limits keyed by one identity or route part (the common `by: [consumer]`) are kept
 * on the limit: the same caller always gets the same subject, and building one takes three
 * arrays, a closure and three joins per request. SUBJECT_CACHE_MAX callers per limit, oldest out.
 */
export const SUBJECT_CACHE_MAX = 4096;

function subjectOf(policyId: string, l: CompiledLimit, ctx: DecisionContext): Subject {
  const part = l.by.length === 1 ? singlePart(l.by[0] as KeySpec, ctx) : undefined;
  if (part === undefined) return buildSubject(policyId, l, ctx);
  let s = l.subjects.get(part, 0, false);
  if (s === undefined) {
    s = buildSubject(policyId, l, ctx);
    l.subjects.set(part, s, Infinity, 0);
  }
  return s;
}

/** The key part of a one-part limit when it depends on the identity or route only, else undefined. */
function singlePart(k: KeySpec, ctx: DecisionContext): string | undefined {
  switch (k.part) {
    case 'consumer':
      return ctx.identity === undefined ? undefined : `consumer=${ctx.identity.consumer}`;
    case 'credential':
      return ctx.identity === undefined ? undefined : `credential=${ctx.identity.credentialId}`;
    case 'route':
      return `route=${ctx.routeId ?? '(none)'}`;
    case 'ip':
    case 'header':
      // Keyed by the client address or a header value: built each time (see buildSubject).
      return undefined;
  }
}

function buildSubject(policyId: string, l: CompiledLimit, ctx: DecisionContext): Subject {
  /** What the store keys by, and what evidence shows (the same except for long header values). */
  const parts: string[] = [];
  const shown: string[] = [];
  const labels: string[] = [];
  const add = (part: string, label: string, show = part): void => {
    parts.push(part);
    shown.push(show);
    labels.push(label);
  };
  // IPv6 clients are counted per /64, IPv4 per address (see ipBucket).
  const ip = `ip=${ipBucket(ctx.facts.clientIp)}`;
  // Without the identity a part asks for, the caller is counted by client IP: an anonymous caller
  // must not share one unlimited (or one global) bucket with every other anonymous caller.
  const byIp = (label: string): void => {
    if (parts.includes(ip)) labels.push(label);
    else add(ip, label);
  };
  const id = ctx.identity;
  for (const k of l.by) {
    switch (k.part) {
      case 'consumer':
        if (id !== undefined) add(`consumer=${id.consumer}`, 'consumer');
        else byIp('ip (no consumer)');
        break;
      case 'credential':
        // The credential's id (a key id, a token jti/sub), never the secret itself.
        if (id !== undefined) add(`credential=${id.credentialId}`, 'credential');
        else byIp('ip (no credential)');
        break;
      case 'ip':
        byIp('ip');
        break;
      case 'route':
        add(`route=${ctx.routeId ?? '(none)'}`, 'route');
        break;
      case 'header': {
        const raw = ctx.facts.headers[k.name];
        // Repeated fields combine into one comma-separated value (RFC 9110 §5.3).
        const v = Array.isArray(raw) ? raw.join(', ') : raw;
        if (v === undefined || v === '') byIp(`ip (no header ${k.name})`);
        else if (v.length <= MAX_VALUE) add(`header:${k.name}=${v}`, `header:${k.name}`);
        else {
          // Memory is bounded by key count, so keys must stay small: a long value is hashed in the
          // key and shortened in evidence.
          const digest = hash('sha256', v, 'base64url');
          add(`header:${k.name}=sha256:${digest}`, `header:${k.name}`, `header:${k.name}=${v.slice(0, 32)}\u2026 (${v.length} chars)`);
        }
        break;
      }
    }
  }
  const key = shown.join(', ');
  const countedBy = labels.join('+');
  return {
    storeKey: `${policyId}\u0000${l.id}\u0000${l.kind}\u0000${parts.join('\u0000')}`,
    key,
    countedBy,
    counted: `${l.id} by ${countedBy}: ${key}`,
  };
}

function opOf(l: CompiledLimit, key: string, now: number): CounterOp {
  switch (l.kind) {
    case 'rate':
      return { kind: 'gcra', key, emissionIntervalMs: l.emissionIntervalMs, burstToleranceMs: l.burstToleranceMs };
    case 'quota': {
      const w = calendarWindow(l.period, now);
      return { kind: 'quota', key, limit: l.limit, windowStart: w.start, windowEnd: w.end };
    }
    case 'concurrency':
      return { kind: 'concurrency', key, max: l.max };
  }
}

/** Seconds until this refused limit would let the request through (the Retry-After candidate). */
function retrySeconds(c: RateLimitCompiled, l: CompiledLimit, r: OpResult): number {
  if (l.kind === 'concurrency') return c.concurrencyRetryAfterS;
  return Math.max(1, ceilSeconds(r.retryAfterMs));
}

/** The RateLimit item of a limit this request was counted against (or, dry run, would be). */
function allowedItem(l: CompiledLimit, r: OpResult): string {
  const remaining = Math.max(0, r.available - 1);
  switch (l.kind) {
    case 'rate': {
      // After counting, the backlog is the old one plus T; the next unit is credited when the
      // backlog next drops to a multiple of T.
      const T = l.emissionIntervalMs;
      const backlog = r.resetMs + T;
      const units = Math.max(1, Math.ceil((backlog - EPS_MS) / T));
      return `${sfString(l.id)};r=${remaining};t=${ceilSeconds(backlog - (units - 1) * T)}`;
    }
    case 'quota':
      return `${sfString(l.id)};r=${remaining};t=${ceilSeconds(r.resetMs)}`;
    case 'concurrency':
      return `${sfString(l.id)};r=${remaining}`;
  }
}

function refusedItem(c: RateLimitCompiled, l: CompiledLimit, r: OpResult): string {
  return l.kind === 'concurrency' ? `${sfString(l.id)};r=0` : `${sfString(l.id)};r=0;t=${retrySeconds(c, l, r)}`;
}

function codeOf(l: CompiledLimit): 'RATE_LIMIT_EXCEEDED' | 'RATE_LIMIT_QUOTA_EXCEEDED' | 'RATE_LIMIT_CONCURRENCY_EXCEEDED' {
  switch (l.kind) {
    case 'rate':
      return 'RATE_LIMIT_EXCEEDED';
    case 'quota':
      return 'RATE_LIMIT_QUOTA_EXCEEDED';
    case 'concurrency':
      return 'RATE_LIMIT_CONCURRENCY_EXCEEDED';
  }
}

function denyEvidence(l: CompiledLimit, s: Subject, r: OpResult, now: number, retryAfterS: number, violated: readonly string[]): Evidence {
  const common = { limit_id: l.id, limit_kind: l.kind, counted_by: s.countedBy, key: s.key, remaining: 0, retry_after_s: retryAfterS, violated_limits: violated };
  switch (l.kind) {
    case 'rate':
      return { ...common, limit: l.limit, window: l.window, burst: l.burst, reset_at: new Date(now + r.retryAfterMs).toISOString() };
    case 'quota':
      return { ...common, limit: l.limit, window: l.period, window_start: new Date(calendarWindow(l.period, now).start).toISOString(), reset_at: new Date(now + r.resetMs).toISOString() };
    case 'concurrency':
      // Slots free when other requests end: no clock can say when.
      return { ...common, limit: l.max, window: null, in_flight: l.max - r.available, reset_at: null };
  }
}

function conclude(c: RateLimitCompiled, ctx: DecisionContext, subjects: readonly Subject[], results: readonly OpResult[], store: CounterStore): Decision {
  if (results.length !== c.limits.length) return storeFailed(c, new Error(`counter store answered ${results.length} results for ${c.limits.length} limits`));
  const now = ctx.facts.now;
  const violated: number[] = [];
  results.forEach((r, i) => {
    if (!r.ok) violated.push(i);
  });

  if (violated.length > 0) {
    // Name the limit that keeps the caller waiting longest: Retry-After must cover every
    // violated limit, and that is the one to fix or wait out.
    let worst = violated[0] as number;
    let retryAfterS = 0;
    for (const i of violated) {
      const s = retrySeconds(c, c.limits[i] as CompiledLimit, results[i] as OpResult);
      if (s > retryAfterS) {
        retryAfterS = s;
        worst = i;
      }
    }
    const l = c.limits[worst] as CompiledLimit;
    const headers: Record<string, string> = { 'retry-after': String(retryAfterS) };
    if (c.headers) {
      headers['ratelimit-policy'] = c.policyHeader;
      headers.ratelimit = violated.map((i) => refusedItem(c, c.limits[i] as CompiledLimit, results[i] as OpResult)).join(', ');
    }
    const ids = violated.map((i) => (c.limits[i] as CompiledLimit).id);
    return {
      outcome: 'deny',
      code: codeOf(l),
      rule: `limit ${l.id} (${l.kind}) exceeded for ${subjects[worst]?.key ?? ''}`,
      evidence: denyEvidence(l, subjects[worst] as Subject, results[worst] as OpResult, now, retryAfterS, ids),
      headers,
    };
  }

  const held: { key: string; lease: string | undefined }[] = [];
  c.limits.forEach((l, i) => {
    if (l.kind === 'concurrency') held.push({ key: (subjects[i] as Subject).storeKey, lease: (results[i] as OpResult).lease });
  });
  let release: (() => void) | undefined;
  // A dry run took nothing, so it has nothing to give back (and the pipeline never calls it then).
  if (held.length > 0 && !ctx.dryRun) {
    let done = false;
    release = () => {
      if (done) return;
      done = true;
      for (const h of held) store.release(h.key, h.lease);
    };
  }
  const evidence: Evidence = {
    remaining: c.limits.map((l, i) => `${l.id}=${Math.max(0, (results[i] as OpResult).available - 1)}`),
    counted: subjects.map((s) => s.counted),
  };
  return {
    outcome: 'allow',
    rule: c.allowRule,
    evidence,
    ...(c.headers ? { responseHeaders: { 'ratelimit-policy': c.policyHeader, ratelimit: c.limits.map((l, i) => allowedItem(l, results[i] as OpResult)).join(', ') } } : {}),
    ...(release !== undefined ? { release } : {}),
  };
}

function storeFailed(c: RateLimitCompiled, err: unknown): Decision {
  const reason = err instanceof Error ? err.message : String(err);
  if (c.onStoreError === 'deny') {
    return {
      outcome: 'deny',
      code: 'RATE_LIMIT_STORE_UNAVAILABLE',
      rule: 'counters unavailable; on_store_error: deny',
      evidence: { reason, on_store_error: 'deny', limits: c.limits.map((l) => l.id) },
    };
  }
  return { outcome: 'allow', rule: 'counters unavailable; on_store_error: allow (not limited)', evidence: { reason, on_store_error: 'allow', limits: c.limits.map((l) => l.id) } };
}

/**
 * Decides one request. Synchronous with an in-process store; a promise with a remote one (cluster
 * primary), which never rejects: a store failure becomes allow or deny per `on_store_error`.
 * In a dry run the store is only peeked: nothing is counted and no slot is taken.
 */
export function decideRateLimit(c: RateLimitCompiled, ctx: DecisionContext, store: CounterStore): Decision | Promise<Decision> {
  const now = ctx.facts.now;
  const subjects = c.limits.map((l) => subjectOf(c.policyId, l, ctx));
  const ops = c.limits.map((l, i) => opOf(l, (subjects[i] as Subject).storeKey, now));
  return runCounters(
    store,
    ops,
    now,
    ctx.dryRun,
    (results) => conclude(c, ctx, subjects, results, store),
    (err) => storeFailed(c, err),
  );
}
