/**
 * The data plane: match the route, run the policy pipeline, forward to the upstream, record the
 * exchange. node:http + undici `Pool.stream()` is the fastest Node proxy stack measured on this
 * machine class (docs/benchmarks.md): the upstream body goes straight into the client response,
 * with no Web streams and no buffering.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { CompiledConfig, CompiledRoute } from '../config/compile.ts';
import { clientAddress, setForwardingHeaders, type ClientAddress } from '../proxy/forwarded.ts';
import { BodyLimit, BodyTooLargeError } from '../proxy/body-limit.ts';
import { endToEnd } from '../proxy/headers.ts';
import { classifyUpstreamError, type Target, type Upstreams, type UpstreamGroup } from '../proxy/upstreams.ts';
import { evaluate, type Verdict } from '../pipeline/run.ts';
import type { CallLogEntry } from '../calllog/types.ts';
import type { RequestFacts } from '../pipeline/types.ts';
import { Exchange } from './exchange.ts';
import { sendProblem } from '../errors/problem.ts';
import type { Metrics } from './metrics.ts';
import { requestIdFor } from './request-id.ts';

export interface Runtime {
  readonly compiled: CompiledConfig;
  readonly upstreams: Upstreams;
}

export interface GatewayDeps {
  /** The config in force; read once per request so a reload never changes a request mid-way. */
  current(): Runtime;
  callLog: { enqueue(e: CallLogEntry): void } | undefined;
  metrics: Metrics;
  shuttingDown(): boolean;
  onInternalError(err: unknown, requestId: string): void;
}

/** RFC 9110 §9.2.2 idempotent methods: safe to send twice. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
/** Host is set per target; the rest are rewritten by setForwardingHeaders. */
const REWRITTEN = new Set(['host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-real-ip', 'forwarded']);

function hostOnly(host: string | undefined): string {
  if (host === undefined) return '';
  // [::1]:8080 → [::1]; example.com:8080 → example.com
  const end = host.startsWith('[') ? host.indexOf(']') + 1 : host.indexOf(':');
  return (end > 0 ? host.slice(0, end) : host).toLowerCase();
}

export interface Prepared {
  readonly x: Exchange;
  readonly rt: Runtime;
  readonly route: CompiledRoute;
  readonly client: ClientAddress;
  readonly verdict: Verdict;
  readonly query: string;
}

/**
 * Steps shared by plain requests and upgrades: request id, client address, route match and the
 * policy pipeline. Returns undefined when the gateway already answered (denial or routing miss).
 */
export function prepare(deps: GatewayDeps, req: IncomingMessage, res: ServerResponse): Prepared | undefined {
  const rt = deps.current();
  const cfg = rt.compiled;
  const src = cfg.source;
  const requestId = requestIdFor(req.headers[src.request_id.header], src.request_id.trust_incoming);
  res.setHeader(src.request_id.header, requestId);

  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? '' : url.slice(q + 1);
  const client = clientAddress(req.socket.remoteAddress, req.headers, cfg.trustedProxies);
  const x = new Exchange(req, res, cfg, requestId, client.ip, path);
  res.once('close', () => record(deps, x));

  if (deps.shuttingDown()) {
    res.setHeader('connection', 'close');
    x.reply('GATEWAY_SHUTTING_DOWN', 'gateway');
    return undefined;
  }

  const method = req.method ?? 'GET';
  const host = hostOnly(req.headers.host);
  const m = cfg.router.match(method, path, host);
  if (m.kind === 'none') {
    const evidence = { method, path, host, nearest: m.nearest.length > 0 ? m.nearest : ['(none)'] };
    x.trace.push({ policy: 'router', type: 'router', outcome: 'deny', rule: 'no route matches', code: 'ROUTE_NOT_FOUND', evidence, us: 0 });
    x.reply('ROUTE_NOT_FOUND', 'router', { evidence, rule: `no route for ${method} ${path}` });
    return undefined;
  }
  if (m.kind === 'method') {
    const evidence = { method, path, allow: m.allow };
    x.trace.push({ policy: 'router', type: 'router', outcome: 'deny', rule: `${method} not accepted`, code: 'METHOD_NOT_ALLOWED', evidence, us: 0 });
    x.reply('METHOD_NOT_ALLOWED', 'router', { evidence, rule: `${path} accepts ${m.allow.join(', ')}`, headers: { allow: m.allow.join(', ') } });
    return undefined;
  }
  const route = m.value;
  x.route = route;
  x.trace.push({ policy: 'router', type: 'router', outcome: 'allow', rule: `route ${route.id} (${m.template})`, us: 0 });

  const cl = req.headers['content-length'];
  const contentLength = cl === undefined ? undefined : Number(cl);
  if (contentLength !== undefined) x.bytesIn = contentLength;
  const facts: RequestFacts = {
    method,
    path,
    rawQuery: query,
    host,
    headers: req.headers,
    clientIp: client.ip,
    clientIpSource: client.source,
    params: m.params,
    contentLength,
    now: x.ts,
  };
  const verdict = evaluate(route.plan, facts, route.id, cfg.consumerPolicies);
  for (const t of verdict.trace) x.trace.push(t);
  x.identity = verdict.identity;
  if (verdict.monitorDenied.length > 0) {
    x.monitorDenied = true;
    for (const p of verdict.monitorDenied) deps.metrics.monitorDenials.inc({ policy: p });
  }
  if (!verdict.allowed) {
    const d = verdict.deny!;
    x.reply(d.code, verdict.denyPolicy!.id, { evidence: d.evidence, rule: d.rule, ...(d.headers !== undefined ? { headers: d.headers } : {}) });
    return undefined;
  }
  return { x, rt, route, client, verdict, query };
}

