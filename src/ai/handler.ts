/**
 * The AI gateway's request handling, after the route's policies allowed the request: read and
 * validate the body, resolve the model, call the provider (weighted targets, key rotation,
 * retries that honour Retry-After, fallback), and answer in the client's protocol — JSON, SSE
 * chunks, or the protocol's error envelope naming the layer that failed.
 *
 * Operations by route protocol and path suffix:
 * - openai: POST …/chat/completions, POST …/embeddings, GET …/models
 * - anthropic: POST …/v1/messages (passed through to Anthropic targets), GET …/v1/models
 * - prompt routes: POST <route path> with the template's variables
 */
import { EventEmitter, once } from 'node:events';
import type { Dispatcher } from 'undici';
import type { CompiledModel, CompiledProvider, CompiledTarget, ProviderKey } from './compile.ts';
import type { AiRuntime } from './runtime.ts';
import { anthropicNative, NativeStreamWatcher } from './providers/anthropic/index.ts';
import { firstProblem, OPENAI_CHAT_FIELDS, validateChat, validateEmbeddings } from './openai/schema.ts';
import { SseReader, sseEvent } from './sse.ts';
import { SSRF_BLOCKED } from './ssrf.ts';
import {
  UnsupportedParameterError,
  type ChatRequest,
  type EmbeddingsRequest,
  type EmbeddingsResponse,
  type HttpCall,
  type ProviderError,
  type ProviderTarget,
  type ResponseContext,
  type Usage,
} from './types.ts';
import type { Code } from '../errors/catalog.ts';
import { MASK_KINDS, maskText } from '../policies/ai-guardrails/mask.ts';
import { providerErrorBody, requestIdHeaders, type Envelope, type ProviderErrorInfo } from '../errors/envelopes.ts';
import { BodyTooLargeError } from '../proxy/body-limit.ts';
import type { Evidence } from '../pipeline/types.ts';
import type { Exchange } from '../server/exchange.ts';
import type { GatewayDeps, Prepared } from '../server/gateway.ts';

type Operation = 'chat' | 'embeddings' | 'models' | 'messages' | 'prompt';

/** Provider outcomes that never improve by asking again unchanged: the client is told so. */
const PERMANENT = new Set(['bad_request', 'auth', 'permission', 'not_found', 'too_large', 'quota']);
/** How much of a provider's error body is read (and kept in the call log). */
const ERROR_BODY_LIMIT = 64 * 1024;

function operationOf(p: Prepared): Operation | undefined {
  const { route, x } = p;
  const method = x.req.method ?? 'GET';
  if (route.kind === 'prompt') return method === 'POST' ? 'prompt' : undefined;
  const path = x.path.replace(/\/+$/, '');
  if ((method === 'GET' || method === 'HEAD') && path.endsWith('/models')) return 'models';
  if (method !== 'POST') return undefined;
  if (route.ai?.protocol === 'anthropic') return path.endsWith('/v1/messages') ? 'messages' : undefined;
  if (path.endsWith('/chat/completions')) return 'chat';
  if (path.endsWith('/embeddings')) return 'embeddings';
  return undefined;
}

/** The methods an operation path of this route takes, when the path is one (for a 405's Allow). */
function allowedMethods(p: Prepared): string | undefined {
  if (p.route.kind === 'prompt') return 'POST';
  const path = p.x.path.replace(/\/+$/, '');
  if (path.endsWith('/models')) return 'GET, HEAD';
  if (p.route.ai?.protocol === 'anthropic') return path.endsWith('/v1/messages') ? 'POST' : undefined;
  return path.endsWith('/chat/completions') || path.endsWith('/embeddings') ? 'POST' : undefined;
}

/** Entry point from the gateway: never rejects (a bug becomes a 500 in the route's envelope). */
export function serveAi(deps: GatewayDeps, p: Prepared): void {
  serve(p).catch((err: unknown) => {
    deps.onInternalError(err, p.x.requestId);
    p.x.reply('GATEWAY_INTERNAL_ERROR', 'gateway');
  });
}

