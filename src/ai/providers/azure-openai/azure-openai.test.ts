import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseSse } from '../../sse.ts';
import type { ChatRequest, ProviderError, ProviderTarget, ResponseContext, StreamStep } from '../../types.ts';
import { UnsupportedParameterError } from '../../types.ts';
import { azureOpenAI } from './index.ts';

const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const text = (name: string): string => readFileSync(path.join(FIXTURES, name), 'utf8');
const json = (name: string): Record<string, unknown> => JSON.parse(text(name)) as Record<string, unknown>;

const CTX: ResponseContext = { id: 'chatcmpl-gw-2', created: 1_700_000_100, model: 'corp-gpt' };
const TARGET: ProviderTarget = {
  providerId: 'azure-eu',
  type: 'azure-openai',
  baseUrl: 'https://contoso-eu.openai.azure.com',
  model: 'gpt-4o prod',
  apiVersion: '2024-10-21',
  headers: {},
};
const REQ: ChatRequest = { model: 'corp-gpt', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Capital of France?' }] };

function stream(sse: string, req: ChatRequest): StreamStep[] {
  const m = azureOpenAI.chatStream(CTX, req);
  const steps = parseSse(sse).map((ev) => m.event(ev));
  steps.push(m.end());
  return steps;
}

void test('azure-openai: adapter identity', () => {
  assert.equal(azureOpenAI.type, 'azure-openai');
  assert.equal(azureOpenAI.defaultBaseUrl, undefined);
  assert.deepEqual(azureOpenAI.requestIdHeaders, ['apim-request-id', 'x-request-id', 'x-ms-request-id']);
});

void test('azure-openai: golden chat request (deployment URL, api-version, api-key header)', () => {
  const call = azureOpenAI.chat({ ...REQ, temperature: 0, stream: true }, TARGET, 'azure-key-1');
  assert.equal(call.method, 'POST');
  assert.equal(call.url, 'https://contoso-eu.openai.azure.com/openai/deployments/gpt-4o%20prod/chat/completions?api-version=2024-10-21');
  assert.deepEqual(call.headers, { 'content-type': 'application/json', 'api-key': 'azure-key-1' });
  assert.deepEqual(JSON.parse(call.body ?? ''), {
    model: 'gpt-4o prod',
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Capital of France?' },
    ],
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
});

void test('azure-openai: no key configured, no api-key header', () => {
  assert.deepEqual(azureOpenAI.chat(REQ, TARGET, undefined).headers, { 'content-type': 'application/json' });
});

void test('azure-openai: a missing api-version is a plain error naming it', () => {
  const noVersion: ProviderTarget = { providerId: TARGET.providerId, type: TARGET.type, baseUrl: TARGET.baseUrl, model: TARGET.model, headers: {} };
  assert.throws(
    () => azureOpenAI.chat(REQ, noVersion, 'k'),
    (e: unknown) => e instanceof Error && !(e instanceof UnsupportedParameterError) && e.message.includes('api_version'),
  );
  assert.throws(() => azureOpenAI.embeddings?.({ model: 'e', input: 'x' }, noVersion, 'k'), /api_version/);
});

void test('azure-openai: OpenAI\u2019s ranges, each refused by name', () => {
  const cases: readonly [Partial<ChatRequest>, string][] = [
    [{ temperature: 2.5 }, 'temperature'],
    [{ top_p: -0.1 }, 'top_p'],
    [{ n: 200 }, 'n'],
    [{ presence_penalty: 3 }, 'presence_penalty'],
    [{ frequency_penalty: -3 }, 'frequency_penalty'],
    [{ top_logprobs: 25 }, 'top_logprobs'],
    [{ logit_bias: { '7': -101 } }, 'logit_bias.7'],
  ];
  for (const [over, param] of cases) {
    assert.throws(() => azureOpenAI.chat({ ...REQ, ...over }, TARGET, 'k'), (e: unknown) => e instanceof UnsupportedParameterError && e.param === param && e.provider === 'azure-openai', param);
  }
});

void test('azure-openai: chat.completion fixture, Azure\u2019s filter results kept', () => {
  const body = json('chat.json');
  const out = azureOpenAI.chatResult(body, CTX);
  assert.deepEqual(out, { ...body, model: 'corp-gpt' });
  assert.equal(out.id, 'chatcmpl-BAzu7Hq2b5Kf0aQ1nE8sT4xY6mRcV');
  assert.equal(out.usage?.total_tokens, 15);
});

const ID = 'chatcmpl-BAzv1Lk9pQ2wE3rT5yU7iO0pA1sDf';
const SAFE = { hate: { filtered: false, severity: 'safe' }, self_harm: { filtered: false, severity: 'safe' }, sexual: { filtered: false, severity: 'safe' }, violence: { filtered: false, severity: 'safe' } };
const PROMPT_FILTER = [{ prompt_index: 0, content_filter_results: { hate: { filtered: false, severity: 'safe' }, jailbreak: { filtered: false, detected: false }, self_harm: { filtered: false, severity: 'safe' }, sexual: { filtered: false, severity: 'safe' }, violence: { filtered: false, severity: 'safe' } } }];
const chunk = (choices: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  choices,
  created: 1741570400,
  id: ID,
  model: 'corp-gpt',
  object: 'chat.completion.chunk',
  system_fingerprint: 'fp_ee1d74bde0',
  ...extra,
});

void test('azure-openai: stream fixture: prompt-filter chunk gets the gateway id, usage chunk dropped unless asked', () => {
  const expected = [
    { choices: [], created: CTX.created, id: CTX.id, model: 'corp-gpt', object: 'chat.completion.chunk', prompt_filter_results: PROMPT_FILTER },
    chunk([{ content_filter_results: {}, delta: { content: '', refusal: null, role: 'assistant' }, finish_reason: null, index: 0, logprobs: null }]),
    chunk([{ content_filter_results: SAFE, delta: { content: 'Paris' }, finish_reason: null, index: 0, logprobs: null }]),
    chunk([{ content_filter_results: {}, delta: {}, finish_reason: 'stop', index: 0, logprobs: null }]),
  ];
  const steps = stream(text('stream.sse'), { ...REQ, stream: true });
  assert.deepEqual(
    steps.flatMap((s) => s.chunks),
    expected,
  );
  assert.deepEqual(steps[4]?.usage, { prompt_tokens: 12, completion_tokens: 1, total_tokens: 13 });
  assert.equal(steps[5]?.done, true);

  const asked = stream(text('stream.sse'), { ...REQ, stream: true, stream_options: { include_usage: true } }).flatMap((s) => s.chunks);
  assert.equal(asked.length, 5);
  assert.deepEqual(asked[4], chunk([], { usage: { completion_tokens: 1, completion_tokens_details: { accepted_prediction_tokens: 0, audio_tokens: 0, reasoning_tokens: 0, rejected_prediction_tokens: 0 }, prompt_tokens: 12, prompt_tokens_details: { audio_tokens: 0, cached_tokens: 0 }, total_tokens: 13 } }));
});

void test('azure-openai: mid-stream error', () => {
  const steps = stream(text('stream-error.sse'), { ...REQ, stream: true });
  assert.equal(steps.flatMap((s) => s.chunks).length, 2);
  const e = steps[2]?.error;
  assert.equal(e?.status, 500);
  assert.equal(e?.kind, 'server');
  assert.equal(e?.type, 'server_error');
  assert.equal(e?.code, null);
  assert.ok(e?.message.startsWith('The server had an error processing your request.'));
});

void test('azure-openai: embeddings go to the deployment\u2019s embeddings URL', () => {
  const call = azureOpenAI.embeddings?.({ model: 'embed', input: 'hello' }, { ...TARGET, model: 'embed-small' }, 'azure-key-1');
  assert.equal(call?.url, 'https://contoso-eu.openai.azure.com/openai/deployments/embed-small/embeddings?api-version=2024-10-21');
  assert.deepEqual(call?.headers, { 'content-type': 'application/json', 'api-key': 'azure-key-1' });
  assert.deepEqual(JSON.parse(call?.body ?? ''), { model: 'embed-small', input: 'hello' });
  const body = json('embeddings.json');
  assert.deepEqual(azureOpenAI.embeddingsResult?.(body, { ...CTX, model: 'embed' }), { ...body, model: 'embed' });
});

type Expected = Pick<ProviderError, 'kind' | 'type' | 'code' | 'param' | 'requestId' | 'retryAfterMs'>;

void test('azure-openai: error fixtures', () => {
  const cases: readonly [string, number, Record<string, string>, Expected][] = [
    [
      'error-400-content-filter.json',
      400,
      { 'apim-request-id': 'b2c3d4e5-0001', 'x-request-id': 'xr-0001', 'x-ms-region': 'West Europe' },
      { kind: 'bad_request', type: null, code: 'content_filter', param: 'prompt', requestId: 'b2c3d4e5-0001', retryAfterMs: null },
    ],
    ['error-401.json', 401, { 'apim-request-id': 'b2c3d4e5-0002' }, { kind: 'auth', type: null, code: '401', param: null, requestId: 'b2c3d4e5-0002', retryAfterMs: null }],
    ['error-404-deployment-not-found.json', 404, { 'x-ms-request-id': 'ms-0003' }, { kind: 'not_found', type: null, code: 'DeploymentNotFound', param: null, requestId: 'ms-0003', retryAfterMs: null }],
    [
      'error-429-rate-limit.json',
      429,
      { 'apim-request-id': 'b2c3d4e5-0004', 'retry-after': '6', 'retry-after-ms': '6000', 'x-ratelimit-remaining-requests': '0' },
      { kind: 'rate_limited', type: null, code: '429', param: null, requestId: 'b2c3d4e5-0004', retryAfterMs: 6000 },
    ],
    ['error-500.json', 500, { 'apim-request-id': 'b2c3d4e5-0005' }, { kind: 'server', type: 'server_error', code: null, param: null, requestId: 'b2c3d4e5-0005', retryAfterMs: null }],
    ['error-500-apim.json', 500, { 'x-ms-request-id': 'ms-0006' }, { kind: 'server', type: null, code: null, param: null, requestId: 'ms-0006', retryAfterMs: null }],
    ['error-503.json', 503, { 'x-request-id': 'xr-0007', 'retry-after': '10' }, { kind: 'overloaded', type: 'server_error', code: null, param: null, requestId: 'xr-0007', retryAfterMs: 10_000 }],
  ];
  for (const [file, status, headers, expected] of cases) {
    const body = text(file);
    const e = azureOpenAI.error(status, headers, body);
    assert.equal(e.status, status, file);
    assert.deepEqual({ kind: e.kind, type: e.type, code: e.code, param: e.param, requestId: e.requestId, retryAfterMs: e.retryAfterMs }, expected, file);
    const parsed = JSON.parse(body) as { error?: { message?: string }; message?: string };
    assert.equal(e.message, parsed.error?.message ?? parsed.message, file);
  }
});