/** Builds the upstream path: strip_prefix, the target's base path, the original query. */
export function upstreamPath(route: CompiledRoute, target: Target, path: string, query: string): string {
  let p = path;
  if (route.stripPrefix !== undefined && p.startsWith(route.stripPrefix)) {
    p = p.slice(route.stripPrefix.length);
    if (!p.startsWith('/')) p = `/${p}`;
  }
  p = target.basePath + p;
  return query === '' ? p : `${p}?${query}`;
}

export function upstreamHeaders(p: Prepared, target: Target, proto: string): Record<string, string | string[]> {
  const req = p.x.req;
  const headers = endToEnd(req.headers, REWRITTEN);
  setForwardingHeaders(headers, req.headers, req.socket.remoteAddress ?? '', p.client, proto, req.headers.host ?? '');
  headers.host = p.route.preserveHost && req.headers.host !== undefined ? req.headers.host : target.host;
  headers[p.rt.compiled.source.request_id.header] = p.x.requestId;
  return headers;
}

function record(deps: GatewayDeps, x: Exchange): void {
  const entry = x.toEntry();
  const route = entry.route ?? '(none)';
  deps.metrics.requests.inc({ route, status: entry.status, layer: entry.layer ?? 'upstream' });
  deps.metrics.duration.observe({ route }, entry.latencyMs / 1000);
  if (entry.code !== null && entry.layer !== 'upstream') deps.metrics.localReplies.inc({ code: entry.code, policy: entry.policy ?? '' });
  deps.callLog?.enqueue(entry);
}

