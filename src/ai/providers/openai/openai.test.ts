import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseSse } from '../../sse.ts';
import type { ChatRequest, ProviderError, ProviderTarget, ResponseContext, StreamStep } from '../../types.ts';
import { UnsupportedParameterError } from '../../types.ts';
import { openai } from './index.ts';

const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const text = (name: string): string => readFileSync(path.join(FIXTURES, name), 'utf8');
const json = (name: string): Record<string, unknown> => JSON.parse(text(name)) as Record<string, unknown>;

const CTX: ResponseContext = { id: 'chatcmpl-gw-1', created: 1_700_000_000, model: 'smart' };
const TARGET: ProviderTarget = {
  providerId: 'oai',
  type: 'openai',
  baseUrl: 'https://api.openai.com/v1',
  model: 'gpt-4o-2024-08-06',
  headers: { 'OpenAI-Organization': 'org-Ab12Cd34' },
};
const REQ: ChatRequest = { model: 'smart', messages: [{ role: 'user', content: 'Capital of France?' }] };

function stream(sse: string, req: ChatRequest): StreamStep[] {
  const m = openai.chatStream(CTX, req);
  const steps = parseSse(sse).map((ev) => m.event(ev));
  steps.push(m.end());
  return steps;
}

void test('openai: adapter identity', () => {
  assert.equal(openai.type, 'openai');
  assert.equal(openai.defaultBaseUrl, 'https://api.openai.com/v1');
  assert.deepEqual(openai.requestIdHeaders, ['x-request-id']);
});

void test('openai: golden chat request', () => {
  const req: ChatRequest = {
    ...REQ,
    temperature: 0.2,
    top_p: 0.9,
    n: 2,
    stop: ['\n\n'],
    max_completion_tokens: 300,
    presence_penalty: 0.5,
    frequency_penalty: -0.5,
    seed: 42,
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
    tool_choice: 'required',
    parallel_tool_calls: false,
    response_format: { type: 'json_object' },
    user: 'user-7',
    logprobs: true,
    top_logprobs: 3,
    logit_bias: { '50256': -100 },
  };
  const call = openai.chat(req, TARGET, 'sk-test');
  assert.deepEqual(call, {
    method: 'POST',
    url: 'https://api.openai.com/v1/chat/completions',
    headers: { 'openai-organization': 'org-Ab12Cd34', 'content-type': 'application/json', authorization: 'Bearer sk-test' },
    body: call.body,
  });
  assert.deepEqual(JSON.parse(call.body ?? ''), { ...req, model: 'gpt-4o-2024-08-06' });
});

void test('openai: golden streaming request asks for usage', () => {
  const call = openai.chat({ ...REQ, stream: true }, TARGET, 'sk-test');
  assert.deepEqual(JSON.parse(call.body ?? ''), {
    model: 'gpt-4o-2024-08-06',
    messages: [{ role: 'user', content: 'Capital of France?' }],
    stream: true,
    stream_options: { include_usage: true },
  });
});

void test('openai: every out-of-range parameter is an UnsupportedParameterError naming it', () => {
  const cases: readonly [Partial<ChatRequest>, string, string][] = [
    [{ temperature: 2.1 }, 'temperature', '0..2'],
    [{ top_p: 1.01 }, 'top_p', '0..1'],
    [{ n: 129 }, 'n', '1..128'],
    [{ presence_penalty: -2.01 }, 'presence_penalty', '-2..2'],
    [{ frequency_penalty: 2.01 }, 'frequency_penalty', '-2..2'],
    [{ top_logprobs: 21 }, 'top_logprobs', '0..20'],
    [{ logit_bias: { '42': 100.5 } }, 'logit_bias.42', '-100..100'],
  ];
  for (const [over, param, accepted] of cases) {
    assert.throws(
      () => openai.chat({ ...REQ, ...over }, TARGET, 'k'),
      (e: unknown) => e instanceof UnsupportedParameterError && e.param === param && e.accepted === accepted && e.provider === 'openai',
      param,
    );
  }
});

void test('openai: chat.completion fixture keeps the provider id, created and usage; model is the client\u2019s', () => {
  const body = json('chat.json');
  const out = openai.chatResult(body, CTX);
  assert.deepEqual(out, { ...body, model: 'smart' });
  assert.equal(out.id, 'chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG');
  assert.equal(out.created, 1741570283);
  assert.deepEqual(out.usage, {
    prompt_tokens: 14,
    completion_tokens: 8,
    total_tokens: 22,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  });
});

void test('openai: tool-call response passes as OpenAI sent it', () => {
  const out = openai.chatResult(json('chat-tool-calls.json'), CTX);
  assert.equal(out.choices[0]?.finish_reason, 'tool_calls');
  assert.deepEqual(out.choices[0]?.message.tool_calls, [{ id: 'call_6Vq2bJgNbD0ZJx3xgq0AJuse', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }]);
});

const ID = 'chatcmpl-B9MJ2Yq8oMcmSPGFN4J1Ym1m1ASoQ';
const chunk = (choices: unknown[], extra: Record<string, unknown>): Record<string, unknown> => ({
  id: ID,
  object: 'chat.completion.chunk',
  created: 1741570400,
  model: 'smart',
  service_tier: 'default',
  system_fingerprint: 'fp_fc9f1d7035',
  choices,
  ...extra,
});
const STREAM_USAGE = {
  prompt_tokens: 9,
  completion_tokens: 2,
  total_tokens: 11,
  prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
  completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
};

