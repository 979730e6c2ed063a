/**
 * Proves the mock providers speak the real wire formats: the official `openai` (7.x) and
 * `@anthropic-ai/sdk` (1.12) clients are pointed straight at the mock and must parse every answer,
 * raise the error class each status maps to (openai core/error.ts APIError.generate; Anthropic
 * core/error.ts STATUS_ERROR_CLASSES), read the request id from the headers and honour retry-after.
 * Gemini has no SDK installed: its shapes are checked over raw HTTP against the documented format
 * (generateContent / streamGenerateContent?alt=sse, google.rpc.Status errors).
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI, { AzureOpenAI } from 'openai';
import { startMockProviders, type MockProviders } from './mock-providers.ts';

let mock: MockProviders;

before(async () => {
  mock = await startMockProviders();
});
after(async () => {
  await mock.close();
});
beforeEach(() => {
  mock.reset();
});

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  return assert.fail('expected a rejection');
}

function openai(opts: { maxRetries?: number; timeout?: number; apiKey?: string } = {}): OpenAI {
  return new OpenAI({ apiKey: opts.apiKey ?? mock.keys.openai, baseURL: mock.baseUrls.openai, maxRetries: opts.maxRetries ?? 0, timeout: opts.timeout ?? 5000 });
}

function anthropic(opts: { maxRetries?: number; apiKey?: string } = {}): Anthropic {
  return new Anthropic({ apiKey: opts.apiKey ?? mock.keys.anthropic, baseURL: mock.baseUrls.anthropic, maxRetries: opts.maxRetries ?? 0, timeout: 5000 });
}

const USER = [{ role: 'user' as const, content: 'hello world' }];
const WEATHER_TOOL = { type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } };
const CALL_TEXT = 'please call:get_weather {"city":"Paris"}';

async function post(url: string, headers: Record<string, string>, body: unknown): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

/** SSE events, CRLF or LF line ends (WHATWG event stream format, reduced to event + data). */
function sse(text: string): { event: string | undefined; data: string }[] {
  return text
    .split(/\r?\n\r?\n/)
    .filter((block) => block.trim() !== '')
    .map((block) => {
      let event: string | undefined;
      const data: string[] = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      return { event, data: data.join('\n') };
    });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A path into parsed JSON, for asserting raw provider bodies without `any`. */
function at(v: unknown, ...path: (string | number)[]): unknown {
  let cur = v;
  for (const key of path) {
    if (typeof key === 'number') cur = Array.isArray(cur) ? (cur as unknown[])[key] : undefined;
    else cur = isRecord(cur) ? cur[key] : undefined;
  }
  return cur;
}

// ---------------------------------------------------------------------------------------------

void describe('OpenAI (official SDK)', () => {
  void it('answers a chat completion with the echo, usage and the request id', async () => {
    const res = await openai().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'be brief' }, ...USER] });
    assert.equal(res.object, 'chat.completion');
    assert.equal(res.model, 'gpt-4o-mini');
    assert.equal(res.choices[0]?.message.content, 'echo: hello world');
    assert.equal(res.choices[0]?.finish_reason, 'stop');
    assert.deepEqual([res.usage?.prompt_tokens, res.usage?.completion_tokens, res.usage?.total_tokens], [4, 3, 7]);
    assert.match(res._request_id ?? '', /^req_[0-9a-f]{32}$/);

    const [seen] = mock.requests;
    assert.equal(mock.requests.length, 1);
    assert.equal(seen?.provider, 'openai');
    assert.equal(seen?.path, '/v1/chat/completions');
    assert.equal(seen?.headers.authorization, `Bearer ${mock.keys.openai}`);
    assert.equal(seen?.model, 'gpt-4o-mini');
    assert.equal(seen?.status, 200);
    assert.deepEqual(at(seen?.body, 'messages', 1), USER[0]);
  });

  void it('sends x-ratelimit-* headers with duration resets on every answer', async () => {
    const { response } = await openai().chat.completions.create({ model: 'gpt-4o-mini', messages: USER }).withResponse();
    for (const name of ['limit-requests', 'limit-tokens', 'remaining-requests', 'remaining-tokens']) assert.match(response.headers.get(`x-ratelimit-${name}`) ?? '', /^\d+$/);
    for (const name of ['reset-requests', 'reset-tokens']) assert.match(response.headers.get(`x-ratelimit-${name}`) ?? '', /^(\d+m)?[\d.]+m?s$/);
  });

  void it('streams the reply word by word, ending with the include_usage chunk', async () => {
    const stream = await openai().chat.completions.create({ model: 'gpt-4o-mini', messages: USER, stream: true, stream_options: { include_usage: true } });
    const deltas: string[] = [];
    const finishes: (string | null)[] = [];
    let usage: OpenAI.CompletionUsage | null | undefined;
    let lastChoices = -1;
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      const c = chunk.choices[0];
      if (c?.delta.content) deltas.push(c.delta.content);
      if (c?.finish_reason) finishes.push(c.finish_reason);
      usage = chunk.usage;
      lastChoices = chunk.choices.length;
    }
    assert.deepEqual(deltas, ['echo:', ' hello', ' world']);
    assert.deepEqual(finishes, ['stop']);
    assert.equal(lastChoices, 0);
    assert.equal(usage?.prompt_tokens, 2);
    assert.equal(usage?.completion_tokens, 3);
  });

  void it('calls a declared tool when asked, in JSON and streamed', async () => {
    const client = openai();
    const res = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: CALL_TEXT }], tools: [WEATHER_TOOL] });
    const call = res.choices[0]?.message.tool_calls?.[0];
    assert.equal(res.choices[0]?.finish_reason, 'tool_calls');
    assert.equal(res.choices[0]?.message.content, null);
    assert.equal(call?.type, 'function');
    assert.equal(call?.type === 'function' ? call.function.name : undefined, 'get_weather');
    assert.deepEqual(JSON.parse(call?.type === 'function' ? call.function.arguments : ''), { city: 'Paris' });
    assert.equal(res.usage?.completion_tokens, 2); // "get_weather" + '{"city":"Paris"}'

    const final = await client.chat.completions.stream({ model: 'gpt-4o', messages: [{ role: 'user', content: CALL_TEXT }], tools: [WEATHER_TOOL] }).finalChatCompletion();
    const streamed = final.choices[0]?.message.tool_calls?.[0];
    assert.equal(final.choices[0]?.finish_reason, 'tool_calls');
    assert.equal(streamed?.id, call?.id);
    assert.deepEqual(JSON.parse(streamed?.type === 'function' ? streamed.function.arguments : ''), { city: 'Paris' });

    // No declared tool of that name, or tool_choice none: plain echo.
    const plain = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'call:other' }], tools: [WEATHER_TOOL] });
    assert.equal(plain.choices[0]?.message.content, 'echo: call:other');
    const none = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: CALL_TEXT }], tools: [WEATHER_TOOL], tool_choice: 'none' });
    assert.equal(none.choices[0]?.finish_reason, 'stop');
  });

  void it('cuts the reply at max_tokens with finish_reason length', async () => {
    const res = await openai().chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'one two three four' }], max_completion_tokens: 2 });
    assert.equal(res.choices[0]?.message.content, 'echo: one');
    assert.equal(res.choices[0]?.finish_reason, 'length');
    assert.equal(res.usage?.completion_tokens, 2);
  });

  void it('answers embeddings (the SDK asks for base64 by default) and lists models', async () => {
    const client = openai();
    const b64 = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['alpha', 'beta gamma'] });
    const floats = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['alpha', 'beta gamma'], encoding_format: 'float' });
    assert.equal(at(mock.requests[0]?.body, 'encoding_format'), 'base64');
    assert.equal(b64.data.length, 2);
    assert.deepEqual(b64.data.map((d) => d.embedding), floats.data.map((d) => d.embedding));
    assert.equal(floats.data[0]?.embedding.length, 16);
    assert.notDeepEqual(floats.data[0]?.embedding, floats.data[1]?.embedding);
    assert.deepEqual(floats.usage, { prompt_tokens: 3, total_tokens: 3 });
    const dims = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'alpha', dimensions: 4, encoding_format: 'float' });
    assert.equal(dims.data[0]?.embedding.length, 4);

    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.ok(ids.includes('gpt-4o-mini'));
  });

  void it('raises the SDK error class of each scenario, with the request id and the envelope fields', async () => {
    const client = openai();
    const cases: [string, new (...args: never[]) => Error, number, string | null | undefined][] = [
      ['mock-400', OpenAI.BadRequestError, 400, null],
      ['mock-401', OpenAI.AuthenticationError, 401, 'invalid_api_key'],
      ['mock-403', OpenAI.PermissionDeniedError, 403, 'unsupported_country_region_territory'],
      ['mock-404', OpenAI.NotFoundError, 404, 'model_not_found'],
      ['mock-429', OpenAI.RateLimitError, 429, 'rate_limit_exceeded'],
      ['mock-quota', OpenAI.RateLimitError, 429, 'insufficient_quota'],
      ['mock-500', OpenAI.InternalServerError, 500, null],
      ['mock-503', OpenAI.InternalServerError, 503, null],
      ['mock-529', OpenAI.InternalServerError, 503, null],
    ];
    for (const [model, cls, status, code] of cases) {
      const err = await caught(client.chat.completions.create({ model, messages: USER }));
      assert.ok(err instanceof cls, `${model}: ${String(err)}`);
      assert.ok(err instanceof OpenAI.APIError);
      assert.equal(err.status, status, model);
      assert.equal(err.code, code, model);
      assert.match(err.requestID ?? '', /^req_/, model);
    }
  });

  void it('429 carries retry-after and exhausted x-ratelimit-* headers; quota is typed insufficient_quota', async () => {
    const err = await caught(openai().chat.completions.create({ model: 'mock-429', messages: USER }));
    assert.ok(err instanceof OpenAI.RateLimitError);
    assert.equal(err.type, 'requests');
    assert.equal(err.headers.get('retry-after'), '1');
    assert.equal(err.headers.get('x-ratelimit-remaining-requests'), '0');
    assert.equal(err.headers.get('x-ratelimit-reset-tokens'), '6m0s');
    const quota = await caught(openai().chat.completions.create({ model: 'mock-quota', messages: USER }));
    assert.ok(quota instanceof OpenAI.RateLimitError);
    assert.equal(quota.type, 'insufficient_quota');
    assert.equal(quota.headers.get('retry-after'), null);
  });

  void it('a wrong or missing key gets the real 401', async () => {
    const wrong = await caught(openai({ apiKey: 'sk-wrong' }).chat.completions.create({ model: 'gpt-4o', messages: USER }));
    assert.ok(wrong instanceof OpenAI.AuthenticationError);
    assert.equal(wrong.code, 'invalid_api_key');
    const res = await post(`${mock.baseUrls.openai}/chat/completions`, {}, { model: 'gpt-4o', messages: USER });
    assert.equal(res.status, 401);
    assert.deepEqual(Object.keys(at(await res.json(), 'error') as object).sort(), ['code', 'message', 'param', 'type']);
  });

  void it('an HTML 502 from a load balancer is an InternalServerError', async () => {
    const err = await caught(openai().chat.completions.create({ model: 'mock-html-502', messages: USER }));
    assert.ok(err instanceof OpenAI.InternalServerError);
    assert.equal(err.status, 502);
    assert.match(err.headers.get('content-type') ?? '', /^text\/html/);
  });

  void it('a mid-stream error after a 200 throws APIError after the first chunks', async () => {
    const stream = await openai().chat.completions.create({ model: 'mock-midstream-error', messages: USER, stream: true });
    const deltas: string[] = [];
    const err = await caught((async () => {
      for await (const chunk of stream) if (chunk.choices[0]?.delta.content) deltas.push(chunk.choices[0].delta.content);
    })());
    assert.ok(err instanceof OpenAI.APIError);
    assert.equal(err.constructor, OpenAI.APIError);
    assert.equal(err.status, undefined);
    assert.equal(err.type, 'server_error');
    assert.deepEqual(deltas, ['echo:']);
  });

  void it('a dropped stream and a reset connection fail as connection errors', async () => {
    const stream = await openai().chat.completions.create({ model: 'mock-midstream-drop', messages: USER, stream: true });
    const dropped = await caught((async () => {
      for await (const _ of stream) {
        // drain
      }
    })());
    assert.ok(dropped instanceof Error);
    const reset = await caught(openai().chat.completions.create({ model: 'mock-reset', messages: USER }));
    assert.ok(reset instanceof OpenAI.APIConnectionError);
  });

  void it('slow and hanging answers hit the client timeout', async () => {
    const client = openai({ timeout: 100 });
    const started = Date.now();
    const slow = await caught(client.chat.completions.create({ model: 'mock-slow-1000', messages: USER }));
    assert.ok(slow instanceof OpenAI.APIConnectionTimeoutError);
    const hang = await caught(client.chat.completions.create({ model: 'mock-hang', messages: USER }));
    assert.ok(hang instanceof OpenAI.APIConnectionTimeoutError);
    assert.ok(Date.now() - started < 900);
    const ok = await openai().chat.completions.create({ model: 'mock-slow-30', messages: USER });
    assert.equal(ok.choices[0]?.message.content, 'echo: hello world');
  });

  void it('drip spaces the stream events', async () => {
    const started = Date.now();
    const stream = await openai().chat.completions.create({ model: 'mock-drip-20', messages: USER, stream: true });
    let n = 0;
    for await (const _ of stream) n++;
    assert.equal(n, 5); // role, 3 words, finish
    assert.ok(Date.now() - started >= 100);
  });

  void it('honours retry-after-ms: one scripted 429, then success after exactly two requests', async () => {
    mock.script('openai', { scenario: '429', headers: { 'retry-after-ms': '10' } });
    const started = Date.now();
    const res = await openai({ maxRetries: 1 }).chat.completions.create({ model: 'gpt-4o', messages: USER });
    assert.equal(res.choices[0]?.message.content, 'echo: hello world');
    assert.deepEqual(mock.requests.map((r) => r.status), [429, 200]);
    // retry-after (1 s) and the SDK's own backoff (≥ 0.5 s) would both be slower.
    assert.ok(Date.now() - started < 450);
  });

  void it('honours a scripted retry-after in seconds', async () => {
    mock.script('/v1/chat/completions', { scenario: '503', retryAfter: 0.02 }, { scenario: '500', retryAfter: 0.02 });
    assert.equal(mock.pending('/v1/chat/completions'), 2);
    const res = await openai({ maxRetries: 2 }).chat.completions.create({ model: 'gpt-4o', messages: USER });
    assert.equal(res.choices[0]?.finish_reason, 'stop');
    assert.deepEqual(mock.requests.map((r) => r.status), [503, 500, 200]);
    assert.equal(mock.pending('/v1/chat/completions'), 0);
  });
});

