/**
 * Execution plans: for each route, the global and route policies sorted once by pipeline order at
 * config load; for each (route, consumer) pair, the remainder merged with the consumer's own
 * policies, built on first use and cached. No sorting happens per request.
 */
import { ORDER_INDEX } from './order.ts';
import type { CompiledPolicy } from './types.ts';

export interface PlannedPolicy {
  readonly policy: CompiledPolicy;
  readonly position: number;
  /** Where the policy was attached, for traces: 'global', 'route' or 'consumer'. */
  readonly attachedTo: 'global' | 'route' | 'consumer';
}

function position(p: CompiledPolicy): number {
  const i = ORDER_INDEX.get(p.type);
  if (i === undefined) throw new Error(`policy type ${p.type} has no place in PIPELINE_ORDER`);
  return i;
}

export function plan(global: readonly CompiledPolicy[], route: readonly CompiledPolicy[]): readonly PlannedPolicy[] {
  const seen = new Set<string>();
  const out: PlannedPolicy[] = [];
  for (const [list, attachedTo] of [
    [global, 'global'],
    [route, 'route'],
  ] as const) {
    for (const p of list) {
      if (seen.has(p.id)) continue; // attached twice: run once
      seen.add(p.id);
      out.push({ policy: p, position: position(p), attachedTo });
    }
  }
  // Stable sort keeps global before route for policies of the same type.
  return Object.freeze(out.sort((a, b) => a.position - b.position));
}

/**
 * The policies still to run after `done` (an index into `base`) once a consumer is known.
 * Consumer policies whose position has already passed run first, in pipeline order.
 */
export function mergeConsumer(
  base: readonly PlannedPolicy[],
  done: number,
  consumerPolicies: readonly CompiledPolicy[],
): readonly PlannedPolicy[] {
  const already = new Set(base.slice(0, done + 1).map((p) => p.policy.id));
  const rest = base.slice(done + 1);
  for (const p of rest) already.add(p.policy.id);
  const extra: PlannedPolicy[] = [];
  for (const p of consumerPolicies) {
    if (already.has(p.id)) continue;
    already.add(p.id);
    extra.push({ policy: p, position: position(p), attachedTo: 'consumer' });
  }
  const current = base[done]?.position ?? -1;
  const late = extra.filter((e) => e.position <= current).sort((a, b) => a.position - b.position);
  const merged = [...rest, ...extra.filter((e) => e.position > current)].sort((a, b) => a.position - b.position);
  return Object.freeze([...late, ...merged]);
}
