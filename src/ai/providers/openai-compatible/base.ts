/**
 * The OpenAI Chat Completions wire format as a table. OpenAI, Azure OpenAI, Mistral and the
 * OpenAI-compatible servers (Ollama, vLLM, LM Studio, hosted Llama) all speak it, differing only in
 * where a call goes, how the key is sent, which parameters and ranges they take, how a stream
 * reports usage and how their error bodies look. A provider is an {@link OpenAICompatibleSpec};
 * {@link openAICompatible} turns it into a ProviderAdapter.
 *
 * Facts relied on (the `openai` SDK in node_modules — src/resources/chat/completions/completions.ts,
 * src/core/streaming.ts, src/core/error.ts, src/client.ts — and the OpenAI API reference):
 * - POST {base}/chat/completions and {base}/embeddings with `Authorization: Bearer <key>`.
 * - A stream is unnamed `data:` events, each a chat.completion.chunk, ended by `data: [DONE]`.
 *   With `stream_options: {include_usage: true}` one more chunk comes before [DONE] with `usage`
 *   and an empty `choices`, and every other chunk carries `usage: null`
 *   (ChatCompletionStreamOptions.include_usage).
 * - A `data:` JSON object with an `error` key is an error, and so is an `event: error` event
 *   (core/streaming.ts throws APIError for both; for the named event it reads `data.error ?? data`).
 * - Error envelope `{"error":{"message","type","param","code"}}` (core/error.ts reads those four);
 *   the request id is the `x-request-id` header (APIError.requestID).
 * - Retry delay: `retry-after-ms`, then `retry-after` as seconds or an HTTP date (client.ts).
 */
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatRequest,
  EmbeddingsRequest,
  EmbeddingsResponse,
  HttpCall,
  ProviderAdapter,
  ProviderError,
  ProviderErrorKind,
  ProviderTarget,
  ProviderType,
  ResponseContext,
  StreamMapper,
  StreamStep,
  Usage,
} from '../../types.ts';
import { UnsupportedParameterError } from '../../types.ts';
import { kindOfStatus, retryAfterMs, snippet } from '../shared/errors.ts';
import { isRecord, num, parseJson, str } from '../shared/json.ts';

// ---------------------------------------------------------------------------------------------
// The spec.

/** Numeric request fields a provider bounds. */
export type RangeField = 'temperature' | 'top_p' | 'n' | 'presence_penalty' | 'frequency_penalty' | 'top_logprobs';

/** Inclusive bounds; no `max` means unbounded above. */
export interface Range {
  readonly min: number;
  readonly max?: number;
}

export interface ChatRules {
  /** Accepted range per field; a value outside is an UnsupportedParameterError naming the field. */
  readonly ranges: Readonly<Partial<Record<RangeField, Range>>>;
  /** Range of each `logit_bias` value (the field is unsupported when listed in `unsupported`). */
  readonly logitBias?: Range;
  /**
   * Fields the provider does not take. A value that asks for something is refused; null and
   * `false` (OpenAI's "not set" / "off") ask for nothing and are left out of the call.
   */
  readonly unsupported?: readonly string[];
  /** Fields the provider names differently, e.g. Mistral `seed` → `random_seed`. */
  readonly renames?: Readonly<Record<string, string>>;
  /** String `tool_choice` values the provider spells differently, e.g. Mistral `required` → `any`. */
  readonly toolChoice?: Readonly<Partial<Record<'none' | 'auto' | 'required', string>>>;
}

export interface EmbeddingsRules {
  readonly unsupported?: readonly string[];
  readonly renames?: Readonly<Record<string, string>>;
  /** Only text input (a string or strings), no token arrays. */
  readonly textInputOnly?: boolean;
}

