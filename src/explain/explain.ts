/**
 * `explain`: turns one call-log entry into the answer to "why?" — the decisive policy, the cause
 * with its evidence, and the fix. It reads what enforcement recorded (the trace is written by the
 * same pipeline that decided), so it cannot disagree with what happened.
 */
import type { CallLogEntry } from '../calllog/types.ts';
import { CATALOG, renderTemplate, type Layer } from '../errors/catalog.ts';
import type { Evidence, TraceEntry } from '../pipeline/types.ts';

export type Outcome = 'allowed' | 'denied_by_gateway' | 'denied_by_upstream' | 'upstream_failed' | 'client_closed' | 'gateway_error';

export interface Explanation {
  readonly request_id: string;
  readonly time: string;
  readonly request: { readonly method: string; readonly host: string; readonly path: string; readonly client_ip: string; readonly user_agent: string | null };
  readonly route: string | null;
  readonly consumer: string | null;
  readonly credential: string | null;
  readonly status: number;
  readonly outcome: Outcome;
  readonly layer: Layer | null;
  readonly code: string | null;
  readonly policy: string | null;
  readonly title: string | null;
  /** The decisive rule, as the policy stated it. */
  readonly cause: string | null;
  readonly evidence: Evidence | null;
  /** What would make the request pass. */
  readonly fix: string | null;
  readonly upstream: { readonly target: string | null; readonly attempts: number; readonly body: string | null };
  readonly monitor: readonly TraceEntry[];
  readonly trace: readonly TraceEntry[];
  readonly latency_ms: number;
}

function outcomeOf(e: CallLogEntry): Outcome {
  if (e.code === 'CLIENT_CLOSED_REQUEST') return 'client_closed';
  if (e.code === 'GATEWAY_INTERNAL_ERROR') return 'gateway_error';
  if (e.code !== null && e.layer === 'upstream') return 'upstream_failed';
  if (e.code !== null) return 'denied_by_gateway';
  if (e.layer === 'upstream' && e.status >= 400) return 'denied_by_upstream';
  return 'allowed';
}

export function explain(e: CallLogEntry): Explanation {
  const outcome = outcomeOf(e);
  const decisive = [...e.trace].reverse().find((t) => t.outcome === 'deny');
  const entry = e.code !== null && Object.hasOwn(CATALOG, e.code) ? CATALOG[e.code] : undefined;
  const evidence = decisive?.evidence ?? null;
  let fix: string | null = null;
  if (entry !== undefined) fix = renderTemplate(entry.remediation, { ...evidence, request_id: e.requestId });
  else if (outcome === 'denied_by_upstream') {
    fix = `The gateway allowed this request (every policy passed); the upstream ${e.upstreamTarget ?? ''} answered ${e.status} itself. Look at the upstream application's own authorization, business rules or a filter in front of it; its response body is below.`;
  }
  return {
    request_id: e.requestId,
    time: new Date(e.ts).toISOString(),
    request: { method: e.method, host: e.host, path: e.path, client_ip: e.clientIp, user_agent: e.userAgent },
    route: e.route,
    consumer: e.consumer,
    credential: e.credentialId,
    status: e.status,
    outcome,
    layer: e.layer,
    code: e.code,
    policy: e.policy,
    title: entry?.title ?? null,
    cause: decisive?.rule ?? null,
    evidence,
    fix,
    upstream: { target: e.upstreamTarget, attempts: e.attempts, body: e.upstreamBody },
    monitor: e.trace.filter((t) => t.outcome === 'monitor'),
    trace: e.trace,
    latency_ms: e.latencyMs,
  };
}

/** The readable form for a terminal. */
export function formatExplanation(x: Explanation): string {
  const lines: string[] = [];
  lines.push(`Request ${x.request_id} at ${x.time}`);
  lines.push(`  ${x.request.method} ${x.request.host}${x.request.path} from ${x.request.client_ip}`);
  lines.push(`  route: ${x.route ?? '(none)'}   consumer: ${x.consumer ?? '(anonymous)'}${x.credential !== null ? ` (credential ${x.credential})` : ''}`);
  lines.push(`  status: ${x.status}   outcome: ${x.outcome}${x.layer !== null ? `   layer: ${x.layer}` : ''}`);
  if (x.code !== null) {
    lines.push('');
    lines.push(`Decided by policy "${x.policy ?? '?'}": ${x.code} — ${x.title ?? ''}`);
    if (x.cause !== null) lines.push(`  cause: ${x.cause}`);
  }
  if (x.evidence !== null) {
    lines.push('  evidence:');
    for (const [k, v] of Object.entries(x.evidence)) lines.push(`    ${k}: ${Array.isArray(v) ? v.join(', ') : String(v)}`);
  }
  if (x.fix !== null) {
    lines.push('');
    lines.push(`Fix: ${x.fix}`);
  }
  if (x.upstream.body !== null && x.upstream.body !== '') {
    lines.push('');
    lines.push(`Upstream body (first bytes): ${x.upstream.body}`);
  }
  lines.push('');
  lines.push('Trace:');
  for (const t of x.trace) {
    lines.push(`  ${t.outcome.padEnd(7)} ${t.policy.padEnd(24)} ${t.type.padEnd(14)} ${t.rule}${t.code !== undefined ? `  [${t.code}]` : ''}`);
  }
  return lines.join('\n');
}