void test('openai: stream fixture, client did not ask for usage: usage chunk dropped, usage reported, [DONE] ends', () => {
  const steps = stream(text('stream.sse'), { ...REQ, stream: true });
  assert.deepEqual(
    steps.flatMap((s) => s.chunks),
    [
      chunk([{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }], { obfuscation: 'p4lK1' }),
      chunk([{ index: 0, delta: { content: 'Hello' }, logprobs: null, finish_reason: null }], { obfuscation: 'Xq' }),
      chunk([{ index: 0, delta: { content: ' there' }, logprobs: null, finish_reason: null }], { obfuscation: 'a' }),
      chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }], { obfuscation: 'nW3d' }),
    ],
  );
  assert.deepEqual(steps[4], { chunks: [], usage: { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 } });
  assert.deepEqual(steps[5], { chunks: [], done: true });
  assert.deepEqual(steps[6], { chunks: [] });
});

void test('openai: stream fixture, client asked for usage: every chunk as OpenAI sent it', () => {
  const steps = stream(text('stream.sse'), { ...REQ, stream: true, stream_options: { include_usage: true } });
  assert.deepEqual(
    steps.flatMap((s) => s.chunks),
    [
      chunk([{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }], { usage: null, obfuscation: 'p4lK1' }),
      chunk([{ index: 0, delta: { content: 'Hello' }, logprobs: null, finish_reason: null }], { usage: null, obfuscation: 'Xq' }),
      chunk([{ index: 0, delta: { content: ' there' }, logprobs: null, finish_reason: null }], { usage: null, obfuscation: 'a' }),
      chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }], { usage: null, obfuscation: 'nW3d' }),
      chunk([], { usage: STREAM_USAGE, obfuscation: 'R8' }),
    ],
  );
  assert.equal(steps[5]?.done, true);
});

void test('openai: mid-stream error after two chunks', () => {
  const steps = stream(text('stream-error.sse'), { ...REQ, stream: true });
  assert.equal(steps.flatMap((s) => s.chunks).length, 2);
  assert.deepEqual(steps[2], {
    chunks: [],
    error: {
      status: 500,
      kind: 'server',
      type: 'server_error',
      code: null,
      message: 'The server had an error while processing your request. Sorry about that!',
      requestId: null,
      retryAfterMs: null,
      param: null,
    },
  });
  assert.deepEqual(steps[3], { chunks: [] });
});

void test('openai: embeddings request and response', () => {
  const call = openai.embeddings?.({ model: 'embed', input: ['hello'], dimensions: 256, encoding_format: 'float', user: 'u' }, { ...TARGET, model: 'text-embedding-3-small' }, 'sk-test');
  assert.equal(call?.url, 'https://api.openai.com/v1/embeddings');
  assert.deepEqual(JSON.parse(call?.body ?? ''), { model: 'text-embedding-3-small', input: ['hello'], dimensions: 256, encoding_format: 'float', user: 'u' });
  const body = json('embeddings.json');
  assert.deepEqual(openai.embeddingsResult?.(body, { ...CTX, model: 'embed' }), { ...body, model: 'embed' });
});

type Expected = Pick<ProviderError, 'kind' | 'type' | 'code' | 'param' | 'requestId' | 'retryAfterMs'>;

void test('openai: error fixtures', () => {
  const cases: readonly [string, number, Record<string, string>, Expected][] = [
    ['error-400.json', 400, { 'x-request-id': 'req_400' }, { kind: 'bad_request', type: 'invalid_request_error', code: 'context_length_exceeded', param: 'messages', requestId: 'req_400', retryAfterMs: null }],
    ['error-401.json', 401, { 'x-request-id': 'req_401' }, { kind: 'auth', type: 'invalid_request_error', code: 'invalid_api_key', param: null, requestId: 'req_401', retryAfterMs: null }],
    ['error-403.json', 403, { 'x-request-id': 'req_403' }, { kind: 'permission', type: 'request_forbidden', code: 'unsupported_country_region_territory', param: null, requestId: 'req_403', retryAfterMs: null }],
    ['error-404.json', 404, { 'x-request-id': 'req_404' }, { kind: 'not_found', type: 'invalid_request_error', code: 'model_not_found', param: null, requestId: 'req_404', retryAfterMs: null }],
    ['error-429-rate-limit.json', 429, { 'x-request-id': 'req_429', 'retry-after': '2' }, { kind: 'rate_limited', type: 'tokens', code: 'rate_limit_exceeded', param: null, requestId: 'req_429', retryAfterMs: 2000 }],
    ['error-429-insufficient-quota.json', 429, { 'x-request-id': 'req_quota' }, { kind: 'quota', type: 'insufficient_quota', code: 'insufficient_quota', param: null, requestId: 'req_quota', retryAfterMs: null }],
    ['error-500.json', 500, { 'x-request-id': 'req_500' }, { kind: 'server', type: 'server_error', code: null, param: null, requestId: 'req_500', retryAfterMs: null }],
    ['error-503.json', 503, { 'x-request-id': 'req_503', 'retry-after-ms': '750' }, { kind: 'overloaded', type: 'server_error', code: null, param: null, requestId: 'req_503', retryAfterMs: 750 }],
    ['error-502.html', 502, { 'cf-ray': '8f1e2d3c4b5a6978-CDG' }, { kind: 'server', type: null, code: null, param: null, requestId: null, retryAfterMs: null }],
  ];
  for (const [file, status, headers, expected] of cases) {
    const body = text(file);
    const e = openai.error(status, headers, body);
    assert.equal(e.status, status, file);
    assert.deepEqual({ kind: e.kind, type: e.type, code: e.code, param: e.param, requestId: e.requestId, retryAfterMs: e.retryAfterMs }, expected, file);
    const stated = (JSON.parse(file.endsWith('.json') ? body : '{}') as { error?: { message?: string } }).error?.message;
    if (stated !== undefined) assert.equal(e.message, stated, file);
    else assert.ok(e.message.includes(body.trim().slice(0, 200)), file);
  }
});
