/**
 * The admin API, on its own listener (127.0.0.1 by default): health, Prometheus metrics, call-log
 * queries and `explain` by request id, config reload. Everything under /admin needs the admin
 * bearer token, compared in constant time. Admin errors use the same problem envelope.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { CallLogQuery, CallLogStore } from '../calllog/types.ts';
import { sha256 } from '../credentials/api-keys.ts';
import { explain } from '../explain/explain.ts';
import type { CompiledConfig } from '../config/compile.ts';
import { diagnose } from '../diagnose/diagnose.ts';
import { splitUrl } from '../diagnose/request.ts';
import { requestIdFor } from './request-id.ts';

export interface AdminDeps {
  /** SHA-256 of the admin token, or undefined when none is configured (then /admin/* is closed). */
  tokenHash(): Buffer | undefined;
  /** A store to read (after flushing pending writes, where this process writes). */
  readStore(): CallLogStore | undefined;
  metrics(): Promise<{ contentType: string; body: string }>;
  reload(): { applied: boolean; issues: readonly { path: string; message: string }[] };
  ready(): boolean;
  /** The config in force, for dry-run traces. */
  config(): CompiledConfig;
}

function json(res: ServerResponse, status: number, body: unknown, id: string): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-request-id': id, 'cache-control': 'no-store' });
  res.end(text);
}

function problem(res: ServerResponse, status: number, code: string, title: string, id: string, extra: Record<string, unknown> = {}): void {
  const text = JSON.stringify({ type: `urn:pinpoint:error:${code.toLowerCase()}`, title, status, code, layer: status >= 500 ? 'gateway' : 'client', policy: 'admin', request_id: id, ...extra });
  const headers: Record<string, string | number> = { 'content-type': 'application/problem+json', 'content-length': Buffer.byteLength(text), 'x-request-id': id, 'x-pinpoint-code': code };
  if (status === 401) headers['www-authenticate'] = 'Bearer realm="pinpoint-admin"';
  res.writeHead(status, headers);
  res.end(text);
}

function authorised(req: IncomingMessage, hash: Buffer | undefined): boolean {
  if (hash === undefined) return false;
  const m = /^Bearer[ \t]+(.+)$/i.exec(req.headers.authorization ?? '');
  if (m === null) return false;
  return timingSafeEqual(sha256((m[1] as string).trim()), hash);
}

function parseQuery(sp: URLSearchParams): CallLogQuery | string {
  const q: Record<string, string | number> = {};
  for (const key of ['request_id', 'route', 'consumer', 'code', 'provider', 'model'] as const) {
    const v = sp.get(key);
    if (v !== null) q[key === 'request_id' ? 'requestId' : key] = v;
  }
  for (const key of ['since', 'until', 'status', 'limit'] as const) {
    const v = sp.get(key);
    if (v === null) continue;
    const n = key === 'since' || key === 'until' ? Date.parse(v) || Number(v) : Number(v);
    if (!Number.isFinite(n)) return `${key} must be a number${key === 'since' || key === 'until' ? ' (ms since epoch) or an ISO 8601 time' : ''}`;
    q[key] = n;
  }
  return q;
}

export function createAdminServer(deps: AdminDeps): Server {
  return createServer((req, res) => {
    try {
      handle(deps, req, res);
    } catch (err) {
      // An admin request must never take the gateway down (a failing store, a bad input).
      const id = requestIdFor(undefined, false);
      if (!res.headersSent) problem(res, 500, 'ADMIN_INTERNAL_ERROR', 'The admin API failed', id, { detail: (err as Error).message });
      else res.destroy();
    }
  });
}

