/**
 * What monitor-mode policies would have denied, grouped so that a rule can be switched to enforce
 * with its consequences known: by policy and code, then by route and consumer, with example
 * request ids. Read from the call log's traces (outcome `monitor`).
 */
import type { CallLogEntry } from '../calllog/types.ts';

export interface MonitorGroup {
  readonly policy: string;
  readonly code: string;
  readonly count: number;
  readonly routes: Readonly<Record<string, number>>;
  readonly consumers: Readonly<Record<string, number>>;
  readonly examples: readonly string[];
}

export interface MonitorReport {
  readonly entries_scanned: number;
  readonly would_deny: number;
  readonly groups: readonly MonitorGroup[];
}

export function monitorReport(entries: readonly CallLogEntry[], examplesPerGroup = 3): MonitorReport {
  const groups = new Map<string, { policy: string; code: string; count: number; routes: Record<string, number>; consumers: Record<string, number>; examples: string[] }>();
  let wouldDeny = 0;
  for (const e of entries) {
    let counted = false;
    for (const t of e.trace) {
      if (t.outcome !== 'monitor') continue;
      counted = true;
      const code = t.code ?? '(none)';
      const key = `${t.policy}\u0000${code}`;
      let g = groups.get(key);
      if (g === undefined) {
        g = { policy: t.policy, code, count: 0, routes: {}, consumers: {}, examples: [] };
        groups.set(key, g);
      }
      g.count++;
      const route = e.route ?? '(none)';
      const consumer = e.consumer ?? '(anonymous)';
      g.routes[route] = (g.routes[route] ?? 0) + 1;
      g.consumers[consumer] = (g.consumers[consumer] ?? 0) + 1;
      if (g.examples.length < examplesPerGroup) g.examples.push(e.requestId);
    }
    if (counted) wouldDeny++;
  }
  return {
    entries_scanned: entries.length,
    would_deny: wouldDeny,
    groups: [...groups.values()].sort((a, b) => b.count - a.count),
  };
}
