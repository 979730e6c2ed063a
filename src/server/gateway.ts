/**
 * The data plane: match the route, run the policy pipeline, forward to the upstream, record the
 * exchange. node:http + undici `Pool.stream()` is the fastest Node proxy stack measured on this
 * machine class (docs/benchmarks.md): the upstream body goes straight into the client response,
 * with no Web streams and no buffering.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errors as undiciErrors, type Dispatcher } from 'undici';
import type { CompiledConfig, CompiledRoute } from '../config/compile.ts';
import type { Code } from '../errors/catalog.ts';
import type { Evidence } from '../pipeline/types.ts';
import { appendForwardingHeaders, clientAddress, type ClientAddress } from '../proxy/forwarded.ts';
import { firstMatch, normaliseIp } from '../net/cidr.ts';
import { BodyLimit, BodyTooLargeError } from '../proxy/body-limit.ts';
import { endToEndRaw, endToEndResponse } from '../proxy/headers.ts';
import { startsWithIgnoringCase } from '../proxy/header-names.ts';
import { admit, hostOnly, requestFacts, splitTarget } from '../routing/admit.ts';
import { classifyUpstreamError, type Target, type Upstreams, type UpstreamGroup } from '../proxy/upstreams.ts';
import { evaluate, type Verdict } from '../pipeline/run.ts';
import { transformHeaders, transformQuery } from '../proxy/transform.ts';
import type { CallLogEntry } from '../calllog/types.ts';
import { Exchange } from './exchange.ts';
import { sendProblem } from '../errors/problem.ts';
import type { Metrics } from './metrics.ts';
import { requestIdFor } from './request-id.ts';
import type { AiRuntime } from '../ai/runtime.ts';
import { serveAi } from '../ai/handler.ts';
import { maskText } from '../policies/ai-guardrails/mask.ts';
import { SECRET_HEADERS } from '../credentials/locations.ts';

/** What is masked in a stored upstream error body: credentials only (an email in a 409 is the operator's to read). */
const SECRETS_ONLY = ['secret'] as const;

export interface Runtime {
  readonly compiled: CompiledConfig;
  readonly upstreams: Upstreams;
  /** Provider connections and target/key health of the AI gateway. */
  readonly ai: AiRuntime;
}

export interface GatewayDeps {
  /** The config in force; read once per request so a reload never changes a request mid-way. */
  current(): Runtime;
  callLog: { enqueue(e: CallLogEntry): void } | undefined;
  metrics: Metrics;
  shuttingDown(): boolean;
  onInternalError(err: unknown, requestId: string): void;
  /** Called for every denial the gateway answered itself (spike alerts). */
  onDenial?(code: string, route: string | null, consumer: string | null, requestId: string): void;
  /** Called once each exchange is recorded (its response closed). */
  onRecorded?(): void;
}

