/**
 * Dry-run diagnosis: a described request goes through the same route match and the same
 * `evaluate()` as live traffic, with `dryRun: true` (no counter consumed, no remote call that is
 * not cached, no upstream call). What it answers is what enforcement would answer.
 */
import type { CompiledConfig } from '../config/compile.ts';
import { CATALOG, renderTemplate, type Code, type Layer } from '../errors/catalog.ts';
import { evaluate } from '../pipeline/run.ts';
import type { Evidence, TraceEntry } from '../pipeline/types.ts';
import { clientAddress } from '../proxy/forwarded.ts';
import { admit, hostOnly, requestFacts, splitTarget } from '../routing/admit.ts';
import type { DescribedRequest } from './request.ts';

export interface Diagnosis {
  readonly verdict: 'allowed' | 'denied' | 'answered';
  /** The status the gateway would answer with; for allowed requests, the upstream's (unknown: null). */
  readonly status: number | null;
  readonly code: Code | null;
  readonly title: string | null;
  readonly layer: Layer | null;
  readonly policy: string | null;
  readonly rule: string | null;
  readonly evidence: Evidence | null;
  /** What the client should change. */
  readonly client_fix: string | null;
  /** Where in the config the deciding rule lives, to change it there instead. */
  readonly config_fix: string | null;
  readonly route: string | null;
  readonly consumer: string | null;
  readonly upstream: string | null;
  readonly monitor: readonly string[];
  readonly trace: readonly TraceEntry[];
  /** For a cross-origin request a browser preflights, the diagnosis of that OPTIONS preflight. */
  readonly preflight?: Diagnosis;
}


function denied(code: Code, policy: string, rule: string, evidence: Evidence, trace: TraceEntry[], extra: Partial<Diagnosis> = {}): Diagnosis {
  const entry = CATALOG[code];
  return {
    verdict: 'denied',
    status: entry.status,
    code,
    title: entry.title,
    layer: entry.layer,
    policy,
    rule,
    evidence,
    client_fix: renderTemplate(entry.remediation, evidence),
    config_fix: policy === 'router' ? 'routes: add or correct a route for this method and path' : policy === 'http' ? null : `policies.${policy} (or the credentials it checks)`,
    route: null,
    consumer: null,
    upstream: null,
    monitor: [],
    trace,
    ...extra,
  };
}

/** Fetch standard, CORS-safelisted request-header and forbidden request-header names. */
const SAFELISTED = new Set(['accept', 'accept-language', 'content-language', 'content-type', 'range']);
const BROWSER_SET = new Set([
  'host', 'origin', 'referer', 'user-agent', 'cookie', 'content-length', 'connection', 'keep-alive',
  'accept-encoding', 'accept-charset', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'via', 'date', 'dnt', 'expect',
  'access-control-request-headers', 'access-control-request-method',
]);
const SIMPLE_TYPES = new Set(['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain']);

/**
 * The preflight a browser sends before this request (Fetch standard, CORS-preflight fetch), or
 * undefined when it sends none: same-origin, no Origin, or a "simple" request.
 */
export function impliedPreflight(req: DescribedRequest): DescribedRequest | undefined {
  const origin = req.headers.origin;
  if (origin === undefined || origin === 'null') return undefined;
  let originHost: string;
  try {
    originHost = new URL(origin).host;
  } catch {
    return undefined;
  }
  if (req.headers.host !== undefined && originHost === req.headers.host) return undefined;
  const method = req.method.toUpperCase();
  const custom = Object.keys(req.headers)
    .filter((h) => !BROWSER_SET.has(h) && !h.startsWith('sec-') && !h.startsWith('proxy-'))
    .filter((h) => {
      if (!SAFELISTED.has(h)) return true;
      if (h === 'content-type') return !SIMPLE_TYPES.has((req.headers[h] ?? '').split(';')[0]?.trim().toLowerCase() ?? '');
      return false;
    })
    .sort();
  if (['GET', 'HEAD', 'POST'].includes(method) && custom.length === 0) return undefined;
  return {
    method: 'OPTIONS',
    target: req.target,
    headers: {
      ...(req.headers.host !== undefined ? { host: req.headers.host } : {}),
      origin,
      'access-control-request-method': method,
      ...(custom.length > 0 ? { 'access-control-request-headers': custom.join(',') } : {}),
    },
    ...(req.clientIp !== undefined ? { clientIp: req.clientIp } : {}),
  };
}

