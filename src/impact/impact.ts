/**
 * Impact analysis: every logged request replayed through the config in force (the baseline, with
 * today's code) and through a proposed one, and every decision that differs, grouped by route,
 * consumer and from → to. Comparing two replays, rather than a replay with what the log says
 * happened, keeps differences that are not the config's doing out of the report: upstream errors,
 * clients that left, counters, and code changes since the request was logged.
 */
import type { CallLogEntry } from '../calllog/types.ts';
import type { CompiledConfig } from '../config/compile.ts';
import type { Code } from '../errors/catalog.ts';
import { ReplayTarget, STATEFUL_TYPES, stableJson, type ReplayResult, type Verdict } from './replay.ts';

export type ChangeKind = 'newly_denied' | 'newly_allowed' | 'denied_differently' | 'answered_differently';

/** Which kinds are listed first. */
export const CHANGE_KINDS: readonly ChangeKind[] = ['newly_denied', 'newly_allowed', 'denied_differently', 'answered_differently'];

/** A decision as the report shows it. */
export interface Decided {
  readonly outcome: Verdict['outcome'];
  readonly status: number | null;
  readonly code: Code | null;
  readonly policy: string | null;
}

export interface ChangeGroup {
  readonly kind: ChangeKind;
  readonly route: string | null;
  readonly consumer: string | null;
  readonly from: Decided;
  readonly to: Decided;
  readonly count: number;
  /** Up to `examples` request ids, oldest first. */
  readonly examples: readonly string[];
}

export interface NotReplayableGroup {
  /** Which replay could not decide: the current config's, the new one's, or both. */
  readonly config: 'current' | 'new' | 'both';
  readonly reason: string;
  readonly count: number;
  readonly examples: readonly string[];
}

/** A counter policy the replay passed over, and how the new config changes it. */
export interface CounterNote {
  readonly policy: string;
  readonly type: string;
  /** added / removed / changed between the configs, or unchanged. */
  readonly change: 'added' | 'removed' | 'changed' | 'unchanged';
  /** Replayed requests that met it (under the new config; under the current one when removed). */
  readonly requests: number;
}

export interface ImpactReport {
  /** Entries read from the log. */
  readonly entries: number;
  /** Entries both configs decided. */
  readonly compared: number;
  /** Entries whose decision changes (the sum of `changes[].count`). */
  readonly changed: number;
  readonly by_kind: Readonly<Record<ChangeKind, number>>;
  readonly changes: readonly ChangeGroup[];
  readonly not_replayable: readonly NotReplayableGroup[];
  readonly counters: readonly CounterNote[];
}

export interface ImpactOptions {
  /** The config the gateway runs (the log was recorded under it). */
  readonly current: CompiledConfig;
  /** The proposed config. */
  readonly next: CompiledConfig;
  /** Example request ids per group; default 3. */
  readonly examples?: number;
  /** Called after each entry (progress). */
  readonly onEntry?: (done: number) => void;
}

function decided(v: Verdict): Decided {
  return { outcome: v.outcome, status: v.status, code: v.code, policy: v.policy };
}

/** How `to` differs from `from`, or undefined when it does not. */
export function changeOf(from: Verdict, to: Verdict): ChangeKind | undefined {
  const wasDenied = from.outcome === 'denied';
  const isDenied = to.outcome === 'denied';
  if (isDenied && !wasDenied) return 'newly_denied';
  if (wasDenied && !isDenied) return 'newly_allowed';
  if (wasDenied && isDenied) return from.code !== to.code || from.policy !== to.policy ? 'denied_differently' : undefined;
  if (from.outcome !== to.outcome || from.status !== to.status || from.policy !== to.policy) return 'answered_differently';
  return undefined;
}

interface Group<T> {
  value: T;
  count: number;
  examples: string[];
}

function add<T>(map: Map<string, Group<T>>, key: string, make: () => T, requestId: string, max: number): void {
  let g = map.get(key);
  if (g === undefined) {
    g = { value: make(), count: 0, examples: [] };
    map.set(key, g);
  }
  g.count++;
  if (g.examples.length < max) g.examples.push(requestId);
}

