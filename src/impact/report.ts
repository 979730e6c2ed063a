/** Human output of `pinpoint impact`: one block per change group, then what could not be replayed. */
import type { ChangeKind, Decided, ImpactReport } from './impact.ts';

export interface Paint {
  readonly red: (s: string) => string;
  readonly green: (s: string) => string;
  readonly yellow: (s: string) => string;
  readonly bold: (s: string) => string;
  readonly dim: (s: string) => string;
}

const PLAIN: Paint = { red: (s) => s, green: (s) => s, yellow: (s) => s, bold: (s) => s, dim: (s) => s };

const LABEL: Readonly<Record<ChangeKind, string>> = {
  newly_denied: 'newly denied',
  newly_allowed: 'newly allowed',
  denied_differently: 'denied with another code',
  answered_differently: 'answered differently',
};

export function describeDecision(d: Decided): string {
  switch (d.outcome) {
    case 'allowed':
      return 'allowed';
    case 'answered':
      return `answered ${d.status ?? ''} by ${d.policy ?? ''}`;
    case 'denied':
      return `${d.status ?? ''} ${d.code ?? ''} (${d.policy ?? ''})`;
  }
}

export interface ReportHeader {
  readonly next: string;
  readonly current: string;
  readonly since: number;
  readonly until: number;
}

export function formatImpact(r: ImpactReport, h: ReportHeader, paint: Paint = PLAIN): string {
  const out: string[] = [];
  const window = `${new Date(h.since).toISOString()} – ${new Date(h.until).toISOString()}`;
  out.push(`${paint.bold(`impact of ${h.next}`)} against ${h.current} on ${r.entries} logged request${r.entries === 1 ? '' : 's'} (${window})`);
  if (r.changed === 0) out.push(paint.green(`✓ no decision changes (${r.compared} compared)`));
  else {
    const parts = (Object.keys(LABEL) as ChangeKind[]).filter((k) => r.by_kind[k] > 0).map((k) => `${r.by_kind[k]} ${LABEL[k]}`);
    out.push(paint.yellow(`✗ ${r.changed} of ${r.compared} compared decision${r.compared === 1 ? '' : 's'} change: ${parts.join(', ')}`));
  }
  for (const g of r.changes) {
    const mark = g.kind === 'newly_denied' ? paint.red('✗') : g.kind === 'newly_allowed' ? paint.green('✓') : paint.yellow('~');
    out.push('');
    out.push(`${mark} ${paint.bold(LABEL[g.kind])}  ×${g.count}  route ${g.route ?? '(none)'}  consumer ${g.consumer ?? '(anonymous)'}`);
    out.push(`    ${describeDecision(g.from)} → ${describeDecision(g.to)}`);
    if (g.examples.length > 0) out.push(paint.dim(`    e.g. ${g.examples.join(', ')}`));
  }
  if (r.not_replayable.length > 0) {
    const total = r.not_replayable.reduce((s, g) => s + g.count, 0);
    out.push('');
    out.push(paint.yellow(`? ${total} request${total === 1 ? '' : 's'} not replayable (not counted as changes):`));
    for (const g of r.not_replayable) {
      out.push(`  ${String(g.count).padStart(6)}  ${g.config === 'both' ? '' : `${g.config} config: `}${g.reason}`);
      if (g.examples.length > 0) out.push(paint.dim(`          e.g. ${g.examples.join(', ')}`));
    }
  }
  if (r.counters.length > 0) {
    out.push('');
    out.push(`counters not re-decided (they depend on all traffic, in order; see docs/call-log.md):`);
    for (const c of r.counters) out.push(`  ${c.policy} (${c.type}, ${c.change}): met by ${c.requests} replayed request${c.requests === 1 ? '' : 's'}`);
  }
  return out.join('\n');
}

/** A one-line progress bar for stderr. */
export function progressLine(done: number, total: number, width = 30): string {
  const share = total > 0 ? Math.min(1, done / total) : 1;
  const filled = Math.round(share * width);
  return `\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.floor(share * 100)).padStart(3)}% ${done}/${total}`;
}
