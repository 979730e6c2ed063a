/**
 * E2E: the native Anthropic Messages route through the official `@anthropic-ai/sdk` client, and
 * prompt APIs (prompt templates published as REST endpoints), against a real gateway in front of
 * the mock providers (test/helpers/mock-providers.ts).
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import Anthropic, { type APIError } from '@anthropic-ai/sdk';
import { assertProblem, send, startGateway, type Gateway, type Reply } from '../helpers/harness.ts';
import { startMockProviders, type MockProviders } from '../helpers/mock-providers.ts';
import { aiEnv, ALICE_KEY, anthropicClient, at, BOB_KEY, caught, CONSUMERS, headerText, isRecord, KEY_POLICY, mockProviders } from '../helpers/ai.ts';

const HELLO = [{ role: 'user' as const, content: 'hello world' }];

let mock: MockProviders;
let gw: Gateway;

function config(): Record<string, unknown> {
  const providers = mockProviders(mock);
  return {
    version: 1,
    errors: { mode: 'detailed' },
    consumers: CONSUMERS,
    policies: {
      ...KEY_POLICY,
      'claude-rpm': { type: 'ai-limits', config: { limits: [{ id: 'one-a-minute', rpm: 1 }] } },
      'claude-tpm': { type: 'ai-limits', config: { limits: [{ id: 'few-tokens', tpm: 5 }] } },
    },
    ai: {
      providers: { anthropic: providers.anthropic, openai: providers.openai },
      models: {
        'claude-sonnet': { aliases: ['sonnet'], targets: [{ provider: 'anthropic', model: 'claude-sonnet-4-5' }], price: { input_per_mtok: 3, output_per_mtok: 15 } },
        'claude-429': { targets: [{ provider: 'anthropic', model: 'mock-429' }], max_attempts: 1 },
        'claude-529': { targets: [{ provider: 'anthropic', model: 'mock-529' }], max_attempts: 1 },
        'claude-quota': { targets: [{ provider: 'anthropic', model: 'mock-quota' }], max_attempts: 1 },
        'claude-midstream': { targets: [{ provider: 'anthropic', model: 'mock-midstream-error' }] },
        'claude-scripted': { targets: [{ provider: 'anthropic', model: 'claude-scripted' }] },
        gpt: { targets: [{ provider: 'openai', model: 'gpt-4o-mini' }], price: { input_per_mtok: 2, output_per_mtok: 8 } },
      },
    },
    routes: [
      { id: 'claude', paths: ['/v1/messages', '/v1/models'], ai: { protocol: 'anthropic' }, policies: ['gw-keys'] },
      { id: 'claude-rpm', paths: ['/rpm/v1/messages'], ai: { protocol: 'anthropic' }, policies: ['gw-keys', 'claude-rpm'] },
      { id: 'claude-tpm', paths: ['/tpm/v1/messages'], ai: { protocol: 'anthropic' }, policies: ['gw-keys', 'claude-tpm'] },
      {
        id: 'summarize',
        paths: ['/apis/summarize'],
        methods: ['POST'],
        prompt: {
          model: 'gpt',
          system: 'You summarise text in at most {{sentences}} sentences.',
          template: 'Summarise:\n\n{{text}}',
          variables: { text: { type: 'string', max_length: 200 }, sentences: { type: 'integer', required: false } },
          parameters: { temperature: 0.2, max_tokens: 50 },
        },
        policies: ['gw-keys'],
      },
      {
        id: 'extract',
        paths: ['/apis/extract'],
        methods: ['POST'],
        prompt: { model: 'gpt', template: 'Extract the city from: {{text}}', variables: { text: { type: 'string' } }, output: 'json' },
        policies: ['gw-keys'],
      },
      {
        id: 'claude-summarize',
        paths: ['/apis/claude-summarize'],
        methods: ['POST'],
        prompt: { model: 'claude-sonnet', template: '{{text}}', variables: { text: { type: 'string' }, tone: { type: 'string', enum: ['dry', 'warm'], required: false } } },
        policies: ['gw-keys'],
      },
    ],
  };
}

before(async () => {
  mock = await startMockProviders();
  gw = await startGateway(config(), { env: aiEnv(mock) });
});
after(async () => {
  await gw.close();
  await mock.close();
});
beforeEach(() => {
  mock.reset();
});

/** instanceof alone would type the SDK error's generic members (status, headers) as any. */
function isApiError(err: unknown): err is APIError {
  return err instanceof Anthropic.APIError;
}

