import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseSse } from '../../sse.ts';
import type { ChatRequest, ProviderError, ProviderTarget, ResponseContext, StreamStep } from '../../types.ts';
import { UnsupportedParameterError } from '../../types.ts';
import { mistral } from './index.ts';

const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const text = (name: string): string => readFileSync(path.join(FIXTURES, name), 'utf8');
const json = (name: string): Record<string, unknown> => JSON.parse(text(name)) as Record<string, unknown>;

const CTX: ResponseContext = { id: 'chatcmpl-gw-3', created: 1_700_000_200, model: 'mistral/mistral-small-latest' };
const TARGET: ProviderTarget = { providerId: 'mistral', type: 'mistral', baseUrl: 'https://api.mistral.ai/v1', model: 'mistral-small-latest', headers: {} };
const REQ: ChatRequest = { model: 'mistral/mistral-small-latest', messages: [{ role: 'user', content: 'Qui est le meilleur peintre français ?' }] };

function stream(sse: string, req: ChatRequest): StreamStep[] {
  const m = mistral.chatStream(CTX, req);
  const steps = parseSse(sse).map((ev) => m.event(ev));
  steps.push(m.end());
  return steps;
}

void test('mistral: adapter identity', () => {
  assert.equal(mistral.type, 'mistral');
  assert.equal(mistral.defaultBaseUrl, 'https://api.mistral.ai/v1');
  assert.deepEqual(mistral.requestIdHeaders, ['mistral-correlation-id', 'x-kong-request-id']);
});

void test('mistral: golden chat request with Mistral\u2019s names', () => {
  const req: ChatRequest = {
    ...REQ,
    temperature: 1.5,
    top_p: 0.95,
    n: 2,
    stop: 'FIN',
    max_completion_tokens: 256,
    presence_penalty: 0.1,
    frequency_penalty: 0.2,
    seed: 1337,
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }],
    tool_choice: 'required',
    parallel_tool_calls: true,
    response_format: { type: 'json_object' },
    logprobs: false,
  };
  const call = mistral.chat(req, TARGET, 'ms-key');
  assert.equal(call.url, 'https://api.mistral.ai/v1/chat/completions');
  assert.deepEqual(call.headers, { 'content-type': 'application/json', authorization: 'Bearer ms-key' });
  assert.deepEqual(JSON.parse(call.body ?? ''), {
    model: 'mistral-small-latest',
    messages: [{ role: 'user', content: 'Qui est le meilleur peintre français ?' }],
    temperature: 1.5,
    top_p: 0.95,
    n: 2,
    stop: 'FIN',
    max_tokens: 256,
    presence_penalty: 0.1,
    frequency_penalty: 0.2,
    random_seed: 1337,
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }],
    tool_choice: 'any',
    parallel_tool_calls: true,
    response_format: { type: 'json_object' },
  });
});

void test('mistral: streaming request sends no stream_options (Mistral refuses it and reports usage anyway)', () => {
  const body = JSON.parse(mistral.chat({ ...REQ, stream: true, stream_options: { include_usage: true } }, TARGET, 'ms-key').body ?? '') as Record<string, unknown>;
  assert.deepEqual(body, { model: 'mistral-small-latest', messages: REQ.messages, stream: true });
});

void test('mistral: every parameter Mistral cannot honour is refused by name', () => {
  const cases: readonly [Partial<ChatRequest>, string, string][] = [
    [{ temperature: 1.6 }, 'temperature', '0..1.5'],
    [{ temperature: -0.1 }, 'temperature', '0..1.5'],
    [{ top_p: 1.2 }, 'top_p', '0..1'],
    [{ n: 0 }, 'n', '>= 1'],
    [{ presence_penalty: 2.2 }, 'presence_penalty', '-2..2'],
    [{ frequency_penalty: -2.2 }, 'frequency_penalty', '-2..2'],
    [{ logit_bias: { '1': 5 } }, 'logit_bias', 'omitted'],
    [{ logprobs: true }, 'logprobs', 'omitted'],
    [{ top_logprobs: 2 }, 'top_logprobs', 'omitted'],
    [{ user: 'user-7' }, 'user', 'omitted'],
  ];
  for (const [over, param, accepted] of cases) {
    assert.throws(
      () => mistral.chat({ ...REQ, ...over }, TARGET, 'k'),
      (e: unknown) => e instanceof UnsupportedParameterError && e.param === param && e.accepted === accepted && e.provider === 'mistral',
      param,
    );
  }
});

