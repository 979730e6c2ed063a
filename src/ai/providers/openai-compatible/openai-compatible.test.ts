import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseSse } from '../../sse.ts';
import type { ChatRequest, ProviderError, ProviderTarget, ResponseContext, StreamStep } from '../../types.ts';
import { UnsupportedParameterError } from '../../types.ts';
import { openAICompatibleServer } from './index.ts';

const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const text = (name: string): string => readFileSync(path.join(FIXTURES, name), 'utf8');
const json = (name: string): Record<string, unknown> => JSON.parse(text(name)) as Record<string, unknown>;

const CTX: ResponseContext = { id: 'chatcmpl-gw-4', created: 1_700_000_300, model: 'local' };
const OLLAMA: ProviderTarget = { providerId: 'ollama', type: 'openai-compatible', baseUrl: 'http://127.0.0.1:11434/v1', model: 'llama3.2', headers: {} };
const VLLM: ProviderTarget = { providerId: 'vllm', type: 'openai-compatible', baseUrl: 'https://vllm.internal/v1', model: 'meta-llama/Llama-3.1-8B-Instruct', headers: { 'X-Tenant': 'blue' } };
const REQ: ChatRequest = { model: 'local', messages: [{ role: 'user', content: 'Capital of France?' }] };

function stream(sse: string, req: ChatRequest): StreamStep[] {
  const m = openAICompatibleServer.chatStream(CTX, req);
  const steps = parseSse(sse).map((ev) => m.event(ev));
  steps.push(m.end());
  return steps;
}

void test('openai-compatible: adapter identity (no default base URL)', () => {
  assert.equal(openAICompatibleServer.type, 'openai-compatible');
  assert.equal(openAICompatibleServer.defaultBaseUrl, undefined);
  assert.deepEqual(openAICompatibleServer.requestIdHeaders, ['x-request-id']);
});

void test('openai-compatible: golden request to Ollama without a key: no Authorization header', () => {
  const call = openAICompatibleServer.chat({ ...REQ, temperature: 0.7 }, OLLAMA, undefined);
  assert.deepEqual(call, {
    method: 'POST',
    url: 'http://127.0.0.1:11434/v1/chat/completions',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'llama3.2', messages: [{ role: 'user', content: 'Capital of France?' }], temperature: 0.7 }),
  });
});

void test('openai-compatible: golden streaming request to vLLM with a key', () => {
  const call = openAICompatibleServer.chat({ ...REQ, stream: true, max_tokens: 50 }, VLLM, 'vllm-token');
  assert.equal(call.url, 'https://vllm.internal/v1/chat/completions');
  assert.deepEqual(call.headers, { 'x-tenant': 'blue', 'content-type': 'application/json', authorization: 'Bearer vllm-token' });
  assert.deepEqual(JSON.parse(call.body ?? ''), {
    model: 'meta-llama/Llama-3.1-8B-Instruct',
    messages: [{ role: 'user', content: 'Capital of France?' }],
    stream: true,
    max_tokens: 50,
    stream_options: { include_usage: true },
  });
});

void test('openai-compatible: OpenAI\u2019s ranges, each refused by name', () => {
  const cases: readonly [Partial<ChatRequest>, string][] = [
    [{ temperature: 3 }, 'temperature'],
    [{ top_p: 2 }, 'top_p'],
    [{ n: 0 }, 'n'],
    [{ presence_penalty: 2.5 }, 'presence_penalty'],
    [{ frequency_penalty: 2.5 }, 'frequency_penalty'],
    [{ top_logprobs: 30 }, 'top_logprobs'],
    [{ logit_bias: { '3': 200 } }, 'logit_bias.3'],
  ];
  for (const [over, param] of cases) {
    assert.throws(() => openAICompatibleServer.chat({ ...REQ, ...over }, OLLAMA, undefined), (e: unknown) => e instanceof UnsupportedParameterError && e.param === param && e.provider === 'openai-compatible', param);
  }
  // Lenient: everything inside OpenAI's ranges goes through, including fields some servers ignore.
  const body = JSON.parse(openAICompatibleServer.chat({ ...REQ, temperature: 2, logprobs: true, top_logprobs: 20, seed: 1, user: 'u' }, OLLAMA, undefined).body ?? '') as Record<string, unknown>;
  assert.deepEqual([body['temperature'], body['logprobs'], body['top_logprobs'], body['seed'], body['user']], [2, true, 20, 1, 'u']);
});

void test('openai-compatible: a missing base URL is a plain error', () => {
  assert.throws(() => openAICompatibleServer.chat(REQ, { ...OLLAMA, baseUrl: '' }, undefined), /base_url/);
});

void test('openai-compatible: Ollama chat.completion fixture', () => {
  const body = json('chat-ollama.json');
  const out = openAICompatibleServer.chatResult(body, CTX);
  assert.deepEqual(out, { ...body, model: 'local' });
  assert.equal(out.id, 'chatcmpl-396');
  assert.deepEqual(out.usage, { prompt_tokens: 31, completion_tokens: 8, total_tokens: 39 });
});