async function serve(p: Prepared): Promise<void> {
  const { x, route } = p;
  const op = operationOf(p);
  const allow = op === undefined ? allowedMethods(p) : undefined;
  if (allow !== undefined) {
    // The path is an operation, the method is not its (RFC 9110 §15.5.6: 405 with Allow), rather
    // than claiming no route matches.
    const method = x.req.method ?? '';
    x.reply('METHOD_NOT_ALLOWED', 'router', { evidence: { method, path: x.path, allow }, rule: `${x.path} accepts ${allow}`, headers: { allow } });
    return;
  }
  if (op === undefined) {
    const ops = route.ai?.protocol === 'anthropic' ? 'POST /v1/messages, GET /v1/models' : 'POST /chat/completions, POST /embeddings, GET /models';
    x.reply('ROUTE_NOT_FOUND', 'router', { evidence: { nearest: ops }, rule: `${x.req.method ?? ''} ${x.path} is not an operation of AI route ${route.id}` });
    return;
  }
  const ai = p.rt.ai;
  if (op === 'models') {
    listModels(p, ai);
    return;
  }
  let body: Buffer;
  try {
    body = p.verdict.replaceBody ?? x.bufferedBody ?? (await x.readBody(route.maxBufferedBody));
  } catch (err) {
    if (err instanceof BodyTooLargeError) {
      const evidence = { limit_bytes: err.limit, received_bytes: err.received };
      x.reply('BODY_TOO_LARGE', route.bodyLimitPolicy ?? 'gateway', { evidence, rule: `body passed ${err.limit} bytes` });
      return;
    }
    if (x.req.destroyed) return;
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (err) {
    invalid(x, 'body', `is not JSON (${(err as Error).message})`);
    return;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    invalid(x, 'body', 'must be a JSON object');
    return;
  }
  const obj = json as Record<string, unknown>;
  switch (op) {
    case 'chat':
      if (!validateChat(obj)) {
        const { param, problem } = firstProblem(validateChat.errors);
        invalid(x, param, problem);
        return;
      }
      await chat(p, ai, obj as unknown as ChatRequest, obj);
      return;
    case 'embeddings':
      if (!validateEmbeddings(obj)) {
        const { param, problem } = firstProblem(validateEmbeddings.errors);
        invalid(x, param, problem);
        return;
      }
      await embeddings(p, ai, obj as unknown as EmbeddingsRequest);
      return;
    case 'messages':
      await messages(p, ai, obj);
      return;
    case 'prompt':
      await prompt(p, ai, obj);
      return;
  }
}

/**
 * A provider's error text as the call log keeps it: providers often quote the prompt back
 * ("… in messages[0]: 'my card is 4111…'"), so e-mail addresses, phone and card numbers, IBANs
 * and secrets are masked with the ai-guardrails detectors before it is stored.
 */
function forLog(text: string, limit: number): string {
  return maskText(text.slice(0, limit), MASK_KINDS).text;
}

/** Marks the exchange as failed by the provider (call log, metrics) when the answer is not a local reply. */
function blameProvider(x: Exchange, policy: string): void {
  x.code = 'AI_PROVIDER_ERROR';
  x.layer = 'provider';
  x.policy = policy;
}

function invalid(x: Exchange, param: string, problem: string): void {
  x.reply('AI_REQUEST_INVALID', 'gateway', { evidence: { param, problem }, rule: `${param} ${problem}` });
}

function unsupported(x: Exchange, policy: string, err: UnsupportedParameterError): void {
  x.reply('AI_PARAMETER_UNSUPPORTED', policy, {
    evidence: { param: err.param, accepted: err.accepted, provider: err.provider },
    rule: err.message,
  });
}

// ---------------------------------------------------------------------------------------------
// Model resolution

function resolveModel(p: Prepared, ai: AiRuntime, name: unknown): CompiledModel | undefined {
  const { x, route } = p;
  if (typeof name !== 'string' || name === '') {
    invalid(x, 'model', 'is required');
    return undefined;
  }
  const model = ai.ai.resolve(name);
  const offered = route.ai?.models ?? [];
  if (model === undefined) {
    const available = (offered.length > 0 ? offered : ai.ai.names).join(', ') || 'none';
    x.reply('AI_MODEL_NOT_FOUND', 'gateway', { evidence: { model: name, available }, rule: `no model named ${name}` });
    return undefined;
  }
  if (offered.length > 0 && !offered.some((m) => m === name || ai.ai.resolve(m) === model)) {
    x.reply('AI_MODEL_NOT_ALLOWED', route.id, { evidence: { model: name, route: route.id, allowed: offered.join(', ') }, rule: `route ${route.id} does not offer ${name}` });
    return undefined;
  }
  return model;
}

function listModels(p: Prepared, ai: AiRuntime): void {
  const offered = p.route.ai?.models ?? [];
  const names = offered.length > 0 ? offered : ai.ai.names;
  const anthropicRoute = p.route.ai?.protocol === 'anthropic';
  const data = names.map((id) => {
    const m = ai.ai.resolve(id);
    const owner = m?.targets[0]?.provider.type ?? 'pinpoint';
    return anthropicRoute
      ? { type: 'model', id, display_name: id, created_at: '1970-01-01T00:00:00Z' }
      : { id, object: 'model', created: 0, owned_by: owner };
  });
  const body = anthropicRoute
    ? { data, has_more: false, first_id: names[0] ?? null, last_id: names[names.length - 1] ?? null }
    : { object: 'list', data };
  sendJson(p, 200, body, {});
}

// ---------------------------------------------------------------------------------------------
// Calling providers: targets, keys, retries, fallback

interface Served {
  readonly target: CompiledTarget;
  readonly key: ProviderKey;
  readonly res: Dispatcher.ResponseData;
  readonly providerRequestId: string | null;
}

/** Why calling stopped without a 2xx: answered to the client by {@link fail}. */
type Failure =
  | { readonly kind: 'provider'; readonly target: CompiledTarget; readonly error: ProviderError; readonly body: string }
  | { readonly kind: 'network'; readonly target: CompiledTarget; readonly code: Code; readonly evidence: Evidence; readonly rule: string }
  | { readonly kind: 'unsupported'; readonly error: UnsupportedParameterError }
  /** The client left: nobody to answer (the exchange is logged as CLIENT_CLOSED_REQUEST). */
  | { readonly kind: 'gone' };

const GONE: Failure = { kind: 'gone' };

/**
 * Emits 'abort' once the client's connection closes before its response finished. Provider calls
 * carry it (undici takes an EventEmitter as `signal`), so a client that leaves cancels the
 * provider call (as the proxy path aborts its upstream): a generation nobody will read still
 * costs tokens, and a held call ties up the provider's connection pool until its timeout.
 *
 * An EventEmitter rather than an AbortController: an AbortController aborted on every close (even
 * after a finished response) built a DOMException and dispatched an EventTarget event per
 * request, about a tenth of the AI path's CPU in a profile.
 */
class Departure extends EventEmitter {
  aborted = false;
}

const departures = new WeakMap<Exchange, Departure>();

function clientGone(x: Exchange): Departure {
  let d = departures.get(x);
  if (d === undefined) {
    const dep = new Departure();
    d = dep;
    departures.set(x, dep);
    const leave = (): void => {
      dep.aborted = true;
      dep.emit('abort');
    };
    if (x.res.destroyed) dep.aborted = true;
    else
      x.res.once('close', () => {
        if (!x.res.writableFinished) leave();
      });
  }
  return d;
}

/** Waits `ms`, or less if the client leaves. */
function waitUnlessGone(ms: number, d: Departure): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      d.off('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    d.once('abort', done);
  });
}