/** What an error body says, before it becomes a ProviderError. Absent fields are null. */
export interface ErrorFields {
  readonly message: string | null;
  readonly type: string | null;
  readonly code: string | null;
  readonly param: string | null;
  /** An HTTP status the body itself states (Azure's `status`, vLLM's numeric `code`). */
  readonly status: number | null;
  /** A request id the body carries (Kong's `request_id`, in front of Mistral). */
  readonly requestId: string | null;
}

export interface OpenAICompatibleSpec {
  readonly type: ProviderType;
  /** Used when the config gives no base_url; undefined when one is required. */
  readonly defaultBaseUrl: string | undefined;
  /** `bearer`: `Authorization: Bearer <key>`; `api-key`: Azure's `api-key: <key>`. No header without a key. */
  readonly auth: 'bearer' | 'api-key';
  /** Response headers carrying the provider's request id, in order of preference. */
  readonly requestIdHeaders: readonly string[];
  /** Absolute URL of an operation; default `${baseUrl}/${operation}`. */
  readonly url?: (baseUrl: string, target: ProviderTarget, operation: 'chat/completions' | 'embeddings') => string;
  /**
   * How a stream reports usage. `stream_options`: only when asked, so `include_usage: true` is
   * always sent (the gateway meters tokens). `always`: unasked, on the last chunk (Mistral, whose
   * API refuses a `stream_options` field).
   */
  readonly streamUsage: 'stream_options' | 'always';
  readonly chat: ChatRules;
  /** Embeddings rules; false when the provider has no embeddings API. */
  readonly embeddings: EmbeddingsRules | false;
  /** Reads a provider-specific error body; the generic reader is used when it returns undefined. */
  readonly readErrorBody?: (body: unknown) => ErrorFields | undefined;
}

/** OpenAI's documented ranges (API reference, chat/create), which the compatible servers copy. */
export const OPENAI_CHAT_RULES: ChatRules = {
  ranges: {
    temperature: { min: 0, max: 2 },
    top_p: { min: 0, max: 1 },
    n: { min: 1, max: 128 },
    presence_penalty: { min: -2, max: 2 },
    frequency_penalty: { min: -2, max: 2 },
    top_logprobs: { min: 0, max: 20 },
  },
  logitBias: { min: -100, max: 100 },
};

/** What UnsupportedParameterError.accepted says for a field the provider does not take. */
export const OMITTED = 'omitted';

// ---------------------------------------------------------------------------------------------
// Requests.

function rangeText(r: Range): string {
  return r.max === undefined ? `>= ${r.min}` : `${r.min}..${r.max}`;
}

function asks(v: unknown): boolean {
  return v !== undefined && v !== null && v !== false;
}

/** Throws for the first parameter the provider cannot honour as asked. */
function checkChat(type: ProviderType, rules: ChatRules, req: Readonly<Record<string, unknown>>): void {
  for (const [field, range] of Object.entries(rules.ranges)) {
    const v = req[field];
    if (typeof v === 'number' && (v < range.min || (range.max !== undefined && v > range.max))) {
      throw new UnsupportedParameterError(type, field, rangeText(range));
    }
  }
  for (const field of rules.unsupported ?? []) {
    if (asks(req[field])) throw new UnsupportedParameterError(type, field, OMITTED);
  }
  const bias = req['logit_bias'];
  if (rules.logitBias !== undefined && isRecord(bias)) {
    const r = rules.logitBias;
    for (const [token, v] of Object.entries(bias)) {
      if (typeof v === 'number' && (v < r.min || (r.max !== undefined && v > r.max))) {
        throw new UnsupportedParameterError(type, `logit_bias.${token}`, rangeText(r));
      }
    }
  }
}

/** `body` without the unsupported fields (all null/false by now) and with renamed fields. */
function applyRules(body: Readonly<Record<string, unknown>>, unsupported: readonly string[], renames: Readonly<Record<string, string>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) {
    if (v === undefined || unsupported.includes(k)) continue;
    out[renames[k] ?? k] = v;
  }
  return out;
}