/** Captures the start of an upstream error body for the call log while passing it through. */
class Capture extends Writable {
  readonly #res: ServerResponse;
  readonly #limit: number;
  readonly #chunks: Buffer[] = [];
  #size = 0;
  constructor(res: ServerResponse, limit: number) {
    super();
    this.#res = res;
    this.#limit = limit;
  }
  get text(): string {
    return Buffer.concat(this.#chunks).toString('utf8');
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.#size < this.#limit) {
      const part = chunk.subarray(0, this.#limit - this.#size);
      this.#chunks.push(part);
      this.#size += part.length;
    }
    if (this.#res.write(chunk)) cb();
    else this.#res.once('drain', () => cb());
  }
  override _final(cb: (err?: Error | null) => void): void {
    this.#res.end(cb);
  }
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (err !== null && !this.#res.writableEnded) this.#res.destroy(err);
    cb(err);
  }
}

class Discard extends Writable {
  override _write(_c: Buffer, _e: BufferEncoding, cb: () => void): void {
    cb();
  }
}

/** Filters upstream response headers and marks upstream errors as such. */
function responseHeaders(headers: Dispatcher.StreamFactoryData['headers'], status: number): Record<string, string | string[]> {
  const out = endToEnd(headers);
  if (status >= 400) out['x-pinpoint-layer'] = 'upstream';
  return out;
}

export function forward(deps: GatewayDeps, p: Prepared, proto: string): void {
  const { x, rt, route } = p;
  const req = x.req;
  const res = x.res;
  const group = rt.upstreams.groups.get(route.upstreamId) as UpstreamGroup;
  const method = req.method ?? 'GET';
  const te = req.headers['transfer-encoding'];
  const hasBody = te !== undefined || (x.bytesIn > 0);
  const idempotent = IDEMPOTENT.has(method) && !hasBody;
  const maxAttempts = idempotent ? 1 + group.config.retries.attempts : 1;
  const retryStatus = group.config.retries.on_status;
  const logBytes = rt.compiled.source.call_log.upstream_body_bytes;

  let body: IncomingMessage | BodyLimit | null = null;
  let limiter: BodyLimit | undefined;
  if (hasBody) {
    if (te !== undefined && p.verdict.bodyLimit !== undefined) {
      limiter = new BodyLimit(p.verdict.bodyLimit);
      req.pipe(limiter);
      body = limiter;
    } else {
      body = req;
    }
  }

  const tried = new Set<Target>();
  const attempt = (): void => {
    const now = Date.now();
    const { target, retryAt } = group.pick(now, tried.size > 0 && tried.size < group.targets.length ? tried : undefined);
    if (target === undefined) {
      x.trace.push({ policy: `upstream:${group.id}`, type: 'upstream', outcome: 'deny', rule: 'every target resting', code: 'UPSTREAM_NO_HEALTHY_TARGET', us: 0 });
      x.reply('UPSTREAM_NO_HEALTHY_TARGET', `upstream:${group.id}`, {
        evidence: { upstream: group.id, retry_at: new Date(retryAt).toISOString() },
        headers: { 'retry-after': String(Math.max(1, Math.ceil((retryAt - now) / 1000))) },
      });
      return;
    }
    tried.add(target);
    x.attempts++;
    x.upstreamTarget = target.url;
    let capture: Capture | undefined;
    let retrying = false;
    target.pool
      .stream(
        { path: upstreamPath(route, target, x.path, p.query), method: method, headers: upstreamHeaders(p, target, proto), body },
        ({ statusCode, headers }) => {
          if (statusCode >= 500 && retryStatus.includes(statusCode)) {
            group.failure(target, Date.now());
            deps.metrics.upstreamFailures.inc({ upstream: group.id, target: target.url, code: `HTTP_${statusCode}` });
            if (x.attempts < maxAttempts) {
              retrying = true;
              return new Discard();
            }
          } else {
            group.success(target);
          }
          res.writeHead(statusCode, responseHeaders(headers, statusCode));
          if (statusCode >= 400) {
            x.layer = 'upstream';
            if (logBytes > 0) {
              capture = new Capture(res, logBytes);
              return capture;
            }
          }
          return res;
        },
      )
      .then(
        () => {
          if (capture !== undefined) x.upstreamBody = capture.text;
          if (retrying) attempt();
        },
        (err: unknown) => {
          if (capture !== undefined) x.upstreamBody = capture.text;
          onError(err, target);
        },
      );
  };

  const onError = (err: unknown, target: Target): void => {
    if (err instanceof BodyTooLargeError) {
      const policy = p.verdict.bodyLimitPolicy;
      const evidence = { limit_bytes: err.limit, received_bytes: err.received };
      x.trace.push({ policy: policy?.id ?? 'request-size', type: 'request-size', outcome: 'deny', rule: `streamed body passed ${err.limit} bytes`, code: 'BODY_TOO_LARGE', evidence, us: 0 });
      res.setHeader('connection', 'close');
      x.reply('BODY_TOO_LARGE', policy?.id ?? 'request-size', { evidence, rule: `streamed body passed ${err.limit} bytes` });
      return;
    }
    if (req.destroyed && !req.complete) {
      // The client aborted while we were sending its body: nothing to answer.
      x.code = 'CLIENT_CLOSED_REQUEST';
      x.layer = 'client';
      res.destroy();
      return;
    }
    if (res.destroyed) return; // client went away mid-response; undici aborted the upstream side
    const code = classifyUpstreamError(err);
    group.failure(target, Date.now());
    deps.metrics.upstreamFailures.inc({ upstream: group.id, target: target.url, code });
    const timeouts = group.config.timeouts;
    const evidence = {
      upstream: group.id,
      target: target.url,
      reason: (err as { code?: string }).code ?? (err as Error).message,
      timeout_ms: code === 'UPSTREAM_CONNECT_TIMEOUT' ? timeouts.connect_ms : code === 'UPSTREAM_RESPONSE_TIMEOUT' ? timeouts.response_ms : null,
    };
    x.trace.push({ policy: `upstream:${group.id}`, type: 'upstream', outcome: 'deny', rule: `${target.url}: ${evidence.reason}`, code, evidence, us: 0 });
    if (!res.headersSent && x.attempts < maxAttempts && group.targets.length > 0) {
      attempt();
      return;
    }
    x.reply(code, `upstream:${group.id}`, { evidence, rule: `${target.url}: ${evidence.reason}` });
  };

  attempt();
}

export function createRequestHandler(deps: GatewayDeps, proto = 'http'): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    let p: Prepared | undefined;
    try {
      p = prepare(deps, req, res);
      if (p !== undefined) forward(deps, p, proto);
    } catch (err) {
      // A bug, not a denial: still answered in the envelope, with the request id to report.
      const id = String(res.getHeader(deps.current().compiled.source.request_id.header) ?? '');
      deps.onInternalError(err, id);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendProblem(
        res,
        { code: 'GATEWAY_INTERNAL_ERROR', policy: 'gateway', requestId: id, detailed: false, typeBase: deps.current().compiled.source.errors.type_base },
        req.method ?? 'GET',
      );
    }
  };
}