/** The Anthropic SDK's error body (`err.error` is the whole envelope). */
function envelope(err: unknown): { type: unknown; error: Record<string, unknown>; request_id: unknown } {
  assert.ok(err instanceof Anthropic.APIError, String(err));
  const body: unknown = err.error;
  assert.ok(isRecord(body), `no body on ${String(err)}`);
  assert.equal(body.type, 'error');
  const e = body.error;
  assert.ok(isRecord(e));
  return { type: body.type, error: e, request_id: body.request_id };
}

// ---------------------------------------------------------------------------------------------

void describe('native Anthropic route /v1/messages (Anthropic SDK)', () => {
  void test('Authorization: Bearer (the 1.x default) and x-api-key both work; the provider gets its own key only', async () => {
    for (const xApiKey of [false, true]) {
      mock.reset();
      const key = xApiKey ? BOB_KEY : ALICE_KEY;
      const counter = { n: 0, headers: [] as Headers[] };
      const client = anthropicClient(gw, { xApiKey, apiKey: key, counter });
      const msg = await client.messages.create({ model: 'claude-sonnet', max_tokens: 64, messages: HELLO, metadata: { user_id: 'u-42' } });
      assert.equal(msg.type, 'message');
      assert.deepEqual(msg.content, [{ type: 'text', text: 'echo: hello world' }]);
      assert.equal(msg.stop_reason, 'end_turn');
      assert.equal(msg.usage.input_tokens, 2);
      assert.equal(msg.usage.output_tokens, 3);
      // What the SDK sent: the key in one header or the other, never both.
      const sent = counter.headers[0];
      assert.equal(sent?.get('authorization'), xApiKey ? null : `Bearer ${key}`);
      assert.equal(sent?.get('x-api-key'), xApiKey ? key : null);
      const [seen] = mock.requests;
      assert.equal(mock.requests.length, 1);
      assert.equal(seen?.provider, 'anthropic');
      assert.equal(seen?.headers['x-api-key'], mock.keys.anthropic);
      assert.equal(seen?.headers.authorization, undefined);
      assert.ok(seen !== undefined);
      const text = headerText(seen);
      assert.ok(!text.includes(ALICE_KEY) && !text.includes(BOB_KEY), text);
      // The client's body passes through; only the model becomes the provider's name.
      assert.equal(at(seen?.body, 'model'), 'claude-sonnet-4-5');
      assert.deepEqual(at(seen?.body, 'metadata'), { user_id: 'u-42' });
      assert.equal(at(seen?.body, 'max_tokens'), 64);
    }
  });

  void test('anthropic-version and anthropic-beta reach the provider', async () => {
    const client = anthropicClient(gw);
    await client.messages.create({ model: 'sonnet', max_tokens: 16, messages: HELLO }, { headers: { 'anthropic-beta': 'mock-feature-2099-01-01' } });
    const [seen] = mock.requests;
    // The SDK's own version header, whatever it is, is what the provider sees.
    assert.match(String(seen?.headers['anthropic-version']), /^\d{4}-\d{2}-\d{2}$/);
    assert.equal(seen?.headers['anthropic-beta'], 'mock-feature-2099-01-01');
    mock.reset();
    const res = await send(`${gw.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': ALICE_KEY, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'claude-sonnet', max_tokens: 16, messages: HELLO, temperature: 0.5 }),
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(mock.requests[0]?.headers['anthropic-version'], '2023-06-01');
    assert.equal(mock.requests[0]?.headers['anthropic-beta'], undefined);
  });

  void test('streams pass through unchanged, byte for byte, and the SDK reads them', async () => {
    // Odd but valid SSE from the provider: a comment, CRLF line ends, a ping, an unknown event.
    const raw =
      ': hello\r\n\r\n' +
      'event: message_start\r\ndata: {"type":"message_start","message":{"id":"msg_raw","type":"message","role":"assistant","model":"claude-scripted","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":7,"output_tokens":1}}}\r\n\r\n' +
      'event: content_block_start\r\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\r\n\r\n' +
      'event: ping\r\ndata: {"type": "ping"}\r\n\r\n' +
      'event: content_block_delta\r\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi "}}\r\n\r\n' +
      'event: future_event\r\ndata: {"type":"future_event","x":1}\r\n\r\n' +
      'event: content_block_delta\r\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"there"}}\r\n\r\n' +
      'event: content_block_stop\r\ndata: {"type":"content_block_stop","index":0}\r\n\r\n' +
      'event: message_delta\r\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":7,"output_tokens":2}}\r\n\r\n' +
      'event: message_stop\r\ndata: {"type":"message_stop"}\r\n\r\n';
    mock.script('anthropic', ({ res }) => {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'request-id': 'req_raw' });
      // In pieces that cut events and lines, as a network would.
      for (let i = 0; i < raw.length; i += 37) res.write(raw.slice(i, i + 37));
      res.end();
    });
    const r = await send(`${gw.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ALICE_KEY}`, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'claude-scripted', max_tokens: 16, messages: HELLO, stream: true }),
    });
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^text\/event-stream/);
    assert.equal(r.text, raw);
    const entry = await gw.logEntry(String(r.headers['x-request-id']));
    assert.equal(entry.ai?.stream, true);
    assert.deepEqual([entry.ai?.promptTokens, entry.ai?.completionTokens], [7, 2]);
    assert.equal(entry.ai?.provider, 'anthropic');
    assert.equal(entry.ai?.servedModel, 'claude-scripted');

    // The SDK's stream helper over the mock's normal stream.
    const stream = anthropicClient(gw).messages.stream({ model: 'claude-sonnet', max_tokens: 64, messages: HELLO });
    const texts: string[] = [];
    stream.on('text', (t) => texts.push(t));
    const final = await stream.finalMessage();
    assert.deepEqual(texts, ['echo:', ' hello', ' world']);
    assert.deepEqual(final.content, [{ type: 'text', text: 'echo: hello world' }]);
    assert.equal(final.usage.output_tokens, 3);
  });

  void test('provider errors in the Anthropic envelope: RateLimitError, OverloadedError for 529, layer provider', async () => {
    const client = anthropicClient(gw);
    const limited = await caught(client.messages.create({ model: 'claude-429', max_tokens: 16, messages: HELLO }));
    assert.ok(limited instanceof Anthropic.RateLimitError, String(limited));
    const l = envelope(limited);
    assert.equal(l.error.type, 'rate_limit_error');
    assert.equal(l.error.layer, 'provider');
    assert.equal(l.error.provider, 'anthropic');
    assert.equal(l.error.provider_status, 429);
    assert.equal(l.error.provider_error_type, 'rate_limit_error');
    assert.match(String(l.error.provider_request_id), /^req_mock/);
    assert.equal(limited.requestID, l.request_id, 'request-id header = the gateway request id in the body');
    assert.match(limited.headers.get('retry-after') ?? '', /^\d+$/);

    const overloaded = await caught(client.messages.create({ model: 'claude-529', max_tokens: 16, messages: HELLO }));
    assert.ok(overloaded instanceof Anthropic.OverloadedError, String(overloaded));
    assert.equal(overloaded.status, 529);
    assert.equal(envelope(overloaded).error.type, 'overloaded_error');
    assert.equal(envelope(overloaded).error.layer, 'provider');

    // Out of credit (Anthropic's 402) is permanent: the SDK is told not to retry.
    const counter = { n: 0 };
    const quota = await caught(anthropicClient(gw, { maxRetries: 2, counter }).messages.create({ model: 'claude-quota', max_tokens: 16, messages: HELLO }));
    assert.ok(quota instanceof Anthropic.APIError);
    assert.equal(quota.status, 402);
    assert.equal(envelope(quota).error.type, 'billing_error');
    assert.ok(isApiError(quota));
    assert.equal(quota.headers?.get('x-should-retry'), 'false');
    assert.equal(counter.n, 1);
  });

  void test('gateway errors in the Anthropic envelope: a bad key is layer gateway with the catalog code', async () => {
    const err = await caught(anthropicClient(gw, { apiKey: 'pp_unknown' }).messages.create({ model: 'claude-sonnet', max_tokens: 16, messages: HELLO }));
    assert.ok(err instanceof Anthropic.AuthenticationError, String(err));
    const e = envelope(err);
    assert.equal(e.error.type, 'authentication_error');
    assert.equal(e.error.code, 'AUTH_KEY_INVALID');
    assert.equal(e.error.layer, 'gateway');
    assert.equal(e.error.policy, 'gw-keys');
    assert.equal(typeof e.request_id, 'string');
    assert.equal(err.requestID, e.request_id, 'the SDK reads the request id from request-id');
    assert.equal(err.headers?.get('x-should-retry'), 'false');
    assert.equal(mock.requests.length, 0);
  });

  void test('an error event mid-stream surfaces as the SDK error of that event', async () => {
    const client = anthropicClient(gw);
    const stream = client.messages.stream({ model: 'claude-midstream', max_tokens: 64, messages: HELLO });
    const texts: string[] = [];
    stream.on('text', (t) => texts.push(t));
    const err = await caught(stream.finalMessage());
    assert.ok(err instanceof Anthropic.APIError, String(err));
    assert.equal(err.type, 'overloaded_error');
    assert.ok(texts.join('').startsWith('echo:'), 'part of the answer arrived first');
    const requestId = (await stream.withResponse()).response.headers.get('x-request-id') ?? '';
    const entry = await gw.logEntry(requestId);
    assert.equal(entry.status, 200);
    assert.equal(entry.code, 'AI_PROVIDER_ERROR');
    assert.equal(entry.layer, 'provider');
  });

  void test('a model served by a non-Anthropic provider is AI_OPERATION_NOT_SUPPORTED; an unknown one AI_MODEL_NOT_FOUND', async () => {
    const client = anthropicClient(gw);
    const err = await caught(client.messages.create({ model: 'gpt', max_tokens: 16, messages: HELLO }));
    assert.ok(err instanceof Anthropic.BadRequestError, String(err));
    const e = envelope(err);
    assert.equal(e.error.type, 'invalid_request_error');
    assert.equal(e.error.code, 'AI_OPERATION_NOT_SUPPORTED');
    assert.equal(at(e.error, 'evidence', 'provider'), 'openai');
    const nf = await caught(client.messages.create({ model: 'claude-99', max_tokens: 16, messages: HELLO }));
    assert.ok(nf instanceof Anthropic.NotFoundError, String(nf));
    assert.equal(envelope(nf).error.code, 'AI_MODEL_NOT_FOUND');
    // The request is checked before it leaves: max_tokens is required by the Messages API.
    const invalid = await caught(client.messages.create({ model: 'claude-sonnet', messages: HELLO } as unknown as Anthropic.MessageCreateParamsNonStreaming));
    assert.ok(invalid instanceof Anthropic.BadRequestError, String(invalid));
    assert.equal(envelope(invalid).error.code, 'AI_REQUEST_INVALID');
    assert.equal(at(envelope(invalid).error, 'evidence', 'param'), 'max_tokens');
    assert.equal(mock.requests.length, 0);
  });

  void test('models.list() on the Anthropic route, in its format', async () => {
    const ids: string[] = [];
    for await (const m of anthropicClient(gw).models.list()) {
      assert.equal(m.type, 'model');
      ids.push(m.id);
    }
    assert.ok(ids.includes('claude-sonnet'));
    assert.ok(ids.includes('gpt'));
  });

  void test('ai-limits answer in anthropic-ratelimit-* headers; a RateLimitError naming the limit', async () => {
    const client = anthropicClient(gw, { base: '/rpm' });
    const { response } = await client.messages.create({ model: 'claude-sonnet', max_tokens: 16, messages: HELLO }).withResponse();
    assert.equal(response.headers.get('anthropic-ratelimit-requests-limit'), '1');
    assert.equal(response.headers.get('anthropic-ratelimit-requests-remaining'), '0');
    assert.equal(response.headers.get('x-ratelimit-limit-requests'), null, 'not the OpenAI headers');
    const err = await caught(client.messages.create({ model: 'claude-sonnet', max_tokens: 16, messages: HELLO }));
    assert.ok(err instanceof Anthropic.RateLimitError, String(err));
    const e = envelope(err);
    assert.equal(e.error.type, 'rate_limit_error');
    assert.equal(e.error.code, 'AI_RPM_EXCEEDED');
    assert.equal(e.error.layer, 'gateway');
    assert.equal(e.error.policy, 'claude-rpm');
    assert.equal(err.headers?.get('anthropic-ratelimit-requests-limit'), '1');
    assert.equal(err.headers?.get('anthropic-ratelimit-requests-remaining'), '0');
    assert.match(err.headers?.get('anthropic-ratelimit-requests-reset') ?? '', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    assert.equal(mock.requests.length, 1);

    // Tokens of a streamed native answer are charged too.
    const left = 60_000 - (Date.now() % 60_000);
    if (left < 1500) await new Promise((r) => setTimeout(r, left + 50));
    const tpm = anthropicClient(gw, { base: '/tpm' });
    await tpm.messages.stream({ model: 'claude-sonnet', max_tokens: 16, messages: HELLO }).finalMessage();
    const spent = await caught(tpm.messages.create({ model: 'claude-sonnet', max_tokens: 16, messages: HELLO }));
    assert.ok(spent instanceof Anthropic.RateLimitError, String(spent));
    assert.equal(envelope(spent).error.code, 'AI_TPM_EXCEEDED');
    assert.equal(spent.headers?.get('anthropic-ratelimit-tokens-limit'), '5');
    assert.equal(spent.headers?.get('anthropic-ratelimit-tokens-remaining'), '0');
  });
});

// ---------------------------------------------------------------------------------------------

function post(path: string, body: unknown, key = ALICE_KEY): Promise<Reply> {
  return send(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify(body) });
}

void describe('prompt APIs', () => {
  void test('POST /apis/summarize {text} answers {output, usage, …} from the template', async () => {
    const r = await post('/apis/summarize', { text: 'The cat sat.', sentences: 2 });
    assert.equal(r.status, 200, r.text);
    const body = r.json();
    assert.equal(body.output, 'echo: Summarise:\n\nThe cat sat.');
    assert.equal(body.model, 'gpt');
    assert.equal(body.finish_reason, 'stop');
    // Words: 8 in the system prompt, 4 in the user message; the echo is 5.
    assert.deepEqual([at(body, 'usage', 'prompt_tokens'), at(body, 'usage', 'completion_tokens')], [12, 5]);
    assert.equal(body.request_id, r.headers['x-request-id']);
    const seen = mock.requests[0];
    assert.deepEqual(at(seen?.body, 'messages'), [
      { role: 'system', content: 'You summarise text in at most 2 sentences.' },
      { role: 'user', content: 'Summarise:\n\nThe cat sat.' },
    ]);
    assert.equal(at(seen?.body, 'temperature'), 0.2);
    assert.equal(at(seen?.body, 'max_tokens'), 50);
    assert.ok(!headerText(seen as NonNullable<typeof seen>).includes(ALICE_KEY));
    const entry = await gw.logEntry(String(r.headers['x-request-id']));
    assert.equal(entry.ai?.provider, 'openai');
    assert.equal(entry.ai?.model, 'gpt');
    assert.equal(entry.ai?.costMicroUsd, 12 * 2 + 5 * 8);

    // Served by Anthropic, mapped from the unified format.
    const c = await post('/apis/claude-summarize', { text: 'short one', tone: 'dry' });
    assert.equal(c.status, 200, c.text);
    assert.equal(c.json().output, 'echo: short one');
  });

  void test('a missing, extra or wrong-typed variable is a 400 AI_REQUEST_INVALID naming the field', async () => {
    const cases: [unknown, string][] = [
      [{}, 'text'],
      [{ text: 'x', colour: 'red' }, 'colour'],
      [{ text: 'x', sentences: 'two' }, 'sentences'],
      [{ text: 'x', sentences: 1.5 }, 'sentences'],
      [{ text: 'x'.repeat(201) }, 'text'],
    ];
    for (const [body, field] of cases) {
      const r = await post('/apis/summarize', body);
      const p = assertProblem(r, { status: 400, code: 'AI_REQUEST_INVALID', layer: 'client', policy: 'gateway' });
      assert.equal(p.evidence?.param, field, `${JSON.stringify(body)}: ${r.text}`);
    }
    const enumBad = await post('/apis/claude-summarize', { text: 'x', tone: 'cheerful' });
    assert.equal(assertProblem(enumBad, { status: 400, code: 'AI_REQUEST_INVALID', layer: 'client', policy: 'gateway' }).evidence?.param, 'tone');
    const notJson = await send(`${gw.url}/apis/summarize`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${ALICE_KEY}` }, body: '{"text":' });
    assert.equal(assertProblem(notJson, { status: 400, code: 'AI_REQUEST_INVALID', layer: 'client', policy: 'gateway' }).evidence?.param, 'body');
    assert.equal(mock.requests.length, 0);
    // The gateway key is required like on any route.
    const anon = await send(`${gw.url}/apis/summarize`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"x"}' });
    assertProblem(anon, { status: 401, code: 'AUTH_KEY_MISSING', layer: 'gateway', policy: 'gw-keys' });
  });

  void test('JSON output mode: JSON mode is asked of the provider and the output is the parsed object', async () => {
    mock.script('openai', ({ request, res }) => {
      const content = JSON.stringify({ city: 'Paris' });
      const text = JSON.stringify({
        id: 'chatcmpl-json',
        object: 'chat.completion',
        created: 1,
        model: request.model,
        choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 6, completion_tokens: 1, total_tokens: 7 },
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
    const r = await post('/apis/extract', { text: 'I live in Paris.' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json().output, { city: 'Paris' });
    assert.deepEqual(at(mock.requests[0]?.body, 'response_format'), { type: 'json_object' });

    // A model answer that is not JSON breaks the promise: the provider side failed, and says so.
    const bad = await post('/apis/extract', { text: 'I live in Paris.' });
    assert.equal(bad.status, 502, bad.text);
    const p = bad.json();
    assert.equal(p.code, 'AI_PROVIDER_ERROR');
    assert.equal(p.layer, 'provider');
    assert.equal(p.provider_error_code, 'output_not_json');
    assert.equal(bad.headers['x-pinpoint-layer'], 'provider');
  });
});