function baseUrlOf(type: ProviderType, target: ProviderTarget): string {
  const base = target.baseUrl.replace(/\/+$/, '');
  if (base === '') throw new Error(`${type} provider ${target.providerId}: base_url is required`);
  return base;
}

function headersOf(auth: OpenAICompatibleSpec['auth'], target: ProviderTarget, apiKey: string | undefined): Record<string, string> {
  const h: Record<string, string> = {};
  for (const [k, v] of Object.entries(target.headers)) h[k.toLowerCase()] = v;
  h['content-type'] = 'application/json';
  if (apiKey !== undefined && apiKey !== '') {
    if (auth === 'bearer') h['authorization'] = `Bearer ${apiKey}`;
    else h['api-key'] = apiKey;
  }
  return h;
}

// ---------------------------------------------------------------------------------------------
// Responses and streams.

/** Usage as OpenAI states it; undefined unless prompt and completion counts can be read. */
export function usageOf(u: unknown): Usage | undefined {
  if (!isRecord(u)) return undefined;
  const prompt = num(u['prompt_tokens']);
  const total = num(u['total_tokens']);
  const completion = num(u['completion_tokens']) ?? (prompt !== undefined && total !== undefined ? total - prompt : undefined);
  if (prompt === undefined || completion === undefined) return undefined;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: total ?? prompt + completion };
}

/**
 * Tool-call `arguments` are JSON text in OpenAI's format; Mistral's schema also allows an object
 * there (its FunctionCall.arguments is `Record<string, any> | string`), which is serialised so the
 * client always gets text.
 */
function normaliseToolCalls(calls: unknown): unknown {
  if (!Array.isArray(calls)) return calls;
  return calls.map((c: unknown) => {
    if (!isRecord(c) || !isRecord(c['function'])) return c;
    const args = c['function']['arguments'];
    if (args === undefined || typeof args === 'string') return c;
    return { ...c, function: { ...c['function'], arguments: JSON.stringify(args) } };
  });
}

function normaliseChoices(choices: readonly unknown[], part: 'message' | 'delta'): unknown[] {
  return choices.map((ch: unknown) => {
    if (!isRecord(ch)) return ch;
    const m = ch[part];
    if (!isRecord(m) || m['tool_calls'] === undefined) return ch;
    return { ...ch, [part]: { ...m, tool_calls: normaliseToolCalls(m['tool_calls']) } };
  });
}

/** The provider's own id when it has one; '' (Azure's prompt-filter chunk) is none. */
function idOr(v: unknown, fallback: string): string {
  const s = str(v);
  return s !== undefined && s !== '' ? s : fallback;
}

/** The provider's `created` when it has one; 0 (Azure's prompt-filter chunk) is none. */
function createdOr(v: unknown, fallback: number): number {
  const n = num(v);
  return n !== undefined && n > 0 ? n : fallback;
}

/** A 2xx chat body → chat.completion, everything else the provider said kept as it said it. */
function chatResult(type: ProviderType, body: unknown, ctx: ResponseContext): ChatCompletion {
  if (!isRecord(body) || !Array.isArray(body['choices'])) {
    throw new TypeError(`${type} answered 2xx with a body that is not a chat.completion`);
  }
  const { usage, ...rest } = body;
  const out = {
    ...rest,
    id: idOr(body['id'], ctx.id),
    object: 'chat.completion',
    created: createdOr(body['created'], ctx.created),
    model: ctx.model,
    choices: normaliseChoices(body['choices'] as readonly unknown[], 'message'),
    // Usage as reported (with any detail fields); a null or missing usage is left out.
    ...(isRecord(usage) ? { usage } : {}),
  };
  // Provider JSON: the fields the gateway relies on are set above; the rest is the provider's.
  return out as unknown as ChatCompletion;
}

