/**
 * Local mock AI providers: one node:http server on 127.0.0.1 speaking the wire formats of OpenAI,
 * Azure OpenAI, Mistral, a generic OpenAI-compatible server, Anthropic and Gemini, including their
 * error envelopes, request-id and rate-limit headers and in-stream errors. The gateway's AI tests and
 * the AI benchmark run against it; test/helpers/mock-providers.test.ts proves the formats with the
 * official `openai` and `@anthropic-ai/sdk` clients (Gemini by raw HTTP).
 *
 * Where the formats come from:
 * - OpenAI API reference (chat/create, chat streaming, embeddings, error codes, rate-limit headers
 *   with Go-style durations); openai-node core/streaming.ts throws on a `data:` object with an
 *   `error` key, core/error.ts picks the error class by status and reads `x-request-id`.
 * - Anthropic Messages API docs (streaming event order, `event: error`, error types by status,
 *   anthropic-ratelimit-* with RFC 3339 resets); the SDK reads `request-id`.
 * - Gemini API docs (generateContent, streamGenerateContent?alt=sse, embeddings) and google.rpc.Status
 *   errors with ErrorInfo / RetryInfo / QuotaFailure details.
 * - Bodies as the services return them in public bug reports, where the docs show none: Azure
 *   `{"error":{"code":"401",…}}` with `apim-request-id`, "Resource not found" for a missing
 *   api-version, DeploymentNotFound; Mistral's Kong front door `{"message":"Unauthorized",
 *   "request_id":…}` with `x-kong-request-id`, and `{"object":"error",…,"type":"rate_limited",
 *   "code":"1300"}` with x-ratelimit-*-minute headers. Mistral's 403, 404 and 5xx bodies and its
 *   in-stream error are not documented anywhere we found: they follow the same `object: "error"` shape.
 *
 * Deterministic answers (so tests assert exact content):
 * - The reply text is `echo: <text of the last message>` (user message, or tool result).
 * - Tokens are whitespace-separated words. Prompt tokens = words of every text the request carries
 *   (system prompt, message texts, tool results given as text). Completion tokens = words of the
 *   reply, or for tool calls the words of `<name> <arguments JSON>` summed over the calls.
 * - A max-token limit below the reply's word count cuts the reply to that many words and finishes
 *   with the provider's "length" reason.
 * - Tool calls: when the request declares tools (and tool choice is not "none") and the last
 *   message is a user message containing `call:<name>` for a declared tool, the answer calls it;
 *   a JSON object right after the name (`call:get_weather {"city":"Paris"}`) is the arguments,
 *   otherwise `{}`. Several `call:` give parallel calls. Ids: OpenAI `call_<i>_<name>`, Anthropic
 *   `toolu_<i>_<name>`, Mistral a 9-character alphanumeric id as Mistral issues.
 * - Streams send the reply one word per chunk (`echo:`, ` hello`, ` world`).
 * - Embeddings are derived from the input text (FNV-1a), values k/256 so float and base64 agree;
 *   16 dimensions unless `dimensions` / `outputDimensionality` says otherwise.
 *
 * Scenarios (per request): a model name `mock-<scenario>` (Azure: the deployment; Gemini: the model
 * in the path), or a step queued with `mock.script(...)`. See {@link Scenario}.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

// ---------------------------------------------------------------------------------------------
// Public API

export type MockProvider = 'openai' | 'azure' | 'mistral' | 'compat' | 'anthropic' | 'gemini';

/** The only keys the mock accepts (the OpenAI-compatible server accepts any key or none). */
export const MOCK_KEYS = {
  openai: 'sk-mock-openai-key',
  azure: 'mock-azure-key',
  mistral: 'mock-mistral-key',
  anthropic: 'sk-ant-mock-key',
  gemini: 'mock-gemini-key',
} as const;

/**
 * What one request gets.
 * - `ok`: the normal answer.
 * - `400` `401` `403` `404` `429` `500` `503`: that error in the provider's envelope (429 with
 *   `retry-after` and the provider's rate-limit headers; Gemini 429 carries RetryInfo instead, and
 *   Gemini has no 401: a bad key is 400 INVALID_ARGUMENT/API_KEY_INVALID as the real API answers).
 * - `529`: Anthropic's 529 overloaded_error; the other providers answer their 503.
 * - `quota`: out of credit: OpenAI 429 insufficient_quota, Anthropic 402 billing_error, Gemini 429
 *   RESOURCE_EXHAUSTED without RetryInfo, Azure 429 quota message; Mistral has no distinct form known
 *   to us, so it is its 429.
 * - `html-502`: a load balancer's HTML 502 page (`text/html`).
 * - `midstream-error`: streams: 200, a couple of chunks, then the provider's in-stream error (OpenAI
 *   family `data: {"error":…}`, Anthropic `event: error` overloaded_error, Gemini `data: {"error":…}`),
 *   and the stream ends without its terminator. A non-streaming request gets the provider's 500.
 * - `midstream-drop`: streams: 200, a couple of chunks, then the connection is destroyed; non-streaming:
 *   the head and half the body, then destroyed.
 * - `hang`: never answers (the request is recorded); `close()` ends it.
 * - `reset`: the connection is destroyed without an answer.
 * - `slow-<ms>`: the normal answer, its head delayed by ms.
 * - `drip-<ms>`: the normal answer; a stream waits ms before each event.
 */
export type Scenario =
  | 'ok'
  | '400'
  | '401'
  | '403'
  | '404'
  | '429'
  | 'quota'
  | '500'
  | '503'
  | '529'
  | 'html-502'
  | 'midstream-error'
  | 'midstream-drop'
  | 'hang'
  | 'reset'
  | `slow-${number}`
  | `drip-${number}`;

/** A scripted step. Fields left out keep the default (the model name's scenario, no extra headers). */
export interface ScriptStep {
  readonly scenario?: Scenario;
  /** Seconds, sent as `retry-after` (Gemini: RetryInfo.retryDelay) on an error answer. */
  readonly retryAfter?: number;
  /** Response headers to add or replace (e.g. `{ 'retry-after-ms': '10' }`). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Wait this long before the response head. */
  readonly delayMs?: number;
}

/** A request as the mock received it. */
export interface ReceivedRequest {
  /** 1, 2, … in arrival order (counts requests not recorded too). */
  readonly seq: number;
  readonly provider: MockProvider;
  readonly method: string;
  /** Path without the query. */
  readonly path: string;
  /** `req.url` as received (path and query). */
  readonly url: string;
  readonly query: Readonly<Record<string, string>>;
  /** Lower-case names, as node:http gives them. */
  readonly headers: IncomingHttpHeaders;
  /** Parsed JSON; the raw text when it is not JSON; undefined when there was no body. */
  readonly body: unknown;
  /** From the body, the Azure deployment or the Gemini path. */
  readonly model: string | undefined;
  readonly stream: boolean;
  /** The status answered; undefined while pending and for `hang` / `reset`. */
  status: number | undefined;
}

/** What a handler given to `script` receives. */
export interface MockCall {
  readonly request: ReceivedRequest;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Answer as the mock would, with this step (default: what the model name selects). */
  respond(step?: Scenario | ScriptStep): Promise<void>;
}

export type MockHandler = (call: MockCall) => unknown;

/** A provider name, or an exact request path (`/v1/chat/completions`, `/v1beta/models/x:generateContent`). */
export type ScriptTarget = MockProvider | `/${string}`;

export interface MockProviders {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** The base URL each provider's client or adapter is configured with. */
  readonly baseUrls: Readonly<Record<MockProvider, string>>;
  readonly keys: typeof MOCK_KEYS;
  /** Every request received, in order (while `record` is true). */
  readonly requests: ReceivedRequest[];
  /** Record requests (default true). The benchmark turns it off. */
  record: boolean;
  /**
   * Queue steps for the next requests to `target`, one step per request. A path queue is used
   * before the provider's queue; once a queue is empty the model name decides again.
   */
  script(target: ScriptTarget, ...steps: readonly (Scenario | ScriptStep | MockHandler)[]): void;
  /** Steps still queued for the target. */
  pending(target: ScriptTarget): number;
  /** Forget recorded requests and queued steps. */
  reset(): void;
  /** Stops the server and ends every open connection (including hanging ones). */
  close(): Promise<void>;
}

export interface MockProvidersOptions {
  readonly host?: string;
  /** 0 (default) picks a free port. */
  readonly port?: number;
  readonly record?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Small helpers

type Obj = Record<string, unknown>;
type HeaderMap = Record<string, string | number>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}
function arr(v: unknown): readonly unknown[] {
  return Array.isArray(v) ? (v as unknown[]) : [];
}

const WORD = /\S+/g;
function words(text: string): number {
  let n = 0;
  WORD.lastIndex = 0;
  while (WORD.exec(text) !== null) n++;
  return n;
}

/** `echo: hello  world` → [`echo:`, ` hello`, `  world`]; trailing whitespace stays on the last piece. */
function pieces(text: string): string[] {
  const out: string[] = [...(text.match(/\s*\S+/g) ?? [])];
  const used = out.reduce((n, p) => n + p.length, 0);
  if (used < text.length) {
    if (out.length === 0) out.push(text.slice(used));
    else out[out.length - 1] += text.slice(used);
  }
  return out;
}

