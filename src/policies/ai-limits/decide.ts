/**
 * The ai-limits decision: find the limits that apply to the caller (per consumer or per team),
 * ask the counter store about all of them in one all-or-nothing call, and answer allow (with the
 * protocol's rate-limit headers and a `charge` that meters the response's usage) or a 429 naming
 * the limit, its scope and when it resets.
 *
 * What is counted, and how:
 * - rpm counts requests with GCRA (ATM Forum TM 4.0 §4.4.2), T = 60 s / rpm and a burst of rpm, as
 *   the rate-limit policy does, rather than a per-minute window: a fixed window lets 2 × rpm
 *   through around a minute boundary (rpm at 0:59, rpm more at 1:00), which is exactly the burst
 *   an upstream provider's own per-minute limit then refuses. GCRA also refills continuously, the
 *   way providers describe their request limits ("reset" = until back to full).
 * - tpm and the budgets are metered amounts over fixed windows (a clock minute; a UTC day; a UTC
 *   month): the tokens or cost of a request are known only after the provider answered, so the
 *   decision checks what the window has used so far (used >= limit refuses) and `charge` adds the
 *   actual amount afterwards (MeteredCounterStore.add). Requests decided while the meter is just
 *   under its limit may all pass and together overshoot it; the next request is then refused
 *   until the window ends. A fixed window is the natural unit for money (a budget "per day").
 * - `charge` meters into the window current when the usage arrives (a long streamed answer that
 *   ends in the next minute counts there), never into one before the decision's.
 * - A request refused by one limit spends nothing of the others (one all-or-nothing store run).
 *   In monitor mode the decisions are the same as in enforce mode (a request enforce would refuse
 *   is not counted and offers no charge), so monitor reports exactly what enforcing would do.
 *
 * Headers describe OUR limits in the client protocol's own terms (OpenAI API docs, "Rate limits",
 * headers section; Anthropic API docs, "Rate limits", response headers), so the official SDKs and
 * clients written for the provider read them unchanged. When several limits apply, each header
 * family describes the tightest (least remaining; on a tie, the later reset):
 * - `openai`: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`; reset is a duration in Go's
 *   `time.Duration` text (`12ms`, `1s`, `6m0s`), the form OpenAI sends.
 * - `anthropic`: `anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}`; reset is an
 *   RFC 3339 timestamp. The tokens limit is input + output together, so there are no
 *   `input-tokens` / `output-tokens` variants.
 * - otherwise (prompt APIs, plain routes): `RateLimit-Policy` / `RateLimit`
 *   (draft-ietf-httpapi-ratelimit-headers-11, as src/policies/rate-limit/decide.ts) for the request
 *   limit only: the draft's quota units are a registry (requests, content-bytes,
 *   concurrent-requests), with no unit for tokens or money, and a client that sees `q` without a
 *   unit it knows reads it as requests.
 * Budgets have no header in either provider's protocol; their state is in the denial evidence.
 * A refusal adds `Retry-After` (RFC 9110 §10.2.3, whole seconds) and `retry-after-ms`, which the
 * OpenAI and Anthropic SDKs read first.
 */
import { runCounters } from '../../counters/run.ts';
import { EPS_MS, type CounterOp, type MeteredCounterStore, type OpResult } from '../../counters/types.ts';
import type { Allow, Decision, DecisionContext, Evidence } from '../../pipeline/types.ts';

export type Metric = 'rpm' | 'tpm' | 'budget_usd_day' | 'budget_usd_month';

export interface CompiledAiLimit {
  readonly id: string;
  readonly per: 'consumer' | 'team';
  readonly rpm: number | undefined;
  readonly tpm: number | undefined;
  /** As configured, in USD (for evidence). */
  readonly budgetUsdDay: number | undefined;
  readonly budgetUsdMonth: number | undefined;
  /** Only these consumers (undefined: everyone). */
  readonly consumers: ReadonlySet<string> | undefined;
  /** Only callers in these teams (undefined: everyone). */
  readonly teams: ReadonlySet<string> | undefined;
}

export interface AiLimitsCompiled {
  /** Policy instance id: part of every counter key, so two instances never share counters. */
  readonly policyId: string;
  readonly limits: readonly CompiledAiLimit[];
  /** consumer id → team, from consumers[].team. */
  readonly teamOf: ReadonlyMap<string, string>;
  readonly headers: boolean;
  readonly onStoreError: 'allow' | 'deny';
}

const MINUTE_MS = 60_000;
const MICRO = 1_000_000;

