import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSse, sseData } from '../../sse.ts';
import type { ChatRequest, ProviderAdapter, ProviderErrorKind, ProviderTarget, ResponseContext, StreamStep } from '../../types.ts';
import { UnsupportedParameterError } from '../../types.ts';
import { OMITTED, OPENAI_CHAT_RULES, kindOf, openAICompatible, readErrorBody, statusOfError, usageOf, type OpenAICompatibleSpec } from './base.ts';
import { retryAfterMs } from '../shared/errors.ts';

const CTX: ResponseContext = { id: 'chatcmpl-gw-1', created: 1_700_000_000, model: 'my-alias' };

function target(over: Partial<ProviderTarget> = {}): ProviderTarget {
  return { providerId: 'p1', type: 'openai-compatible', baseUrl: 'https://llm.example/v1', model: 'upstream-model', headers: {}, ...over };
}

const SPEC: OpenAICompatibleSpec = {
  type: 'openai-compatible',
  defaultBaseUrl: undefined,
  auth: 'bearer',
  requestIdHeaders: ['x-request-id', 'x-other-id'],
  streamUsage: 'stream_options',
  chat: OPENAI_CHAT_RULES,
  embeddings: {},
};

/** A spec shaped like Mistral's: usage always in streams, renames, a value map, unsupported fields. */
const RENAMING: OpenAICompatibleSpec = {
  ...SPEC,
  type: 'mistral',
  streamUsage: 'always',
  chat: {
    ranges: { temperature: { min: 0, max: 1.5 }, n: { min: 1 } },
    unsupported: ['logit_bias', 'logprobs', 'user'],
    renames: { seed: 'random_seed', max_completion_tokens: 'max_tokens' },
    toolChoice: { required: 'any' },
  },
  embeddings: { textInputOnly: true, unsupported: ['user'], renames: { dimensions: 'output_dimension' } },
};

const plain = openAICompatible(SPEC);
const renaming = openAICompatible(RENAMING);

const REQ: ChatRequest = { model: 'my-alias', messages: [{ role: 'user', content: 'Hi' }] };

function bodyOf(adapter: ProviderAdapter, req: ChatRequest, t: ProviderTarget = target()): Record<string, unknown> {
  return JSON.parse(adapter.chat(req, t, 'k').body ?? 'null') as Record<string, unknown>;
}