function handle(deps: AdminDeps, req: IncomingMessage, res: ServerResponse): void {
  const id = requestIdFor(req.headers['x-request-id'], true);
  const url = new URL(req.url ?? '/', 'http://admin');
  const path = url.pathname;
  if (path === '/healthz') return json(res, 200, { status: 'ok' }, id);
  if (path === '/readyz') return json(res, deps.ready() ? 200 : 503, { ready: deps.ready() }, id);
  if (path === '/metrics') {
    deps.metrics().then(
      (m) => {
        res.writeHead(200, { 'content-type': m.contentType });
        res.end(m.body);
      },
      (err: unknown) => problem(res, 500, 'ADMIN_METRICS_FAILED', 'Metrics could not be collected', id, { detail: (err as Error).message }),
    );
    return;
  }
  if (!path.startsWith('/admin/')) return problem(res, 404, 'ADMIN_NOT_FOUND', 'No such admin endpoint', id);
  if (!authorised(req, deps.tokenHash())) {
    return problem(res, 401, 'ADMIN_UNAUTHORIZED', 'The admin API needs a valid admin bearer token', id, {
      detail: deps.tokenHash() === undefined ? 'No admin token is configured (admin.token_hash or the admin.token_env variable); the admin API is closed.' : 'Send Authorization: Bearer <admin token>.',
    });
  }
  if (path === '/admin/trace' && req.method === 'POST') {
    trace(deps, req, res, id);
    return;
  }
  if (path === '/admin/reload' && req.method === 'POST') {
    const r = deps.reload();
    return json(res, r.applied ? 200 : 422, r, id);
  }
  const store = deps.readStore();
  if (path === '/admin/calls' && req.method === 'GET') {
    if (store === undefined) return problem(res, 409, 'ADMIN_CALL_LOG_DISABLED', 'The call log is disabled in config', id);
    const q = parseQuery(url.searchParams);
    if (typeof q === 'string') return problem(res, 400, 'ADMIN_BAD_QUERY', q, id);
    return json(res, 200, { calls: store.query(q) }, id);
  }
  const m = /^\/admin\/calls\/([^/]+)(\/explain)?$/.exec(path);
  if (m !== null && req.method === 'GET') {
    if (store === undefined) return problem(res, 409, 'ADMIN_CALL_LOG_DISABLED', 'The call log is disabled in config', id);
    let rid: string;
    try {
      rid = decodeURIComponent(m[1] as string);
    } catch {
      return problem(res, 400, 'ADMIN_BAD_QUERY', 'The request id in the path is not valid percent-encoding', id);
    }
    const found = store.query({ requestId: rid, limit: 1 })[0];
    if (found === undefined) return problem(res, 404, 'ADMIN_CALL_NOT_FOUND', `No call with request id ${rid} is in the log`, id);
    return json(res, 200, m[2] !== undefined ? explain(found) : found, id);
  }
  return problem(res, 404, 'ADMIN_NOT_FOUND', 'No such admin endpoint', id);
}

/**
 * POST /admin/trace: `{ "method", "url", "headers": {…}, "body"?: string, "client_ip"?: string }`
 * runs through the live config as a dry run (src/diagnose/diagnose.ts) and answers the diagnosis.
 */
function trace(deps: AdminDeps, req: IncomingMessage, res: ServerResponse, id: string): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size <= 1_048_576) chunks.push(c);
  });
  req.on('end', () => {
    if (size > 1_048_576) return problem(res, 413, 'ADMIN_BAD_QUERY', 'The trace request is larger than 1 MiB', id);
    let input: { method?: unknown; url?: unknown; headers?: unknown; body?: unknown; client_ip?: unknown };
    try {
      input = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof input;
    } catch {
      return problem(res, 400, 'ADMIN_BAD_QUERY', 'The trace request is not JSON', id);
    }
    if (typeof input.url !== 'string') return problem(res, 400, 'ADMIN_BAD_QUERY', 'url is required (a path or an absolute URL)', id);
    const headers: Record<string, string> = {};
    if (input.headers !== undefined && (typeof input.headers !== 'object' || input.headers === null)) {
      return problem(res, 400, 'ADMIN_BAD_QUERY', 'headers must be an object of strings', id);
    }
    for (const [k, v] of Object.entries((input.headers ?? {}) as Record<string, unknown>)) {
      if (typeof v !== 'string') return problem(res, 400, 'ADMIN_BAD_QUERY', `headers.${k} must be a string`, id);
      headers[k.toLowerCase()] = v;
    }
    const { host, target } = splitUrl(input.url);
    if (host !== undefined && headers.host === undefined) headers.host = host;
    const body = typeof input.body === 'string' ? Buffer.from(input.body) : undefined;
    if (body !== undefined) headers['content-length'] ??= String(body.length);
    diagnose(deps.config(), {
      method: typeof input.method === 'string' ? input.method : 'GET',
      target,
      headers,
      ...(body !== undefined ? { body } : {}),
      ...(typeof input.client_ip === 'string' ? { clientIp: input.client_ip } : {}),
    }).then(
      (d) => json(res, 200, d, id),
      (err: unknown) => problem(res, 500, 'ADMIN_INTERNAL_ERROR', 'The trace failed', id, { detail: (err as Error).message }),
    );
  });
}
