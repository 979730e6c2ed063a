/**
 * Runs a plan against one request. Pure apart from the clock used for durations and the stores a
 * stateful policy was compiled with. Live enforcement, `diagnose` and `trace` all call this.
 *
 * Synchronous while every decision is: most requests never allocate a promise. A policy that
 * returns a promise (remote keys, introspection, a buffered body) switches the rest of the run to
 * asynchronous from that point on.
 */
import { performance } from 'node:perf_hooks';
import { mergeConsumer, type PlannedPolicy } from './plan.ts';
import type { AiProtocol, AiUsage, CompiledPolicy, Decision, Deny, DecisionContext, Identity, RequestFacts, RequestTransform, TraceEntry } from './types.ts';

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
  /** A policy answered the request itself (a CORS preflight): the response to send. */
  readonly respond: { readonly status: number; readonly headers: Readonly<Record<string, string>>; readonly policy: string } | undefined;
  /** Headers policies asked to add to the response. */
  readonly responseHeaders: Readonly<Record<string, string>> | undefined;
  /** Changes policies asked for on the upstream request, in pipeline order. */
  readonly transforms: readonly RequestTransform[];
  /** To call when the exchange ends (concurrency slots); empty when none. */
  readonly releases: readonly (() => void)[];
  /** The body to send on instead of the client's (last policy that set one wins). */
  readonly replaceBody: Buffer | undefined;
  /** To call with an AI exchange's usage once known; empty when none. */
  readonly charges: readonly ((u: AiUsage) => void)[];
}

export interface ConsumerPolicies {
  get(consumer: string): readonly CompiledPolicy[] | undefined;
}

export interface EvaluateOptions {
  readonly dryRun?: boolean;
  readonly body?: () => Promise<Buffer>;
  readonly protocol?: AiProtocol | undefined;
}

/** Cache of merged plans per (plan, position, consumer); plans are immutable so this never goes stale. */
const merged = new WeakMap<readonly PlannedPolicy[], Map<string, readonly PlannedPolicy[]>>();