function embeddingsResult(type: ProviderType, body: unknown, ctx: ResponseContext): EmbeddingsResponse {
  if (!isRecord(body) || !Array.isArray(body['data'])) {
    throw new TypeError(`${type} answered 2xx with a body that is not an embeddings list`);
  }
  return { ...body, model: ctx.model } as unknown as EmbeddingsResponse;
}

/**
 * One stream's mapper. Usage reaches the client only if it asked (stream_options.include_usage),
 * and then, as OpenAI sends it, as one chunk with empty `choices` just before the end: a usage-only
 * chunk passes as it is; usage riding on a chunk with choices (Mistral's last chunk) is taken off
 * that chunk and sent as its own chunk when the stream ends.
 */
class OpenAIStreamMapper implements StreamMapper {
  readonly #ctx: ResponseContext;
  readonly #wantsUsage: boolean;
  readonly #readError: (body: unknown) => ErrorFields | undefined;
  #finished = false;
  /** A usage chunk owed to the client (usage that came on a chunk with choices). */
  #owed: ChatCompletionChunk | undefined;

  constructor(ctx: ResponseContext, req: ChatRequest, readError: (body: unknown) => ErrorFields | undefined) {
    this.#ctx = ctx;
    // The validated request may carry `stream_options: null`.
    this.#wantsUsage = req.stream_options?.include_usage === true;
    this.#readError = readError;
  }

