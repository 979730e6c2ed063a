/**
 * `rate-limit`: rates (GCRA), calendar quotas (per UTC day / month) and concurrency limits, each
 * counted per consumer, credential, client IP, route or header value, or a combination. A refusal
 * is a 429 with Retry-After (RFC 9110 §10.2.3) and the RateLimit fields
 * (draft-ietf-httpapi-ratelimit-headers-11), naming the limit, the key it counted and when it
 * resets. Allowed responses carry the RateLimit fields too.
 *
 * Counters live in the process-wide store (src/counters/index.ts): in-process by default, the
 * cluster primary with `--workers`.
 *
 * @example
 * # policies:
 * #   per-consumer:
 * #     type: rate-limit
 * #     config:
 * #       limits:
 * #         - { id: per-minute, by: [consumer], rate: { limit: 100, window: 1m } }
 * #         - { id: daily, by: [consumer], quota: { limit: 10000, period: day } }
 * #         - { id: parallel, by: [consumer], concurrency: 5 }
 */
import { TtlLru } from '../../cache/ttl-lru.ts';
import { SECRET_HEADERS } from '../../credentials/locations.ts';
import { getCounterStore } from '../../counters/index.ts';
import type { CounterStore } from '../../counters/types.ts';
import { ConfigError, type ConfigIssue, type PolicyModule } from '../../pipeline/types.ts';
import { decideRateLimit, sfString, SUBJECT_CACHE_MAX, type CompiledLimit, type KeySpec, type RateLimitCompiled, type Subject } from './decide.ts';
import { RateLimitSchema, type LimitConfig } from './schema.ts';

/** Each compiled limit remembers its callers' subjects (decide.ts, subjectOf). */
const subjectCache = (): TtlLru<Subject> => new TtlLru<Subject>(SUBJECT_CACHE_MAX);

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `30s` → 30000; undefined when not a duration. */
export function parseDuration(text: string): number | undefined {
  const m = /^([0-9]+)(ms|s|m|h|d)$/.exec(text);
  if (m === null) return undefined;
  const n = Number(m[1]) * (UNITS[m[2] as string] as number);
  return Number.isSafeInteger(n) ? n : undefined;
}

const ID = /^[A-Za-z0-9._-]{1,64}$/;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;


function compileKey(text: string, path: string, issues: ConfigIssue[]): KeySpec | undefined {
  switch (text) {
    case 'consumer':
    case 'credential':
    case 'ip':
    case 'route':
      return { part: text };
  }
  if (!text.startsWith('header:')) {
    issues.push({ path, message: `"${text}" is not a key: use consumer, credential, ip, route or header:<name>` });
    return undefined;
  }
  const name = text.slice('header:'.length).toLowerCase();
  if (!TOKEN.test(name)) {
    issues.push({ path, message: `"${name}" is not a header name (RFC 9110 §5.1)` });
    return undefined;
  }
  if (SECRET_HEADERS.has(name)) {
    issues.push({ path, message: `header ${name} carries credentials, which would be stored in counter keys and shown in denials; count by credential instead` });
    return undefined;
  }
  return { part: 'header', name };
}