function mergedPlan(base: readonly PlannedPolicy[], done: number, consumer: string, policies: readonly CompiledPolicy[]): readonly PlannedPolicy[] {
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

const NONE: readonly never[] = Object.freeze([]);
const NO_BODY = (): Promise<Buffer> => Promise.reject(new Error('this policy did not declare needsBody'));

/** Structured-field Lists: items from several policies add up (RFC 9651 §3.1; RateLimit headers). */
const LIST_HEADERS = new Set(['ratelimit', 'ratelimit-policy', 'vary']);

function mergeHeaders(into: Record<string, string> | undefined, add: Readonly<Record<string, string>>): Record<string, string> {
  const out = { ...into };
  for (const [k, v] of Object.entries(add)) {
    const prev = out[k];
    out[k] = prev !== undefined && LIST_HEADERS.has(k) ? `${prev}, ${v}` : v;
  }
  return out;
}

/** What the trace keeps of a denial's evidence: the client-facing part plus the operator-only part. */
function traced(d: Deny): Deny['evidence'] {
  return d.internal === undefined ? d.evidence : { ...d.evidence, ...d.internal };
}

function isPromise(d: Decision | Promise<Decision>): d is Promise<Decision> {
  return typeof (d as { then?: unknown }).then === 'function';
}

/** The mutable state of one evaluation. */
class Run {
  list: readonly PlannedPolicy[];
  i = 0;
  identity: Identity | undefined;
  monitorDenied: string[] | undefined;
  bodyLimit: number | undefined;
  bodyLimitPolicy: CompiledPolicy | undefined;
  respond: Verdict['respond'];
  responseHeaders: Record<string, string> | undefined;
  transforms: RequestTransform[] | undefined;
  releases: (() => void)[] | undefined;
  replaceBody: Buffer | undefined;
  charges: ((u: AiUsage) => void)[] | undefined;
  readonly protocol: AiProtocol | undefined;
  readonly facts: RequestFacts;
  readonly routeId: string | undefined;
  readonly consumers: ConsumerPolicies;
  readonly trace: TraceEntry[];
  readonly dryRun: boolean;
  readonly body: () => Promise<Buffer>;

  constructor(list: readonly PlannedPolicy[], facts: RequestFacts, routeId: string | undefined, consumers: ConsumerPolicies, trace: TraceEntry[], opts: EvaluateOptions) {
    this.list = list;
    this.facts = facts;
    this.routeId = routeId;
    this.consumers = consumers;
    this.trace = trace;
    this.dryRun = opts.dryRun === true;
    this.body = opts.body ?? NO_BODY;
    this.protocol = opts.protocol;
  }

  /** Runs policies until done or until one returns a promise. */
  go(): Verdict | Promise<Verdict> {
    while (this.i < this.list.length) {
      const { policy } = this.list[this.i] as PlannedPolicy;
      const ctx: DecisionContext = { facts: this.facts, identity: this.identity, routeId: this.routeId, dryRun: this.dryRun, body: this.body, protocol: this.protocol };
      const t0 = performance.now();
      const d = policy.decide(ctx);
      if (isPromise(d)) {
        return d.then((resolved) => {
          const stop = this.apply(policy, resolved, t0);
          return stop ?? this.go();
        });
      }
      const stop = this.apply(policy, d, t0);
      if (stop !== undefined) return stop;
    }
    return this.verdict(undefined, undefined);
  }

  /** Records one decision; returns a verdict when the run ends here. */
  apply(policy: CompiledPolicy, d: Decision, t0: number): Verdict | undefined {
    const us = Math.round((performance.now() - t0) * 1000);
    const trace = this.trace;
    if (d.outcome === 'deny') {
      if (policy.mode === 'monitor') {
        trace.push({ policy: policy.id, type: policy.type, outcome: 'monitor', rule: d.rule, code: d.code, evidence: traced(d), us });
        (this.monitorDenied ??= []).push(policy.id);
        // Monitor mode behaves as if allowed: a caller it identified is the caller from here on,
        // so that caller's own policies still run.
        if (d.identity !== undefined && this.identity === undefined) this.adopt(d.identity);
        else this.i++;
        return undefined;
      }
      trace.push({ policy: policy.id, type: policy.type, outcome: 'deny', rule: d.rule, code: d.code, evidence: traced(d), us });
      if (this.identity === undefined && d.identity !== undefined) this.identity = d.identity;
      return this.verdict(d, policy);
    }
    trace.push(
      d.outcome === 'allow' && d.evidence !== undefined
        ? { policy: policy.id, type: policy.type, outcome: d.outcome, rule: d.rule, evidence: d.evidence, us }
        : { policy: policy.id, type: policy.type, outcome: d.outcome, rule: d.rule, us },
    );
    if (d.outcome === 'allow') {
      if (policy.mode === 'enforce' && policy.bodyLimit !== undefined && (this.bodyLimit === undefined || policy.bodyLimit < this.bodyLimit)) {
        this.bodyLimit = policy.bodyLimit;
        this.bodyLimitPolicy = policy;
      }
      if (d.responseHeaders !== undefined) this.responseHeaders = mergeHeaders(this.responseHeaders, d.responseHeaders);
      if (d.transform !== undefined) (this.transforms ??= []).push(d.transform);
      if (d.release !== undefined) (this.releases ??= []).push(d.release);
      if (d.replaceBody !== undefined) this.replaceBody = d.replaceBody;
      if (d.charge !== undefined) (this.charges ??= []).push(d.charge);
      if (d.respond !== undefined) {
        this.respond = { ...d.respond, policy: policy.id };
        return this.verdict(undefined, undefined);
      }
      if (d.identity !== undefined && this.identity === undefined) {
        this.adopt(d.identity);
        return undefined;
      }
    }
    this.i++;
    return undefined;
  }

  /** Takes the caller's identity and merges that consumer's own policies into what is left. */
  adopt(identity: Identity): void {
    this.identity = identity;
    const own = this.consumers.get(identity.consumer);
    if (own !== undefined && own.length > 0) {
      this.list = mergedPlan(this.list, this.i, identity.consumer, own);
      this.i = 0;
    } else this.i++;
  }

  verdict(deny: Deny | undefined, denyPolicy: CompiledPolicy | undefined): Verdict {
    return {
      allowed: deny === undefined,
      deny,
      denyPolicy,
      identity: this.identity,
      trace: this.trace,
      monitorDenied: this.monitorDenied ?? NONE,
      bodyLimit: this.bodyLimit,
      bodyLimitPolicy: this.bodyLimitPolicy,
      respond: this.respond,
      responseHeaders: this.responseHeaders,
      transforms: this.transforms ?? NONE,
      releases: this.releases ?? NONE,
      replaceBody: this.replaceBody,
      charges: this.charges ?? NONE,
    };
  }
}

/**
 * Runs the plan. Entries are appended to `trace` (the caller's, so nothing is copied on the hot
 * path). Stops at the first enforcing denial or at a policy that answers the request itself.
 */
export function evaluate(
  base: readonly PlannedPolicy[],
  facts: RequestFacts,
  routeId: string | undefined,
  consumers: ConsumerPolicies,
  trace: TraceEntry[] = [],
  opts: EvaluateOptions = {},
): Verdict | Promise<Verdict> {
  const run = new Run(base, facts, routeId, consumers, trace, opts);
  const giveBack = (err: unknown): never => {
    // No verdict means the gateway never calls the releases: give back slots taken so far.
    for (const r of run.releases ?? []) r();
    throw err;
  };
  let v: Verdict | Promise<Verdict>;
  try {
    v = run.go();
  } catch (err) {
    return giveBack(err);
  }
  return isVerdictPromise(v) ? v.catch(giveBack) : v;
}

/** For callers that know every policy on the plan is synchronous (tests, tools). */
export function evaluateSync(...args: Parameters<typeof evaluate>): Verdict {
  const v = evaluate(...args);
  if (isVerdictPromise(v)) throw new Error('a policy on this plan decided asynchronously; use evaluate()');
  return v;
}

function isVerdictPromise(v: Verdict | Promise<Verdict>): v is Promise<Verdict> {
  return typeof (v as { then?: unknown }).then === 'function';
}