const chunk = (choices: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  id: 'chatcmpl-5f0a2b9c8d7e4f61a3b2c1d0e9f8a7b6',
  object: 'chat.completion.chunk',
  created: 1741570400,
  model: 'local',
  choices,
  ...extra,
});

void test('openai-compatible: vLLM stream fixture, usage chunk dropped unless asked', () => {
  const expected = [
    chunk([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]),
    chunk([{ index: 0, delta: { content: 'Hi' }, logprobs: null, finish_reason: null }]),
    chunk([{ index: 0, delta: { content: '!' }, logprobs: null, finish_reason: 'stop', stop_reason: null }]),
  ];
  const quiet = stream(text('stream-vllm.sse'), { ...REQ, stream: true });
  assert.deepEqual(
    quiet.flatMap((s) => s.chunks),
    expected,
  );
  assert.deepEqual(quiet[3], { chunks: [], usage: { prompt_tokens: 12, completion_tokens: 2, total_tokens: 14 } });
  assert.deepEqual(quiet[4], { chunks: [], done: true });
  const asked = stream(text('stream-vllm.sse'), { ...REQ, stream: true, stream_options: { include_usage: true } });
  assert.deepEqual(
    asked.flatMap((s) => s.chunks),
    [...expected, chunk([], { usage: { prompt_tokens: 12, total_tokens: 14, completion_tokens: 2 } })],
  );
});

void test('openai-compatible: vLLM mid-stream error with a numeric code', () => {
  const steps = stream(text('stream-error-vllm.sse'), { ...REQ, stream: true });
  assert.equal(steps.flatMap((s) => s.chunks).length, 1);
  const e = steps[1]?.error;
  assert.equal(e?.status, 400);
  assert.equal(e?.kind, 'bad_request');
  assert.equal(e?.type, 'BadRequestError');
  assert.equal(e?.code, '400');
});

void test('openai-compatible: embeddings', () => {
  const call = openAICompatibleServer.embeddings?.({ model: 'local-embed', input: 'hello' }, { ...OLLAMA, model: 'nomic-embed-text' }, undefined);
  assert.equal(call?.url, 'http://127.0.0.1:11434/v1/embeddings');
  assert.deepEqual(call?.headers, { 'content-type': 'application/json' });
  assert.deepEqual(JSON.parse(call?.body ?? ''), { model: 'nomic-embed-text', input: 'hello' });
});

type Expected = Pick<ProviderError, 'kind' | 'type' | 'code' | 'param' | 'requestId' | 'retryAfterMs'>;

void test('openai-compatible: error fixtures from Ollama, vLLM, a hosted Llama API and a proxy in front', () => {
  const cases: readonly [string, number, Record<string, string>, Expected][] = [
    ['error-400-vllm.json', 400, { 'x-request-id': 'vllm-1' }, { kind: 'bad_request', type: 'BadRequestError', code: '400', param: null, requestId: 'vllm-1', retryAfterMs: null }],
    ['error-401-vllm.json', 401, {}, { kind: 'auth', type: null, code: null, param: null, requestId: null, retryAfterMs: null }],
    ['error-404-ollama.json', 404, {}, { kind: 'not_found', type: 'not_found_error', code: null, param: null, requestId: null, retryAfterMs: null }],
    ['error-429-rate-limit.json', 429, { 'x-request-id': 'req_01hx', 'retry-after': '5' }, { kind: 'rate_limited', type: 'tokens', code: 'rate_limit_exceeded', param: null, requestId: 'req_01hx', retryAfterMs: 5000 }],
    ['error-429-insufficient-quota.json', 429, { 'x-request-id': 'req_q' }, { kind: 'quota', type: 'insufficient_quota', code: 'insufficient_quota', param: null, requestId: 'req_q', retryAfterMs: null }],
    ['error-500-vllm.json', 500, {}, { kind: 'server', type: 'InternalServerError', code: '500', param: null, requestId: null, retryAfterMs: null }],
    ['error-503-ollama.json', 503, {}, { kind: 'overloaded', type: 'api_error', code: null, param: null, requestId: null, retryAfterMs: null }],
    ['error-502-nginx.html', 502, {}, { kind: 'server', type: null, code: null, param: null, requestId: null, retryAfterMs: null }],
  ];
  for (const [file, status, headers, expected] of cases) {
    const body = text(file);
    const e = openAICompatibleServer.error(status, headers, body);
    assert.equal(e.status, status, file);
    assert.deepEqual({ kind: e.kind, type: e.type, code: e.code, param: e.param, requestId: e.requestId, retryAfterMs: e.retryAfterMs }, expected, file);
    assert.ok(e.message.length > 0, file);
  }
  assert.equal(openAICompatibleServer.error(401, {}, text('error-401-vllm.json')).message, 'Unauthorized');
  assert.equal(openAICompatibleServer.error(404, {}, text('error-404-ollama.json')).message, 'model "llama3.3" not found, try pulling it first');
  assert.ok(openAICompatibleServer.error(502, {}, text('error-502-nginx.html')).message.includes('<title>502 Bad Gateway</title>'));
});