/** RFC 9110 §9.2.2 idempotent methods: safe to send twice. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);


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
export function prepare(
  deps: GatewayDeps,
  rt: Runtime,
  requestId: string,
  req: IncomingMessage,
  res: ServerResponse,
): Prepared | undefined | Promise<Prepared | undefined> {
  const cfg = rt.compiled;
  // The request id header is added to each response's own header list rather than with
  // res.setHeader: mixing setHeader with writeHead(array) sends Node down a slow path (~13 µs).

  const form = (req.url ?? '/').charCodeAt(0) === 0x2f ? 'origin' : toOriginForm(req);
  const { path, query } = splitTarget(req.url ?? '/');
  const client = clientAddress(req.socket.remoteAddress, req.headers, cfg.trustedProxies, cfg.source.trusted_proxy_header);
  const x = new Exchange(req, res, cfg, requestId, client, path, query);
  res.once('close', () => record(deps, x));

  if (deps.shuttingDown()) {
    // The response says Connection: close (src/server/draining-response.ts).
    x.reply('GATEWAY_SHUTTING_DOWN', 'gateway');
    return undefined;
  }
  if (form !== 'origin' && answeredTarget(x, form, rt.compiled.source.request_id.header)) return undefined;

  const method = req.method ?? 'GET';
  const host = hostOnly(req.headers.host);
  const a = admit(cfg, method, path, host, req.rawHeaders, req.headers['transfer-encoding']);
  x.trace.push(a.trace);
  if (a.kind === 'deny') {
    x.reply(a.code, a.policy, { evidence: a.evidence, rule: a.rule, ...(a.headers !== undefined ? { headers: a.headers } : {}) });
    return undefined;
  }
  const route = a.route;
  x.route = route;

  const cl = req.headers['content-length'];
  const contentLength = cl === undefined ? undefined : Number(cl);
  if (contentLength !== undefined) x.bytesIn = contentLength;
  const facts = requestFacts({ method, path, query, host, headers: req.headers }, a.params, client, contentLength, x.ts, x.digests);
  const verdict = evaluate(route.plan, facts, route.id, cfg.consumerPolicies, x.trace, {
    body: () => x.readBody(route.maxBufferedBody),
    protocol: route.protocol,
  });
  if (typeof (verdict as { then?: unknown }).then === 'function') {
    return (verdict as Promise<Verdict>).then(
      (v) => conclude(deps, x, rt, route, client, query, v),
      (err: unknown) => {
        if (err instanceof BodyTooLargeError) {
          bodyTooLarge(x, route.bodyLimitPolicy ?? 'gateway', err.limit, err.received, `body passed ${err.limit} bytes while buffering`);
          return undefined;
        }
        if (req.destroyed && !req.complete) {
          // The client left while its body was being read: not a gateway fault.
          x.code = 'CLIENT_CLOSED_REQUEST';
          x.layer = 'client';
          return undefined;
        }
        throw err;
      },
    );
  }
  return conclude(deps, x, rt, route, client, query, verdict as Verdict);
}

/**
 * Brings a request target that is not in origin-form to it (RFC 9112 §3.2): absolute-form
 * (`GET http://host/path`) names its own host, and a server MUST then ignore the Host header and
 * use the target's authority (§3.2.2), so the route is matched, and the upstream addressed, by
 * that host and an origin-form path. Left unchanged, the absolute URL would reach the upstream as
 * its request target and pick the upstream's virtual host past the gateway's host routing.
 */