function targetOf(t: CompiledTarget): ProviderTarget {
  const p = t.provider;
  return { providerId: p.id, type: p.type, baseUrl: p.baseUrl, model: t.model, headers: p.headers, ...(p.apiVersion !== undefined ? { apiVersion: p.apiVersion } : {}) };
}

function causeOf(kind: ProviderError['kind']): 'rate_limited' | 'overloaded' | 'server' | 'timeout' | 'auth' | 'quota' | undefined {
  switch (kind) {
    case 'rate_limited':
    case 'overloaded':
    case 'server':
    case 'timeout':
    case 'quota':
      return kind;
    case 'auth':
    case 'permission':
      return 'auth';
    case 'bad_request':
    case 'not_found':
    case 'too_large':
    case 'other':
      return undefined;
  }
}

/** The provider's request id from the first of its headers present (undici names headers in lower case). */
function requestIdOf(names: readonly string[], h: Dispatcher.ResponseData['headers']): string | null {
  for (const name of names) {
    const v = h[name];
    if (v !== undefined) return Array.isArray(v) ? v.join(', ') : v;
  }
  return null;
}

function lowerHeaders(h: Dispatcher.ResponseData['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

async function readCapped(body: Dispatcher.ResponseData['body'], limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const c of body as AsyncIterable<Buffer>) {
      if (size < limit) chunks.push(c.subarray(0, limit - size));
      size += c.length;
    }
  } catch {
    // An error body cut short still has its status, which is what the answer rests on; what
    // arrived of the body is kept.
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The whole body of a 2xx answer. A provider that breaks off mid-body is the provider's failure
 * (502, layer provider, as a stream that breaks off is), not a gateway fault; a client that left
 * meanwhile is nobody's to answer.
 */
async function bodyText(p: Prepared, s: Served): Promise<string | Failure> {
  try {
    return await s.res.body.text();
  } catch (err) {
    if (clientGone(p.x).aborted) return GONE;
    const e = err as { code?: string; message: string };
    const error: ProviderError = {
      status: 502,
      kind: 'server',
      type: null,
      code: e.code ?? null,
      message: `the response broke off: ${e.code ?? e.message}`,
      requestId: s.providerRequestId,
      retryAfterMs: null,
      param: null,
    };
    return { kind: 'provider', target: s.target, body: '', error };
  }
}

/**
 * Calls the model's targets until one answers 2xx or the attempts run out. Keys of a provider are
 * tried before its next target (a 401/429 is often one key's problem); a Retry-After within the
 * model's max_retry_after_ms is waited out on the same target; anything in fallback_on moves on.
 */
async function call(p: Prepared, ai: AiRuntime, model: CompiledModel, build: (t: CompiledTarget, key: string | undefined) => HttpCall): Promise<Served | Failure> {
  const x = p.x;
  const signal = clientGone(x);
  const tried = new Set<CompiledTarget>();
  let last: Failure | undefined;
  let attempts = 0;
  const policy = `model:${model.name}`;
  while (attempts < model.maxAttempts) {
    const target = ai.pick(model, tried, Date.now());
    if (target === undefined) break;
    tried.add(target);
    const prov = target.provider;
    const triedKeys = new Set<string>();
    let retriedSame = false;
    for (;;) {
      if (attempts >= model.maxAttempts) break;
      const key = ai.key(prov, triedKeys, Date.now());
      if (key === undefined) break;
      let httpCall: HttpCall;
      try {
        httpCall = build(target, key.secret);
      } catch (err) {
        if (err instanceof UnsupportedParameterError) return { kind: 'unsupported', error: err };
        throw err;
      }
      attempts++;
      x.attempts = attempts;
      x.upstreamTarget = target.id;
      const t0 = performance.now();
      let res: Dispatcher.ResponseData;
      try {
        const u = new URL(httpCall.url);
        res = await ai.agent(prov).request({
          origin: u.origin,
          path: u.pathname + u.search,
          method: httpCall.method,
          headers: httpCall.headers,
          body: httpCall.body ?? null,
          signal,
        });
      } catch (err) {
        const e = err as { code?: string; message: string; address?: string };
        const us = Math.round((performance.now() - t0) * 1000);
        // Aborted because the client left (or it left while the call failed): not a gateway fault.
        if (signal.aborted || x.res.destroyed) return GONE;
        let code: Code;
        let evidence: Evidence;
        if (e.code === SSRF_BLOCKED) {
          code = 'AI_PROVIDER_BLOCKED';
          evidence = { provider: prov.id, address: e.address ?? '', target: prov.origin };
        } else if (e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_CONNECT_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT') {
          code = 'AI_PROVIDER_TIMEOUT';
          evidence = { provider: prov.id, target: prov.origin, timeout_ms: e.code === 'UND_ERR_CONNECT_TIMEOUT' ? prov.connectTimeoutMs : prov.timeoutMs, reason: e.code };
        } else {
          code = 'AI_PROVIDER_UNREACHABLE';
          evidence = { provider: prov.id, target: prov.origin, reason: e.code ?? e.message };
        }
        const rule = `${target.id}: ${e.code ?? e.message}`;
        x.trace.push({ policy, type: 'ai-provider', outcome: 'deny', rule, code, evidence, us });
        last = { kind: 'network', target, code, evidence, rule };
        ai.restTarget(target, Date.now());
        const cause = code === 'AI_PROVIDER_TIMEOUT' ? 'timeout' : 'unreachable';
        if (code === 'AI_PROVIDER_BLOCKED' || !model.fallbackOn.has(cause)) return last;
        break; // next target
      }
      const providerRequestId = requestIdOf(prov.adapter.requestIdHeaders, res.headers);
      if (res.statusCode >= 200 && res.statusCode < 300) {
        ai.targetOk(target);
        x.trace.push({
          policy,
          type: 'ai-provider',
          outcome: 'allow',
          rule: `${target.id} key ${key.id}: ${res.statusCode}`,
          evidence: { provider: prov.id, model: target.model, status: res.statusCode, provider_request_id: providerRequestId },
          us: Math.round((performance.now() - t0) * 1000),
        });
        return { target, key, res, providerRequestId };
      }
      const text = await readCapped(res.body, ERROR_BODY_LIMIT);
      const error = prov.adapter.error(res.statusCode, lowerHeaders(res.headers), text);
      x.trace.push({
        policy,
        type: 'ai-provider',
        outcome: 'deny',
        rule: `${target.id} key ${key.id}: ${res.statusCode} ${error.type ?? ''}`.trimEnd(),
        code: 'AI_PROVIDER_ERROR',
        evidence: { provider: prov.id, model: target.model, status: res.statusCode, type: error.type, code: error.code, provider_request_id: error.requestId, retry_after_ms: error.retryAfterMs },
        us: Math.round((performance.now() - t0) * 1000),
      });
      last = { kind: 'provider', target, error, body: text };
      const cause = causeOf(error.kind);
      const now = Date.now();
      if (cause === 'auth' || cause === 'quota') {
        // The gateway's key is refused or out of credit: another key of the pool may serve.
        ai.restKey(prov, key, now);
        triedKeys.add(key.id);
        if (prov.keys.length > triedKeys.size) continue;
        if (model.fallbackOn.has(cause)) break;
        return last;
      }
      if (cause === 'rate_limited' || cause === 'overloaded') {
        if (prov.keys.length > triedKeys.size + 1 && cause === 'rate_limited') {
          ai.restKey(prov, key, now, error.retryAfterMs ?? 1_000);
          triedKeys.add(key.id);
          continue;
        }
        const wait = error.retryAfterMs;
        if (!retriedSame && wait !== null && wait <= model.maxRetryAfterMs && attempts < model.maxAttempts) {
          retriedSame = true;
          await waitUnlessGone(wait, signal);
          if (signal.aborted) return GONE;
          continue;
        }
        ai.restTarget(target, now, error.retryAfterMs ?? undefined);
        if (model.fallbackOn.has(cause)) break;
        return last;
      }
      if (cause === 'server' || cause === 'timeout') {
        ai.restTarget(target, now);
        if (model.fallbackOn.has(cause)) break;
        return last;
      }
      return last; // the request itself is at fault: another target would say the same
    }
  }
  if (last !== undefined) return last;
  const evidence = { provider: model.targets[0]?.provider.id ?? '', target: model.name, reason: 'no target left to try' };
  return { kind: 'network', target: model.targets[0] as CompiledTarget, code: 'AI_PROVIDER_UNREACHABLE', evidence, rule: `${model.name}: no target left to try` };
}

/** Answers a failure in the route's envelope. */
function fail(p: Prepared, model: CompiledModel, f: Failure): void {
  const x = p.x;
  const policy = `model:${model.name}`;
  if (f.kind === 'gone') return;
  if (f.kind === 'unsupported') {
    unsupported(x, policy, f.error);
    return;
  }
  if (f.kind === 'network') {
    x.reply(f.code, policy, { evidence: f.evidence, rule: f.rule });
    return;
  }
  const e = f.error;
  blameProvider(x, policy);
  x.upstreamBody = forLog(f.body, p.rt.compiled.source.call_log.upstream_body_bytes);
  if (x.res.headersSent) {
    x.res.destroy();
    return;
  }
  const envelope: Envelope = p.route.envelope;
  const info = providerInfo(p, model, f.target, e);
  const body = JSON.stringify(providerErrorBody(envelope, info));
  // Public mode names neither the provider account nor the target (`<provider id>/<upstream
  // model>`) nor the provider's request id: they describe internal routing, which public mode
  // does not disclose (the body leaves them out too). The gateway's request id and the call log
  // say which target failed; detailed mode sends them for diagnosis.
  const routing: Record<string, string> = info.detailed ? { 'x-pinpoint-ai-provider': f.target.provider.id, 'x-pinpoint-ai-target': f.target.id } : {};
  const headers = replyHeaders(p, {
    'content-type': envelope === 'problem' ? 'application/problem+json' : 'application/json',
    'cache-control': 'no-store',
    // RFC 9209 §2.1.2: the error came from the next hop, whose status is passed on.
    'proxy-status': `pinpoint; received-status=${e.status}`,
    'x-pinpoint-code': 'AI_PROVIDER_ERROR',
    'x-pinpoint-layer': 'provider',
    'x-pinpoint-policy': policy,
    ...routing,
    'x-pinpoint-ai-attempts': String(x.attempts),
    'content-length': String(Buffer.byteLength(body)),
  });
  if (e.requestId !== null && info.detailed) headers['x-pinpoint-provider-request-id'] = e.requestId;
  if (PERMANENT.has(e.kind)) headers['x-should-retry'] = 'false';
  if (e.retryAfterMs !== null && !PERMANENT.has(e.kind)) {
    headers['retry-after'] = String(Math.max(1, Math.ceil(e.retryAfterMs / 1000)));
    headers['retry-after-ms'] = String(e.retryAfterMs);
  }
  x.res.writeHead(e.status, headers);
  x.res.end(body);
  x.bytesOut = Buffer.byteLength(body);
}

// ---------------------------------------------------------------------------------------------
// Responses

/**
 * The headers of a reply the AI handler writes itself: the policies' response headers, then its
 * own, then the request id under the configured name and under the name the client protocol's SDK
 * reads (src/errors/envelopes.ts).
 */
function replyHeaders(p: Prepared, own: Readonly<Record<string, string>>): Record<string, string> {
  const x = p.x;
  const h: Record<string, string> = { ...x.extraHeaders, ...own, [p.rt.compiled.source.request_id.header]: x.requestId };
  return Object.assign(h, requestIdHeaders(p.route.envelope, x.requestId));
}

/** Which target served the answer, for the served reply's headers. */
function servedHeaders(p: Prepared, s: Served, model: CompiledModel): Record<string, string> {
  const h: Record<string, string> = {
    'x-pinpoint-ai-provider': s.target.provider.id,
    'x-pinpoint-ai-model': s.target.model,
    'x-pinpoint-ai-target': s.target.id,
    'x-pinpoint-ai-attempts': String(p.x.attempts),
    'x-pinpoint-policy': `model:${model.name}`,
  };
  if (s.providerRequestId !== null) h['x-pinpoint-provider-request-id'] = s.providerRequestId;
  return h;
}

function streamHeaders(p: Prepared, s: Served, model: CompiledModel): Record<string, string> {
  const h = servedHeaders(p, s, model);
  h['content-type'] = 'text/event-stream; charset=utf-8';
  h['cache-control'] = 'no-cache';
  return h;
}

/** Writes a JSON reply; `headers` (a fresh object) is completed in place. */
function sendJson(p: Prepared, status: number, value: unknown, headers: Record<string, string>): void {
  const x = p.x;
  const body = JSON.stringify(value);
  const length = Buffer.byteLength(body);
  headers['content-type'] = 'application/json';
  headers['content-length'] = String(length);
  x.res.writeHead(status, replyHeaders(p, headers));
  x.res.end(body);
  x.bytesOut = length;
}

function costOf(model: CompiledModel, u: Usage): number {
  const price = model.price;
  if (price === undefined) return 0;
  // USD per million tokens × tokens = micro-dollars.
  return Math.round(u.prompt_tokens * price.input_per_mtok + u.completion_tokens * price.output_per_mtok);
}

function account(p: Prepared, s: Served, model: CompiledModel, requested: string, usage: Usage | undefined, stream: boolean, ttftMs: number | null): void {
  const u = usage ?? { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
  const costMicroUsd = costOf(model, u);
  p.x.ai = {
    provider: s.target.provider.id,
    model: requested,
    servedModel: s.target.model,
    promptTokens: u.prompt_tokens,
    completionTokens: u.completion_tokens,
    costMicroUsd,
    ttftMs,
    stream,
  };
  for (const charge of p.verdict.charges) charge({ promptTokens: u.prompt_tokens, completionTokens: u.completion_tokens, costMicroUsd });
}

function newContext(x: Exchange, model: string): ResponseContext {
  return { id: `chatcmpl-${x.requestId.replace(/-/g, '')}`, created: Math.floor(x.ts / 1000), model };
}

async function write(x: Exchange, text: string): Promise<void> {
  x.bytesOut += Buffer.byteLength(text);
  if (!x.res.write(text)) await once(x.res, 'drain');
}

// ---------------------------------------------------------------------------------------------
// Operations

/** Fields outside the typed mapping reach only OpenAI-family providers; others would drop them. */
function checkFields(raw: Readonly<Record<string, unknown>>, t: CompiledTarget): void {
  if (t.provider.type !== 'anthropic' && t.provider.type !== 'gemini') return;
  for (const k of Object.keys(raw)) {
    if (!OPENAI_CHAT_FIELDS.has(k) && raw[k] !== null && raw[k] !== undefined) {
      throw new UnsupportedParameterError(t.provider.type, k, 'the parameters of the unified API it maps');
    }
  }
}

async function chat(p: Prepared, ai: AiRuntime, req: ChatRequest, raw: Readonly<Record<string, unknown>>): Promise<void> {
  const model = resolveModel(p, ai, req.model);
  if (model === undefined) return;
  const r = await call(p, ai, model, (t, key) => {
    checkFields(raw, t);
    return t.provider.adapter.chat(req, targetOf(t), key);
  });
  if (!('res' in r)) {
    fail(p, model, r);
    return;
  }
  const ctx = newContext(p.x, req.model);
  if (req.stream === true) await relayStream(p, r, model, req, ctx);
  else {
    const completion = await readResult(p, model, r, (json) => r.target.provider.adapter.chatResult(json, ctx));
    if (completion === undefined) return;
    account(p, r, model, req.model, completion.usage, false, null);
    sendJson(p, 200, completion, servedHeaders(p, r, model));
  }
}

/**
 * Reads a 2xx body, parses it and maps it with the adapter. A body that breaks off, is not JSON,
 * or does not have the shape the adapter reads is the provider's failure (502, layer provider),
 * answered here; undefined then.
 */
async function readResult<T>(p: Prepared, model: CompiledModel, r: Served, map: (json: unknown) => T): Promise<T | undefined> {
  const text = await bodyText(p, r);
  if (typeof text !== 'string') {
    fail(p, model, text);
    return undefined;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    fail(p, model, { kind: 'provider', target: r.target, body: text, error: notJson(r, text) });
    return undefined;
  }
  try {
    return map(json);
  } catch (err) {
    fail(p, model, { kind: 'provider', target: r.target, body: text, error: notJson(r, text, (err as Error).message) });
    return undefined;
  }
}

function notJson(s: Served, text: string, why = 'not JSON'): ProviderError {
  return {
    status: 502,
    kind: 'server',
    type: null,
    code: null,
    message: `a 2xx response the gateway cannot read (${why}): ${JSON.stringify(text.slice(0, 200))}`,
    requestId: s.providerRequestId,
    retryAfterMs: null,
    param: null,
  };
}

/** The secrets of each provider account, gathered once per compiled provider (see providerSecrets). */
const secretsOf = new WeakMap<CompiledProvider, readonly string[]>();

/**
 * What a provider's error text must never carry to the client: the account's keys, and the values
 * of its configured headers (organisation and project ids, extra auth) of 8+ characters — shorter
 * ones (a version number) would mangle the text and disclose nothing.
 */
function providerSecrets(prov: CompiledProvider): readonly string[] {
  let out = secretsOf.get(prov);
  if (out === undefined) {
    const keys = prov.keys.flatMap((k) => (k.secret !== undefined && k.secret !== '' ? [k.secret] : []));
    out = Object.freeze([...keys, ...Object.values(prov.headers).filter((v) => v.length >= 8)]);
    secretsOf.set(prov, out);
  }
  return out;
}

/** What the client is told of a provider's error, in any envelope (shaped by the errors mode in providerErrorBody). */
function providerInfo(p: Prepared, model: CompiledModel, target: CompiledTarget, e: ProviderError): ProviderErrorInfo {
  return {
    status: e.status,
    type: e.type,
    code: e.code,
    message: e.message,
    param: e.param,
    providerRequestId: e.requestId,
    provider: target.provider.id,
    providerType: target.provider.type,
    model: model.name,
    requestId: p.x.requestId,
    attempts: p.x.attempts,
    policy: `model:${model.name}`,
    typeBase: p.rt.compiled.source.errors.type_base,
    detailed: p.x.detailed(),
    secrets: providerSecrets(target.provider),
  };
}

/** OpenAI's in-stream error form: a `data:` object with an `error` key (the SDK throws on it). */
function streamErrorOpenAI(p: Prepared, model: CompiledModel, s: Served, e: ProviderError): string {
  return `data: ${JSON.stringify(providerErrorBody('openai', providerInfo(p, model, s.target, e)))}\n\n`;
}

async function relayStream(p: Prepared, s: Served, model: CompiledModel, req: ChatRequest, ctx: ResponseContext): Promise<void> {
  const x = p.x;
  x.res.writeHead(200, replyHeaders(p, streamHeaders(p, s, model)));
  const mapper = s.target.provider.adapter.chatStream(ctx, req);
  const reader = new SseReader();
  let usage: Usage | undefined;
  let ttft: number | null = null;
  let finished = false;
  // Events are turned into text synchronously and the text of one provider read is written at
  // once: one write (and one drain check) per TCP read instead of one per SSE event.
  let out = '';
  const emit = (step: ReturnType<typeof mapper.event>): void => {
    for (const c of step.chunks) {
      if (ttft === null) ttft = Math.round((performance.now() - x.t0) * 1000) / 1000;
      out += `data: ${JSON.stringify(c)}\n\n`;
    }
    if (step.usage !== undefined) usage = step.usage;
    if (step.error !== undefined) {
      blameProvider(x, `model:${model.name}`);
      x.upstreamBody = forLog(JSON.stringify({ type: step.error.type, message: step.error.message }), 4096);
      // The stream's error event carries no headers: the 200's request id names the call.
      const err = step.error.requestId === null ? { ...step.error, requestId: s.providerRequestId } : step.error;
      out += streamErrorOpenAI(p, model, s, err);
      finished = true;
    } else if (step.done === true) {
      out += 'data: [DONE]\n\n';
      finished = true;
    }
  };
  let ended = false;
  const flush = async (): Promise<void> => {
    const text = out;
    out = '';
    if (finished) {
      // The last text and the end of the chunked body in one call: one socket write instead of
      // two (the terminating chunk would otherwise go out alone, a writev of its own per call).
      x.bytesOut += Buffer.byteLength(text);
      ended = true;
      // Usage is accounted before the end: the exchange is recorded when the response closes.
      account(p, s, model, req.model, usage, true, ttft);
      x.res.end(text);
      return;
    }
    if (text !== '') await write(x, text);
  };
  try {
    // The body is read with 'data' events rather than for-await: no promise and no iterator step
    // per provider read, and after the end of the stream ([DONE] or an error event) the rest is
    // read and dropped, never left with `break` (leaving a for-await destroys the undici body,
    // which builds an AbortError with a stack trace on every call: measured at 6 % of a streamed
    // call's CPU). A provider's response ends right after [DONE]; bodyTimeout bounds one that does not.
    const body = s.res.body;
    await new Promise<void>((resolve, reject) => {
      body.on('data', (chunk: Buffer) => {
        if (finished || x.res.destroyed) return;
        for (const ev of reader.push(chunk)) {
          emit(mapper.event(ev));
          if (finished) break;
        }
        if (finished) {
          void flush();
          return;
        }
        const text = out;
        out = '';
        if (text === '') return;
        x.bytesOut += Buffer.byteLength(text);
        if (!x.res.write(text)) {
          body.pause();
          x.res.once('drain', () => body.resume());
        }
      });
      body.once('end', resolve);
      body.once('error', reject);
    });
    if (!finished && !x.res.destroyed) {
      for (const ev of reader.end()) {
        emit(mapper.event(ev));
        if (finished) break;
      }
      if (!finished) emit(mapper.end());
      if (!finished) out += 'data: [DONE]\n\n';
      finished = true;
      await flush();
    }
  } catch (err) {
    // A failure after the client's stream was complete (the provider's connection dropping after
    // [DONE]) costs the client nothing: there is nothing to tell it.
    if (!x.res.destroyed && !ended) {
      // The provider's connection failed mid-stream: tell the client in-stream, naming it.
      const e = err as { code?: string; message: string };
      const pe: ProviderError = { status: 502, kind: 'server', type: null, code: e.code ?? null, message: `stream broke off: ${e.code ?? e.message}`, requestId: s.providerRequestId, retryAfterMs: null, param: null };
      blameProvider(x, `model:${model.name}`);
      await write(x, streamErrorOpenAI(p, model, s, pe)).catch(() => undefined);
    }
  } finally {
    if (!s.res.body.destroyed) s.res.body.destroy();
    if (!ended) {
      account(p, s, model, req.model, usage, true, ttft);
      if (!x.res.destroyed) x.res.end();
    }
  }
}

async function embeddings(p: Prepared, ai: AiRuntime, req: EmbeddingsRequest): Promise<void> {
  const model = resolveModel(p, ai, req.model);
  if (model === undefined) return;
  const first = model.targets[0] as CompiledTarget;
  const adapter = first.provider.adapter;
  if (adapter.embeddings === undefined || adapter.embeddingsResult === undefined) {
    p.x.reply('AI_OPERATION_NOT_SUPPORTED', `model:${model.name}`, { evidence: { provider: first.provider.type, operation: 'embeddings' }, rule: `${first.provider.type} has no embeddings API` });
    return;
  }
  const r = await call(p, ai, model, (t, key) => {
    const a = t.provider.adapter;
    if (a.embeddings === undefined) throw new UnsupportedParameterError(t.provider.type, 'model', 'chat models only (no embeddings API)');
    return a.embeddings(req, targetOf(t), key);
  });
  if (!('res' in r)) {
    fail(p, model, r);
    return;
  }
  const mapped = await readResult(p, model, r, (json) => (r.target.provider.adapter.embeddingsResult as NonNullable<typeof adapter.embeddingsResult>)(json, newContext(p.x, req.model)));
  if (mapped === undefined) return;
  let out: EmbeddingsResponse = mapped;
  // The OpenAI SDK asks for base64 (little-endian float32) by default; providers that only
  // return floats get them encoded here, so the client receives what it asked for.
  if (req.encoding_format === 'base64') {
    out = {
      ...out,
      data: out.data.map((d) => (typeof d.embedding === 'string' ? d : { ...d, embedding: Buffer.from(new Float32Array(d.embedding).buffer).toString('base64') })),
    };
  }
  account(p, r, model, req.model, { prompt_tokens: out.usage.prompt_tokens, completion_tokens: 0, total_tokens: out.usage.total_tokens }, false, null);
  sendJson(p, 200, out, servedHeaders(p, r, model));
}

/** Anthropic's native Messages API, passed through to Anthropic targets. */
async function messages(p: Prepared, ai: AiRuntime, body: Readonly<Record<string, unknown>>): Promise<void> {
  const x = p.x;
  const version = x.req.headers['anthropic-version'];
  const problem = anthropicNative.check(body, typeof version === 'string' ? version : undefined);
  if (problem !== undefined) {
    invalid(x, problem.param, problem.message);
    return;
  }
  const model = resolveModel(p, ai, body.model);
  if (model === undefined) return;
  const foreign = model.targets.find((t) => t.provider.type !== 'anthropic');
  if (foreign !== undefined) {
    x.reply('AI_OPERATION_NOT_SUPPORTED', `model:${model.name}`, {
      evidence: { provider: foreign.provider.type, operation: 'the native Anthropic Messages API' },
      rule: `model ${model.name} is served by ${foreign.provider.type}; the native /v1/messages route passes through to Anthropic targets only (use the OpenAI-compatible route for it)`,
    });
    return;
  }
  const h = x.req.headers;
  const pass = {
    ...(typeof h['anthropic-version'] === 'string' ? { version: h['anthropic-version'] } : {}),
    ...(typeof h['anthropic-beta'] === 'string' ? { beta: h['anthropic-beta'] } : {}),
  };
  const r = await call(p, ai, model, (t, key) => anthropicNative.messages(body, targetOf(t), key, pass));
  if (!('res' in r)) {
    fail(p, model, r);
    return;
  }
  const requested = body.model as string;
  if (body.stream !== true) {
    const json = await readResult(p, model, r, (body) => body);
    if (json === undefined) return;
    account(p, r, model, requested, anthropicNative.usage(json), false, null);
    sendJson(p, 200, json, servedHeaders(p, r, model));
    return;
  }
  x.res.writeHead(200, replyHeaders(p, streamHeaders(p, r, model)));
  // The bytes pass through unchanged; a watcher reads them for usage and in-stream errors.
  const watcher = new NativeStreamWatcher();
  const reader = new SseReader();
  let usage: Usage | undefined;
  let ttft: number | null = null;
  try {
    for await (const chunk of r.res.body as AsyncIterable<Buffer>) {
      if (x.res.destroyed) break;
      if (ttft === null) ttft = Math.round((performance.now() - x.t0) * 1000) / 1000;
      for (const ev of reader.push(chunk)) {
        const seen = watcher.event(ev);
        if (seen.usage !== undefined) usage = seen.usage;
        if (seen.error !== undefined) {
          blameProvider(x, `model:${model.name}`);
          x.upstreamBody = forLog(ev.data, 4096);
        }
      }
      x.bytesOut += chunk.length;
      if (!x.res.write(chunk)) await once(x.res, 'drain');
    }
  } catch (err) {
    if (!x.res.destroyed) {
      const e = err as { code?: string; message: string };
      blameProvider(x, `model:${model.name}`);
      // Built as every provider error is, so public mode does not name the provider here either.
      const pe: ProviderError = { status: 502, kind: 'server', type: null, code: e.code ?? null, message: `stream broke off: ${e.code ?? e.message}`, requestId: r.providerRequestId, retryAfterMs: null, param: null };
      const data = JSON.stringify(providerErrorBody('anthropic', providerInfo(p, model, r.target, pe)));
      await write(x, sseEvent('error', data)).catch(() => undefined);
    }
  } finally {
    if (!r.res.body.destroyed) r.res.body.destroy();
    account(p, r, model, requested, usage, true, ttft);
    if (!x.res.destroyed) x.res.end();
  }
}

/** A prompt API: variables in, the model's output out. */
async function prompt(p: Prepared, ai: AiRuntime, vars: Readonly<Record<string, unknown>>): Promise<void> {
  const x = p.x;
  const cp = p.route.prompt;
  if (cp === undefined || cp.model === undefined) return;
  if (!cp.validate(vars)) {
    const { param, problem } = firstProblem(cp.validate.errors);
    invalid(x, param, problem);
    return;
  }
  const req = cp.build(vars);
  const model = cp.model;
  const r = await call(p, ai, model, (t, key) => t.provider.adapter.chat(req, targetOf(t), key));
  if (!('res' in r)) {
    fail(p, model, r);
    return;
  }
  const completion = await readResult(p, model, r, (json) => r.target.provider.adapter.chatResult(json, newContext(x, req.model)));
  if (completion === undefined) return;
  account(p, r, model, req.model, completion.usage, false, null);
  const content = completion.choices[0]?.message.content ?? '';
  let output: unknown = content;
  if (cp.config.output === 'json') {
    try {
      output = JSON.parse(content);
    } catch {
      fail(p, model, {
        kind: 'provider',
        target: r.target,
        body: content.slice(0, 4096),
        error: { status: 502, kind: 'server', type: null, code: 'output_not_json', message: 'the model\u2019s output is not the JSON this prompt API promises', requestId: r.providerRequestId, retryAfterMs: null, param: null },
      });
      return;
    }
  }
  sendJson(
    p,
    200,
    { output, model: req.model, finish_reason: completion.choices[0]?.finish_reason ?? null, usage: completion.usage ?? null, request_id: x.requestId },
    servedHeaders(p, r, model),
  );
}