/** Counter policies of a config by id, with their settings for comparison. */
function counterPolicies(cfg: CompiledConfig): Map<string, { type: string; text: string }> {
  const out = new Map<string, { type: string; text: string }>();
  for (const [id, inst] of Object.entries(cfg.source.policies)) {
    if (STATEFUL_TYPES.has(inst.type)) out.set(id, { type: inst.type, text: stableJson(inst) });
  }
  return out;
}

/** Replays every entry through both configs and reports what changes. Reads `entries` once, in order. */
export async function impact(entries: Iterable<CallLogEntry> | AsyncIterable<CallLogEntry>, opts: ImpactOptions): Promise<ImpactReport> {
  const examples = Math.max(0, Math.trunc(opts.examples ?? 3));
  const current = new ReplayTarget(opts.current, opts.current);
  const next = new ReplayTarget(opts.next, opts.current);
  const changes = new Map<string, Group<Omit<ChangeGroup, 'count' | 'examples'>>>();
  const unreplayable = new Map<string, Group<Omit<NotReplayableGroup, 'count' | 'examples'>>>();
  const metCurrent = new Map<string, number>();
  const metNext = new Map<string, number>();
  const byKind: Record<ChangeKind, number> = { newly_denied: 0, newly_allowed: 0, denied_differently: 0, answered_differently: 0 };
  let n = 0;
  let compared = 0;
  let changed = 0;

  const count = (into: Map<string, number>, r: ReplayResult): void => {
    if (r.kind === 'decided') for (const p of r.verdict.counters) into.set(p, (into.get(p) ?? 0) + 1);
  };

  for await (const e of entries) {
    n++;
    const a = await current.replay(e);
    const b = await next.replay(e);
    count(metCurrent, a);
    count(metNext, b);
    if (a.kind === 'unreplayable' || b.kind === 'unreplayable') {
      const config = a.kind === 'unreplayable' && b.kind === 'unreplayable' ? (a.reason === b.reason ? 'both' : 'new') : a.kind === 'unreplayable' ? 'current' : 'new';
      // When both fail for different reasons, the new config's reason is the one to act on.
      const reason = b.kind === 'unreplayable' ? b.reason : a.kind === 'unreplayable' ? a.reason : '';
      add(unreplayable, `${config}\u0000${reason}`, () => ({ config, reason }), e.requestId, examples);
    } else {
      compared++;
      const kind = changeOf(a.verdict, b.verdict);
      if (kind !== undefined) {
        changed++;
        byKind[kind]++;
        const route = b.verdict.route ?? a.verdict.route ?? e.route;
        const consumer = b.verdict.consumer ?? a.verdict.consumer ?? e.consumer;
        const from = decided(a.verdict);
        const to = decided(b.verdict);
        add(changes, stableJson([kind, route, consumer, from, to]), () => ({ kind, route, consumer, from, to }), e.requestId, examples);
      }
    }
    opts.onEntry?.(n);
  }

  const curCounters = counterPolicies(opts.current);
  const nextCounters = counterPolicies(opts.next);
  const counters: CounterNote[] = [];
  for (const id of new Set([...curCounters.keys(), ...nextCounters.keys()])) {
    const was = curCounters.get(id);
    const is = nextCounters.get(id);
    const change = was === undefined ? 'added' : is === undefined ? 'removed' : was.text === is.text ? 'unchanged' : 'changed';
    const requests = change === 'removed' ? (metCurrent.get(id) ?? 0) : (metNext.get(id) ?? 0);
    if (requests > 0 || change !== 'unchanged') counters.push({ policy: id, type: (is ?? was)?.type ?? '', change, requests });
  }

  const rank = (k: ChangeKind): number => CHANGE_KINDS.indexOf(k);
  return {
    entries: n,
    compared,
    changed,
    by_kind: byKind,
    changes: [...changes.values()]
      .map((g) => ({ ...g.value, count: g.count, examples: g.examples }))
      .sort((x, y) => rank(x.kind) - rank(y.kind) || y.count - x.count || String(x.route).localeCompare(String(y.route))),
    not_replayable: [...unreplayable.values()].map((g) => ({ ...g.value, count: g.count, examples: g.examples })).sort((x, y) => y.count - x.count),
    counters: counters.sort((x, y) => x.policy.localeCompare(y.policy)),
  };
}