function toOriginForm(req: IncomingMessage): 'origin' | 'asterisk' | 'invalid' {
  const target = req.url ?? '';
  if (target === '*') return 'asterisk';
  if (!/^https?:\/\//i.test(target)) return 'invalid';
  let u: URL;
  try {
    u = new URL(target);
  } catch {
    return 'invalid';
  }
  // RFC 9110 §4.2.4: userinfo in an http(s) URI is an error.
  if (u.username !== '' || u.password !== '' || u.host === '') return 'invalid';
  req.headers.host = u.host;
  // The path and query exactly as sent: URL would have normalised dot-segments and escapes,
  // which the path checks must see (src/routing/admit.ts).
  const authority = target.indexOf('//') + 2;
  const slash = target.indexOf('/', authority);
  const q = target.indexOf('?', authority);
  if (slash !== -1 && (q === -1 || slash < q)) req.url = target.slice(slash);
  else req.url = q === -1 ? '/' : `/${target.slice(q)}`; // RFC 9112 §3.2.1: an empty path is "/"
  return 'origin';
}

/**
 * Request targets the gateway answers before routing: `OPTIONS *` (RFC 9110 §9.3.7: about the
 * server itself, so the gateway answers it) and any other target that is neither origin- nor
 * absolute-form. Returns true when it answered.
 */
function answeredTarget(x: Exchange, form: 'origin' | 'asterisk' | 'invalid', requestIdHeader: string): boolean {
  if (form === 'asterisk' && x.req.method === 'OPTIONS') {
    x.trace.push({ policy: 'http', type: 'http', outcome: 'allow', rule: 'OPTIONS * answered by the gateway (RFC 9110 §9.3.7)', us: 0 });
    x.res.writeHead(200, { [requestIdHeader]: x.requestId, 'content-length': '0' });
    x.res.end();
    return true;
  }
  if (form !== 'origin') {
    const reason = form === 'asterisk' ? 'the * request target is only for OPTIONS' : 'the request target is neither a path nor an http(s) URL';
    const evidence = { reason, target: (x.req.url ?? '').slice(0, 200) };
    x.trace.push({ policy: 'http', type: 'http', outcome: 'deny', rule: reason, code: 'REQUEST_MALFORMED', evidence, us: 0 });
    x.reply('REQUEST_MALFORMED', 'http', { evidence, rule: reason });
    return true;
  }
  return false;
}

/** Applies a verdict: count monitor denials, answer denials and local responses, or go on. */
function conclude(deps: GatewayDeps, x: Exchange, rt: Runtime, route: CompiledRoute, client: ClientAddress, query: string, verdict: Verdict): Prepared | undefined {
  if (x.recorded) {
    // The client left while an asynchronous policy was deciding: the exchange is already logged,
    // so give back what the policies took (concurrency slots) and stop.
    for (const release of verdict.releases) release();
    return undefined;
  }
  x.identity = verdict.identity;
  x.releases = verdict.releases;
  x.extraHeaders = verdict.responseHeaders;
  if (verdict.monitorDenied.length > 0) {
    x.monitorDenied = true;
    for (const p of verdict.monitorDenied) deps.metrics.monitorDenials.inc({ policy: p });
  }
  if (!verdict.allowed) {
    const d = verdict.deny!;
    x.reply(d.code, verdict.denyPolicy!.id, { evidence: d.evidence, rule: d.rule, ...(d.headers !== undefined ? { headers: d.headers } : {}) });
    return undefined;
  }
  if (verdict.respond !== undefined) {
    x.policy = verdict.respond.policy;
    const status = verdict.respond.status;
    // RFC 9110 §8.6: no Content-Length on a 204 or 1xx.
    x.res.writeHead(status, {
      ...x.extraHeaders,
      ...verdict.respond.headers,
      [rt.compiled.source.request_id.header]: x.requestId,
      ...(status === 204 || status < 200 ? {} : { 'content-length': '0' }),
    });
    x.res.end();
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

export function upstreamHeaders(p: Prepared, target: Target, proto: string): string[] {
  const req = p.x.req;
  const idHeader = p.rt.compiled.source.request_id.header;
  const c = req.headers.connection;
  const headers = endToEndRaw(req.rawHeaders, c, p.rt.compiled.rewrittenHeaders);
  appendForwardingHeaders(headers, req.headers, req.socket.remoteAddress ?? '', p.client, proto, req.headers.host ?? '', p.rt.compiled.source.trusted_proxy_header);
  headers.push('host', p.route.preserveHost && req.headers.host !== undefined ? req.headers.host : target.host, idHeader, p.x.requestId);
  return p.verdict.transforms.length === 0 ? headers : transformHeaders(headers, p.verdict.transforms);
}

function record(deps: GatewayDeps, x: Exchange): void {
  x.recorded = true;
  const c = x.upstream;
  if (c !== undefined && !c.aborted) c.abort(new Error('client closed the connection'));
  x.settle();
  for (const release of x.releases) release();
  deps.metrics.observe(x.route?.id ?? '(none)', x.status, x.layer, x.code, x.policy, x.latencyMs);
  const ai = x.ai;
  if (ai !== null && ai !== undefined) deps.metrics.observeAi(ai.provider, ai.model, ai.promptTokens, ai.completionTokens, ai.costMicroUsd, ai.ttftMs);
  if (x.code !== null && x.status >= 400 && x.status < 500 && x.code !== 'CLIENT_CLOSED_REQUEST') {
    deps.onDenial?.(x.code, x.route?.id ?? null, x.identity?.consumer ?? null, x.requestId);
  }
  try {
    deps.callLog?.enqueue(x.toEntry());
  } catch (err) {
    // Only after shutdown closed the log; never let it crash the process. Counted and logged.
    deps.onInternalError(err, x.requestId);
  }
  deps.onRecorded?.();
}

/** Fired when an attempt's response headers are late: aborts it as undici's own timeout would. */
export function onLateResponse(controller: Dispatcher.DispatchController): void {
  controller.abort(new undiciErrors.HeadersTimeoutError());
}

/**
 * One upstream attempt as an undici dispatch handler: response headers and body go straight from
 * the upstream socket into the client response (no promise, no intermediate stream per request),
 * with backpressure through pause/resume. An upstream 4xx/5xx is passed through unchanged, marked
 * `x-pinpoint-layer: upstream`, and its first bytes are kept for the call log.
 */
class Attempt implements Dispatcher.DispatchHandler {
  readonly #f: Forwarding;
  readonly #target: Target;
  /**
   * timeouts.response_ms on a native timer. undici's headersTimeout (kept, as a backstop) runs on
   * its coarse timer wheel, which checks about every 500 ms: a 500 ms timeout fired after about
   * 1,000 ms. A native timer per attempt is cheap (Node keeps one list per duration). Like
   * undici's, it does not run while the client is still sending the body (undici refreshes its
   * timer per chunk sent): it starts once the request is complete, so a slow upload is not a
   * late response.
   */
  #late: NodeJS.Timeout | undefined;
  /** Set once the final response or an error arrived: a timer armed after that would be stale. */
  #settled = false;
  #controller: Dispatcher.DispatchController | undefined;
  #retrying = false;
  #captured: BodyCapture | undefined;

  constructor(f: Forwarding, target: Target) {
    this.#f = f;
    this.#target = target;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#f.x.upstream = controller;
    this.#controller = controller;
    const body = this.#f.streamedBody;
    if (body === undefined || body.readableEnded) this.#arm();
    else body.once('end', () => this.#arm());
  }

  #arm(): void {
    if (this.#settled || this.#controller === undefined) return;
    this.#late = setTimeout(onLateResponse, this.#f.group.config.timeouts.response_ms, this.#controller);
    this.#late.unref();
  }

  #settle(): void {
    this.#settled = true;
    clearTimeout(this.#late);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number): void {
    const f = this.#f;
    if (statusCode < 200) return; // 1xx informational: the final response follows
    this.#settle();
    const group = f.group;
    if (statusCode >= 500 && group.config.retries.on_status.includes(statusCode)) {
      const now = Date.now();
      group.failure(this.#target, now);
      f.deps.metrics.upstreamFailures.inc({ upstream: group.id, target: this.#target.url, code: `HTTP_${statusCode}` });
      // Retry only where a target is up: with none left (this one may just have been rested), the
      // upstream's own answer is the truth to pass on, not a 503 about resting targets.
      if (f.x.attempts < f.maxAttempts && group.anyUp(now)) {
        this.#retrying = true;
        return;
      }
    } else {
      group.success(this.#target);
    }
    if (statusCode >= 400 && f.logBytes > 0) this.#captured = new BodyCapture(f.logBytes);
    f.x.res.writeHead(statusCode, upstreamResponseHead(f.x, f.p.route, controller.rawHeaders as Buffer[] | undefined, statusCode, f.requestIdHeader));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#retrying) return;
    const x = this.#f.x;
    const res = x.res;
    x.bytesOut += chunk.length;
    this.#captured?.add(chunk);
    if (!res.write(chunk)) {
      controller.pause();
      res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    const f = this.#f;
    f.x.upstream = undefined;
    this.#keepBody();
    if (this.#retrying) f.attempt();
    else f.x.res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.#settle();
    this.#f.x.upstream = undefined;
    this.#keepBody();
    this.#f.failed(err, this.#target);
  }

  #keepBody(): void {
    if (this.#captured !== undefined) this.#f.x.upstreamBody = this.#captured.text(this.#f.x.req);
    this.#captured = undefined;
  }
}

/**
 * The head of an upstream's answer as the client gets it, for the proxy and a refused WebSocket
 * handshake alike: its end-to-end headers, the request id, the policies' response headers, and
 * on a 4xx/5xx the mark that the answer is the upstream's (which the exchange records too).
 */
export function upstreamResponseHead(x: Exchange, route: CompiledRoute, rawHeaders: Buffer[] | undefined, statusCode: number, requestIdHeader: string): string[] {
  let headers = endToEndResponse(rawHeaders ?? []);
  // Two Access-Control-Allow-Origin values fail the browser's check, and an upstream could
  // grant an origin the gateway's cors policy refused: on such routes the gateway's answer wins.
  if (route.ownsCors) headers = withoutAccessControl(headers);
  headers.push(requestIdHeader, x.requestId);
  const extra = x.extraHeaders;
  if (extra !== undefined) for (const k in extra) headers.push(k, extra[k] as string);
  if (statusCode >= 400) {
    headers.push('x-pinpoint-layer', 'upstream');
    x.layer = 'upstream';
  }
  return headers;
}

/** The first `limit` bytes of an upstream's error body, kept for the call log. */
export class BodyCapture {
  readonly #parts: Buffer[] = [];
  readonly #limit: number;
  #bytes = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  add(chunk: Buffer): void {
    if (this.#bytes >= this.#limit) return;
    const part = chunk.subarray(0, this.#limit - this.#bytes);
    this.#parts.push(part);
    this.#bytes += part.length;
  }

  /** As stored: an upstream's error body can echo what the client sent (a key, a token). */
  text(req: IncomingMessage): string {
    return storedUpstreamBody(Buffer.concat(this.#parts).toString('utf8'), req);
  }
}

/**
 * An upstream error body as the call log keeps it: what the masking detectors call a credential
 * (src/policies/ai-guardrails/mask.ts), and every credential this request carried in a header
 * that holds them (src/credentials/locations.ts SECRET_HEADERS: an upstream answering "invalid
 * key pp_live_…" echoes it), replaced. Runs only for the bodies of upstream 4xx/5xx it captured.
 */
function storedUpstreamBody(body: string, req: IncomingMessage): string {
  let out = maskText(body, SECRETS_ONLY).text;
  for (const name of SECRET_HEADERS) {
    const raw = req.headers[name];
    if (raw === undefined) continue;
    for (const v of Array.isArray(raw) ? raw : [raw]) {
      // The credential part of each value: past an auth scheme, or each cookie's value.
      const parts = name === 'cookie' ? v.split(';').map((c) => c.slice(c.indexOf('=') + 1)) : [v.replace(/^[A-Za-z][\w.+-]*\s+(?=\S)/, '')];
      for (const p of parts) {
        const secret = p.trim();
        if (secret.length >= 8 && out.includes(secret)) out = out.replaceAll(secret, '[SECRET]');
      }
    }
  }
  return out;
}

function withoutAccessControl(h: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < h.length; i += 2) if (!startsWithIgnoringCase(h[i]!, 'access-control-')) out.push(h[i]!, h[i + 1]!);
  return out;
}

/** The state of forwarding one request: the attempts, on one upstream group. */
class Forwarding {
  readonly deps: GatewayDeps;
  readonly p: Prepared;
  readonly x: Exchange;
  group: UpstreamGroup;
  readonly maxAttempts: number;
  readonly logBytes: number;
  readonly requestIdHeader: string;
  readonly #proto: string;
  readonly #body: IncomingMessage | BodyLimit | Buffer | null;
  #tried: Set<Target> | undefined;

  /** The body when it is streamed up as it arrives (not buffered, not absent). */
  get streamedBody(): IncomingMessage | BodyLimit | undefined {
    const b = this.#body;
    return b === null || Buffer.isBuffer(b) ? undefined : b;
  }

  /** `arrived`: the whole body, when it came with the request's head (forwardArrived). */
  constructor(deps: GatewayDeps, p: Prepared, proto: string, arrived: Buffer | undefined) {
    this.deps = deps;
    this.p = p;
    this.x = p.x;
    this.#proto = proto;
    const req = p.x.req;
    this.group = p.rt.upstreams.groups.get(p.route.upstreamId) as UpstreamGroup;
    const method = req.method ?? 'GET';
    const chunked = req.headers['transfer-encoding'] !== undefined;
    const hasBody = chunked || p.x.bytesIn > 0;
    const buffered = p.x.bufferedBody ?? arrived;
    // RFC 9110 §9.2.2: only idempotent requests may be sent twice, and only if the body can be
    // sent again (a streamed body is consumed by the first attempt).
    this.maxAttempts = IDEMPOTENT.has(method) && (!hasBody || buffered !== undefined) ? 1 + this.group.config.retries.attempts : 1;
    this.logBytes = p.rt.compiled.source.call_log.upstream_body_bytes;
    this.requestIdHeader = p.rt.compiled.source.request_id.header;
    if (buffered !== undefined) this.#body = buffered;
    else if (!hasBody) this.#body = null;
    else if (chunked && p.verdict.bodyLimit !== undefined) {
      const limiter = new BodyLimit(p.verdict.bodyLimit);
      req.pipe(limiter);
      this.#body = limiter;
    } else this.#body = req;
  }

  attempt(): void {
    if (this.x.attempts > 0) this.#followReload();
    const { x, group } = this;
    const now = Date.now();
    const tried = this.#tried;
    const { target, retryAt } = group.pick(now, tried !== undefined && tried.size < group.targets.length ? tried : undefined);
    if (target === undefined) {
      noHealthyTarget(x, group.id, retryAt, now);
      return;
    }
    if (this.maxAttempts > 1) (this.#tried ??= new Set()).add(target);
    x.attempts++;
    x.upstreamTarget = target.url;
    const req = x.req;
    target.pool.dispatch(
      {
        path: upstreamPath(this.p.route, target, x.path, this.p.verdict.transforms.length === 0 ? this.p.query : transformQuery(this.p.query, this.p.verdict.transforms)),
        method: (req.method ?? 'GET'),
        headers: upstreamHeaders(this.p, target, this.#proto),
        body: this.#body,
      },
      new Attempt(this, target),
    );
  }

  /**
   * A retry after a reload goes to the upstream group of the config now in force: the previous
   * config's pools take no new requests once retired (Upstreams.retire closes them as their
   * requests finish), so a retry sent there would fail with no fault of any target.
   */
  #followReload(): void {
    const current = this.deps.current().upstreams.groups.get(this.group.id);
    if (current === undefined || current === this.group) return;
    // A target tried already is the same target in the new config if its URL is the same.
    const tried = new Set([...(this.#tried ?? [])].map((t) => t.url));
    this.group = current;
    this.#tried = new Set(current.targets.filter((t) => tried.has(t.url)));
  }

  failed(err: unknown, target: Target): void {
    const { x, group, p } = this;
    const res = x.res;
    if (err instanceof BodyTooLargeError) {
      bodyTooLarge(x, p.verdict.bodyLimitPolicy?.id ?? 'request-size', err.limit, err.received, `streamed body passed ${err.limit} bytes`);
      return;
    }
    if (res.destroyed || (x.req.destroyed && !x.req.complete)) {
      // The client went away; undici's side was aborted. Nothing to answer.
      x.code = 'CLIENT_CLOSED_REQUEST';
      x.layer = 'client';
      return;
    }
    const f = upstreamFailure(this.deps, x, group, target, err);
    if (f === undefined) return;
    // As for a retryable status (Attempt.onResponseStart): retry only while a target is up, else
    // the client gets this failure (a 504 naming the target), not a 503 about resting targets.
    if (!res.headersSent && x.attempts < this.maxAttempts && group.anyUp(Date.now())) {
      this.attempt();
      return;
    }
    x.reply(f.code, `upstream:${group.id}`, { evidence: f.evidence, rule: f.rule });
  }
}

export function forward(deps: GatewayDeps, p: Prepared, proto: string): void {
  const { x, verdict, route } = p;
  // Every policy allowed: now the client may send the body it announced (RFC 9110 §10.1.1).
  x.sendContinue();
  // The smallest enforced request-size limit of the request (the route's and the caller's own).
  // A body a policy buffered was read against the route's limits only, before the caller was
  // known, so a consumer's lower limit is checked here, before anything goes upstream.
  const limit = verdict.bodyLimit;
  if (limit !== undefined && x.bufferedBody !== undefined && x.bufferedBody.length > limit) {
    bodyTooLarge(x, verdict.bodyLimitPolicy?.id ?? 'request-size', limit, x.bufferedBody.length, `buffered body of ${x.bufferedBody.length} bytes passed ${limit}`);
    return;
  }
  if (route.kind !== 'proxy') {
    // The AI handler reads the whole body; read it here under the caller's limit when that is lower.
    if (limit !== undefined && limit < route.maxBufferedBody && x.bufferedBody === undefined && verdict.replaceBody === undefined) {
      x.readBody(limit).then(
        () => serveAi(deps, p),
        (err: unknown) => {
          if (err instanceof BodyTooLargeError) bodyTooLarge(x, verdict.bodyLimitPolicy?.id ?? 'request-size', err.limit, err.received, `body passed ${err.limit} bytes while buffering`);
          // Otherwise the client left mid-body: the exchange settles as CLIENT_CLOSED_REQUEST.
        },
      );
      return;
    }
    serveAi(deps, p);
    return;
  }
  const h = x.req.headers;
  if (x.bufferedBody === undefined && x.bytesIn > 0 && x.bytesIn <= ARRIVED_WHOLE_MAX && h['transfer-encoding'] === undefined && h.expect === undefined) {
    process.nextTick(forwardArrived, deps, p, proto);
    return;
  }
  new Forwarding(deps, p, proto, undefined).attempt();
}

/**
 * The largest request body the proxy sends up as one buffer when it arrived whole with the
 * request's head. Node's server reads a socket up to 64 KiB at a time and parses each read in one
 * go, emitting the request at the end of its head: a body that was in the same read is in the
 * request's buffer once that parse returns, one tick after the handler ran. forwardArrived takes
 * it as it is, and otherwise streams the body as it comes: nothing waits for a body (this is not
 * nginx's proxy_request_buffering). A buffer lets undici write head and body in one write and
 * skip its stream path (listeners on the body and the socket, a resume a tick later, the end and
 * close handshakes), and lets an idempotent request with such a body be retried like a buffered
 * one (RFC 9110 §9.2.2). Its cost is one tick; the saving is counted in docs/benchmarks.md.
 */
const ARRIVED_WHOLE_MAX = 65_536;

/** Forwards a request with a small Content-Length body one tick on: as one buffer if it is all in, else streamed. */
function forwardArrived(deps: GatewayDeps, p: Prepared, proto: string): void {
  const x = p.x;
  // The client left within the tick: the exchange is recorded already, and nothing goes up.
  if (x.recorded) return;
  const req = x.req;
  let arrived: Buffer | undefined;
  // Content-Length frames the body, so that many bytes in the buffer is all of it (the parser
  // may mark the message complete a callback later). Flowing would mean something else reads
  // the body: leave it to the stream then. No encoding is ever set, so read() gives the bytes.
  if (req.readableLength === x.bytesIn && req.readableFlowing !== true && req.readableEncoding === null) arrived = req.read() as Buffer;
  new Forwarding(deps, p, proto, arrived).attempt();
}

function bodyTooLarge(x: Exchange, policy: string, limit: number, received: number, rule: string): void {
  const evidence = { limit_bytes: limit, received_bytes: received };
  x.trace.push({ policy, type: 'request-size', outcome: 'deny', rule, code: 'BODY_TOO_LARGE', evidence, us: 0 });
  x.res.setHeader('connection', 'close');
  x.reply('BODY_TOO_LARGE', policy, { evidence, rule });
}

/** A request id for this request: the incoming one if valid and trusted, else a new one. */
export function requestIdOf(rt: Runtime, req: IncomingMessage): string {
  const r = rt.compiled.source.request_id;
  const proxies = rt.compiled.trustedProxies;
  const trust =
    r.trust_incoming === 'always' ||
    (r.trust_incoming === 'trusted_proxies' && proxies.length > 0 && firstMatch(proxies, normaliseIp(req.socket.remoteAddress ?? '')) !== undefined);
  return requestIdFor(req.headers[r.header], trust);
}

/**
 * A failed upstream exchange (connect, reset, timeout), for the proxy and the WebSocket handshake
 * alike: counted against the target, traced with the target and the failure. Returns what to
 * answer with, or undefined when it already answered (an error of the HTTP client itself, which
 * is a gateway bug, not the target's fault).
 */
export function upstreamFailure(deps: GatewayDeps, x: Exchange, group: UpstreamGroup, target: Target, err: unknown): { code: Code; evidence: Evidence; rule: string } | undefined {
  const code = classifyUpstreamError(err);
  const reason = (err as { code?: string }).code ?? (err as Error).message;
  if (code === 'GATEWAY_INTERNAL_ERROR') {
    deps.onInternalError(err, x.requestId);
    x.reply(code, 'gateway', { rule: `request to ${target.url} refused by the HTTP client: ${reason}` });
    return undefined;
  }
  group.failure(target, Date.now());
  deps.metrics.upstreamFailures.inc({ upstream: group.id, target: target.url, code });
  const timeouts = group.config.timeouts;
  const evidence = {
    upstream: group.id,
    target: target.url,
    reason,
    timeout_ms: code === 'UPSTREAM_CONNECT_TIMEOUT' ? timeouts.connect_ms : code === 'UPSTREAM_RESPONSE_TIMEOUT' ? timeouts.response_ms : null,
  };
  const rule = `${target.url}: ${reason}`;
  x.trace.push({ policy: `upstream:${group.id}`, type: 'upstream', outcome: 'deny', rule, code, evidence, us: 0 });
  return { code, evidence, rule };
}

/** 503 when every target of the group is resting, with when the first one comes back. */
export function noHealthyTarget(x: Exchange, upstream: string, retryAt: number, now: number): void {
  const evidence = { upstream, retry_at: new Date(retryAt).toISOString() };
  x.trace.push({ policy: `upstream:${upstream}`, type: 'upstream', outcome: 'deny', rule: 'every target resting', code: 'UPSTREAM_NO_HEALTHY_TARGET', evidence, us: 0 });
  x.reply('UPSTREAM_NO_HEALTHY_TARGET', `upstream:${upstream}`, {
    evidence,
    headers: { 'retry-after': String(Math.max(1, Math.ceil((retryAt - now) / 1000))) },
  });
}

/** The answer to a bug (not a denial): the envelope with the request id to report, never details. */
export function sendInternalError(rt: Runtime, requestId: string, req: IncomingMessage, res: ServerResponse): void {
  const src = rt.compiled.source;
  sendProblem(
    res,
    { code: 'GATEWAY_INTERNAL_ERROR', policy: 'gateway', requestId, requestIdHeader: src.request_id.header, detailed: false, typeBase: src.errors.type_base },
    req.method ?? 'GET',
  );
}

export function createRequestHandler(deps: GatewayDeps, proto = 'http'): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const rt = deps.current();
    const requestId = requestIdOf(rt, req);
    const internal = (err: unknown): void => {
      // A bug, not a denial: still answered in the envelope, with the request id to report.
      deps.onInternalError(err, requestId);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendInternalError(rt, requestId, req, res);
    };
    try {
      const p = prepare(deps, rt, requestId, req, res);
      if (p === undefined) return;
      if (p instanceof Promise) {
        p.then((ready) => {
          if (ready !== undefined) forward(deps, ready, proto);
        }).catch(internal);
        return;
      }
      forward(deps, p, proto);
    } catch (err) {
      internal(err);
    }
  };
}