/** The window a metered amount is counted in at `now`: a clock minute, or a UTC day or month. */
export function meterWindow(metric: Exclude<Metric, 'rpm'>, now: number): { readonly start: number; readonly end: number } {
  if (metric === 'tpm') {
    const start = Math.floor(now / MINUTE_MS) * MINUTE_MS;
    return { start, end: start + MINUTE_MS };
  }
  const d = new Date(now);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  // Date.UTC normalises overflow (month 12 → January of the next year, day 32 → the 1st).
  if (metric === 'budget_usd_month') return { start: Date.UTC(y, m, 1), end: Date.UTC(y, m + 1, 1) };
  const day = d.getUTCDate();
  return { start: Date.UTC(y, m, day), end: Date.UTC(y, m, day + 1) };
}

/**
 * A duration as Go's time.Duration prints it (`12ms`, `1s`, `1.5s`, `6m0s`, `1h0m0s`), the format
 * of OpenAI's x-ratelimit-reset-* values. Millisecond precision, rounded up: never under-states
 * a wait.
 */
export function goDuration(ms: number): string {
  const total = Math.max(0, Math.ceil(ms - EPS_MS));
  if (total === 0) return '0s';
  if (total < 1000) return `${total}ms`;
  const h = Math.floor(total / 3_600_000);
  const m = Math.floor((total % 3_600_000) / MINUTE_MS);
  const inMinute = total % MINUTE_MS;
  const whole = Math.floor(inMinute / 1000);
  const frac = inMinute % 1000;
  const s = frac === 0 ? String(whole) : `${whole}.${String(frac).padStart(3, '0').replace(/0+$/, '')}`;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

/** An RFC 3339 timestamp at whole seconds, rounded up (the form of Anthropic's reset headers). */
export function rfc3339(ms: number): string {
  return new Date(Math.ceil((ms - EPS_MS) / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** Whole seconds, rounded up (RFC 9110 §10.2.3 delay-seconds), tolerant of float noise. */
function ceilSeconds(ms: number): number {
  return Math.max(0, Math.ceil((ms - EPS_MS) / 1000));
}

/** An RFC 9651 §3.3.3 String (ids are [A-Za-z0-9._-] by schema; escaping is belt and braces). */
function sfString(s: string): string {
  return `"${s.replace(/[\\"]/g, '\\$&')}"`;
}

const usd = (micro: number): number => Math.round(micro) / MICRO;

/** One counter this request is checked against. */
interface Check {
  readonly limit: CompiledAiLimit;
  readonly metric: Metric;
  readonly scope: 'consumer' | 'team';
  readonly scopeId: string;
  readonly key: string;
  /** rpm: requests per minute; tpm: tokens; budgets: micro-dollars. */
  readonly max: number;
  readonly op: CounterOp;
}

function checksOf(c: AiLimitsCompiled, applied: readonly { limit: CompiledAiLimit; scope: 'consumer' | 'team'; scopeId: string }[], now: number): Check[] {
  const out: Check[] = [];
  for (const a of applied) {
    const l = a.limit;
    const key = (metric: Metric): string => `${c.policyId}\u0000${l.id}\u0000${metric}\u0000${a.scope}=${a.scopeId}`;
    const base = { limit: l, scope: a.scope, scopeId: a.scopeId };
    if (l.rpm !== undefined) {
      const T = MINUTE_MS / l.rpm;
      const k = key('rpm');
      out.push({ ...base, metric: 'rpm', key: k, max: l.rpm, op: { kind: 'gcra', key: k, emissionIntervalMs: T, burstToleranceMs: (l.rpm - 1) * T } });
    }
    const meters: [Exclude<Metric, 'rpm'>, number | undefined][] = [
      ['tpm', l.tpm],
      ['budget_usd_day', l.budgetUsdDay === undefined ? undefined : Math.round(l.budgetUsdDay * MICRO)],
      ['budget_usd_month', l.budgetUsdMonth === undefined ? undefined : Math.round(l.budgetUsdMonth * MICRO)],
    ];
    for (const [metric, max] of meters) {
      if (max === undefined) continue;
      const w = meterWindow(metric, now);
      const k = key(metric);
      out.push({ ...base, metric, key: k, max, op: { kind: 'meter', key: k, limit: max, windowStart: w.start, windowEnd: w.end } });
    }
  }
  return out;
}

/** What one header family says about one limit. */
interface HeaderState {
  readonly id: string;
  readonly limit: number;
  readonly remaining: number;
  /** ms from now until back to full (requests) or until the window ends (tokens). */
  readonly resetMs: number;
  /** rpm only: T, for the RateLimit t parameter. */
  readonly intervalMs: number;
  /** This limit refused the request. */
  readonly refused: boolean;
  readonly retryAfterMs: number;
}

function stateOf(k: Check, r: OpResult, counted: boolean): HeaderState {
  if (k.metric === 'rpm') {
    const T = MINUTE_MS / k.max;
    // After this request is counted (or, in a dry run, would be) the backlog grows by T.
    if (counted) return { id: k.limit.id, limit: k.max, remaining: Math.max(0, r.available - 1), resetMs: r.resetMs + T, intervalMs: T, refused: false, retryAfterMs: 0 };
    return { id: k.limit.id, limit: k.max, remaining: r.ok ? r.available : 0, resetMs: r.resetMs, intervalMs: T, refused: !r.ok, retryAfterMs: r.retryAfterMs };
  }
  return { id: k.limit.id, limit: k.max, remaining: r.available, resetMs: r.resetMs, intervalMs: 0, refused: !r.ok, retryAfterMs: r.retryAfterMs };
}

/** The tightest of several limits: least remaining; on a tie, the one that resets later. */
function tightest(states: readonly HeaderState[]): HeaderState | undefined {
  let best: HeaderState | undefined;
  for (const s of states) {
    if (best === undefined || s.remaining < best.remaining || (s.remaining === best.remaining && s.resetMs > best.resetMs)) best = s;
  }
  return best;
}

function protocolHeaders(protocol: DecisionContext['protocol'], now: number, req: HeaderState | undefined, tok: HeaderState | undefined, refused: boolean): Record<string, string> {
  const h: Record<string, string> = {};
  if (protocol === 'openai') {
    if (req !== undefined) {
      h['x-ratelimit-limit-requests'] = String(req.limit);
      h['x-ratelimit-remaining-requests'] = String(req.remaining);
      h['x-ratelimit-reset-requests'] = goDuration(req.resetMs);
    }
    if (tok !== undefined) {
      h['x-ratelimit-limit-tokens'] = String(tok.limit);
      h['x-ratelimit-remaining-tokens'] = String(tok.remaining);
      h['x-ratelimit-reset-tokens'] = goDuration(tok.resetMs);
    }
    return h;
  }
  if (protocol === 'anthropic') {
    if (req !== undefined) {
      h['anthropic-ratelimit-requests-limit'] = String(req.limit);
      h['anthropic-ratelimit-requests-remaining'] = String(req.remaining);
      h['anthropic-ratelimit-requests-reset'] = rfc3339(now + req.resetMs);
    }
    if (tok !== undefined) {
      h['anthropic-ratelimit-tokens-limit'] = String(tok.limit);
      h['anthropic-ratelimit-tokens-remaining'] = String(tok.remaining);
      h['anthropic-ratelimit-tokens-reset'] = rfc3339(now + tok.resetMs);
    }
    return h;
  }
  if (req === undefined) return h;
  h['ratelimit-policy'] = `${sfString(req.id)};q=${req.limit};w=60`;
  if (!refused) {
    // As the rate-limit policy: t is the time until the next request is credited (draft §4.1.2).
    const T = req.intervalMs;
    const units = Math.max(1, Math.ceil((req.resetMs - EPS_MS) / T));
    h.ratelimit = `${sfString(req.id)};r=${req.remaining};t=${ceilSeconds(req.resetMs - (units - 1) * T)}`;
  } else if (req.refused) {
    // On a refusal RateLimit lists only a violated limit (draft §6), whose t is its Retry-After.
    h.ratelimit = `${sfString(req.id)};r=0;t=${Math.max(1, ceilSeconds(req.retryAfterMs))}`;
  }
  return h;
}

function codeOf(metric: Metric): 'AI_RPM_EXCEEDED' | 'AI_TPM_EXCEEDED' | 'AI_BUDGET_DAILY_EXHAUSTED' | 'AI_BUDGET_MONTHLY_EXHAUSTED' {
  switch (metric) {
    case 'rpm':
      return 'AI_RPM_EXCEEDED';
    case 'tpm':
      return 'AI_TPM_EXCEEDED';
    case 'budget_usd_day':
      return 'AI_BUDGET_DAILY_EXHAUSTED';
    case 'budget_usd_month':
      return 'AI_BUDGET_MONTHLY_EXHAUSTED';
  }
}

const WINDOW: Readonly<Record<Metric, string>> = { rpm: 'minute', tpm: 'minute', budget_usd_day: 'day', budget_usd_month: 'month' };

/** ms to wait for a refused counter, at least 1 (a refusal never says "retry now"). */
function waitMs(r: OpResult): number {
  return Math.max(1, Math.ceil(r.retryAfterMs - EPS_MS));
}

function denyEvidence(k: Check, r: OpResult, consumer: string, now: number, retry: number, violated: readonly string[]): Evidence {
  const common = {
    limit_id: k.limit.id,
    metric: k.metric,
    scope: k.scope,
    scope_id: k.scopeId,
    consumer,
    window: WINDOW[k.metric],
    retry_after_s: Math.ceil(retry / 1000),
    retry_after_ms: retry,
    violated_limits: violated,
  };
  switch (k.metric) {
    case 'rpm': {
      // GCRA's backlog in requests: a refused caller owes a whole minute's allowance.
      const T = MINUTE_MS / k.max;
      const used = Math.min(k.max, Math.ceil((r.resetMs - EPS_MS) / T));
      return { ...common, unit: 'requests', limit: k.max, used, remaining: 0, reset_at: new Date(now + r.resetMs).toISOString() };
    }
    case 'tpm':
    case 'budget_usd_day':
    case 'budget_usd_month': {
      const w = meterWindow(k.metric, now);
      const used = r.used ?? k.max - r.available;
      const money = k.metric !== 'tpm';
      return {
        ...common,
        unit: money ? 'usd' : 'tokens',
        limit: money ? usd(k.max) : k.max,
        used: money ? usd(used) : used,
        remaining: money ? usd(Math.max(0, k.max - used)) : Math.max(0, k.max - used),
        window_start: new Date(w.start).toISOString(),
        reset_at: new Date(now + r.resetMs).toISOString(),
      };
    }
  }
}

const finiteAmount = (n: number): number => (Number.isFinite(n) && n > 0 ? n : 0);

/**
 * The `charge` of an allowed request: adds tokens and cost to every meter the request was checked
 * against, once, in the windows current when the usage arrives (never earlier than the decision).
 */
function chargeOf(checks: readonly Check[], now: number, store: MeteredCounterStore, clock: () => number): Allow['charge'] {
  const meters = checks.filter((k): k is Check & { readonly metric: Exclude<Metric, 'rpm'> } => k.metric !== 'rpm');
  if (meters.length === 0) return undefined;
  let done = false;
  return (u) => {
    if (done) return;
    done = true;
    const at = Math.max(clock(), now);
    const tokens = finiteAmount(u.promptTokens) + finiteAmount(u.completionTokens);
    const cost = finiteAmount(u.costMicroUsd);
    for (const k of meters) {
      const amount = k.metric === 'tpm' ? tokens : cost;
      if (amount <= 0) continue;
      const w = meterWindow(k.metric, at);
      store.add(k.key, amount, w.start, w.end);
    }
  };
}

interface Applied {
  readonly limit: CompiledAiLimit;
  readonly scope: 'consumer' | 'team';
  readonly scopeId: string;
}

function conclude(
  c: AiLimitsCompiled,
  ctx: DecisionContext,
  consumer: string,
  checks: readonly Check[],
  results: readonly OpResult[],
  notApplied: readonly string[],
  store: MeteredCounterStore,
  clock: () => number,
): Decision {
  if (results.length !== checks.length) return storeFailed(c, ctx, checks, new Error(`counter store answered ${results.length} results for ${checks.length} counters`), store, clock);
  const now = ctx.facts.now;
  const violated: number[] = [];
  results.forEach((r, i) => {
    if (!r.ok) violated.push(i);
  });
  const counted = violated.length === 0;
  const states = checks.map((k, i) => stateOf(k, results[i] as OpResult, counted));
  const req = tightest(states.filter((_, i) => checks[i]?.metric === 'rpm'));
  const tok = tightest(states.filter((_, i) => checks[i]?.metric === 'tpm'));
  const headers = c.headers ? protocolHeaders(ctx.protocol, now, req, tok, !counted) : {};

  if (!counted) {
    // Name the counter that keeps the caller waiting longest: Retry-After must cover every
    // violated one, and that is the one to fix or wait out.
    let worst = violated[0] as number;
    let retry = 0;
    for (const i of violated) {
      const ms = waitMs(results[i] as OpResult);
      if (ms > retry) {
        retry = ms;
        worst = i;
      }
    }
    const k = checks[worst] as Check;
    const ids = violated.map((i) => `${(checks[i] as Check).limit.id}.${(checks[i] as Check).metric}`);
    return {
      outcome: 'deny',
      code: codeOf(k.metric),
      rule: `limit ${k.limit.id} (${k.metric}) exceeded for ${k.scope} ${k.scopeId}`,
      evidence: denyEvidence(k, results[worst] as OpResult, consumer, now, retry, ids),
      headers: { 'retry-after': String(Math.ceil(retry / 1000)), 'retry-after-ms': String(retry), ...headers },
    };
  }

  const limitIds = [...new Set(checks.map((k) => k.limit.id))];
  const evidence: Evidence = {
    consumer,
    applied: [...new Map(checks.map((k) => [k.limit.id, `${k.limit.id}: ${k.scope} ${k.scopeId}`])).values()],
    remaining: checks.map((k, i) => {
      const s = states[i] as HeaderState;
      return `${k.limit.id}.${k.metric}=${k.metric === 'rpm' || k.metric === 'tpm' ? s.remaining : usd(s.remaining)}`;
    }),
    ...(notApplied.length > 0 ? { not_applied: notApplied } : {}),
  };
  const charge = ctx.dryRun ? undefined : chargeOf(checks, now, store, clock);
  return {
    outcome: 'allow',
    rule: `within ${limitIds.join(', ')} for consumer ${consumer}`,
    evidence,
    ...(Object.keys(headers).length > 0 ? { responseHeaders: headers } : {}),
    ...(charge !== undefined ? { charge } : {}),
  };
}

function storeFailed(c: AiLimitsCompiled, ctx: DecisionContext, checks: readonly Check[], err: unknown, store: MeteredCounterStore, clock: () => number): Decision {
  const reason = err instanceof Error ? err.message : String(err);
  const limits = [...new Set(checks.map((k) => k.limit.id))];
  if (c.onStoreError === 'deny') {
    return { outcome: 'deny', code: 'AI_LIMITS_STORE_UNAVAILABLE', rule: 'counters unavailable; on_store_error: deny', evidence: { reason, on_store_error: 'deny', limits } };
  }
  // Failing open still meters the usage: adds are fire and forget, and the store may be back by
  // the time the response ends.
  const charge = ctx.dryRun ? undefined : chargeOf(checks, ctx.facts.now, store, clock);
  return {
    outcome: 'allow',
    rule: 'counters unavailable; on_store_error: allow (not limited)',
    evidence: { reason, on_store_error: 'allow', limits },
    ...(charge !== undefined ? { charge } : {}),
  };
}

/** Which limits apply to this caller, and why the others do not (for the trace). */
function applicable(c: AiLimitsCompiled, consumer: string, team: string | undefined): { applied: Applied[]; notApplied: string[] } {
  const applied: Applied[] = [];
  const notApplied: string[] = [];
  for (const l of c.limits) {
    if (l.consumers !== undefined && !l.consumers.has(consumer)) notApplied.push(`${l.id}: consumer ${consumer} not in its consumers`);
    else if (l.teams !== undefined && (team === undefined || !l.teams.has(team))) notApplied.push(`${l.id}: ${team === undefined ? `consumer ${consumer} has no team` : `team ${team} not in its teams`}`);
    else if (l.per === 'team' && team === undefined) notApplied.push(`${l.id}: per team, and consumer ${consumer} has no team`);
    else applied.push({ limit: l, scope: l.per, scopeId: l.per === 'team' ? (team as string) : consumer });
  }
  return { applied, notApplied };
}

/**
 * Decides one request. Synchronous with an in-process store; a promise with a remote one (cluster
 * primary), which never rejects: a store failure becomes allow or deny per `on_store_error`.
 * In a dry run the store is only peeked and no charge is offered: nothing is counted.
 */
export function decideAiLimits(c: AiLimitsCompiled, ctx: DecisionContext, store: MeteredCounterStore, clock: () => number): Decision | Promise<Decision> {
  const id = ctx.identity;
  if (id === undefined) {
    // Authentication is another policy's job; an anonymous caller has no allowance to count.
    return { outcome: 'skip', rule: 'no identity: ai-limits counts authenticated consumers, and no authentication policy identified the caller' };
  }
  const consumer = id.consumer;
  const team = c.teamOf.get(consumer);
  const { applied, notApplied } = applicable(c, consumer, team);
  if (applied.length === 0) return { outcome: 'skip', rule: `no limit applies to consumer ${consumer}: ${notApplied.join('; ')}` };

  const now = ctx.facts.now;
  const checks = checksOf(c, applied, now);
  return runCounters(
    store,
    checks.map((k) => k.op),
    now,
    ctx.dryRun,
    (results) => conclude(c, ctx, consumer, checks, results, notApplied, store, clock),
    (err) => storeFailed(c, ctx, checks, err, store, clock),
  );
}
