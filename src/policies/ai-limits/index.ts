/**
 * `ai-limits`: AI requests per minute (rpm), tokens per minute (tpm) and spend per UTC day and
 * month, per consumer or per team (consumers[].team), optionally only for some consumers or teams.
 * A refusal is a 429 naming the limit, whom it counted and when it resets, with Retry-After and
 * retry-after-ms; a spent budget is not retryable (the gateway adds `x-should-retry: false`).
 * Allowed and refused responses describe the tightest limits in the client protocol's own
 * rate-limit headers (see decide.ts).
 *
 * The decision checks the counters; the AI handler reports what the exchange used through the
 * allow's `charge`, which adds tokens and cost to the meters. Counters live in the process-wide
 * store (src/counters/index.ts): in-process by default, the cluster primary with `--workers`.
 *
 * @example
 * # consumers: [{ id: alice, team: acme }, { id: bob, team: acme }]
 * # policies:
 * #   ai-quotas:
 * #     type: ai-limits
 * #     config:
 * #       limits:
 * #         - { id: per-user, per: consumer, rpm: 60, tpm: 100000 }
 * #         - { id: acme-spend, per: team, teams: [acme], budget_usd_day: 50, budget_usd_month: 1000 }
 */
import { getCounterStore } from '../../counters/index.ts';
import type { MeteredCounterStore } from '../../counters/types.ts';
import { ConfigError, type ConfigIssue, type PolicyModule } from '../../pipeline/types.ts';
import { decideAiLimits, type AiLimitsCompiled, type CompiledAiLimit } from './decide.ts';
import { AiLimitsSchema, type AiLimitConfig } from './schema.ts';

const ID = /^[A-Za-z0-9._-]{1,64}$/;

/** `(known: a, b, …)` for a message, bounded so a large consumer list does not flood it. */
function known(ids: Iterable<string>): string {
  const all = [...ids].sort();
  if (all.length === 0) return 'none';
  return all.length <= 10 ? all.join(', ') : `${all.slice(0, 10).join(', ')}, \u2026 (${all.length} in all)`;
}

function compileLimit(l: AiLimitConfig, path: string, consumers: ReadonlySet<string>, teams: ReadonlySet<string>, issues: ConfigIssue[]): CompiledAiLimit | undefined {
  const before = issues.length;
  const per = l.per;
  if (!ID.test(l.id)) issues.push({ path: `${path}.id`, message: 'must be 1 to 64 of A-Z a-z 0-9 . _ -' });
  if (l.rpm === undefined && l.tpm === undefined && l.budget_usd_day === undefined && l.budget_usd_month === undefined) {
    issues.push({ path, message: 'declare at least one of rpm, tpm, budget_usd_day and budget_usd_month' });
  }
  for (const f of ['rpm', 'tpm'] as const) {
    const v = l[f];
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 1)) issues.push({ path: `${path}.${f}`, message: 'must be an integer >= 1' });
  }
  for (const f of ['budget_usd_day', 'budget_usd_month'] as const) {
    const v = l[f];
    // Spend is metered in micro-dollars (AiUsage.costMicroUsd): a budget below one cannot be told from zero.
    if (v !== undefined && (!Number.isFinite(v) || Math.round(v * 1_000_000) < 1)) issues.push({ path: `${path}.${f}`, message: 'must be a number of USD, at least 0.000001' });
  }
  const only = l.consumers ?? [];
  const inTeams = l.teams ?? [];
  if (only.length > 0 && per === 'team') {
    issues.push({ path: `${path}.consumers`, message: 'a per: team limit counts whole teams: choose them with teams, or use per: consumer' });
  } else if (only.length > 0 && inTeams.length > 0) {
    issues.push({ path: `${path}.teams`, message: 'give consumers or teams, not both' });
  }
  only.forEach((c, j) => {
    if (!consumers.has(c)) issues.push({ path: `${path}.consumers[${j}]`, message: `no consumer "${c}" in consumers (known: ${known(consumers)})` });
  });
  inTeams.forEach((t, j) => {
    if (!teams.has(t)) issues.push({ path: `${path}.teams[${j}]`, message: `no consumer has team "${t}" (teams in consumers[].team: ${known(teams)})` });
  });
  if (per === 'team' && teams.size === 0) {
    issues.push({ path: `${path}.per`, message: 'per: team, but no consumer has a team (consumers[].team): this limit could never apply' });
  }
  if (issues.length > before) return undefined;
  return Object.freeze({
    id: l.id,
    per,
    rpm: l.rpm,
    tpm: l.tpm,
    budgetUsdDay: l.budget_usd_day,
    budgetUsdMonth: l.budget_usd_month,
    // An empty list means everyone, the same as no list.
    consumers: only.length > 0 ? new Set(only) : undefined,
    teams: inTeams.length > 0 ? new Set(inTeams) : undefined,
  });
}

export interface AiLimitsOptions {
  /** The counter store, resolved on every decision (so a store set after compile is used). */
  readonly store: () => MeteredCounterStore;
  /**
   * When `charge` runs (the usage arrives after the decision, so not `facts.now`). Injected for
   * tests; default Date.now.
   */
  readonly clock?: () => number;
}

/** The module over a store provider and a clock; tests pass their own. */
export function createAiLimits(opts: AiLimitsOptions): PolicyModule<typeof AiLimitsSchema> {
  const clock = opts.clock ?? Date.now;
  return {
    type: 'ai-limits',
    summary: 'AI requests per minute, tokens per minute and USD budgets per day/month, per consumer or team; 429 with Retry-After and the protocol\u2019s rate-limit headers.',
    schema: AiLimitsSchema,
    compile(config, meta, ctx) {
      const issues: ConfigIssue[] = [];
      const consumers = new Set(ctx.consumers.map((c) => c.id));
      const teamOf = new Map<string, string>();
      for (const c of ctx.consumers) if (c.team !== undefined) teamOf.set(c.id, c.team);
      const teams = new Set(teamOf.values());

      const limits: CompiledAiLimit[] = [];
      const ids = new Map<string, number>();
      config.limits.forEach((l, i) => {
        const path = `${ctx.path}.limits[${i}]`;
        const first = ids.get(l.id);
        if (first !== undefined) issues.push({ path: `${path}.id`, message: `duplicate id "${l.id}" (also limits[${first}])` });
        else ids.set(l.id, i);
        const c = compileLimit(l, path, consumers, teams, issues);
        if (c !== undefined) limits.push(c);
      });
      if (config.limits.length === 0) issues.push({ path: `${ctx.path}.limits`, message: 'declare at least one limit' });
      if (issues.length > 0) throw new ConfigError(issues);

      const compiled: AiLimitsCompiled = Object.freeze({
        policyId: meta.id,
        limits: Object.freeze(limits),
        teamOf,
        headers: config.headers,
        onStoreError: config.on_store_error,
      });
      return {
        id: meta.id,
        type: 'ai-limits',
        mode: meta.mode,
        decide: (dctx) => decideAiLimits(compiled, dctx, opts.store(), clock),
      };
    },
  };
}

export const aiLimits: PolicyModule<typeof AiLimitsSchema> = createAiLimits({ store: getCounterStore });