function unsupported(fn: () => unknown): UnsupportedParameterError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof UnsupportedParameterError, `expected UnsupportedParameterError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected an UnsupportedParameterError');
}

function run(adapter: ProviderAdapter, sse: string, req: ChatRequest): StreamStep[] {
  const m = adapter.chatStream(CTX, req);
  const steps = parseSse(sse).map((ev) => m.event(ev));
  steps.push(m.end());
  return steps;
}

const chunks = (steps: readonly StreamStep[]): unknown[] => steps.flatMap((s) => s.chunks);

// ---------------------------------------------------------------------------------------------
// Requests.

void test('chat call: POST to {base}/chat/completions with the target model and JSON body', () => {
  const call = plain.chat({ ...REQ, temperature: 0.3 }, target(), 'sk-1');
  assert.equal(call.method, 'POST');
  assert.equal(call.url, 'https://llm.example/v1/chat/completions');
  assert.deepEqual(JSON.parse(call.body ?? ''), { model: 'upstream-model', messages: [{ role: 'user', content: 'Hi' }], temperature: 0.3 });
});

void test('chat call: a trailing slash on the base URL is not doubled; an empty base URL is refused', () => {
  assert.equal(plain.chat(REQ, target({ baseUrl: 'https://llm.example/v1/' }), undefined).url, 'https://llm.example/v1/chat/completions');
  assert.throws(() => plain.chat(REQ, target({ baseUrl: '' }), undefined), /base_url/);
});

void test('auth: Bearer with a key, api-key style, and no credential header without a key', () => {
  assert.deepEqual(plain.chat(REQ, target(), 'sk-1').headers, { 'content-type': 'application/json', authorization: 'Bearer sk-1' });
  assert.deepEqual(plain.chat(REQ, target(), undefined).headers, { 'content-type': 'application/json' });
  assert.deepEqual(plain.chat(REQ, target(), '').headers, { 'content-type': 'application/json' });
  const apiKey = openAICompatible({ ...SPEC, auth: 'api-key' });
  assert.deepEqual(apiKey.chat(REQ, target(), 'az-1').headers, { 'content-type': 'application/json', 'api-key': 'az-1' });
  assert.deepEqual(apiKey.chat(REQ, target(), undefined).headers, { 'content-type': 'application/json' });
});

void test('config headers are sent with lower-case names; the credential header is the key\u2019s', () => {
  const h = plain.chat(REQ, target({ headers: { 'OpenAI-Organization': 'org-1', Authorization: 'Bearer stale' } }), 'sk-1').headers;
  assert.deepEqual(h, { 'openai-organization': 'org-1', authorization: 'Bearer sk-1', 'content-type': 'application/json' });
});

void test('streaming: include_usage is always asked upstream, other stream options kept', () => {
  assert.deepEqual(bodyOf(plain, { ...REQ, stream: true })['stream_options'], { include_usage: true });
  assert.deepEqual(bodyOf(plain, { ...REQ, stream: true, stream_options: { include_usage: false } })['stream_options'], { include_usage: true });
  const withExtra = { ...REQ, stream: true, stream_options: { include_usage: true, include_obfuscation: false } } as ChatRequest;
  assert.deepEqual(bodyOf(plain, withExtra)['stream_options'], { include_usage: true, include_obfuscation: false });
  assert.equal('stream_options' in bodyOf(plain, REQ), false);
});

void test('streaming, provider that reports usage unasked: no stream_options is sent', () => {
  const body = bodyOf(renaming, { ...REQ, stream: true, stream_options: { include_usage: true } });
  assert.equal(body['stream'], true);
  assert.equal('stream_options' in body, false);
});

void test('ranges: every bound is enforced, never clamped; values inside pass as they are', () => {
  const cases: readonly [keyof ChatRequest, number, string][] = [
    ['temperature', 2.01, '0..2'],
    ['temperature', -0.1, '0..2'],
    ['top_p', 1.5, '0..1'],
    ['n', 0, '1..128'],
    ['n', 129, '1..128'],
    ['presence_penalty', -2.5, '-2..2'],
    ['frequency_penalty', 2.5, '-2..2'],
    ['top_logprobs', 21, '0..20'],
  ];
  for (const [param, value, accepted] of cases) {
    const e = unsupported(() => plain.chat({ ...REQ, [param]: value }, target(), 'k'));
    assert.equal(e.param, param);
    assert.equal(e.accepted, accepted);
    assert.equal(e.provider, 'openai-compatible');
  }
  assert.equal(bodyOf(plain, { ...REQ, temperature: 2, top_p: 0, n: 128 })['temperature'], 2);
  const unbounded = unsupported(() => renaming.chat({ ...REQ, n: 0 }, target(), 'k'));
  assert.equal(unbounded.accepted, '>= 1');
  assert.equal(bodyOf(renaming, { ...REQ, n: 500 })['n'], 500);
});

void test('logit_bias: each value is checked and the offending token named', () => {
  const e = unsupported(() => plain.chat({ ...REQ, logit_bias: { '50256': -100, '1234': 101 } }, target(), 'k'));
  assert.equal(e.param, 'logit_bias.1234');
  assert.equal(e.accepted, '-100..100');
  assert.deepEqual(bodyOf(plain, { ...REQ, logit_bias: { '50256': -100 } })['logit_bias'], { '50256': -100 });
});

void test('unsupported fields: a value that asks is refused; null and false are left out of the call', () => {
  for (const [param, value] of [
    ['logit_bias', { '1': 1 }],
    ['logprobs', true],
    ['user', 'u-1'],
  ] as const) {
    const e = unsupported(() => renaming.chat({ ...REQ, [param]: value }, target(), 'k'));
    assert.equal(e.param, param);
    assert.equal(e.accepted, OMITTED);
  }
  const body = bodyOf(renaming, { ...REQ, logprobs: false, logit_bias: null } as unknown as ChatRequest);
  assert.equal('logprobs' in body, false);
  assert.equal('logit_bias' in body, false);
});

void test('renames and value maps: seed, max_completion_tokens and tool_choice as the provider names them', () => {
  const body = bodyOf(renaming, { ...REQ, seed: 7, max_completion_tokens: 64, tool_choice: 'required' });
  assert.deepEqual(body, { model: 'upstream-model', messages: [{ role: 'user', content: 'Hi' }], random_seed: 7, max_tokens: 64, tool_choice: 'any' });
  assert.equal(bodyOf(renaming, { ...REQ, tool_choice: 'auto' })['tool_choice'], 'auto');
  const forced = { type: 'function', function: { name: 'f' } } as const;
  assert.deepEqual(bodyOf(renaming, { ...REQ, tool_choice: forced })['tool_choice'], forced);
  assert.equal(bodyOf(plain, { ...REQ, tool_choice: 'required' })['tool_choice'], 'required');
});

void test('unknown fields the client sent pass through to an OpenAI-style provider', () => {
  const body = bodyOf(plain, { ...REQ, reasoning_effort: 'low' } as ChatRequest);
  assert.equal(body['reasoning_effort'], 'low');
});

void test('embeddings: target model, renames, unsupported and text-only input', () => {
  const call = renaming.embeddings?.({ model: 'e', input: ['a', 'b'], dimensions: 256 }, target(), 'k');
  assert.equal(call?.url, 'https://llm.example/v1/embeddings');
  assert.deepEqual(JSON.parse(call?.body ?? ''), { model: 'upstream-model', input: ['a', 'b'], output_dimension: 256 });
  assert.equal(unsupported(() => renaming.embeddings?.({ model: 'e', input: [1, 2, 3] }, target(), 'k')).param, 'input');
  assert.equal(unsupported(() => renaming.embeddings?.({ model: 'e', input: 'a', user: 'u' }, target(), 'k')).param, 'user');
  assert.deepEqual(JSON.parse(plain.embeddings?.({ model: 'e', input: [1, 2, 3] }, target(), 'k').body ?? ''), { model: 'upstream-model', input: [1, 2, 3] });
  const none = openAICompatible({ ...SPEC, embeddings: false });
  assert.equal('embeddings' in none, false);
  assert.equal('embeddingsResult' in none, false);
});

// ---------------------------------------------------------------------------------------------
// Responses.

void test('chatResult: model is the client\u2019s, id and created the provider\u2019s when it has them', () => {
  const out = plain.chatResult({ id: 'up-1', object: 'chat.completion', created: 123, model: 'upstream', choices: [], usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 }, extra: 'kept' }, CTX);
  assert.deepEqual(out, { id: 'up-1', object: 'chat.completion', created: 123, model: 'my-alias', choices: [], usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 }, extra: 'kept' });
  const bare = plain.chatResult({ choices: [], usage: null }, CTX);
  assert.deepEqual(bare, { id: CTX.id, object: 'chat.completion', created: CTX.created, model: 'my-alias', choices: [] });
});

void test('chatResult: tool-call arguments sent as an object become JSON text', () => {
  const out = plain.chatResult(
    { id: 'x', created: 1, choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: { a: 1 } } }] }, finish_reason: 'tool_calls' }] },
    CTX,
  );
  assert.equal(out.choices[0]?.message.tool_calls?.[0]?.function.arguments, '{"a":1}');
});

void test('chatResult / embeddingsResult: a body that is not the expected object is a TypeError', () => {
  assert.throws(() => plain.chatResult({ error: { message: 'x' } }, CTX), TypeError);
  assert.throws(() => plain.chatResult('text', CTX), TypeError);
  assert.throws(() => plain.embeddingsResult?.({ object: 'list' }, CTX), TypeError);
  assert.deepEqual(plain.embeddingsResult?.({ object: 'list', data: [], model: 'up', usage: { prompt_tokens: 0, total_tokens: 0 } }, CTX), {
    object: 'list',
    data: [],
    model: 'my-alias',
    usage: { prompt_tokens: 0, total_tokens: 0 },
  });
});

void test('usageOf: completion derived from total when absent; nothing when prompt is unknown', () => {
  assert.deepEqual(usageOf({ prompt_tokens: 5, total_tokens: 9 }), { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 });
  assert.deepEqual(usageOf({ prompt_tokens: 5, completion_tokens: 1 }), { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 });
  assert.equal(usageOf({ completion_tokens: 1 }), undefined);
  assert.equal(usageOf(null), undefined);
});

// ---------------------------------------------------------------------------------------------
// Streams.

const chunk = (choices: unknown[], extra: Record<string, unknown> = {}): string =>
  sseData(JSON.stringify({ id: 'up-9', object: 'chat.completion.chunk', created: 55, model: 'upstream', choices, ...extra }));
const DELTA = [{ index: 0, delta: { content: 'a' }, finish_reason: null }];
const STOP = [{ index: 0, delta: {}, finish_reason: 'stop' }];
const USAGE = { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 };

void test('stream: usage-only chunk reported but not sent unless the client asked; usage: null stripped too', () => {
  const sse = chunk(DELTA, { usage: null }) + chunk([], { usage: USAGE }) + sseData('[DONE]');
  const quiet = run(plain, sse, { ...REQ, stream: true });
  assert.deepEqual(chunks(quiet), [{ id: 'up-9', object: 'chat.completion.chunk', created: 55, model: 'my-alias', choices: DELTA }]);
  assert.deepEqual(quiet[1]?.usage, USAGE);
  assert.equal(quiet[2]?.done, true);
  const asked = run(plain, sse, { ...REQ, stream: true, stream_options: { include_usage: true } });
  assert.deepEqual(chunks(asked), [
    { id: 'up-9', object: 'chat.completion.chunk', created: 55, model: 'my-alias', choices: DELTA, usage: null },
    { id: 'up-9', object: 'chat.completion.chunk', created: 55, model: 'my-alias', choices: [], usage: USAGE },
  ]);
});

void test('stream: usage on a chunk with choices is taken off it and sent as its own chunk at [DONE] when asked', () => {
  const sse = chunk(DELTA) + chunk(STOP, { usage: USAGE }) + sseData('[DONE]');
  const quiet = run(renaming, sse, { ...REQ, stream: true });
  assert.deepEqual(chunks(quiet), [
    { id: 'up-9', object: 'chat.completion.chunk', created: 55, model: 'my-alias', choices: DELTA },
    { id: 'up-9', object: 'chat.completion.chunk', created: 55, model: 'my-alias', choices: STOP },
  ]);
  assert.deepEqual(quiet[1]?.usage, USAGE);
  const asked = run(renaming, sse, { ...REQ, stream: true, stream_options: { include_usage: true } });
  assert.deepEqual(asked[2], { chunks: [{ id: 'up-9', object: 'chat.completion.chunk', created: 55, model: 'my-alias', choices: [], usage: USAGE }], done: true });
  // Without [DONE] the owed usage chunk is flushed when the provider closes the stream.
  const cut = run(renaming, chunk(STOP, { usage: USAGE }), { ...REQ, stream: true, stream_options: { include_usage: true } });
  assert.deepEqual(cut[1]?.chunks, [{ id: 'up-9', object: 'chat.completion.chunk', created: 55, model: 'my-alias', choices: [], usage: USAGE }]);
  assert.equal(cut[1]?.done, undefined);
});

void test('stream: [DONE] ends it; later events and end() give nothing', () => {
  const m = plain.chatStream(CTX, { ...REQ, stream: true });
  assert.deepEqual(m.event({ data: '[DONE]' }), { chunks: [], done: true });
  assert.deepEqual(m.event({ data: JSON.stringify({ choices: DELTA }) }), { chunks: [] });
  assert.deepEqual(m.end(), { chunks: [] });
});

void test('stream: a chunk without id/created (or Azure\u2019s empty ones) gets the gateway\u2019s', () => {
  const m = plain.chatStream(CTX, { ...REQ, stream: true });
  const step = m.event({ data: JSON.stringify({ choices: [], created: 0, id: '', model: '', object: '', prompt_filter_results: [] }) });
  assert.deepEqual(step.chunks, [{ id: CTX.id, object: 'chat.completion.chunk', created: CTX.created, model: 'my-alias', choices: [], prompt_filter_results: [] }]);
});

void test('stream: tool-call argument objects in deltas become JSON text', () => {
  const m = plain.chatStream(CTX, { ...REQ, stream: true });
  const step = m.event({ data: JSON.stringify({ id: 'x', created: 1, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'c', type: 'function', function: { name: 'f', arguments: { q: 'x' } } }] }, finish_reason: null }] }) });
  assert.deepEqual(step.chunks[0]?.choices[0]?.delta.tool_calls?.[0]?.function, { name: 'f', arguments: '{"q":"x"}' });
});

void test('stream errors: data with an error key, a top-level object:error, and an `event: error`', () => {
  const m1 = plain.chatStream(CTX, REQ);
  const s1 = m1.event({ data: JSON.stringify({ error: { message: 'boom', type: 'server_error', param: null, code: null } }) });
  assert.deepEqual(s1, { chunks: [], error: { status: 500, kind: 'server', type: 'server_error', code: null, message: 'boom', requestId: null, retryAfterMs: null, param: null } });
  assert.deepEqual(m1.event({ data: JSON.stringify({ choices: DELTA }) }), { chunks: [] }, 'nothing after an error');

  const s2 = plain.chatStream(CTX, REQ).event({ data: JSON.stringify({ object: 'error', message: 'slow down', type: 'rate_limited', param: null, code: '1300' }) });
  assert.equal(s2.error?.status, 429);
  assert.equal(s2.error?.kind, 'rate_limited');
  assert.equal(s2.error?.code, '1300');

  const s3 = plain.chatStream(CTX, REQ).event({ event: 'error', data: JSON.stringify({ message: 'quota', type: 'insufficient_quota', code: 'insufficient_quota' }) });
  assert.equal(s3.error?.kind, 'quota');
  assert.equal(s3.error?.status, 429);

  const s4 = plain.chatStream(CTX, REQ).event({ data: JSON.stringify({ error: { message: 'bad', type: 'BadRequestError', param: null, code: 400 } }) });
  assert.equal(s4.error?.status, 400, 'a numeric code is the HTTP status');
  assert.equal(s4.error?.kind, 'bad_request');
});

void test('stream: a data event that is not JSON ends the stream with an error quoting it', () => {
  const m = plain.chatStream(CTX, REQ);
  const step = m.event({ data: '<html>oops</html>' });
  assert.equal(step.error?.kind, 'other');
  assert.equal(step.error?.type, null);
  assert.ok(step.error?.message.includes('<html>oops</html>'));
  assert.deepEqual(m.end(), { chunks: [] });
});

void test('stream: keep-alive objects without choices and other named events are skipped', () => {
  const m = plain.chatStream(CTX, REQ);
  assert.deepEqual(m.event({ data: '{"ping":true}' }), { chunks: [] });
  assert.deepEqual(m.event({ event: 'thread.run.created', data: '{"choices":[]}' }), { chunks: [] });
  assert.deepEqual(m.event({ data: '' }), { chunks: [] });
});

// ---------------------------------------------------------------------------------------------
// Errors.

void test('kindOf: status decides; a 429 for insufficient_quota (type or code) is quota', () => {
  const cases: readonly [number, string | null, string | null, ProviderErrorKind][] = [
    [400, null, null, 'bad_request'],
    [422, null, null, 'bad_request'],
    [401, null, null, 'auth'],
    [402, null, null, 'quota'],
    [403, null, null, 'permission'],
    [404, null, null, 'not_found'],
    [408, null, null, 'timeout'],
    [413, null, null, 'too_large'],
    [429, 'tokens', 'rate_limit_exceeded', 'rate_limited'],
    [429, 'insufficient_quota', null, 'quota'],
    [429, null, 'insufficient_quota', 'quota'],
    [500, null, null, 'server'],
    [502, null, null, 'server'],
    [503, null, null, 'overloaded'],
    [504, null, null, 'timeout'],
    [409, null, null, 'other'],
  ];
  for (const [status, type, code, kind] of cases) assert.equal(kindOf(status, type, code), kind, `${status} ${type} ${code}`);
});

void test('statusOfError: code first, then type; unknown is a server error', () => {
  assert.equal(statusOfError('invalid_request_error', 'rate_limit_exceeded'), 429);
  assert.equal(statusOfError('authentication_error', null), 401);
  assert.equal(statusOfError('whatever', null), 500);
});

void test('retryAfterMs: retry-after-ms first, then seconds, then an HTTP date against the Date header', () => {
  assert.equal(retryAfterMs({ 'retry-after-ms': '1500', 'retry-after': '9' }), 1500);
  assert.equal(retryAfterMs({ 'retry-after': '6' }), 6000);
  assert.equal(retryAfterMs({ 'retry-after': '0.5' }), 500);
  assert.equal(retryAfterMs({ 'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT', date: 'Wed, 21 Oct 2015 07:27:30 GMT' }), 30_000);
  assert.equal(retryAfterMs({ 'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT', date: 'Wed, 21 Oct 2015 07:29:00 GMT' }), 0);
  assert.equal(retryAfterMs({ 'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT' }), null, 'no clock read: no Date header, no delay');
  assert.equal(retryAfterMs({ 'retry-after-ms': 'soon', 'retry-after': 'later' }), null);
  assert.equal(retryAfterMs({}), null);
});

void test('readErrorBody: each body shape OpenAI-style providers send', () => {
  assert.deepEqual(readErrorBody({ error: { message: 'm', type: 't', param: 'p', code: 'c' } }), { message: 'm', type: 't', code: 'c', param: 'p', status: null, requestId: null });
  assert.deepEqual(readErrorBody({ error: 'Unauthorized' }), { message: 'Unauthorized', type: null, code: null, param: null, status: null, requestId: null });
  assert.deepEqual(readErrorBody({ detail: [{ type: 'missing', loc: ['body', 'messages', 0, 'content'], msg: 'Field required' }] }), {
    message: 'messages[0].content: Field required',
    type: null,
    code: null,
    param: 'messages[0].content',
    status: null,
    requestId: null,
  });
  assert.deepEqual(readErrorBody({ detail: 'Not Found' }), { message: 'Not Found', type: null, code: null, param: null, status: null, requestId: null });
  assert.deepEqual(readErrorBody({ statusCode: 500, message: 'Internal server error', activityId: 'a' }), { message: 'Internal server error', type: null, code: null, param: null, status: 500, requestId: null });
  assert.equal(readErrorBody({ unrelated: true }), undefined);
  assert.equal(readErrorBody([1, 2]), undefined);
});

void test('error(): a non-JSON or empty body still yields the status, the text quoted, nothing invented', () => {
  const html = `<html><body>${'x'.repeat(300)}</body></html>`;
  const e = plain.error(502, { 'x-other-id': 'lb-7' }, html);
  assert.equal(e.status, 502);
  assert.equal(e.kind, 'server');
  assert.equal(e.type, null);
  assert.equal(e.code, null);
  assert.equal(e.param, null);
  assert.equal(e.retryAfterMs, null);
  assert.equal(e.requestId, 'lb-7', 'second request-id header used when the first is absent');
  assert.ok(e.message.includes(html.slice(0, 200)));
  assert.ok(!e.message.includes(html.slice(0, 201)), 'only the first 200 characters are quoted');
  const empty = plain.error(504, {}, '');
  assert.equal(empty.kind, 'timeout');
  assert.equal(empty.requestId, null);
  assert.ok(empty.message.includes('504'));
  const weird = plain.error(500, {}, '{"unrelated":true}');
  assert.ok(weird.message.includes('{"unrelated":true}'));
});

void test('error(): request id from the first header present, else from the body', () => {
  const body = '{"message":"Unauthorized","request_id":"body-id"}';
  assert.equal(plain.error(401, { 'x-request-id': 'h1', 'x-other-id': 'h2' }, body).requestId, 'h1');
  assert.equal(plain.error(401, { 'x-other-id': 'h2' }, body).requestId, 'h2');
  assert.equal(plain.error(401, {}, body).requestId, 'body-id');
});

void test('a spec\u2019s own error reader is tried first', () => {
  const custom = openAICompatible({ ...SPEC, readErrorBody: (b) => (typeof b === 'object' && b !== null && 'oops' in b ? { message: 'custom', type: 'x', code: null, param: null, status: null, requestId: null } : undefined) });
  assert.equal(custom.error(400, {}, '{"oops":1}').message, 'custom');
  assert.equal(custom.error(400, {}, '{"error":{"message":"generic"}}').message, 'generic');
});