function compileLimit(l: LimitConfig, path: string, issues: ConfigIssue[]): CompiledLimit | undefined {
  const before = issues.length;
  if (!ID.test(l.id)) issues.push({ path: `${path}.id`, message: 'must be 1 to 64 of A-Z a-z 0-9 . _ -' });
  const by: KeySpec[] = [];
  const seen = new Set<string>();
  l.by.forEach((text, j) => {
    const k = compileKey(text, `${path}.by[${j}]`, issues);
    if (k === undefined) return;
    const norm = k.part === 'header' ? `header:${k.name}` : k.part;
    if (seen.has(norm)) issues.push({ path: `${path}.by[${j}]`, message: `"${text}" is listed twice` });
    seen.add(norm);
    by.push(k);
  });
  if (l.by.length === 0) issues.push({ path: `${path}.by`, message: 'must list at least one key' });

  const kinds = (['rate', 'quota', 'concurrency'] as const).filter((k) => l[k] !== undefined);
  if (kinds.length !== 1) {
    issues.push({ path, message: `declare exactly one of rate, quota or concurrency (found ${kinds.length === 0 ? 'none' : kinds.join(', ')})` });
    return undefined;
  }
  const id = sfString(l.id);

  if (l.rate !== undefined) {
    const r = l.rate;
    const windowMs = parseDuration(r.window);
    if (windowMs === undefined) issues.push({ path: `${path}.rate.window`, message: 'must be a duration such as 30s, 1m or 1h' });
    else if (windowMs < 1000 || windowMs % 1000 !== 0) {
      issues.push({
        path: `${path}.rate.window`,
        message: `must be a whole number of seconds, at least 1s (got ${r.window}): RateLimit-Policy w has no sub-second precision (draft-ietf-httpapi-ratelimit-headers-11 §3.1.3)`,
      });
    }
    if (!Number.isInteger(r.limit) || r.limit < 1) issues.push({ path: `${path}.rate.limit`, message: 'must be an integer >= 1' });
    const burst = r.burst ?? r.limit;
    if (!Number.isInteger(burst) || burst < 1) issues.push({ path: `${path}.rate.burst`, message: 'must be an integer >= 1' });
    if (issues.length > before || windowMs === undefined) return undefined;
    const T = windowMs / r.limit;
    return {
      kind: 'rate',
      id: l.id,
      by,
      limit: r.limit,
      window: r.window,
      burst,
      emissionIntervalMs: T,
      burstToleranceMs: (burst - 1) * T,
      policyItem: `${id};q=${r.limit};w=${windowMs / 1000}`,
      subjects: subjectCache(),
    };
  }
  if (l.quota !== undefined) {
    const q = l.quota;
    if (!Number.isInteger(q.limit) || q.limit < 1) issues.push({ path: `${path}.quota.limit`, message: 'must be an integer >= 1' });
    if (issues.length > before) return undefined;
    // A UTC day is always 86400 s in JavaScript time (no leap seconds); a month has no fixed length.
    return { kind: 'quota', id: l.id, by, limit: q.limit, period: q.period, policyItem: q.period === 'day' ? `${id};q=${q.limit};w=86400` : `${id};q=${q.limit}`, subjects: subjectCache() };
  }
  const max = l.concurrency as number;
  if (!Number.isInteger(max) || max < 1) issues.push({ path: `${path}.concurrency`, message: 'must be an integer >= 1' });
  if (issues.length > before) return undefined;
  return { kind: 'concurrency', id: l.id, by, max, policyItem: `${id};q=${max};qu="concurrent-requests"`, subjects: subjectCache() };
}

/**
 * The module, over a store provider. The provider is called on every decision, so the store set
 * by setCounterStore() (src/counters/index.ts) is used even if it was set after compile.
 * Tests pass their own provider.
 */
export function createRateLimit(store: () => CounterStore): PolicyModule<typeof RateLimitSchema> {
  return {
    type: 'rate-limit',
    summary: 'Rate limits (GCRA), daily/monthly quotas and concurrency limits per consumer, credential, IP, route or header; 429 with Retry-After and RateLimit headers.',
    schema: RateLimitSchema,
    compile(config, meta, ctx) {
      const issues: ConfigIssue[] = [];
      const limits: CompiledLimit[] = [];
      const ids = new Map<string, number>();
      config.limits.forEach((l, i) => {
        const path = `${ctx.path}.limits[${i}]`;
        const first = ids.get(l.id);
        if (first !== undefined) issues.push({ path: `${path}.id`, message: `duplicate id "${l.id}" (also limits[${first}])` });
        else ids.set(l.id, i);
        const c = compileLimit(l, path, issues);
        if (c !== undefined) limits.push(Object.freeze({ ...c, by: Object.freeze(c.by) }));
      });
      if (config.limits.length === 0) issues.push({ path: `${ctx.path}.limits`, message: 'declare at least one limit' });
      const retryMs = parseDuration(config.concurrency_retry_after);
      if (retryMs === undefined || retryMs < 1) issues.push({ path: `${ctx.path}.concurrency_retry_after`, message: 'must be a duration such as 1s' });
      if (issues.length > 0) throw new ConfigError(issues);

      const compiled: RateLimitCompiled = Object.freeze({
        policyId: meta.id,
        limits: Object.freeze(limits),
        headers: config.headers,
        policyHeader: limits.map((l) => l.policyItem).join(', '),
        allowRule: `within ${limits.map((l) => l.id).join(', ')}`,
        // Retry-After is whole seconds (RFC 9110 §10.2.3); round up so a client never comes back early.
        concurrencyRetryAfterS: Math.max(1, Math.ceil((retryMs as number) / 1000)),
        onStoreError: config.on_store_error,
      });
      return {
        id: meta.id,
        type: 'rate-limit',
        mode: meta.mode,
        decide: (dctx) => decideRateLimit(compiled, dctx, store()),
      };
    },
  };
}

export const rateLimit: PolicyModule<typeof RateLimitSchema> = createRateLimit(getCounterStore);
