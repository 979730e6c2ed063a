/**
 * The one envelope for every response the gateway makes itself: RFC 9457 problem details
 * (`application/problem+json`), with Pinpoint's members `code`, `layer`, `policy`, `request_id`.
 * Public mode carries only what is safe for the internet; detailed mode adds `detail`,
 * `remediation` and non-secret `evidence`.
 */
import type { ServerResponse } from 'node:http';
import type { Evidence } from '../pipeline/types.ts';
import { CATALOG, renderTemplate, type Code, type Layer } from './catalog.ts';
import { envelopeBody, requestIdHeaders, type Envelope } from './envelopes.ts';

export interface ProblemInput {
  readonly code: Code;
  /** Policy instance id, or a reserved id: 'router', 'upstream:<id>', 'gateway'. */
  readonly policy: string;
  readonly requestId: string;
  /** Header carrying the request id (config request_id.header). */
  readonly requestIdHeader: string;
  readonly detailed: boolean;
  readonly evidence?: Evidence;
  /** The decisive rule, shown as `detail` in detailed mode. */
  readonly rule?: string;
  /** Extra headers (WWW-Authenticate, Allow, Retry-After). */
  readonly headers?: Readonly<Record<string, string>>;
  readonly typeBase: string;
  /**
   * The body's shape: RFC 9457 problem details (default), or on AI routes the client protocol's
   * own error object carrying the same members (src/errors/envelopes.ts).
   */
  readonly envelope?: Envelope;
}

export interface ProblemBody {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly code: Code;
  readonly layer: Layer;
  readonly policy: string;
  readonly request_id: string;
  readonly retryable: boolean;
  readonly detail?: string;
  readonly remediation?: string;
  readonly evidence?: Evidence;
}

export function problemBody(p: ProblemInput): ProblemBody {
  const entry = CATALOG[p.code];
  const base = {
    type: `${p.typeBase}${p.code.toLowerCase()}`,
    title: entry.title,
    status: entry.status,
    code: p.code,
    layer: entry.layer,
    policy: p.policy,
    request_id: p.requestId,
    retryable: entry.retryable,
  };
  if (!p.detailed) return base;
  const values = { ...p.evidence, request_id: p.requestId };
  return {
    ...base,
    detail: p.rule !== undefined ? `${entry.title}: ${p.rule}.` : `${entry.title}.`,
    remediation: renderTemplate(entry.remediation, values),
    ...(p.evidence !== undefined ? { evidence: p.evidence } : {}),
  };
}

/** RFC 9209 Proxy-Status value; `details` is a quoted sf-string (RFC 8941 §3.3.3). */
export function proxyStatus(code: Code): string {
  return `pinpoint; error=${CATALOG[code].proxyStatus}; details="${code}"`;
}

/** The headers every local reply carries, besides content headers. */
export function problemHeaders(p: ProblemInput): Record<string, string> {
  const entry = CATALOG[p.code];
  const h: Record<string, string> = {
    'content-type': p.envelope === undefined || p.envelope === 'problem' ? 'application/problem+json' : 'application/json',
    'cache-control': 'no-store',
    'proxy-status': proxyStatus(p.code),
    'x-pinpoint-code': p.code,
    'x-pinpoint-layer': entry.layer,
    'x-pinpoint-policy': p.policy,
    ...requestIdHeaders(p.envelope, p.requestId),
    [p.requestIdHeader]: p.requestId,
  };
  // Clients (OpenAI/Anthropic SDKs among them) honour x-should-retry; say it on permanent denials.
  if (!entry.retryable) h['x-should-retry'] = 'false';
  if (p.headers !== undefined) Object.assign(h, p.headers);
  return h;
}

/** Writes the problem response and returns the body's length. For HEAD, headers only (RFC 9110 §9.3.2). */
export function sendProblem(res: ServerResponse, p: ProblemInput, method: string): number {
  const problem = problemBody(p);
  const body = JSON.stringify(p.envelope === undefined || p.envelope === 'problem' ? problem : envelopeBody(p.envelope, problem, p.evidence));
  const headers = problemHeaders(p);
  const length = Buffer.byteLength(body);
  headers['content-length'] = String(length);
  res.writeHead(CATALOG[p.code].status, headers);
  res.end(method === 'HEAD' ? undefined : body);
  return method === 'HEAD' ? 0 : length;
}

/** The raw HTTP/1.1 bytes of a problem, for sockets that are not (yet) a ServerResponse. */
export function rawProblem(p: ProblemInput): string {
  const body = JSON.stringify(problemBody(p));
  const headers = problemHeaders(p);
  const status = CATALOG[p.code].status;
  let head = `HTTP/1.1 ${status} ${CATALOG[p.code].title}\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  head += `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n`;
  return head + body;
}