void describe('OpenAI-compatible, Mistral and Azure (openai SDK)', () => {
  void it('the compatible server needs no key', async () => {
    const client = new OpenAI({ apiKey: 'anything', baseURL: mock.baseUrls.compat, maxRetries: 0 });
    const res = await client.chat.completions.create({ model: 'local-llama', messages: USER });
    assert.equal(res.choices[0]?.message.content, 'echo: hello world');
    assert.equal(mock.requests[0]?.provider, 'compat');
    const noKey = await post(`${mock.baseUrls.compat}/chat/completions`, {}, { model: 'x', messages: USER });
    assert.equal(noKey.status, 200);
  });

  void it('Mistral: answers, puts usage on the finishing chunk unasked, and uses its own error bodies', async () => {
    const client = new OpenAI({ apiKey: mock.keys.mistral, baseURL: mock.baseUrls.mistral, maxRetries: 0 });
    const res = await client.chat.completions.create({ model: 'mistral-small-latest', messages: USER });
    assert.equal(res.choices[0]?.message.content, 'echo: hello world');
    const { response } = await client.chat.completions.create({ model: 'mistral-small-latest', messages: USER }).withResponse();
    assert.match(response.headers.get('x-kong-request-id') ?? '', /^[0-9a-f]{32}$/);
    assert.equal(response.headers.get('x-ratelimit-remaining-req-minute'), '719');

    const stream = await client.chat.completions.create({ model: 'mistral-small-latest', messages: USER, stream: true });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, 'echo: hello world');
    assert.equal(usage?.total_tokens, 5);

    const tool = await client.chat.completions.create({ model: 'mistral-small-latest', messages: [{ role: 'user', content: CALL_TEXT }], tools: [WEATHER_TOOL] });
    assert.match(tool.choices[0]?.message.tool_calls?.[0]?.id ?? '', /^[a-zA-Z0-9]{9}$/);

    const unauth = await caught(new OpenAI({ apiKey: 'wrong', baseURL: mock.baseUrls.mistral, maxRetries: 0 }).chat.completions.create({ model: 'm', messages: USER }));
    assert.ok(unauth instanceof OpenAI.AuthenticationError);
    const limited = await caught(client.chat.completions.create({ model: 'mock-429', messages: USER }));
    assert.ok(limited instanceof OpenAI.RateLimitError);
    // Mistral's body has no `error` key; openai 7.x then reads the whole body as the error object.
    assert.equal(limited.type, 'rate_limited');
    assert.equal(limited.code, '1300');
    const raw = await post(`${mock.baseUrls.mistral}/chat/completions`, { authorization: `Bearer ${mock.keys.mistral}` }, { model: 'mock-429', messages: USER });
    assert.deepEqual(await raw.json(), { object: 'error', message: 'Rate limit exceeded', type: 'rate_limited', param: null, code: '1300' });
    assert.equal(raw.headers.get('x-ratelimit-remaining-req-minute'), '0');
  });

  void it('Azure: deployment path, api-version, api-key, apim-request-id and the prompt-filter first chunk', async () => {
    const client = new AzureOpenAI({ endpoint: mock.baseUrls.azure, apiKey: mock.keys.azure, apiVersion: '2024-10-21', maxRetries: 0 });
    const res = await client.chat.completions.create({ model: 'gpt4o-prod', messages: USER });
    assert.equal(res.choices[0]?.message.content, 'echo: hello world');
    const seen = mock.requests[0];
    assert.equal(seen?.provider, 'azure');
    assert.equal(seen?.path, '/openai/deployments/gpt4o-prod/chat/completions');
    assert.equal(seen?.query['api-version'], '2024-10-21');
    assert.equal(seen?.headers['api-key'], mock.keys.azure);
    assert.equal(seen?.headers.authorization, undefined);

    const { response } = await client.chat.completions.create({ model: 'gpt4o-prod', messages: USER }).withResponse();
    assert.match(response.headers.get('apim-request-id') ?? '', /^[0-9a-f-]{36}$/);

    const stream = await client.chat.completions.create({ model: 'gpt4o-prod', messages: USER, stream: true, stream_options: { include_usage: true } });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    assert.equal(chunks[0]?.choices.length, 0);
    assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), 'echo: hello world');
    assert.equal(chunks.at(-1)?.usage?.completion_tokens, 3);

    const emb = await client.embeddings.create({ model: 'emb-prod', input: 'alpha' });
    assert.equal(emb.data[0]?.embedding.length, 16);

    const unauth = await caught(new AzureOpenAI({ endpoint: mock.baseUrls.azure, apiKey: 'wrong', apiVersion: '2024-10-21', maxRetries: 0 }).chat.completions.create({ model: 'd', messages: USER }));
    assert.ok(unauth instanceof OpenAI.AuthenticationError);
    assert.equal(unauth.code, '401');
    const limited = await caught(client.chat.completions.create({ model: 'mock-429', messages: USER }));
    assert.ok(limited instanceof OpenAI.RateLimitError);
    assert.equal(limited.headers.get('retry-after-ms'), '1000');
    assert.equal(limited.headers.get('x-ratelimit-remaining-tokens'), '0');
    const missing = await caught(client.chat.completions.create({ model: 'mock-404', messages: USER }));
    assert.ok(missing instanceof OpenAI.NotFoundError);
    assert.equal(missing.code, 'DeploymentNotFound');

    const noVersion = await post(`${mock.baseUrls.azure}/openai/deployments/d/chat/completions`, { 'api-key': mock.keys.azure }, { messages: USER });
    assert.equal(noVersion.status, 404);
    assert.deepEqual(await noVersion.json(), { error: { code: '404', message: 'Resource not found' } });
  });
});