void test('mistral: chat.completion fixture', () => {
  const body = json('chat.json');
  const out = mistral.chatResult(body, CTX);
  assert.deepEqual(out, { ...body, model: 'mistral/mistral-small-latest' });
  assert.equal(out.id, 'cmpl-e5cc70bb28c444948073e77776eb30ef');
  assert.equal(out.created, 1702256327);
  assert.deepEqual(out.usage, { prompt_tokens: 16, completion_tokens: 10, total_tokens: 26 });
});

void test('mistral: tool-call fixture keeps arguments as JSON text', () => {
  const out = mistral.chatResult(json('chat-tool-calls.json'), CTX);
  assert.equal(out.choices[0]?.finish_reason, 'tool_calls');
  assert.deepEqual(out.choices[0]?.message.tool_calls, [{ id: 'D681PevKs', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' }, index: 0 }]);
});

const chunk = (choices: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  id: '7f9d6c1e2b3a4f5e8d7c6b5a4f3e2d1c',
  object: 'chat.completion.chunk',
  created: 1741570400,
  model: 'mistral/mistral-small-latest',
  choices,
  ...extra,
});

void test('mistral: stream fixture: usage on the last chunk is reported, taken off it, and sent on its own only when asked', () => {
  const expected = [
    chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]),
    chunk([{ index: 0, delta: { content: 'Bonjour' }, finish_reason: null }]),
    chunk([{ index: 0, delta: { content: ' !' }, finish_reason: 'stop' }]),
  ];
  const quiet = stream(text('stream.sse'), { ...REQ, stream: true });
  assert.deepEqual(
    quiet.flatMap((s) => s.chunks),
    expected,
  );
  assert.deepEqual(quiet[2]?.usage, { prompt_tokens: 8, completion_tokens: 3, total_tokens: 11 });
  assert.deepEqual(quiet[3], { chunks: [], done: true });

  const asked = stream(text('stream.sse'), { ...REQ, stream: true, stream_options: { include_usage: true } });
  assert.deepEqual(
    asked.flatMap((s) => s.chunks),
    [...expected, chunk([], { usage: { prompt_tokens: 8, total_tokens: 11, completion_tokens: 3 } })],
  );
  assert.equal(asked[3]?.done, true);
});

void test('mistral: mid-stream error in Mistral\u2019s envelope', () => {
  const steps = stream(text('stream-error.sse'), { ...REQ, stream: true });
  assert.equal(steps.flatMap((s) => s.chunks).length, 2);
  assert.deepEqual(steps[2], {
    chunks: [],
    error: { status: 500, kind: 'server', type: 'server_error', code: null, message: 'Service unavailable.', requestId: null, retryAfterMs: null, param: null },
  });
});

void test('mistral: embeddings request (output_dimension, text only) and response', () => {
  const call = mistral.embeddings?.({ model: 'embed', input: ['a', 'b'], dimensions: 512, encoding_format: 'float' }, { ...TARGET, model: 'codestral-embed' }, 'ms-key');
  assert.equal(call?.url, 'https://api.mistral.ai/v1/embeddings');
  assert.deepEqual(JSON.parse(call?.body ?? ''), { model: 'codestral-embed', input: ['a', 'b'], output_dimension: 512, encoding_format: 'float' });
  assert.throws(() => mistral.embeddings?.({ model: 'embed', input: [[1, 2]] }, TARGET, 'k'), (e: unknown) => e instanceof UnsupportedParameterError && e.param === 'input');
  assert.throws(() => mistral.embeddings?.({ model: 'embed', input: 'a', user: 'u' }, TARGET, 'k'), (e: unknown) => e instanceof UnsupportedParameterError && e.param === 'user');
  const body = json('embeddings.json');
  assert.deepEqual(mistral.embeddingsResult?.(body, { ...CTX, model: 'embed' }), { ...body, model: 'embed' });
});