  event(ev: { readonly event?: string | undefined; readonly data: string }): StreamStep {
    if (this.#finished) return { chunks: [] };
    const data = ev.data.trim();
    if (data === '[DONE]') {
      this.#finished = true;
      return { chunks: this.#flush(), done: true };
    }
    if (data === '') return { chunks: [] };
    const parsed = parseJson(data);
    if (ev.event === 'error') {
      // The SDK reads a named error event's payload as `data.error ?? data`.
      const body = isRecord(parsed) && parsed['error'] !== undefined ? parsed : { error: parsed ?? data };
      return this.#fail(streamError(this.#readError(body) ?? readErrorBody(body), data));
    }
    if (ev.event !== undefined && ev.event !== 'message') return { chunks: [] }; // not part of this format
    if (!isRecord(parsed)) {
      this.#finished = true;
      return { chunks: [], error: malformedEvent(data) };
    }
    // `object: "error"` is the top-level error shape of Mistral and older vLLM.
    if (parsed['error'] !== undefined || parsed['object'] === 'error') {
      return this.#fail(streamError(this.#readError(parsed) ?? readErrorBody(parsed), data));
    }
    if (!Array.isArray(parsed['choices'])) return { chunks: [] }; // keep-alives and the like
    return this.#chunk(parsed, parsed['choices'] as readonly unknown[]);
  }

  end(): StreamStep {
    if (this.#finished) return { chunks: [] };
    this.#finished = true;
    return { chunks: this.#flush() };
  }

  #fail(error: ProviderError): StreamStep {
    this.#finished = true;
    return { chunks: [], error };
  }

  #flush(): ChatCompletionChunk[] {
    const owed = this.#owed;
    this.#owed = undefined;
    return owed !== undefined && this.#wantsUsage ? [owed] : [];
  }

  #chunk(raw: Record<string, unknown>, choices: readonly unknown[]): StreamStep {
    const rawUsage = raw['usage'];
    const usage = usageOf(rawUsage);
    // `raw` was parsed from this event's text and is no one else's: its fields are set in place
    // rather than spread into a new object per event (the copy cost as much as the parse).
    const chunk = raw;
    chunk['id'] = idOr(raw['id'], this.#ctx.id);
    chunk['object'] = 'chat.completion.chunk';
    chunk['created'] = createdOr(raw['created'], this.#ctx.created);
    chunk['model'] = this.#ctx.model;
    chunk['choices'] = normaliseChoices(choices, 'delta');
    const step = (chunks: ChatCompletionChunk[]): StreamStep => (usage !== undefined ? { chunks, usage } : { chunks });
    // Provider JSON: the fields the gateway relies on are set above; the rest is the provider's.
    const asChunk = (c: object): ChatCompletionChunk => c as unknown as ChatCompletionChunk;
    if (usage !== undefined && choices.length === 0) {
      // OpenAI's usage chunk: what the client gets when it asked for it.
      this.#owed = undefined;
      return step(this.#wantsUsage ? [asChunk(chunk)] : []);
    }
    if (usage !== undefined) {
      this.#owed = asChunk({ id: chunk['id'], object: chunk['object'], created: chunk['created'], model: chunk['model'], choices: [], usage: rawUsage });
    }
    // With include_usage OpenAI puts `usage: null` on every other chunk; keep that only for a
    // client that asked. Usage riding on a chunk with choices goes out in the owed chunk instead.
    if (!(this.#wantsUsage && rawUsage === null) && rawUsage !== undefined) delete chunk['usage'];
    return step([asChunk(chunk)]);
  }
}

// ---------------------------------------------------------------------------------------------
// Errors.

/** `loc` of a FastAPI/pydantic validation item → `messages[0].content` (the leading `body` dropped). */
function locPath(loc: unknown): string | null {
  if (!Array.isArray(loc)) return null;
  const segs = loc[0] === 'body' ? loc.slice(1) : loc;
  let out = '';
  for (const s of segs) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (typeof s === 'string') out += out === '' ? s : `.${s}`;
  }
  return out === '' ? null : out;
}

/** A FastAPI 422 `detail` (list of {type, loc, msg}) → one message and the first blamed field. */
function readDetail(detail: unknown): { message: string; param: string | null } | undefined {
  if (typeof detail === 'string') return { message: detail, param: null };
  if (!Array.isArray(detail) || detail.length === 0) return undefined;
  const parts: string[] = [];
  let param: string | null = null;
  for (const d of detail) {
    if (!isRecord(d)) continue;
    const where = locPath(d['loc']);
    param ??= where;
    const msg = str(d['msg']) ?? JSON.stringify(d);
    parts.push(where === null ? msg : `${where}: ${msg}`);
  }
  return parts.length === 0 ? undefined : { message: parts.join('; '), param };
}

/** A message that may be text, a FastAPI detail object (Mistral wraps 422s so) or other JSON. */
function readMessage(m: unknown): { message: string | null; param: string | null } {
  if (typeof m === 'string') return { message: m, param: null };
  if (m === undefined || m === null) return { message: null, param: null };
  if (isRecord(m)) {
    const d = readDetail(m['detail']);
    if (d !== undefined) return d;
  }
  return { message: JSON.stringify(m), param: null };
}

/** Error codes are strings in OpenAI's envelope; Azure sends "429" and vLLM the number 400. */
function codeOf(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return null;
}

function httpStatus(v: unknown): number | null {
  const n = typeof v === 'string' && /^\d{3}$/.test(v) ? Number(v) : num(v);
  return n !== undefined && Number.isInteger(n) && n >= 400 && n <= 599 ? n : null;
}

/**
 * Reads the error bodies OpenAI-style providers send:
 * - OpenAI's envelope `{"error":{"message","type","param","code"}}` (Azure adds `status`,
 *   `innererror`; vLLM puts the HTTP status in `code`);
 * - `{"error":"text"}` (Ollama's native errors);
 * - a top-level `{"object":"error","message","type","param","code"}` (Mistral's documented shape,
 *   older vLLM), whose `message` can itself be a FastAPI detail object;
 * - FastAPI's `{"detail":[{type, loc, msg}]}` 422 and `{"detail":"text"}`;
 * - `{"message", "request_id"}` from an API gateway (Kong in front of Mistral), `{"statusCode",
 *   "message"}` from Azure API Management.
 * Undefined when the body is none of these.
 */
export function readErrorBody(body: unknown): ErrorFields | undefined {
  if (!isRecord(body)) return undefined;
  const requestId = str(body['request_id']) ?? null;
  const e = body['error'];
  if (isRecord(e)) {
    const m = readMessage(e['message']);
    return {
      message: m.message,
      type: str(e['type']) ?? null,
      code: codeOf(e['code']),
      param: str(e['param']) ?? m.param,
      status: httpStatus(e['status']) ?? (typeof e['code'] === 'number' ? httpStatus(e['code']) : null),
      requestId,
    };
  }
  if (typeof e === 'string') {
    return { message: e, type: str(body['type']) ?? null, code: codeOf(body['code']), param: str(body['param']) ?? null, status: null, requestId };
  }
  if (body['message'] !== undefined) {
    const m = readMessage(body['message']);
    return {
      message: m.message,
      type: str(body['type']) ?? null,
      code: codeOf(body['code']),
      param: str(body['param']) ?? m.param,
      status: httpStatus(body['raw_status_code']) ?? httpStatus(body['statusCode']) ?? (typeof body['code'] === 'number' ? httpStatus(body['code']) : null),
      requestId,
    };
  }
  const d = readDetail(body['detail']);
  if (d !== undefined) return { message: d.message, type: null, code: null, param: d.param, status: null, requestId };
  return undefined;
}

/** The status an in-stream error's code or type stands for (it came after a 200). */
const STATUS_OF_NAME: Readonly<Record<string, number>> = {
  invalid_request_error: 400,
  content_filter: 400,
  context_length_exceeded: 400,
  authentication_error: 401,
  invalid_api_key: 401,
  permission_error: 403,
  not_found_error: 404,
  model_not_found: 404,
  insufficient_quota: 429,
  rate_limit_exceeded: 429,
  rate_limit_error: 429,
  rate_limited: 429,
  // OpenAI's rate-limit `type` names the limit: "requests" or "tokens".
  requests: 429,
  tokens: 429,
  server_error: 500,
  api_error: 500,
  internal_error: 500,
  service_unavailable: 503,
  overloaded_error: 503,
};

export function statusOfError(type: string | null, code: string | null): number {
  return (code !== null ? STATUS_OF_NAME[code] : undefined) ?? (type !== null ? STATUS_OF_NAME[type] : undefined) ?? 500;
}

/** Kind by status; a 429 for `insufficient_quota` (type or code) is out of credit, not a rate limit. */
export function kindOf(status: number, type: string | null, code: string | null): ProviderErrorKind {
  if (status === 429 && (type === 'insufficient_quota' || code === 'insufficient_quota')) return 'quota';
  // 529 is Anthropic's; an OpenAI-style server saying it is a plain 5xx.
  return status === 529 ? 'server' : kindOfStatus(status);
}

function requestIdOf(names: readonly string[], headers: Readonly<Record<string, string>>): string | null {
  for (const n of names) {
    const v = headers[n]?.trim();
    if (v !== undefined && v !== '') return v;
  }
  return null;
}

/** An error sent inside a 200 stream. Its status is the one its code/type stands for. */
function streamError(f: ErrorFields | undefined, data: string): ProviderError {
  const type = f?.type ?? null;
  const code = f?.code ?? null;
  const status = f?.status ?? statusOfError(type, code);
  return {
    status,
    kind: kindOf(status, type, code),
    type,
    code,
    message: f?.message ?? `error event: ${snippet(data)}`,
    requestId: f?.requestId ?? null,
    retryAfterMs: null,
    param: f?.param ?? null,
  };
}

/** A `data:` event that is not JSON: the stream cannot be read on. Status is the 200 it came with. */
function malformedEvent(data: string): ProviderError {
  return { status: 200, kind: 'other', type: null, code: null, message: `stream event is not JSON: ${snippet(data)}`, requestId: null, retryAfterMs: null, param: null };
}

/** A non-2xx response → ProviderError, for any body (an HTML page from a load balancer too). */
function providerError(spec: OpenAICompatibleSpec, status: number, headers: Readonly<Record<string, string>>, bodyText: string): ProviderError {
  const parsed = parseJson(bodyText);
  const f = parsed === undefined ? undefined : (spec.readErrorBody?.(parsed) ?? readErrorBody(parsed));
  const type = f?.type ?? null;
  const code = f?.code ?? null;
  const text = bodyText.trim();
  return {
    status,
    kind: kindOf(status, type, code),
    type,
    code,
    message: f?.message ?? (text === '' ? `HTTP ${status} with an empty body` : `HTTP ${status}: ${snippet(text)}`),
    requestId: requestIdOf(spec.requestIdHeaders, headers) ?? f?.requestId ?? null,
    retryAfterMs: retryAfterMs(headers),
    param: f?.param ?? null,
  };
}

// ---------------------------------------------------------------------------------------------
// The factory.

export function openAICompatible(spec: OpenAICompatibleSpec): ProviderAdapter {
  const urlOf = (target: ProviderTarget, operation: 'chat/completions' | 'embeddings'): string => {
    const base = baseUrlOf(spec.type, target);
    return spec.url !== undefined ? spec.url(base, target, operation) : `${base}/${operation}`;
  };
  const readError = (body: unknown): ErrorFields | undefined => spec.readErrorBody?.(body) ?? readErrorBody(body);
  const rules = spec.chat;

  const adapter: ProviderAdapter = {
    type: spec.type,
    defaultBaseUrl: spec.defaultBaseUrl,
    requestIdHeaders: spec.requestIdHeaders,

    chat(req, target, apiKey): HttpCall {
      const fields = req as unknown as Readonly<Record<string, unknown>>;
      checkChat(spec.type, rules, fields);
      const body = applyRules({ ...fields, model: target.model }, rules.unsupported ?? [], rules.renames ?? {});
      const choice = req.tool_choice;
      if (typeof choice === 'string' && rules.toolChoice?.[choice] !== undefined) body['tool_choice'] = rules.toolChoice[choice];
      if (spec.streamUsage === 'always') {
        // The provider reports usage unasked and refuses the field; the client's include_usage is
        // honoured by the stream mapper.
        delete body['stream_options'];
      } else if (req.stream === true) {
        body['stream_options'] = { ...(isRecord(req.stream_options) ? req.stream_options : {}), include_usage: true };
      }
      return { method: 'POST', url: urlOf(target, 'chat/completions'), headers: headersOf(spec.auth, target, apiKey), body: JSON.stringify(body) };
    },

    chatResult: (body, ctx) => chatResult(spec.type, body, ctx),
    chatStream: (ctx, req) => new OpenAIStreamMapper(ctx, req, readError),
    error: (status, headers, bodyText) => providerError(spec, status, headers, bodyText),
  };

  const er = spec.embeddings;
  if (er === false) return adapter;
  return {
    ...adapter,
    embeddings(req: EmbeddingsRequest, target: ProviderTarget, apiKey: string | undefined): HttpCall {
      const fields = req as unknown as Readonly<Record<string, unknown>>;
      if (er.textInputOnly === true && !(typeof req.input === 'string' || (Array.isArray(req.input) && req.input.every((x) => typeof x === 'string')))) {
        throw new UnsupportedParameterError(spec.type, 'input', 'a string or an array of strings');
      }
      for (const field of er.unsupported ?? []) {
        if (asks(fields[field])) throw new UnsupportedParameterError(spec.type, field, OMITTED);
      }
      const body = applyRules({ ...fields, model: target.model }, er.unsupported ?? [], er.renames ?? {});
      return { method: 'POST', url: urlOf(target, 'embeddings'), headers: headersOf(spec.auth, target, apiKey), body: JSON.stringify(body) };
    },
    embeddingsResult: (body: unknown, ctx: ResponseContext) => embeddingsResult(spec.type, body, ctx),
  };
}
