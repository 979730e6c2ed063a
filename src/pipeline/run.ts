/**
 * Runs a plan against one request. Pure apart from the clock used for durations: no I/O, no
 * counters, no upstream calls. Live enforcement, `diagnose` and `trace` all call this.
 */
import { performance } from 'node:perf_hooks';
import { mergeConsumer, type PlannedPolicy } from './plan.ts';
import type { CompiledPolicy, Deny, DecisionContext, Identity, RequestFacts, TraceEntry } from './types.ts';

export interface Verdict {
  readonly allowed: boolean;
  /** The enforcing denial, when not allowed. */
  readonly deny: Deny | undefined;
  /** The policy that denied. */
  readonly denyPolicy: CompiledPolicy | undefined;
  readonly identity: Identity | undefined;
  /** The trace the caller passed in, with this evaluation's entries appended. */
  readonly trace: TraceEntry[];
  /** Monitor-mode policies that would have denied (policy ids); empty when none. */
  readonly monitorDenied: readonly string[];
  /** Smallest body limit among enforcing policies that ran, or undefined. */
  readonly bodyLimit: number | undefined;
  /** The policy owning bodyLimit (for a denial found while the body streams). */
  readonly bodyLimitPolicy: CompiledPolicy | undefined;
}

export interface ConsumerPolicies {
  get(consumer: string): readonly CompiledPolicy[] | undefined;
}

/** Cache of merged plans per (plan, position, consumer); plans are immutable so this never goes stale. */
const merged = new WeakMap<readonly PlannedPolicy[], Map<string, readonly PlannedPolicy[]>>();

function mergedPlan(
  base: readonly PlannedPolicy[],
  done: number,
  consumer: string,
  policies: readonly CompiledPolicy[],
): readonly PlannedPolicy[] {
  let byKey = merged.get(base);
  if (byKey === undefined) {
    byKey = new Map();
    merged.set(base, byKey);
  }
  const key = `${done}\u0000${consumer}`;
  let m = byKey.get(key);
  if (m === undefined) {
    m = mergeConsumer(base, done, policies);
    byKey.set(key, m);
  }
  return m;
}

const NONE: readonly string[] = Object.freeze([]);

/**
 * Runs the plan. Entries are appended to `trace` (the caller's, so nothing is copied on the hot
 * path). Stops at the first enforcing denial.
 */
export function evaluate(
  base: readonly PlannedPolicy[],
  facts: RequestFacts,
  routeId: string | undefined,
  consumers: ConsumerPolicies,
  trace: TraceEntry[] = [],
): Verdict {
  let monitorDenied: string[] | undefined;
  let identity: Identity | undefined;
  let bodyLimit: number | undefined;
  let bodyLimitPolicy: CompiledPolicy | undefined;
  let list = base;
  let i = 0;
  while (i < list.length) {
    const { policy } = list[i] as PlannedPolicy;
    const ctx: DecisionContext = { facts, identity, routeId };
    const t0 = performance.now();
    const d = policy.decide(ctx);
    const us = Math.round((performance.now() - t0) * 1000);
    if (d.outcome === 'deny') {
      if (policy.mode === 'monitor') {
        trace.push({ policy: policy.id, type: policy.type, outcome: 'monitor', rule: d.rule, code: d.code, evidence: d.evidence, us });
        (monitorDenied ??= []).push(policy.id);
        // Monitor mode behaves as if allowed: a caller it identified is the caller from here on,
        // so that caller's own policies still run.
        if (d.identity !== undefined && identity === undefined) {
          identity = d.identity;
          const own = consumers.get(identity.consumer);
          if (own !== undefined && own.length > 0) {
            list = mergedPlan(list, i, identity.consumer, own);
            i = 0;
            continue;
          }
        }
        i++;
        continue;
      }
      trace.push({ policy: policy.id, type: policy.type, outcome: 'deny', rule: d.rule, code: d.code, evidence: d.evidence, us });
      return { allowed: false, deny: d, denyPolicy: policy, identity: identity ?? d.identity, trace, monitorDenied: monitorDenied ?? NONE, bodyLimit, bodyLimitPolicy };
    }
    trace.push(
      d.outcome === 'allow' && d.evidence !== undefined
        ? { policy: policy.id, type: policy.type, outcome: d.outcome, rule: d.rule, evidence: d.evidence, us }
        : { policy: policy.id, type: policy.type, outcome: d.outcome, rule: d.rule, us },
    );
    if (d.outcome === 'allow' && policy.mode === 'enforce' && policy.bodyLimit !== undefined) {
      if (bodyLimit === undefined || policy.bodyLimit < bodyLimit) {
        bodyLimit = policy.bodyLimit;
        bodyLimitPolicy = policy;
      }
    }
    if (d.outcome === 'allow' && d.identity !== undefined && identity === undefined) {
      identity = d.identity;
      const own = consumers.get(identity.consumer);
      if (own !== undefined && own.length > 0) {
        list = mergedPlan(list, i, identity.consumer, own);
        i = 0;
        continue;
      }
    }
    i++;
  }
  return { allowed: true, deny: undefined, denyPolicy: undefined, identity, trace, monitorDenied: monitorDenied ?? NONE, bodyLimit, bodyLimitPolicy };
}