type Expected = Pick<ProviderError, 'kind' | 'type' | 'code' | 'param' | 'requestId' | 'retryAfterMs' | 'message'>;

void test('mistral: error fixtures, in each of Mistral\u2019s body shapes', () => {
  const cases: readonly [string, number, Record<string, string>, Expected][] = [
    [
      'error-400.json',
      400,
      { 'mistral-correlation-id': 'corr-400', 'x-kong-request-id': 'kong-400' },
      { kind: 'bad_request', type: 'invalid_request_error', code: null, param: null, requestId: 'corr-400', retryAfterMs: null, message: 'Assistant message must have either content or tool_calls, but not none.' },
    ],
    [
      'error-401.json',
      401,
      { 'x-kong-request-id': '1a794543e980ec54d493cd1edd88800c' },
      { kind: 'auth', type: null, code: null, param: null, requestId: '1a794543e980ec54d493cd1edd88800c', retryAfterMs: null, message: 'Unauthorized' },
    ],
    [
      'error-422-detail.json',
      422,
      { 'mistral-correlation-id': 'corr-422' },
      {
        kind: 'bad_request',
        type: null,
        code: null,
        param: 'store',
        requestId: 'corr-422',
        retryAfterMs: null,
        message: 'store: Extra inputs are not permitted; max_completion_tokens: Extra inputs are not permitted',
      },
    ],
    [
      'error-422-wrapped.json',
      422,
      { 'mistral-correlation-id': 'corr-422b' },
      { kind: 'bad_request', type: 'invalid_request_error', code: null, param: 'temperature', requestId: 'corr-422b', retryAfterMs: null, message: 'temperature: Input should be less than or equal to 1.5' },
    ],
    [
      'error-429-rate-limit.json',
      429,
      { 'mistral-correlation-id': 'corr-429', 'retry-after': '3', 'x-ratelimit-remaining-req-minute': '0' },
      { kind: 'rate_limited', type: 'rate_limited', code: '1300', param: null, requestId: 'corr-429', retryAfterMs: 3000, message: 'Rate limit exceeded' },
    ],
    ['error-429-gateway.json', 429, { 'x-kong-request-id': 'kong-429' }, { kind: 'rate_limited', type: null, code: null, param: null, requestId: 'kong-429', retryAfterMs: null, message: 'Requests rate limit exceeded' }],
    ['error-500.json', 500, { 'mistral-correlation-id': 'corr-500' }, { kind: 'server', type: 'server_error', code: null, param: null, requestId: 'corr-500', retryAfterMs: null, message: 'Internal server error' }],
    ['error-503.json', 503, { 'mistral-correlation-id': 'corr-503' }, { kind: 'overloaded', type: 'server_error', code: null, param: null, requestId: 'corr-503', retryAfterMs: null, message: 'Service unavailable.' }],
  ];
  for (const [file, status, headers, expected] of cases) {
    const e = mistral.error(status, headers, text(file));
    assert.equal(e.status, status, file);
    assert.deepEqual({ kind: e.kind, type: e.type, code: e.code, param: e.param, requestId: e.requestId, retryAfterMs: e.retryAfterMs, message: e.message }, expected, file);
  }
});

void test('mistral: the Kong body\u2019s request_id is used when no request-id header came', () => {
  assert.equal(mistral.error(401, {}, text('error-401.json')).requestId, '1a794543e980ec54d493cd1edd88800c');
});