/**
 * Browsers send Origin on every cross-origin fetch, but a HAR of a blocked request often has only
 * the provisional headers, without it: the page's origin is then taken from the Referer.
 */
function withBrowserOrigin(req: DescribedRequest): DescribedRequest {
  if (req.headers.origin !== undefined || req.headers.referer === undefined) return req;
  let origin: string;
  try {
    const ref = new URL(req.headers.referer);
    if (ref.host === req.headers.host) return req;
    origin = ref.origin;
  } catch {
    return req;
  }
  return { ...req, headers: { ...req.headers, origin } };
}

/**
 * Diagnoses a request as a browser would send it: a cross-origin request that needs a preflight
 * is diagnosed after its preflight, and a refused preflight is the answer (the browser never sends
 * the request itself). Non-browser requests are diagnosed as they are.
 */
export async function diagnoseAsBrowser(cfg: CompiledConfig, described: DescribedRequest): Promise<Diagnosis> {
  const req = withBrowserOrigin(described);
  const pre = impliedPreflight(req);
  if (pre === undefined) return diagnose(cfg, req);
  const p = await diagnose(cfg, pre);
  if (p.verdict === 'denied') return { ...p, preflight: p };
  return { ...(await diagnose(cfg, req)), preflight: p };
}

export async function diagnose(cfg: CompiledConfig, req: DescribedRequest): Promise<Diagnosis> {
  const trace: TraceEntry[] = [];
  const { path, query } = splitTarget(req.target);
  const method = req.method.toUpperCase();
  const host = hostOnly(req.headers.host);
  // The same request checks and route match as live traffic (src/routing/admit.ts).
  const a = admit(cfg, method, path, host, undefined, req.headers['transfer-encoding']);
  trace.push(a.trace);
  if (a.kind === 'deny') return denied(a.code, a.policy, a.rule, a.evidence, trace);
  const route = a.route;
  const client = clientAddress(req.clientIp ?? '127.0.0.1', req.headers, cfg.trustedProxies, cfg.source.trusted_proxy_header);
  const cl = req.headers['content-length'];
  const contentLength = cl !== undefined ? Number(cl) : req.body !== undefined ? req.body.length : undefined;
  const facts = requestFacts({ method, path, query, host, headers: req.headers }, a.params, client, contentLength, Date.now());

  const body = req.body ?? Buffer.alloc(0);
  const v = await evaluate(route.plan, facts, route.id, cfg.consumerPolicies, trace, { dryRun: true, body: () => Promise.resolve(body), protocol: route.protocol });
  const base = { route: route.id, consumer: v.identity?.consumer ?? null, upstream: route.upstreamId, monitor: v.monitorDenied };
  if (!v.allowed && v.deny !== undefined && v.denyPolicy !== undefined) {
    return denied(v.deny.code, v.denyPolicy.id, v.deny.rule, v.deny.evidence, trace, base);
  }
  if (v.respond !== undefined) {
    return { verdict: 'answered', status: v.respond.status, code: null, title: null, layer: 'gateway', policy: v.respond.policy, rule: null, evidence: null, client_fix: null, config_fix: null, trace, ...base };
  }
  return { verdict: 'allowed', status: null, code: null, title: null, layer: null, policy: null, rule: null, evidence: null, client_fix: null, config_fix: null, trace, ...base };
}