function fnv(seed: string, salt = 0): number {
  let h = (2166136261 ^ salt) >>> 0;
  for (let i = 0; i < seed.length; i++) h = Math.imul(h ^ seed.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** Values k/256 in [-1, 1): exact in float32, so a base64 (float32) vector decodes to the same numbers. */
function vector(seed: string, dims: number): number[] {
  const out = new Array<number>(dims);
  let h = fnv(seed);
  for (let i = 0; i < dims; i++) {
    h = Math.imul(h ^ (i + 1), 16777619) >>> 0;
    h ^= h >>> 15;
    out[i] = ((h % 512) - 256) / 256;
  }
  return out;
}

function float32Base64(values: readonly number[]): string {
  const buf = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) buf.writeFloatLE(values[i] ?? 0, i * 4);
  return buf.toString('base64');
}

/** Go-style duration, as OpenAI writes x-ratelimit-reset-*: `6ms`, `1s`, `6m0s`. */
function goDuration(seconds: number): string {
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  const m = Math.floor(seconds / 60);
  const s = Math.round((seconds - m * 60) * 1000) / 1000;
  return m > 0 ? `${m}m${s}s` : `${s}s`;
}

/** RFC 3339 without fractions, as Anthropic writes anthropic-ratelimit-*-reset. */
function rfc3339(msFromNow: number): string {
  return new Date(Math.ceil((Date.now() + msFromNow) / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

const SCENARIOS: ReadonlySet<string> = new Set([
  'ok', '400', '401', '403', '404', '429', 'quota', '500', '503', '529', 'html-502',
  'midstream-error', 'midstream-drop', 'hang', 'reset',
]);

function isScenario(s: string): s is Scenario {
  return SCENARIOS.has(s) || /^(slow|drip)-\d+$/.test(s);
}

/** `mock-429` → `429`; any other name (including unknown `mock-*` names) → `ok`. */
function scenarioOf(model: string | undefined): Scenario {
  if (model === undefined || !model.startsWith('mock-')) return 'ok';
  const s = model.slice(5);
  return isScenario(s) ? s : 'ok';
}

function msOf(scenario: Scenario, prefix: 'slow-' | 'drip-'): number {
  return scenario.startsWith(prefix) ? Number(scenario.slice(prefix.length)) : 0;
}

// ---------------------------------------------------------------------------------------------
// Routing

type Op =
  | 'chat'
  | 'embeddings'
  | 'models'
  | 'messages'
  | 'count_tokens'
  | 'generateContent'
  | 'streamGenerateContent'
  | 'embedContent'
  | 'batchEmbedContents'
  | 'countTokens'
  | 'unknown';

interface Route {
  readonly provider: MockProvider;
  readonly op: Op;
  /** Azure deployment / Gemini model from the path. */
  readonly pathModel?: string;
}

const FAMILY_PREFIX: readonly (readonly [string, MockProvider])[] = [
  ['/v1', 'openai'],
  ['/mistral/v1', 'mistral'],
  ['/compat/v1', 'compat'],
];
const AZURE_PATH = /^\/openai\/deployments\/([^/]+)\/(chat\/completions|embeddings)$/;
const GEMINI_PATH = /^\/v1beta\/models\/([^/:]+):([A-Za-z]+)$/;
const GEMINI_OPS: ReadonlySet<string> = new Set(['generateContent', 'streamGenerateContent', 'embedContent', 'batchEmbedContents', 'countTokens']);

function route(method: string, path: string, headers: IncomingHttpHeaders): Route {
  const post = method === 'POST';
  const get = method === 'GET';
  if (path === '/v1/messages' && post) return { provider: 'anthropic', op: 'messages' };
  if (path === '/v1/messages/count_tokens' && post) return { provider: 'anthropic', op: 'count_tokens' };
  // GET /v1/models exists on both roots; Anthropic's clients always send anthropic-version.
  if (path === '/v1/models' && get && headers['anthropic-version'] !== undefined) return { provider: 'anthropic', op: 'models' };
  for (const [prefix, provider] of FAMILY_PREFIX) {
    if (!path.startsWith(prefix + '/')) continue;
    const rest = path.slice(prefix.length);
    if (rest === '/chat/completions' && post) return { provider, op: 'chat' };
    if (rest === '/embeddings' && post) return { provider, op: 'embeddings' };
    if (rest === '/models' && get) return { provider, op: 'models' };
    return { provider: path.startsWith('/v1/messages') ? 'anthropic' : provider, op: 'unknown' };
  }
  if (path.startsWith('/openai/')) {
    const m = AZURE_PATH.exec(path);
    if (m && post) return { provider: 'azure', op: m[2] === 'embeddings' ? 'embeddings' : 'chat', pathModel: decodeURIComponent(m[1] ?? '') };
    return { provider: 'azure', op: 'unknown' };
  }
  if (path.startsWith('/v1beta/')) {
    if (path === '/v1beta/models' && get) return { provider: 'gemini', op: 'models' };
    const m = GEMINI_PATH.exec(path);
    const op = m?.[2];
    if (m && post && op !== undefined && GEMINI_OPS.has(op)) return { provider: 'gemini', op: op as Op, pathModel: decodeURIComponent(m[1] ?? '') };
    return { provider: 'gemini', op: 'unknown' };
  }
  return { provider: 'openai', op: 'unknown' };
}

// ---------------------------------------------------------------------------------------------
// Reading the request into one conversation shape

interface Conversation {
  readonly promptTokens: number;
  readonly lastText: string;
  /** The last message is the user's own (not a tool result): only then may the answer call tools. */
  readonly lastIsUser: boolean;
  readonly tools: ReadonlySet<string>;
  readonly maxTokens: number | undefined;
}

interface ToolCallPlan {
  readonly name: string;
  /** Compact JSON text. */
  readonly args: string;
}

interface Plan {
  readonly text: string;
  readonly pieces: readonly string[];
  readonly toolCalls: readonly ToolCallPlan[];
  readonly finish: 'stop' | 'length' | 'tool';
  readonly promptTokens: number;
  readonly completionTokens: number;
}

function joinTexts(parts: readonly string[]): string {
  return parts.filter((t) => t.length > 0).join(' ');
}

function openaiContentText(c: unknown): string {
  if (typeof c === 'string') return c;
  return joinTexts(arr(c).map((p) => (isObj(p) && p.type === 'text' ? (str(p.text) ?? '') : '')));
}

function openaiConversation(body: Obj): Conversation {
  const messages = arr(body.messages);
  let promptTokens = 0;
  for (const m of messages) if (isObj(m)) promptTokens += words(openaiContentText(m.content));
  const last = messages.at(-1);
  const tools = new Set<string>();
  for (const t of arr(body.tools)) if (isObj(t) && isObj(t.function) && typeof t.function.name === 'string') tools.add(t.function.name);
  if (body.tool_choice === 'none') tools.clear();
  return {
    promptTokens,
    lastText: isObj(last) ? openaiContentText(last.content) : '',
    lastIsUser: isObj(last) && last.role === 'user',
    tools,
    maxTokens: num(body.max_completion_tokens) ?? num(body.max_tokens),
  };
}

function anthropicBlocksText(c: unknown): { text: string; toolResult: boolean } {
  if (typeof c === 'string') return { text: c, toolResult: false };
  const texts: string[] = [];
  let toolResult = false;
  for (const b of arr(c)) {
    if (!isObj(b)) continue;
    if (b.type === 'text') texts.push(str(b.text) ?? '');
    else if (b.type === 'tool_result') {
      toolResult = true;
      texts.push(anthropicBlocksText(b.content).text);
    }
  }
  return { text: joinTexts(texts), toolResult };
}

function anthropicConversation(body: Obj): Conversation {
  const messages = arr(body.messages);
  let promptTokens = words(anthropicBlocksText(body.system).text);
  for (const m of messages) if (isObj(m)) promptTokens += words(anthropicBlocksText(m.content).text);
  const last = messages.at(-1);
  const lastContent = isObj(last) ? anthropicBlocksText(last.content) : { text: '', toolResult: false };
  const tools = new Set<string>();
  for (const t of arr(body.tools)) if (isObj(t) && typeof t.name === 'string') tools.add(t.name);
  if (isObj(body.tool_choice) && body.tool_choice.type === 'none') tools.clear();
  return {
    promptTokens,
    lastText: lastContent.text,
    lastIsUser: isObj(last) && last.role === 'user' && !lastContent.toolResult,
    tools,
    maxTokens: num(body.max_tokens),
  };
}

function geminiPartsText(content: unknown): { text: string; functionResponse: boolean } {
  const texts: string[] = [];
  let functionResponse = false;
  if (isObj(content)) {
    for (const p of arr(content.parts)) {
      if (!isObj(p)) continue;
      if (typeof p.text === 'string') texts.push(p.text);
      const fr = p.functionResponse ?? p.function_response;
      if (isObj(fr)) {
        functionResponse = true;
        texts.push(JSON.stringify(fr.response ?? {}));
      }
    }
  }
  return { text: joinTexts(texts), functionResponse };
}

function geminiConversation(body: Obj): Conversation {
  const contents = arr(body.contents);
  let promptTokens = words(geminiPartsText(body.systemInstruction ?? body.system_instruction).text);
  for (const c of contents) promptTokens += words(geminiPartsText(c).text);
  const last = contents.at(-1);
  const lastParts = geminiPartsText(last);
  const tools = new Set<string>();
  for (const t of arr(body.tools)) {
    if (!isObj(t)) continue;
    for (const f of arr(t.functionDeclarations ?? t.function_declarations)) if (isObj(f) && typeof f.name === 'string') tools.add(f.name);
  }
  const toolConfig = body.toolConfig ?? body.tool_config;
  if (isObj(toolConfig)) {
    const fcc = toolConfig.functionCallingConfig ?? toolConfig.function_calling_config;
    if (isObj(fcc) && fcc.mode === 'NONE') tools.clear();
  }
  const gen = body.generationConfig ?? body.generation_config;
  return {
    promptTokens,
    lastText: lastParts.text,
    lastIsUser: isObj(last) && (last.role === undefined || last.role === 'user') && !lastParts.functionResponse,
    tools,
    maxTokens: isObj(gen) ? (num(gen.maxOutputTokens) ?? num(gen.max_output_tokens)) : undefined,
  };
}

/** The JSON object starting at `text[start]` (which is `{`), or undefined. Braces inside strings are skipped. */
function jsonObjectAt(text: string, start: number): string | undefined {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === '{') depth++;
    else if (ch === '}' && --depth === 0) return text.slice(start, i + 1);
  }
  return undefined;
}

const CALL = /call:([A-Za-z0-9_.-]+)/g;

function toolCallsIn(conv: Conversation): ToolCallPlan[] {
  if (!conv.lastIsUser || conv.tools.size === 0 || !conv.lastText.includes('call:')) return [];
  const calls: ToolCallPlan[] = [];
  CALL.lastIndex = 0;
  for (let m = CALL.exec(conv.lastText); m !== null; m = CALL.exec(conv.lastText)) {
    const name = m[1] ?? '';
    if (!conv.tools.has(name)) continue;
    let args = '{}';
    let i = m.index + m[0].length;
    while (i < conv.lastText.length && /\s/.test(conv.lastText[i] ?? '')) i++;
    if (conv.lastText[i] === '{') {
      const json = jsonObjectAt(conv.lastText, i);
      if (json !== undefined) {
        try {
          const parsed: unknown = JSON.parse(json);
          if (isObj(parsed)) args = JSON.stringify(parsed);
        } catch {
          // Not JSON: the call gets `{}`.
        }
      }
    }
    calls.push({ name, args });
  }
  return calls;
}

function plan(conv: Conversation): Plan {
  const toolCalls = toolCallsIn(conv);
  if (toolCalls.length > 0) {
    const completionTokens = toolCalls.reduce((n, c) => n + words(`${c.name} ${c.args}`), 0);
    return { text: '', pieces: [], toolCalls, finish: 'tool', promptTokens: conv.promptTokens, completionTokens };
  }
  let ps = pieces(`echo: ${conv.lastText}`);
  let finish: Plan['finish'] = 'stop';
  if (conv.maxTokens !== undefined && conv.maxTokens >= 0 && ps.length > conv.maxTokens) {
    ps = ps.slice(0, conv.maxTokens);
    finish = 'length';
  }
  return { text: ps.join(''), pieces: ps, toolCalls: [], finish, promptTokens: conv.promptTokens, completionTokens: ps.length };
}

// ---------------------------------------------------------------------------------------------
// Headers

const OPENAI_STATIC: HeaderMap = { 'openai-version': '2020-10-01', 'openai-organization': 'org-mock', 'openai-processing-ms': 1 };
const OPENAI_RL_OK: HeaderMap = {
  'x-ratelimit-limit-requests': 10000,
  'x-ratelimit-limit-tokens': 30000000,
  'x-ratelimit-remaining-requests': 9999,
  'x-ratelimit-remaining-tokens': 29999000,
  'x-ratelimit-reset-requests': '6ms',
  'x-ratelimit-reset-tokens': '2ms',
};
const AZURE_RL_OK: HeaderMap = {
  'x-ratelimit-limit-requests': 1000,
  'x-ratelimit-limit-tokens': 1000000,
  'x-ratelimit-remaining-requests': 999,
  'x-ratelimit-remaining-tokens': 999000,
};
const MISTRAL_RL_OK: HeaderMap = {
  'x-ratelimit-limit-req-minute': 720,
  'x-ratelimit-remaining-req-minute': 719,
  'x-ratelimit-limit-tokens-minute': 5000000,
  'x-ratelimit-remaining-tokens-minute': 4999000,
};

function rateLimitHeaders(provider: MockProvider, limited: boolean, retryAfter: number): HeaderMap {
  switch (provider) {
    case 'openai':
      return limited
        ? { ...OPENAI_RL_OK, 'x-ratelimit-remaining-requests': 0, 'x-ratelimit-reset-requests': goDuration(retryAfter), 'x-ratelimit-reset-tokens': '6m0s' }
        : OPENAI_RL_OK;
    case 'azure':
      return limited ? { ...AZURE_RL_OK, 'x-ratelimit-remaining-requests': 0, 'x-ratelimit-remaining-tokens': 0 } : AZURE_RL_OK;
    case 'mistral':
      return limited ? { ...MISTRAL_RL_OK, 'x-ratelimit-remaining-req-minute': 0 } : MISTRAL_RL_OK;
    case 'anthropic': {
      const minute = rfc3339(60_000);
      return {
        'anthropic-ratelimit-requests-limit': 4000,
        'anthropic-ratelimit-requests-remaining': limited ? 0 : 3999,
        'anthropic-ratelimit-requests-reset': limited ? rfc3339(retryAfter * 1000) : minute,
        'anthropic-ratelimit-tokens-limit': 2000000,
        'anthropic-ratelimit-tokens-remaining': 1999000,
        'anthropic-ratelimit-tokens-reset': minute,
        'anthropic-ratelimit-input-tokens-limit': 1600000,
        'anthropic-ratelimit-input-tokens-remaining': 1599000,
        'anthropic-ratelimit-input-tokens-reset': minute,
        'anthropic-ratelimit-output-tokens-limit': 400000,
        'anthropic-ratelimit-output-tokens-remaining': 399000,
        'anthropic-ratelimit-output-tokens-reset': minute,
      };
    }
    case 'compat':
    case 'gemini':
      return {};
  }
}

// ---------------------------------------------------------------------------------------------
// Errors, in each provider's envelope

type ErrKind =
  | 'bad_request'
  | 'invalid_json'
  | 'missing_param'
  | 'missing_version'
  | 'auth_missing'
  | 'auth_invalid'
  | 'forbidden'
  | 'not_found'
  | 'route_not_found'
  | 'rate_limited'
  | 'quota'
  | 'server'
  | 'unavailable'
  | 'overloaded';

interface ErrDetail {
  readonly param?: string;
  readonly message?: string;
}

interface ErrAnswer {
  readonly status: number;
  readonly body: unknown;
}

const DEFAULT_RETRY_AFTER = 1;

const SCENARIO_ERRORS: Readonly<Record<string, ErrKind>> = {
  '400': 'bad_request',
  '401': 'auth_invalid',
  '403': 'forbidden',
  '404': 'not_found',
  '429': 'rate_limited',
  quota: 'quota',
  '500': 'server',
  '503': 'unavailable',
  '529': 'overloaded',
};

function oaiErr(message: string, type: string | null, param: string | null, code: string | null): { error: Obj } {
  return { error: { message, type, param, code } };
}

const OPENAI_SERVER_ERROR = oaiErr('The server had an error while processing your request. Sorry about that!', 'server_error', null, null);

function openaiError(ctx: Ctx, kind: ErrKind, d: ErrDetail, retryAfter: number): ErrAnswer {
  switch (kind) {
    case 'bad_request': return { status: 400, body: oaiErr(d.message ?? 'Unrecognized request argument supplied: mock', 'invalid_request_error', d.param ?? null, null) };
    case 'invalid_json':
      return { status: 400, body: oaiErr("We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)", 'invalid_request_error', null, null) };
    case 'missing_param':
      return { status: 400, body: oaiErr(d.message ?? `Missing required parameter: '${d.param ?? ''}'.`, 'invalid_request_error', d.param ?? null, d.param === 'model' ? null : 'missing_required_parameter') };
    case 'missing_version': return openaiError(ctx, 'bad_request', d, retryAfter);
    case 'auth_missing':
      return { status: 401, body: oaiErr("You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", 'invalid_request_error', null, null) };
    case 'auth_invalid':
      return { status: 401, body: oaiErr('Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.', 'invalid_request_error', null, 'invalid_api_key') };
    case 'forbidden': return { status: 403, body: oaiErr('Country, region, or territory not supported', 'request_forbidden', null, 'unsupported_country_region_territory') };
    case 'not_found': return { status: 404, body: oaiErr(`The model \`${ctx.model ?? ''}\` does not exist or you do not have access to it.`, 'invalid_request_error', null, 'model_not_found') };
    case 'route_not_found': return { status: 404, body: oaiErr(`Invalid URL (${ctx.req.method ?? ''} ${ctx.path})`, 'invalid_request_error', null, null) };
    case 'rate_limited':
      return {
        status: 429,
        body: oaiErr(`Rate limit reached for ${ctx.model ?? 'model'} in organization org-mock on requests per min (RPM): Limit 10000, Used 10000, Requested 1. Please try again in ${goDuration(retryAfter)}. Visit https://platform.openai.com/account/rate-limits to learn more.`, 'requests', null, 'rate_limit_exceeded'),
      };
    case 'quota':
      return { status: 429, body: oaiErr('You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.', 'insufficient_quota', null, 'insufficient_quota') };
    case 'server': return { status: 500, body: OPENAI_SERVER_ERROR };
    case 'unavailable':
    case 'overloaded':
      return { status: 503, body: oaiErr('The engine is currently overloaded, please try again later.', 'server_error', null, null) };
  }
}

function azureErr(code: string, message: string): { error: Obj } {
  return { error: { code, message } };
}

function azureError(ctx: Ctx, kind: ErrKind, d: ErrDetail, retryAfter: number): ErrAnswer {
  const operation = ctx.route.op === 'embeddings' ? 'Embeddings_Create' : 'ChatCompletions_Create';
  const version = ctx.query['api-version'] ?? '';
  switch (kind) {
    case 'auth_missing':
    case 'auth_invalid':
      return { status: 401, body: azureErr('401', 'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.') };
    case 'forbidden': return { status: 403, body: azureErr('403', 'Access denied due to Virtual Network/Firewall rules.') };
    case 'not_found':
      return { status: 404, body: azureErr('DeploymentNotFound', 'The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.') };
    // Azure answers a missing or unknown api-version with 404 "Resource not found".
    case 'missing_version':
    case 'route_not_found':
      return { status: 404, body: azureErr('404', 'Resource not found') };
    case 'rate_limited':
      return { status: 429, body: azureErr('429', `Requests to the ${operation} Operation under Azure OpenAI API version ${version} have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after ${retryAfter} second${retryAfter === 1 ? '' : 's'}. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.`) };
    case 'quota':
      return { status: 429, body: azureErr('429', `Requests to the ${operation} Operation under Azure OpenAI API version ${version} have exceeded the quota of your current subscription.`) };
    case 'unavailable':
    case 'overloaded':
      return { status: 503, body: azureErr('ServiceUnavailable', 'The service is temporarily unable to process your request. Please try again later.') };
    // Validation and server errors come from the model service behind Azure, in OpenAI's envelope.
    case 'bad_request':
    case 'invalid_json':
    case 'missing_param':
    case 'server':
      return openaiError(ctx, kind, d, retryAfter);
  }
}

function mistralErr(message: string, type: string, code: string | null): Obj {
  return { object: 'error', message, type, param: null, code };
}

function mistralError(ctx: Ctx, kind: ErrKind, d: ErrDetail): ErrAnswer {
  // Authentication and routing answers come from Mistral's Kong front door ({message, request_id}).
  const kong = (message: string): Obj => ({ message, request_id: ctx.requestId });
  switch (kind) {
    case 'auth_missing': return { status: 401, body: kong('No API key found in request') };
    case 'auth_invalid': return { status: 401, body: kong('Unauthorized') };
    case 'forbidden': return { status: 403, body: kong('You cannot consume this service') };
    case 'route_not_found': return { status: 404, body: kong('no Route matched with those values') };
    case 'bad_request':
    case 'invalid_json':
    case 'missing_param':
    case 'missing_version':
      return { status: 400, body: mistralErr(d.message ?? (d.param === undefined ? 'Invalid request' : `${d.param}: Field required`), 'invalid_request_error', null) };
    case 'not_found': return { status: 400, body: mistralErr(`Invalid model: ${ctx.model ?? ''}`, 'invalid_model', '1500') };
    case 'rate_limited':
    case 'quota':
      return { status: 429, body: mistralErr('Rate limit exceeded', 'rate_limited', '1300') };
    case 'server': return { status: 500, body: mistralErr('Internal server error', 'internal_server_error', null) };
    case 'unavailable':
    case 'overloaded':
      return { status: 503, body: mistralErr('Service unavailable', 'service_unavailable', null) };
  }
}

function anthropicErr(ctx: Ctx, type: string, message: string): Obj {
  return { type: 'error', error: { type, message }, request_id: ctx.requestId };
}

function anthropicError(ctx: Ctx, kind: ErrKind, d: ErrDetail): ErrAnswer {
  switch (kind) {
    case 'bad_request': return { status: 400, body: anthropicErr(ctx, 'invalid_request_error', d.message ?? 'mock: invalid request') };
    case 'invalid_json': return { status: 400, body: anthropicErr(ctx, 'invalid_request_error', 'There was an issue with the JSON body of your request') };
    case 'missing_param': return { status: 400, body: anthropicErr(ctx, 'invalid_request_error', d.message ?? `${d.param ?? ''}: Field required`) };
    case 'missing_version': return { status: 400, body: anthropicErr(ctx, 'invalid_request_error', 'anthropic-version: header is required') };
    case 'auth_missing': return { status: 401, body: anthropicErr(ctx, 'authentication_error', 'x-api-key header is required') };
    case 'auth_invalid': return { status: 401, body: anthropicErr(ctx, 'authentication_error', 'invalid x-api-key') };
    case 'quota': return { status: 402, body: anthropicErr(ctx, 'billing_error', 'Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.') };
    case 'forbidden': return { status: 403, body: anthropicErr(ctx, 'permission_error', 'Your API key does not have permission to use the specified resource.') };
    case 'not_found': return { status: 404, body: anthropicErr(ctx, 'not_found_error', `model: ${ctx.model ?? ''}`) };
    case 'route_not_found': return { status: 404, body: anthropicErr(ctx, 'not_found_error', 'Not Found') };
    case 'rate_limited':
      return { status: 429, body: anthropicErr(ctx, 'rate_limit_error', 'This request would exceed the rate limit for your organization of 4,000 requests per minute.') };
    case 'server': return { status: 500, body: anthropicErr(ctx, 'api_error', 'Internal server error') };
    case 'unavailable': return { status: 503, body: anthropicErr(ctx, 'api_error', 'Service unavailable') };
    case 'overloaded': return { status: 529, body: anthropicErr(ctx, 'overloaded_error', 'Overloaded') };
  }
}

function googleErr(code: number, status: string, message: string, details?: readonly Obj[]): { error: Obj } {
  return { error: details === undefined ? { code, message, status } : { code, message, status, details } };
}

const GEMINI_KEY_INVALID = googleErr(400, 'INVALID_ARGUMENT', 'API key not valid. Please pass a valid API key.', [
  { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID', domain: 'googleapis.com', metadata: { service: 'generativelanguage.googleapis.com' } },
  { '@type': 'type.googleapis.com/google.rpc.LocalizedMessage', locale: 'en-US', message: 'API key not valid. Please pass a valid API key.' },
]);
const GEMINI_UNAVAILABLE = googleErr(503, 'UNAVAILABLE', 'The model is overloaded. Please try again later.');

function geminiQuotaFailure(model: string, quotaId: string): Obj {
  return {
    '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
    violations: [{ quotaMetric: 'generativelanguage.googleapis.com/generate_content_requests', quotaId, quotaDimensions: { location: 'global', model }, quotaValue: '1000' }],
  };
}

function geminiError(ctx: Ctx, kind: ErrKind, d: ErrDetail, retryAfter: number): ErrAnswer {
  const model = ctx.model ?? '';
  switch (kind) {
    case 'bad_request':
    case 'missing_version':
      return { status: 400, body: googleErr(400, 'INVALID_ARGUMENT', d.message ?? 'Invalid JSON payload received. Unknown name "mock": Cannot find field.') };
    case 'invalid_json': return { status: 400, body: googleErr(400, 'INVALID_ARGUMENT', 'Invalid JSON payload received. Unexpected token.') };
    case 'missing_param': return { status: 400, body: googleErr(400, 'INVALID_ARGUMENT', d.message ?? `* GenerateContentRequest.${d.param ?? ''}: ${d.param ?? ''} is not specified`) };
    // The Gemini API has no 401 for keys: a wrong key is 400 INVALID_ARGUMENT with ErrorInfo API_KEY_INVALID.
    case 'auth_invalid': return { status: 400, body: GEMINI_KEY_INVALID };
    case 'auth_missing':
      return { status: 403, body: googleErr(403, 'PERMISSION_DENIED', "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.") };
    case 'forbidden': return { status: 403, body: googleErr(403, 'PERMISSION_DENIED', 'The caller does not have permission') };
    case 'not_found':
      return { status: 404, body: googleErr(404, 'NOT_FOUND', `models/${model} is not found for API version v1beta, or is not supported for ${ctx.route.op}. Call ListModels to see the list of available models and their supported methods.`) };
    case 'route_not_found': return { status: 404, body: googleErr(404, 'NOT_FOUND', `Method not found: ${ctx.path}`) };
    case 'rate_limited':
      return {
        status: 429,
        body: googleErr(429, 'RESOURCE_EXHAUSTED', 'You exceeded your current quota, please check your plan and billing details.', [
          geminiQuotaFailure(model, 'GenerateRequestsPerMinutePerProjectPerModel'),
          { '@type': 'type.googleapis.com/google.rpc.Help', links: [{ description: 'Learn more about Gemini API quotas', url: 'https://ai.google.dev/gemini-api/docs/rate-limits' }] },
          { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${retryAfter}s` },
        ]),
      };
    case 'quota':
      return {
        status: 429,
        body: googleErr(429, 'RESOURCE_EXHAUSTED', 'You exceeded your current quota, please check your plan and billing details.', [geminiQuotaFailure(model, 'GenerateRequestsPerDayPerProjectPerModel')]),
      };
    case 'server': return { status: 500, body: googleErr(500, 'INTERNAL', 'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting') };
    case 'unavailable':
    case 'overloaded':
      return { status: 503, body: GEMINI_UNAVAILABLE };
  }
}

function providerError(ctx: Ctx, kind: ErrKind, d: ErrDetail, retryAfter: number): ErrAnswer {
  switch (ctx.route.provider) {
    case 'openai':
    case 'compat':
      return openaiError(ctx, kind, d, retryAfter);
    case 'azure': return azureError(ctx, kind, d, retryAfter);
    case 'mistral': return mistralError(ctx, kind, d);
    case 'anthropic': return anthropicError(ctx, kind, d);
    case 'gemini': return geminiError(ctx, kind, d, retryAfter);
  }
}

const HTML_502 =
  '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';

// ---------------------------------------------------------------------------------------------
// The per-request context and the answers

interface Ctx {
  readonly seq: number;
  readonly route: Route;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly record: ReceivedRequest;
  readonly body: unknown;
  readonly bodyInvalid: boolean;
  readonly model: string | undefined;
  readonly stream: boolean;
  readonly requestId: string;
  readonly sleep: (ms: number) => Promise<void>;
}

function requestIdFor(provider: MockProvider, seq: number): string {
  const hex = seq.toString(16);
  switch (provider) {
    case 'openai':
    case 'compat':
      return `req_${hex.padStart(32, '0')}`;
    case 'azure':
      return `00000000-0000-4000-8000-${hex.padStart(12, '0')}`;
    case 'mistral':
      return hex.padStart(32, '0');
    case 'anthropic':
      return `req_mock${hex.padStart(20, '0')}`;
    case 'gemini':
      return `mock${hex.padStart(12, '0')}`;
  }
}

function idHeaders(ctx: Ctx): HeaderMap {
  const id = ctx.requestId;
  switch (ctx.route.provider) {
    case 'openai': return { 'x-request-id': id, ...OPENAI_STATIC };
    case 'compat': return { 'x-request-id': id };
    case 'azure': return { 'apim-request-id': id, 'x-request-id': id, 'x-ms-region': 'Mock Region' };
    case 'mistral': return { 'x-kong-request-id': id, 'mistral-correlation-id': id };
    case 'anthropic': return { 'request-id': id };
    // The Gemini API identifies a response by `responseId` in the body, not by a header.
    case 'gemini': return {};
  }
}

function headersFor(ctx: Ctx, step: ScriptStep, contentType: string, limited: boolean, retryAfter: number | undefined): HeaderMap {
  const h: HeaderMap = { ...idHeaders(ctx), ...rateLimitHeaders(ctx.route.provider, limited, retryAfter ?? DEFAULT_RETRY_AFTER), 'content-type': contentType };
  if (retryAfter !== undefined && ctx.route.provider !== 'gemini') {
    h['retry-after'] = retryAfter;
    // Azure also states the wait in milliseconds.
    if (ctx.route.provider === 'azure') h['retry-after-ms'] = Math.round(retryAfter * 1000);
  }
  if (step.headers !== undefined) Object.assign(h, step.headers);
  return h;
}

function sendText(ctx: Ctx, status: number, headers: HeaderMap, text: string): void {
  headers['content-length'] = Buffer.byteLength(text);
  ctx.record.status = status;
  ctx.res.writeHead(status, headers);
  ctx.res.end(text);
}

const JSON_TYPE = 'application/json';
const JSON_UTF8 = 'application/json; charset=utf-8';

function contentTypeOf(provider: MockProvider): string {
  return provider === 'gemini' || provider === 'mistral' ? JSON_UTF8 : JSON_TYPE;
}

function sendError(ctx: Ctx, step: ScriptStep, kind: ErrKind, d: ErrDetail = {}): void {
  const limited = kind === 'rate_limited';
  const retryAfter = step.retryAfter ?? (limited ? DEFAULT_RETRY_AFTER : undefined);
  const answer = providerError(ctx, kind, d, retryAfter ?? DEFAULT_RETRY_AFTER);
  sendText(ctx, answer.status, headersFor(ctx, step, contentTypeOf(ctx.route.provider), limited, retryAfter), JSON.stringify(answer.body));
}

function sendJson(ctx: Ctx, step: ScriptStep, body: unknown): void {
  sendText(ctx, 200, headersFor(ctx, step, contentTypeOf(ctx.route.provider), false, undefined), JSON.stringify(body));
}

/** Writes a 200 stream: the frames, then the end (or a destroyed connection for `drop`). */
async function sendStream(ctx: Ctx, step: ScriptStep, contentType: string, frames: readonly string[], end: 'end' | 'drop', dripMs: number): Promise<void> {
  const { res } = ctx;
  const headers = headersFor(ctx, step, contentType, false, undefined);
  headers['cache-control'] = 'no-cache';
  ctx.record.status = 200;
  res.writeHead(200, headers);
  if (dripMs <= 0 && end === 'end') {
    // The benchmark path: every frame is its own HTTP chunk, written in one go.
    for (const f of frames) res.write(f);
    res.end();
    return;
  }
  for (let i = 0; i < frames.length; i++) {
    if (dripMs > 0) await ctx.sleep(dripMs);
    if (res.destroyed) return;
    const frame = frames[i] ?? '';
    if (i === frames.length - 1 && end === 'drop') {
      // Let the last frame reach the socket before the connection goes.
      await new Promise<void>((resolve) => res.write(frame, () => resolve()));
    } else res.write(frame);
  }
  if (end === 'drop') {
    if (frames.length === 0) await new Promise<void>((resolve) => res.write('', () => resolve()));
    res.socket?.destroy();
  } else res.end();
}

/** Non-streaming `midstream-drop`: the head and half the body, then the connection goes. */
function sendTruncated(ctx: Ctx, step: ScriptStep, body: unknown): void {
  const text = JSON.stringify(body);
  const headers = headersFor(ctx, step, contentTypeOf(ctx.route.provider), false, undefined);
  headers['content-length'] = Buffer.byteLength(text);
  ctx.record.status = 200;
  ctx.res.writeHead(200, headers);
  ctx.res.write(text.slice(0, text.length >> 1), () => ctx.res.socket?.destroy());
}

// --- authentication ---------------------------------------------------------------------------

function bearer(h: IncomingHttpHeaders): string | undefined {
  const a = h.authorization;
  return a !== undefined && a.startsWith('Bearer ') ? a.slice(7) : undefined;
}

function authFailure(ctx: Ctx): ErrKind | undefined {
  const h = ctx.req.headers;
  switch (ctx.route.provider) {
    case 'compat':
      return undefined;
    case 'openai':
    case 'mistral': {
      const key = bearer(h);
      if (key === undefined || key === '') return 'auth_missing';
      return key === MOCK_KEYS[ctx.route.provider] ? undefined : 'auth_invalid';
    }
    case 'azure': {
      const key = h['api-key'];
      if (typeof key !== 'string' || key === '') return 'auth_missing';
      return key === MOCK_KEYS.azure ? undefined : 'auth_invalid';
    }
    case 'anthropic': {
      // SDK ≤0.99 sends x-api-key; 1.x sends Authorization: Bearer. Either is accepted.
      const xKey = h['x-api-key'];
      const key = typeof xKey === 'string' && xKey !== '' ? xKey : bearer(h);
      if (key === undefined || key === '') return 'auth_missing';
      return key === MOCK_KEYS.anthropic ? undefined : 'auth_invalid';
    }
    case 'gemini': {
      const hKey = h['x-goog-api-key'];
      const key = typeof hKey === 'string' && hKey !== '' ? hKey : ctx.query.key;
      if (key === undefined || key === '') return 'auth_missing';
      return key === MOCK_KEYS.gemini ? undefined : 'auth_invalid';
    }
  }
}

// --- validation (only what a provider rejects before any model runs) ---------------------------

function validate(ctx: Ctx): { kind: ErrKind; d: ErrDetail } | undefined {
  const { route } = ctx;
  if (route.provider === 'azure' && (ctx.query['api-version'] ?? '') === '') return { kind: 'missing_version', d: {} };
  if (route.provider === 'anthropic' && route.op !== 'models' && ctx.req.headers['anthropic-version'] === undefined) return { kind: 'missing_version', d: {} };
  if (route.op === 'models') return undefined;
  const body = ctx.body;
  if (!isObj(body)) return { kind: 'bad_request', d: { message: 'The request body must be a JSON object.' } };
  switch (route.op) {
    case 'chat':
      if (route.provider !== 'azure' && typeof body.model !== 'string') return { kind: 'missing_param', d: { param: 'model', message: 'you must provide a model parameter' } };
      if (!Array.isArray(body.messages) || body.messages.length === 0) return { kind: 'missing_param', d: { param: 'messages' } };
      return undefined;
    case 'embeddings':
      if (route.provider !== 'azure' && typeof body.model !== 'string') return { kind: 'missing_param', d: { param: 'model', message: 'you must provide a model parameter' } };
      if (body.input === undefined) return { kind: 'missing_param', d: { param: 'input' } };
      return undefined;
    case 'messages':
    case 'count_tokens':
      if (typeof body.model !== 'string') return { kind: 'missing_param', d: { param: 'model' } };
      if (!Array.isArray(body.messages)) return { kind: 'missing_param', d: { param: 'messages' } };
      if (route.op === 'messages' && typeof body.max_tokens !== 'number') return { kind: 'missing_param', d: { param: 'max_tokens' } };
      return undefined;
    case 'generateContent':
    case 'streamGenerateContent':
    case 'countTokens':
      if (!Array.isArray(body.contents) || body.contents.length === 0) return { kind: 'missing_param', d: { param: 'contents' } };
      return undefined;
    case 'embedContent':
      if (!isObj(body.content)) return { kind: 'missing_param', d: { param: 'content', message: '* EmbedContentRequest.content: content is not specified' } };
      return undefined;
    case 'batchEmbedContents':
      if (!Array.isArray(body.requests) || body.requests.length === 0) return { kind: 'missing_param', d: { param: 'requests', message: '* BatchEmbedContentsRequest.requests: requests is not specified' } };
      return undefined;
    case 'unknown':
      return undefined;
  }
}

// --- OpenAI family: OpenAI, Azure OpenAI, Mistral, compatible servers ---------------------------

type Flavor = 'openai' | 'azure' | 'mistral' | 'compat';

const AZURE_FILTER_OK = {
  hate: { filtered: false, severity: 'safe' },
  self_harm: { filtered: false, severity: 'safe' },
  sexual: { filtered: false, severity: 'safe' },
  violence: { filtered: false, severity: 'safe' },
};
const AZURE_PROMPT_FILTER = [{ prompt_index: 0, content_filter_results: AZURE_FILTER_OK }];

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function openaiFinish(p: Plan): string {
  return p.finish === 'tool' ? 'tool_calls' : p.finish;
}

function openaiToolId(flavor: Flavor, c: ToolCallPlan, i: number): string {
  // Mistral issues 9-character alphanumeric ids and rejects others when they are sent back.
  if (flavor === 'mistral') return fnv(`${c.name}/${i}`).toString(36).padStart(9, '0').slice(-9);
  return `call_${i}_${c.name}`;
}

function openaiUsage(flavor: Flavor, p: Plan): Obj {
  const u: Obj = { prompt_tokens: p.promptTokens, completion_tokens: p.completionTokens, total_tokens: p.promptTokens + p.completionTokens };
  if (flavor === 'openai' || flavor === 'azure') {
    u.prompt_tokens_details = { cached_tokens: 0, audio_tokens: 0 };
    u.completion_tokens_details = { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 };
  }
  return u;
}

function openaiCompletionId(flavor: Flavor, seq: number): string {
  return flavor === 'mistral' ? fnv(`cmpl${seq}`).toString(16).padStart(32, '0') : `chatcmpl-mock${seq.toString(16).padStart(12, '0')}`;
}

function openaiCompletion(ctx: Ctx, flavor: Flavor, p: Plan): Obj {
  const hasTools = p.toolCalls.length > 0;
  const message: Obj = { role: 'assistant', content: hasTools ? null : p.text };
  if (hasTools) message.tool_calls = p.toolCalls.map((c, i) => ({ id: openaiToolId(flavor, c, i), type: 'function', function: { name: c.name, arguments: c.args } }));
  else if (flavor === 'mistral') message.tool_calls = null;
  if (flavor === 'openai' || flavor === 'azure') message.refusal = null;
  if (flavor === 'openai') message.annotations = [];
  const choice: Obj = { index: 0, message, logprobs: null, finish_reason: openaiFinish(p) };
  if (flavor === 'azure') choice.content_filter_results = AZURE_FILTER_OK;
  const body: Obj = { id: openaiCompletionId(flavor, ctx.seq), object: 'chat.completion', created: nowSeconds(), model: ctx.model ?? '', choices: [choice], usage: openaiUsage(flavor, p) };
  if (flavor === 'openai') {
    body.service_tier = 'default';
    body.system_fingerprint = 'fp_mock';
  } else if (flavor === 'azure') {
    body.system_fingerprint = 'fp_mock';
    body.prompt_filter_results = AZURE_PROMPT_FILTER;
  }
  return body;
}

const DONE = 'data: [DONE]\n\n';

function dataFrame(obj: unknown): string {
  return `data: ${JSON.stringify(obj)}\n\n`;
}

/** The frames of a chat stream, and how many of them a mid-stream failure lets through. */
function openaiChunks(ctx: Ctx, flavor: Flavor, p: Plan): { frames: string[]; cut: number } {
  const body = ctx.body as Obj;
  const includeUsage = isObj(body.stream_options) && body.stream_options.include_usage === true;
  const id = openaiCompletionId(flavor, ctx.seq);
  const created = nowSeconds();
  const model = ctx.model ?? '';
  const frames: string[] = [];
  const chunk = (delta: Obj, finish: string | null, extra?: Obj): void => {
    const choice: Obj = { index: 0, delta, logprobs: null, finish_reason: finish };
    if (flavor === 'azure' && finish === null && delta.role === undefined) choice.content_filter_results = AZURE_FILTER_OK;
    const c: Obj = { id, object: 'chat.completion.chunk', created, model };
    if (flavor === 'openai' || flavor === 'azure') c.system_fingerprint = 'fp_mock';
    c.choices = [choice];
    if (includeUsage && flavor !== 'mistral') c.usage = null;
    if (extra !== undefined) Object.assign(c, extra);
    frames.push(dataFrame(c));
  };
  // Azure opens with a chunk that has no choices, empty id/model/object and the prompt filter results.
  if (flavor === 'azure') frames.push(dataFrame({ choices: [], created: 0, id: '', model: '', object: '', prompt_filter_results: AZURE_PROMPT_FILTER }));
  const cut = frames.length + 2;
  const roleDelta: Obj = { role: 'assistant', content: p.toolCalls.length > 0 ? null : '' };
  if (flavor === 'openai' || flavor === 'azure') roleDelta.refusal = null;
  if (p.toolCalls.length === 0) {
    chunk(roleDelta, null);
    for (const piece of p.pieces) chunk({ content: piece }, null);
  } else if (flavor === 'mistral') {
    // Mistral sends each tool call whole, in one chunk.
    chunk({ role: 'assistant', content: '' }, null);
    p.toolCalls.forEach((c, i) => chunk({ tool_calls: [{ id: openaiToolId(flavor, c, i), type: 'function', function: { name: c.name, arguments: c.args }, index: i }] }, null));
  } else {
    p.toolCalls.forEach((c, i) => {
      const start = { index: i, id: openaiToolId(flavor, c, i), type: 'function', function: { name: c.name, arguments: '' } };
      chunk(i === 0 ? { ...roleDelta, tool_calls: [start] } : { tool_calls: [start] }, null);
      for (let at = 0; at < c.args.length; at += 8) chunk({ tool_calls: [{ index: i, function: { arguments: c.args.slice(at, at + 8) } }] }, null);
    });
  }
  // Mistral reports usage on the finishing chunk of every stream, asked or not.
  if (flavor === 'mistral') chunk({ content: '' }, openaiFinish(p), { usage: openaiUsage(flavor, p) });
  else chunk({}, openaiFinish(p));
  if (includeUsage && flavor !== 'mistral') {
    const c: Obj = { id, object: 'chat.completion.chunk', created, model };
    if (flavor === 'openai' || flavor === 'azure') c.system_fingerprint = 'fp_mock';
    c.choices = [];
    c.usage = openaiUsage(flavor, p);
    frames.push(dataFrame(c));
  }
  frames.push(DONE);
  return { frames, cut: Math.min(cut, frames.length - 2) };
}

function openaiStreamError(flavor: Flavor): string {
  if (flavor === 'mistral') return dataFrame(mistralErr('Internal server error', 'internal_server_error', null));
  return dataFrame(OPENAI_SERVER_ERROR);
}

function embeddingInputs(input: unknown): { seed: string; tokens: number }[] {
  if (typeof input === 'string') return [{ seed: input, tokens: words(input) }];
  if (!Array.isArray(input)) return [];
  if (input.length > 0 && input.every((x) => typeof x === 'number')) return [{ seed: input.join(','), tokens: input.length }];
  return input.map((x: unknown) =>
    typeof x === 'string' ? { seed: x, tokens: words(x) } : Array.isArray(x) ? { seed: x.join(','), tokens: x.length } : { seed: '', tokens: 0 },
  );
}

function openaiEmbeddings(ctx: Ctx, flavor: Flavor): Obj {
  const body = ctx.body as Obj;
  const dims = num(body.dimensions) ?? 16;
  const base64 = body.encoding_format === 'base64';
  const inputs = embeddingInputs(body.input);
  const tokens = inputs.reduce((n, x) => n + x.tokens, 0);
  const data = inputs.map((x, index) => {
    const v = vector(x.seed, dims);
    return { object: 'embedding', index, embedding: base64 ? float32Base64(v) : v };
  });
  const out: Obj = { object: 'list', data, model: ctx.model ?? '', usage: { prompt_tokens: tokens, total_tokens: tokens } };
  if (flavor === 'mistral') {
    out.id = fnv(`emb${ctx.seq}`).toString(16).padStart(32, '0');
    out.usage = { prompt_tokens: tokens, total_tokens: tokens, completion_tokens: 0 };
  }
  return out;
}

const OPENAI_MODELS = JSON.stringify({
  object: 'list',
  data: ['gpt-4o-mini', 'gpt-4o', 'text-embedding-3-small'].map((id) => ({ id, object: 'model', created: 1715367049, owned_by: 'system' })),
});
const MISTRAL_MODELS = JSON.stringify({
  object: 'list',
  data: ['mistral-small-latest', 'mistral-large-latest', 'mistral-embed'].map((id) => ({ id, object: 'model', created: 1715367049, owned_by: 'mistralai' })),
});
const ANTHROPIC_MODELS = JSON.stringify({
  data: ['mock-large-1', 'mock-small-1'].map((id) => ({ type: 'model', id, display_name: id, created_at: '2025-09-29T00:00:00Z' })),
  has_more: false,
  first_id: 'mock-large-1',
  last_id: 'mock-small-1',
});
const GEMINI_MODELS = JSON.stringify({
  models: [
    { name: 'models/gemini-2.5-flash', displayName: 'Gemini 2.5 Flash', supportedGenerationMethods: ['generateContent', 'countTokens'] },
    { name: 'models/text-embedding-004', displayName: 'Text Embedding 004', supportedGenerationMethods: ['embedContent'] },
  ],
});

async function serveOpenAIFamily(ctx: Ctx, step: ScriptStep, scenario: Scenario): Promise<void> {
  const flavor = ctx.route.provider as Flavor;
  if (ctx.route.op === 'models') {
    sendText(ctx, 200, headersFor(ctx, step, contentTypeOf(ctx.route.provider), false, undefined), flavor === 'mistral' ? MISTRAL_MODELS : OPENAI_MODELS);
    return;
  }
  if (ctx.route.op === 'embeddings') {
    if (scenario === 'midstream-drop') sendTruncated(ctx, step, openaiEmbeddings(ctx, flavor));
    else sendJson(ctx, step, openaiEmbeddings(ctx, flavor));
    return;
  }
  const p = plan(openaiConversation(ctx.body as Obj));
  if (!ctx.stream) {
    if (scenario === 'midstream-drop') sendTruncated(ctx, step, openaiCompletion(ctx, flavor, p));
    else sendJson(ctx, step, openaiCompletion(ctx, flavor, p));
    return;
  }
  const { frames, cut } = openaiChunks(ctx, flavor, p);
  const type = 'text/event-stream; charset=utf-8';
  if (scenario === 'midstream-error') return sendStream(ctx, step, type, [...frames.slice(0, cut), openaiStreamError(flavor)], 'end', 0);
  if (scenario === 'midstream-drop') return sendStream(ctx, step, type, frames.slice(0, cut), 'drop', 0);
  return sendStream(ctx, step, type, frames, 'end', msOf(scenario, 'drip-'));
}

// --- Anthropic Messages ----------------------------------------------------------------------

function anthropicStop(p: Plan): string {
  return p.finish === 'tool' ? 'tool_use' : p.finish === 'length' ? 'max_tokens' : 'end_turn';
}

function anthropicUsage(input: number, output: number): Obj {
  return { input_tokens: input, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: output, service_tier: 'standard' };
}

function anthropicContent(p: Plan): Obj[] {
  if (p.toolCalls.length === 0) return [{ type: 'text', text: p.text }];
  return p.toolCalls.map((c, i) => ({ type: 'tool_use', id: `toolu_${i}_${c.name}`, name: c.name, input: JSON.parse(c.args) as unknown }));
}

function anthropicMessageId(seq: number): string {
  return `msg_mock${seq.toString(16).padStart(20, '0')}`;
}

function anthropicMessage(ctx: Ctx, p: Plan): Obj {
  return {
    id: anthropicMessageId(ctx.seq),
    type: 'message',
    role: 'assistant',
    model: ctx.model ?? '',
    content: anthropicContent(p),
    stop_reason: anthropicStop(p),
    stop_sequence: null,
    usage: anthropicUsage(p.promptTokens, p.completionTokens),
  };
}

function eventFrame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** Event order per the Messages streaming docs: message_start, blocks, message_delta, message_stop. */
function anthropicEvents(ctx: Ctx, p: Plan): { frames: string[]; cut: number } {
  const frames: string[] = [];
  frames.push(eventFrame('message_start', {
    type: 'message_start',
    message: { id: anthropicMessageId(ctx.seq), type: 'message', role: 'assistant', model: ctx.model ?? '', content: [], stop_reason: null, stop_sequence: null, usage: anthropicUsage(p.promptTokens, 1) },
  }));
  if (p.toolCalls.length === 0) {
    frames.push(eventFrame('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }));
    frames.push(eventFrame('ping', { type: 'ping' }));
    for (const piece of p.pieces) frames.push(eventFrame('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: piece } }));
    frames.push(eventFrame('content_block_stop', { type: 'content_block_stop', index: 0 }));
  } else {
    p.toolCalls.forEach((c, index) => {
      frames.push(eventFrame('content_block_start', { type: 'content_block_start', index, content_block: { type: 'tool_use', id: `toolu_${index}_${c.name}`, name: c.name, input: {} } }));
      if (index === 0) frames.push(eventFrame('ping', { type: 'ping' }));
      // The API opens a tool_use block with an empty partial_json, then sends the JSON in fragments.
      frames.push(eventFrame('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: '' } }));
      for (let at = 0; at < c.args.length; at += 8) {
        frames.push(eventFrame('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: c.args.slice(at, at + 8) } }));
      }
      frames.push(eventFrame('content_block_stop', { type: 'content_block_stop', index }));
    });
  }
  // message_delta usage is cumulative.
  frames.push(eventFrame('message_delta', {
    type: 'message_delta',
    delta: { stop_reason: anthropicStop(p), stop_sequence: null },
    usage: { input_tokens: p.promptTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: p.completionTokens },
  }));
  frames.push(eventFrame('message_stop', { type: 'message_stop' }));
  return { frames, cut: Math.min(4, frames.length - 2) };
}

const ANTHROPIC_STREAM_ERROR = eventFrame('error', { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });

async function serveAnthropic(ctx: Ctx, step: ScriptStep, scenario: Scenario): Promise<void> {
  if (ctx.route.op === 'models') {
    sendText(ctx, 200, headersFor(ctx, step, JSON_TYPE, false, undefined), ANTHROPIC_MODELS);
    return;
  }
  const conv = anthropicConversation(ctx.body as Obj);
  if (ctx.route.op === 'count_tokens') {
    sendJson(ctx, step, { input_tokens: conv.promptTokens });
    return;
  }
  const p = plan(conv);
  if (!ctx.stream) {
    if (scenario === 'midstream-drop') sendTruncated(ctx, step, anthropicMessage(ctx, p));
    else sendJson(ctx, step, anthropicMessage(ctx, p));
    return;
  }
  const { frames, cut } = anthropicEvents(ctx, p);
  const type = 'text/event-stream; charset=utf-8';
  if (scenario === 'midstream-error') return sendStream(ctx, step, type, [...frames.slice(0, cut), ANTHROPIC_STREAM_ERROR], 'end', 0);
  if (scenario === 'midstream-drop') return sendStream(ctx, step, type, frames.slice(0, cut), 'drop', 0);
  return sendStream(ctx, step, type, frames, 'end', msOf(scenario, 'drip-'));
}

// --- Gemini ----------------------------------------------------------------------------------

function geminiFinish(p: Plan): string {
  // Gemini finishes a function call with STOP as well.
  return p.finish === 'length' ? 'MAX_TOKENS' : 'STOP';
}

function geminiUsage(p: Plan, candidates: number): Obj {
  return {
    promptTokenCount: p.promptTokens,
    candidatesTokenCount: candidates,
    totalTokenCount: p.promptTokens + candidates,
    promptTokensDetails: [{ modality: 'TEXT', tokenCount: p.promptTokens }],
  };
}

function geminiParts(p: Plan): Obj[] {
  if (p.toolCalls.length === 0) return [{ text: p.text }];
  return p.toolCalls.map((c) => ({ functionCall: { name: c.name, args: JSON.parse(c.args) as unknown } }));
}

function geminiResponse(ctx: Ctx, parts: Obj[], finish: string | undefined, usage: Obj): Obj {
  const candidate: Obj = { content: { parts, role: 'model' }, index: 0 };
  if (finish !== undefined) candidate.finishReason = finish;
  return { candidates: [candidate], usageMetadata: usage, modelVersion: ctx.model ?? '', responseId: ctx.requestId };
}

/** One GenerateContentResponse per word; the last carries finishReason. Usage counts are cumulative. */
function geminiChunks(ctx: Ctx, p: Plan): Obj[] {
  if (p.toolCalls.length > 0 || p.pieces.length === 0) return [geminiResponse(ctx, geminiParts(p), geminiFinish(p), geminiUsage(p, p.completionTokens))];
  return p.pieces.map((piece, i) => {
    const last = i === p.pieces.length - 1;
    return geminiResponse(ctx, [{ text: piece }], last ? geminiFinish(p) : undefined, geminiUsage(p, i + 1));
  });
}

function geminiEmbedValues(content: unknown, dims: unknown): number[] {
  return vector(geminiPartsText(content).text, num(dims) ?? 16);
}

async function serveGemini(ctx: Ctx, step: ScriptStep, scenario: Scenario): Promise<void> {
  const body = ctx.body as Obj;
  const op = ctx.route.op;
  if (op === 'models') {
    sendText(ctx, 200, headersFor(ctx, step, JSON_UTF8, false, undefined), GEMINI_MODELS);
    return;
  }
  if (op === 'embedContent') {
    sendJson(ctx, step, { embedding: { values: geminiEmbedValues(body.content, body.outputDimensionality) } });
    return;
  }
  if (op === 'batchEmbedContents') {
    sendJson(ctx, step, { embeddings: arr(body.requests).map((r) => ({ values: isObj(r) ? geminiEmbedValues(r.content, r.outputDimensionality) : [] })) });
    return;
  }
  if (op === 'countTokens') {
    sendJson(ctx, step, { totalTokens: geminiConversation(body).promptTokens });
    return;
  }
  const p = plan(geminiConversation(body));
  if (ctx.route.op === 'generateContent') {
    const whole = geminiResponse(ctx, geminiParts(p), geminiFinish(p), geminiUsage(p, p.completionTokens));
    if (scenario === 'midstream-drop') sendTruncated(ctx, step, whole);
    else sendJson(ctx, step, whole);
    return;
  }
  const chunks = geminiChunks(ctx, p).map((c) => JSON.stringify(c));
  const cut = Math.min(1, chunks.length);
  const errorJson = JSON.stringify(GEMINI_UNAVAILABLE);
  if (ctx.query.alt === 'sse') {
    // The Gemini API ends SSE lines with CRLF.
    const frames = chunks.map((c) => `data: ${c}\r\n\r\n`);
    const type = 'text/event-stream';
    if (scenario === 'midstream-error') return sendStream(ctx, step, type, [...frames.slice(0, cut), `data: ${errorJson}\r\n\r\n`], 'end', 0);
    if (scenario === 'midstream-drop') return sendStream(ctx, step, type, frames.slice(0, cut), 'drop', 0);
    return sendStream(ctx, step, type, frames, 'end', msOf(scenario, 'drip-'));
  }
  // Without alt=sse the stream is one JSON array, written element by element.
  const frames = chunks.map((c, i) => (i === 0 ? '[' : ',\r\n') + c);
  if (scenario === 'midstream-error') return sendStream(ctx, step, JSON_UTF8, [...frames.slice(0, cut), `,\r\n${errorJson}]`], 'end', 0);
  if (scenario === 'midstream-drop') return sendStream(ctx, step, JSON_UTF8, frames.slice(0, cut), 'drop', 0);
  return sendStream(ctx, step, JSON_UTF8, [...frames, ']'], 'end', msOf(scenario, 'drip-'));
}

// --- the pipeline -----------------------------------------------------------------------------

async function respond(ctx: Ctx, step: ScriptStep): Promise<void> {
  const scenario = step.scenario ?? scenarioOf(ctx.model);
  const delay = (step.delayMs ?? 0) + msOf(scenario, 'slow-');
  if (delay > 0) {
    await ctx.sleep(delay);
    if (ctx.res.destroyed) return;
  }
  // Transport-level answers come before the provider looks at anything.
  if (scenario === 'hang') return;
  if (scenario === 'reset') {
    ctx.req.socket.destroy();
    return;
  }
  if (scenario === 'html-502') {
    const headers: HeaderMap = { 'content-type': 'text/html', server: 'nginx' };
    if (step.headers !== undefined) Object.assign(headers, step.headers);
    sendText(ctx, 502, headers, HTML_502);
    return;
  }
  if (ctx.route.op === 'unknown') return sendError(ctx, step, 'route_not_found');
  const auth = authFailure(ctx);
  if (auth !== undefined) return sendError(ctx, step, auth);
  if (ctx.bodyInvalid) return sendError(ctx, step, 'invalid_json');
  const invalid = validate(ctx);
  if (invalid !== undefined) return sendError(ctx, step, invalid.kind, invalid.d);
  const err = SCENARIO_ERRORS[scenario];
  if (err !== undefined) return sendError(ctx, step, err);
  if (scenario === 'midstream-error' && !ctx.stream) return sendError(ctx, step, 'server');
  switch (ctx.route.provider) {
    case 'openai':
    case 'azure':
    case 'mistral':
    case 'compat':
      return serveOpenAIFamily(ctx, step, scenario);
    case 'anthropic':
      return serveAnthropic(ctx, step, scenario);
    case 'gemini':
      return serveGemini(ctx, step, scenario);
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(chunks.length === 0 ? '' : chunks.length === 1 ? (chunks[0] ?? Buffer.alloc(0)).toString('utf8') : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const NO_QUERY: Readonly<Record<string, string>> = Object.freeze({});

function toStep(s: Scenario | ScriptStep | undefined): ScriptStep {
  return s === undefined ? {} : typeof s === 'string' ? { scenario: s } : s;
}

// ---------------------------------------------------------------------------------------------
// The server

export async function startMockProviders(options: MockProvidersOptions = {}): Promise<MockProviders> {
  const requests: ReceivedRequest[] = [];
  const queues = new Map<string, (Scenario | ScriptStep | MockHandler)[]>();
  const timers = new Set<NodeJS.Timeout>();
  const sockets = new Set<Socket>();
  let seq = 0;
  let closed = false;

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      // On close() the timer is cleared and the promise never settles: its connection is destroyed.
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });

  const take = (path: string, provider: MockProvider): Scenario | ScriptStep | MockHandler | undefined => {
    if (queues.size === 0) return undefined;
    for (const key of [path, provider]) {
      const q = queues.get(key);
      if (q !== undefined && q.length > 0) {
        const step = q.shift();
        if (q.length === 0) queues.delete(key);
        return step;
      }
    }
    return undefined;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const n = ++seq;
    const url = req.url ?? '/';
    const qi = url.indexOf('?');
    const path = qi < 0 ? url : url.slice(0, qi);
    const query = qi < 0 ? NO_QUERY : Object.fromEntries(new URLSearchParams(url.slice(qi + 1)));
    const method = req.method ?? 'GET';
    const r = route(method, path, req.headers);
    const raw = await readBody(req);
    let body: unknown;
    let bodyInvalid = false;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
        bodyInvalid = true;
      }
    }
    const model = r.pathModel ?? (isObj(body) ? str(body.model) : undefined);
    const stream = r.op === 'streamGenerateContent' || (isObj(body) && body.stream === true);
    const record: ReceivedRequest = { seq: n, provider: r.provider, method, path, url, query, headers: req.headers, body, model, stream, status: undefined };
    if (mock.record) requests.push(record);
    const ctx: Ctx = { seq: n, route: r, path, query, req, res, record, body, bodyInvalid, model, stream, requestId: requestIdFor(r.provider, n), sleep };
    const step = take(path, r.provider);
    if (typeof step === 'function') {
      await step({ request: record, req, res, respond: (s) => respond(ctx, toStep(s)) });
      if (record.status === undefined && res.headersSent) record.status = res.statusCode;
      return;
    }
    await respond(ctx, toStep(step));
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      // A bug in the mock or a handler: say so plainly rather than imitate a provider.
      if (!res.headersSent) {
        const text = `mock-providers failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`;
        res.writeHead(599, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      } else res.destroy();
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const root = `http://${host}:${port}`;

  const mock: MockProviders = {
    url: root,
    port,
    baseUrls: {
      openai: `${root}/v1`,
      azure: root,
      mistral: `${root}/mistral/v1`,
      compat: `${root}/compat/v1`,
      anthropic: root,
      gemini: `${root}/v1beta`,
    },
    keys: MOCK_KEYS,
    requests,
    record: options.record ?? true,
    script(target, ...steps) {
      const q = queues.get(target);
      if (q === undefined) queues.set(target, [...steps]);
      else q.push(...steps);
    },
    pending(target) {
      return queues.get(target)?.length ?? 0;
    },
    reset() {
      requests.length = 0;
      queues.clear();
    },
    close() {
      if (closed) return Promise.resolve();
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
        server.closeAllConnections();
      });
    },
  };
  return mock;
}

// Standalone: `node test/helpers/mock-providers.ts [--port N] [--host H] [--record]` prints one JSON
// line ({url, baseUrls, keys}) once listening, for benchmarks that run the mock in its own process.
if (import.meta.main) {
  const argv = process.argv.slice(2);
  const flag = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i < 0 ? undefined : argv[i + 1];
  };
  const mock = await startMockProviders({ port: Number(flag('--port') ?? 0), host: flag('--host') ?? '127.0.0.1', record: argv.includes('--record') });
  process.stdout.write(`${JSON.stringify({ url: mock.url, baseUrls: mock.baseUrls, keys: mock.keys })}\n`);
  const stop = (): void => {
    void mock.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