// ---------------------------------------------------------------------------------------------

void describe('Anthropic (official SDK)', () => {
  const params = { model: 'anthropic-mock-1', max_tokens: 256, system: 'be brief', messages: USER };

  void it('answers a message with the echo, usage and the request id', async () => {
    const msg = await anthropic().messages.create(params);
    assert.equal(msg.type, 'message');
    assert.equal(msg.role, 'assistant');
    assert.equal(msg.model, 'anthropic-mock-1');
    assert.deepEqual(msg.content, [{ type: 'text', text: 'echo: hello world' }]);
    assert.equal(msg.stop_reason, 'end_turn');
    assert.equal(msg.usage.input_tokens, 4);
    assert.equal(msg.usage.output_tokens, 3);
    assert.match(msg._request_id ?? '', /^req_/);
    const seen = mock.requests[0];
    assert.equal(seen?.provider, 'anthropic');
    assert.equal(seen?.headers.authorization, `Bearer ${mock.keys.anthropic}`);
    assert.ok(typeof seen?.headers['anthropic-version'] === 'string');
  });

  void it('accepts x-api-key, requires anthropic-version and sends anthropic-ratelimit-* with RFC 3339 resets', async () => {
    const ok = await post(`${mock.url}/v1/messages`, { 'x-api-key': mock.keys.anthropic, 'anthropic-version': '2023-06-01' }, params);
    assert.equal(ok.status, 200);
    for (const kind of ['requests', 'tokens', 'input-tokens', 'output-tokens']) {
      assert.match(ok.headers.get(`anthropic-ratelimit-${kind}-limit`) ?? '', /^\d+$/);
      assert.match(ok.headers.get(`anthropic-ratelimit-${kind}-reset`) ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    }
    const noVersion = await post(`${mock.url}/v1/messages`, { 'x-api-key': mock.keys.anthropic }, params);
    assert.equal(noVersion.status, 400);
    const body = await noVersion.json();
    assert.equal(at(body, 'type'), 'error');
    assert.equal(at(body, 'error', 'type'), 'invalid_request_error');
    assert.equal(at(body, 'request_id'), noVersion.headers.get('request-id'));
    const noMax = await post(`${mock.url}/v1/messages`, { 'x-api-key': mock.keys.anthropic, 'anthropic-version': '2023-06-01' }, { model: 'c', messages: USER });
    assert.equal(noMax.status, 400);
  });

  void it('streams named events in the documented order with cumulative usage', async () => {
    const stream = await anthropic().messages.create({ ...params, stream: true });
    const types: string[] = [];
    let text = '';
    let outputTokens = 0;
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
      if (ev.type === 'message_delta') outputTokens = ev.usage.output_tokens;
    }
    assert.deepEqual(types, ['message_start', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
    assert.equal(text, 'echo: hello world');
    assert.equal(outputTokens, 3);

    const raw = await post(`${mock.url}/v1/messages`, { 'x-api-key': mock.keys.anthropic, 'anthropic-version': '2023-06-01' }, { ...params, stream: true });
    const events = sse(await raw.text());
    assert.ok(events.some((e) => e.event === 'ping'));
    assert.ok(events.every((e) => e.event !== undefined && at(JSON.parse(e.data), 'type') === e.event));
  });

  void it('calls a declared tool, streamed as input_json_delta, and stops at max_tokens', async () => {
    const tools = [{ name: 'get_weather', input_schema: { type: 'object' as const, properties: { city: { type: 'string' } } } }];
    const final = await anthropic().messages.stream({ ...params, messages: [{ role: 'user', content: CALL_TEXT }], tools }).finalMessage();
    assert.equal(final.stop_reason, 'tool_use');
    const block = final.content[0];
    assert.equal(block?.type, 'tool_use');
    assert.deepEqual(block?.type === 'tool_use' ? [block.name, block.input, block.id] : [], ['get_weather', { city: 'Paris' }, 'toolu_0_get_weather']);

    // The tool result turn is answered with text, not another call.
    const next = await anthropic().messages.create({
      ...params,
      tools,
      messages: [
        { role: 'user', content: CALL_TEXT },
        { role: 'assistant', content: final.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_0_get_weather', content: 'sunny' }] },
      ],
    });
    assert.deepEqual(next.content, [{ type: 'text', text: 'echo: sunny' }]);

    const cut = await anthropic().messages.create({ ...params, max_tokens: 2 });
    assert.equal(cut.stop_reason, 'max_tokens');
    assert.deepEqual(cut.content, [{ type: 'text', text: 'echo: hello' }]);
  });

  void it('raises the SDK error class of each scenario, with request_id in body and header', async () => {
    const client = anthropic();
    const cases: [string, new (...args: never[]) => Error, number, string][] = [
      ['mock-400', Anthropic.BadRequestError, 400, 'invalid_request_error'],
      ['mock-401', Anthropic.AuthenticationError, 401, 'authentication_error'],
      ['mock-403', Anthropic.PermissionDeniedError, 403, 'permission_error'],
      ['mock-404', Anthropic.NotFoundError, 404, 'not_found_error'],
      ['mock-429', Anthropic.RateLimitError, 429, 'rate_limit_error'],
      ['mock-quota', Anthropic.PaymentRequiredError, 402, 'billing_error'],
      ['mock-500', Anthropic.InternalServerError, 500, 'api_error'],
      ['mock-529', Anthropic.OverloadedError, 529, 'overloaded_error'],
    ];
    for (const [model, cls, status, type] of cases) {
      const err = await caught(client.messages.create({ ...params, model }));
      assert.ok(err instanceof cls, `${model}: ${String(err)}`);
      assert.ok(err instanceof Anthropic.APIError);
      assert.equal(err.status, status, model);
      assert.equal(err.type, type, model);
      assert.match(err.requestID ?? '', /^req_/, model);
      assert.equal(at(err.error, 'request_id'), err.requestID, model);
    }
    const overloaded = await caught(client.messages.create({ ...params, model: 'mock-529' }));
    assert.ok(overloaded instanceof Anthropic.InternalServerError);
  });

  void it('429 carries retry-after and exhausted anthropic-ratelimit-* headers; a wrong key is a 401', async () => {
    const err = await caught(anthropic().messages.create({ ...params, model: 'mock-429' }));
    assert.ok(err instanceof Anthropic.RateLimitError);
    assert.equal(err.headers.get('retry-after'), '1');
    assert.equal(err.headers.get('anthropic-ratelimit-requests-remaining'), '0');
    assert.ok(Date.parse(err.headers.get('anthropic-ratelimit-requests-reset') ?? '') > Date.now() - 1000);
    const wrong = await caught(anthropic({ apiKey: 'sk-ant-wrong' }).messages.create(params));
    assert.ok(wrong instanceof Anthropic.AuthenticationError);
  });

  void it('an `event: error` after a 200 throws APIError with overloaded_error', async () => {
    const stream = await anthropic().messages.create({ ...params, model: 'mock-midstream-error', stream: true });
    const types: string[] = [];
    const err = await caught((async () => {
      for await (const ev of stream) types.push(ev.type);
    })());
    assert.ok(err instanceof Anthropic.APIError);
    assert.equal(err.status, undefined);
    assert.equal(err.type, 'overloaded_error');
    assert.deepEqual(types, ['message_start', 'content_block_start', 'content_block_delta']);
  });

  void it('honours retry-after-ms: one scripted 529, then success after exactly two requests', async () => {
    mock.script('anthropic', { scenario: '529', headers: { 'retry-after-ms': '10' } });
    const started = Date.now();
    const msg = await anthropic({ maxRetries: 1 }).messages.create(params);
    assert.equal(msg.stop_reason, 'end_turn');
    assert.deepEqual(mock.requests.map((r) => r.status), [529, 200]);
    assert.ok(Date.now() - started < 450);
  });
});

// ---------------------------------------------------------------------------------------------

void describe('Gemini (raw HTTP, documented format)', () => {
  const key = (): Record<string, string> => ({ 'x-goog-api-key': mock.keys.gemini });
  const req = { systemInstruction: { parts: [{ text: 'be brief' }] }, contents: [{ role: 'user', parts: [{ text: 'hi there' }] }] };

  void it('generateContent answers candidates and usageMetadata; the key may come as ?key=', async () => {
    const res = await post(`${mock.baseUrls.gemini}/models/gemini-2.5-flash:generateContent`, key(), req);
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(at(body, 'candidates', 0, 'content', 'role'), 'model');
    assert.deepEqual(at(body, 'candidates', 0, 'content', 'parts'), [{ text: 'echo: hi there' }]);
    assert.equal(at(body, 'candidates', 0, 'finishReason'), 'STOP');
    assert.equal(at(body, 'usageMetadata', 'promptTokenCount'), 4);
    assert.equal(at(body, 'usageMetadata', 'candidatesTokenCount'), 3);
    assert.equal(at(body, 'usageMetadata', 'totalTokenCount'), 7);
    assert.equal(at(body, 'modelVersion'), 'gemini-2.5-flash');
    assert.equal(mock.requests[0]?.model, 'gemini-2.5-flash');

    const viaQuery = await post(`${mock.baseUrls.gemini}/models/gemini-2.5-flash:generateContent?key=${mock.keys.gemini}`, {}, req);
    assert.equal(viaQuery.status, 200);
    const short = await post(`${mock.baseUrls.gemini}/models/g:generateContent`, key(), { ...req, generationConfig: { maxOutputTokens: 1 } });
    assert.equal(at(await short.json(), 'candidates', 0, 'finishReason'), 'MAX_TOKENS');
  });

  void it('streamGenerateContent?alt=sse sends data: chunks with CRLF and no [DONE]; without alt it is a JSON array', async () => {
    const res = await post(`${mock.baseUrls.gemini}/models/gemini-2.5-flash:streamGenerateContent?alt=sse`, key(), req);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const raw = await res.text();
    assert.ok(raw.includes('\r\n\r\n'));
    const events = sse(raw);
    assert.ok(events.every((e) => e.event === undefined && e.data !== '[DONE]'));
    const chunks = events.map((e): unknown => JSON.parse(e.data));
    assert.equal(chunks.map((c) => at(c, 'candidates', 0, 'content', 'parts', 0, 'text')).join(''), 'echo: hi there');
    assert.equal(at(chunks.at(-1), 'candidates', 0, 'finishReason'), 'STOP');
    assert.equal(at(chunks.at(-1), 'usageMetadata', 'candidatesTokenCount'), 3);

    const array = await post(`${mock.baseUrls.gemini}/models/gemini-2.5-flash:streamGenerateContent`, key(), req);
    const parsed: unknown = await array.json();
    assert.ok(Array.isArray(parsed));
    assert.equal(parsed.length, 3);
  });

  void it('answers a functionCall for a declared function, streamed too', async () => {
    const tools = [{ functionDeclarations: [{ name: 'get_weather', parameters: { type: 'OBJECT' } }] }];
    const body = { contents: [{ role: 'user', parts: [{ text: CALL_TEXT }] }], tools };
    const res = await post(`${mock.baseUrls.gemini}/models/g:generateContent`, key(), body);
    assert.deepEqual(at(await res.json(), 'candidates', 0, 'content', 'parts'), [{ functionCall: { name: 'get_weather', args: { city: 'Paris' } } }]);
    const streamed = sse(await (await post(`${mock.baseUrls.gemini}/models/g:streamGenerateContent?alt=sse`, key(), body)).text());
    assert.deepEqual(at(JSON.parse(streamed[0]?.data ?? ''), 'candidates', 0, 'content', 'parts', 0, 'functionCall'), { name: 'get_weather', args: { city: 'Paris' } });
  });

  void it('errors are google.rpc.Status: bad key 400 API_KEY_INVALID, no key 403, 429 with RetryInfo, 404, 503', async () => {
    const bad = await post(`${mock.baseUrls.gemini}/models/g:generateContent`, { 'x-goog-api-key': 'wrong' }, req);
    assert.equal(bad.status, 400);
    const badBody = await bad.json();
    assert.equal(at(badBody, 'error', 'code'), 400);
    assert.equal(at(badBody, 'error', 'status'), 'INVALID_ARGUMENT');
    assert.equal(at(badBody, 'error', 'details', 0, '@type'), 'type.googleapis.com/google.rpc.ErrorInfo');
    assert.equal(at(badBody, 'error', 'details', 0, 'reason'), 'API_KEY_INVALID');
    const scripted401 = await post(`${mock.baseUrls.gemini}/models/mock-401:generateContent`, key(), req);
    assert.equal(scripted401.status, 400);

    const none = await post(`${mock.baseUrls.gemini}/models/g:generateContent`, {}, req);
    assert.equal(none.status, 403);
    assert.equal(at(await none.json(), 'error', 'status'), 'PERMISSION_DENIED');

    mock.script('gemini', { scenario: '429', retryAfter: 7 });
    const limited = await post(`${mock.baseUrls.gemini}/models/g:generateContent`, key(), req);
    assert.equal(limited.status, 429);
    const details = at(await limited.json(), 'error', 'details');
    assert.ok(Array.isArray(details));
    const retry: unknown = (details as unknown[]).find((d) => at(d, '@type') === 'type.googleapis.com/google.rpc.RetryInfo');
    assert.equal(at(retry, 'retryDelay'), '7s');

    for (const [model, status, rpc] of [['mock-404', 404, 'NOT_FOUND'], ['mock-403', 403, 'PERMISSION_DENIED'], ['mock-500', 500, 'INTERNAL'], ['mock-503', 503, 'UNAVAILABLE'], ['mock-quota', 429, 'RESOURCE_EXHAUSTED']] as const) {
      const res = await post(`${mock.baseUrls.gemini}/models/${model}:generateContent`, key(), req);
      assert.equal(res.status, status, model);
      const body = await res.json();
      assert.equal(at(body, 'error', 'code'), status, model);
      assert.equal(at(body, 'error', 'status'), rpc, model);
    }
  });

  void it('a mid-stream error is a data: {"error":…} event after the first chunk', async () => {
    const res = await post(`${mock.baseUrls.gemini}/models/mock-midstream-error:streamGenerateContent?alt=sse`, key(), req);
    assert.equal(res.status, 200);
    const events = sse(await res.text()).map((e): unknown => JSON.parse(e.data));
    assert.equal(events.length, 2);
    assert.equal(at(events[0], 'candidates', 0, 'content', 'parts', 0, 'text'), 'echo:');
    assert.equal(at(events[1], 'error', 'status'), 'UNAVAILABLE');
  });

  void it('batchEmbedContents answers one deterministic vector per request', async () => {
    const body = {
      requests: [
        { model: 'models/text-embedding-004', content: { parts: [{ text: 'alpha' }] } },
        { model: 'models/text-embedding-004', content: { parts: [{ text: 'alpha' }] }, outputDimensionality: 4 },
      ],
    };
    const res = await post(`${mock.baseUrls.gemini}/models/text-embedding-004:batchEmbedContents`, key(), body);
    const embeddings = at(await res.json(), 'embeddings');
    assert.ok(Array.isArray(embeddings));
    const [a, b] = embeddings.map((e) => at(e, 'values'));
    assert.ok(Array.isArray(a) && Array.isArray(b));
    assert.equal(a.length, 16);
    assert.deepEqual(b, a.slice(0, 4));
  });
});

// ---------------------------------------------------------------------------------------------

void describe('scripting and recording', () => {
  void it('a queued handler can answer anything, or delegate to a scenario', async () => {
    mock.script('/v1/responses', ({ res }) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"object":"response"}');
    });
    const custom = await post(`${mock.baseUrls.openai}/responses`, {}, { model: 'gpt-4o' });
    assert.deepEqual(await custom.json(), { object: 'response' });

    let seenModel: string | undefined;
    mock.script('openai', async (call) => {
      seenModel = call.request.model;
      await call.respond('401');
    });
    const err = await caught(openai().chat.completions.create({ model: 'gpt-4o', messages: USER }));
    assert.ok(err instanceof OpenAI.AuthenticationError);
    assert.equal(seenModel, 'gpt-4o');
    // The queue is empty again: the model name decides.
    await openai().chat.completions.create({ model: 'gpt-4o', messages: USER });
    assert.deepEqual(mock.requests.map((r) => [r.path, r.status]), [['/v1/responses', 200], ['/v1/chat/completions', 401], ['/v1/chat/completions', 200]]);
  });

  void it('steps are consumed in order, path queues before provider queues', async () => {
    mock.script('openai', '500');
    mock.script('/v1/chat/completions', '503');
    const client = openai();
    const first = await caught(client.chat.completions.create({ model: 'gpt-4o', messages: USER }));
    const second = await caught(client.chat.completions.create({ model: 'gpt-4o', messages: USER }));
    assert.ok(first instanceof OpenAI.APIError && second instanceof OpenAI.APIError);
    assert.deepEqual([first.status, second.status], [503, 500]);
    assert.equal(mock.pending('openai'), 0);
  });

  void it('unknown paths get the provider-shaped 404 and are recorded', async () => {
    const err = await caught(openai().post('/nope', { body: {} }));
    assert.ok(err instanceof OpenAI.NotFoundError);
    assert.equal(mock.requests[0]?.path, '/v1/nope');
    const gemini = await post(`${mock.baseUrls.gemini}/models/g:nope`, key(), {});
    assert.equal(gemini.status, 404);
    function key(): Record<string, string> {
      return { 'x-goog-api-key': mock.keys.gemini };
    }
  });

  void it('record: false keeps nothing; close() ends hanging requests', async () => {
    const quiet = await startMockProviders({ record: false });
    const hanging = fetch(`${quiet.baseUrls.openai}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${quiet.keys.openai}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mock-hang', messages: USER }),
    });
    const settled = hanging.then(() => 'answered', () => 'failed');
    await new Promise((r) => setTimeout(r, 30));
    const started = Date.now();
    await quiet.close();
    assert.equal(await settled, 'failed');
    assert.ok(Date.now() - started < 500);
    assert.equal(quiet.requests.length, 0);
  });
});
