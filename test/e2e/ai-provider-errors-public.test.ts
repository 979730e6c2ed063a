/**
 * E2E: what a client learns of a provider's error in each errors mode. A provider that answers
 * 401 (or breaks a stream) quoting the gateway's own provider key, an organisation id and an
 * internal URL: public mode sends none of it, nor which provider account or target failed;
 * detailed mode names the provider and shows its message with the key and org id stripped.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { send, startGateway, startUpstream, type Gateway, type Reply, type Upstream } from '../helpers/harness.ts';

const GW_KEY = 'pp_test_public_errors_5e1c0a9b7d';
const PROV_KEY = 'sk-prov-SUPERSECRET-abc123XYZ789def456';
const ORG = 'org-internal-42-acme';
const LEAKS = [PROV_KEY, ORG, '10.1.2.3', 'internal-azure-prod', 'secret-finetune-v7', 'openai-compatible', 'req_prov_internal_9'];

let provider: Upstream;
let gw: Gateway;

before(async () => {
  provider = await startUpstream((req, res, body) => {
    const auth = String(req.headers.authorization ?? '').slice('Bearer '.length);
    const error = { error: { message: `Invalid API key: ${auth} for ${ORG} at https://10.1.2.3/admin`, type: 'invalid_request_error', code: 'invalid_api_key' } };
    if ((JSON.parse(body.toString('utf8')) as { stream?: boolean }).stream === true) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'x-request-id': 'req_prov_internal_9' });
      const chunk = { id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'secret-finetune-v7', choices: [{ index: 0, delta: { role: 'assistant', content: 'Hi' }, finish_reason: null }] };
      res.end(`data: ${JSON.stringify(chunk)}\n\ndata: ${JSON.stringify(error)}\n\n`);
      return;
    }
    const text = JSON.stringify(error);
    res.writeHead(401, { 'content-type': 'application/json', 'x-request-id': 'req_prov_internal_9' });
    res.end(text);
  });
  gw = await startGateway(
    {
      version: 1,
      errors: { mode: 'public' },
      consumers: [{ id: 'alice', credentials: { api_keys: [{ id: 'k_alice', key_env: 'GW_KEY' }] } }],
      policies: { key: { type: 'api-key', config: { in: [{ from: 'bearer' }] } } },
      ai: {
        providers: {
          'internal-azure-prod': {
            type: 'openai-compatible',
            base_url: `${provider.url}/v1`,
            allow_private_network: true,
            headers: { 'OpenAI-Organization': ORG },
            keys: [{ id: 'pk1', key_env: 'PROV_KEY' }],
          },
        },
        models: { 'gpt-4o-mini': { targets: [{ provider: 'internal-azure-prod', model: 'secret-finetune-v7' }], max_attempts: 1 } },
      },
      routes: [
        { id: 'ai', paths: ['/v1/chat/completions'], ai: { protocol: 'openai' }, policies: ['key'] },
        { id: 'ai-detailed', paths: ['/detailed/v1/chat/completions'], ai: { protocol: 'openai' }, policies: ['key'], errors: 'detailed' },
      ],
    },
    { env: { GW_KEY, PROV_KEY } },
  );
});

after(async () => {
  await gw.close();
  await provider.close();
});

function chat(path: string, stream: boolean): Promise<Reply> {
  return send(`${gw.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${GW_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }], stream }),
  });
}

function headerText(r: Reply): string {
  return JSON.stringify(r.headers);
}

void describe('provider errors, public mode', () => {
  void test('the OpenAI error shape with the provider status; no provider text, key, org, URL, account, target or upstream model in body or headers', async () => {
    const r = await chat('/v1/chat/completions', false);
    assert.equal(r.status, 401);
    const e = r.json<{ error: Record<string, unknown> }>().error;
    assert.equal(typeof e['message'], 'string');
    assert.equal(e['type'], 'invalid_request_error');
    assert.equal(e['code'], 'invalid_api_key');
    assert.equal(e['pinpoint_code'], 'AI_PROVIDER_ERROR');
    assert.equal(e['layer'], 'provider');
    assert.equal(r.headers['x-pinpoint-code'], 'AI_PROVIDER_ERROR');
    assert.equal(r.headers['x-pinpoint-ai-provider'], undefined);
    assert.equal(r.headers['x-pinpoint-ai-target'], undefined);
    assert.equal(r.headers['x-pinpoint-provider-request-id'], undefined);
    for (const leak of LEAKS) {
      assert.ok(!r.text.includes(leak), `body: ${leak}`);
      assert.ok(!headerText(r).includes(leak), `headers: ${leak}`);
    }
    // The call log keeps the provider's body for the operator, masked.
    const entry = await gw.logEntry(String(r.headers['x-request-id']));
    assert.equal(entry.code, 'AI_PROVIDER_ERROR');
    assert.ok(!String(entry.upstreamBody).includes(PROV_KEY));
  });

  void test('a stream: the in-stream error event carries no provider text, key or provider id', async () => {
    const r = await chat('/v1/chat/completions', true);
    assert.equal(r.status, 200);
    const events = r.text.split('\n\n').filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6)) as Record<string, unknown>);
    const err = events.find((ev) => 'error' in ev)?.['error'] as Record<string, unknown> | undefined;
    assert.ok(err !== undefined, r.text);
    assert.equal(err['layer'], 'provider');
    assert.equal(err['code'], 'invalid_api_key');
    for (const leak of [PROV_KEY, ORG, '10.1.2.3', 'internal-azure-prod', 'req_prov_internal_9']) {
      assert.ok(!JSON.stringify(events.filter((ev) => 'error' in ev)).includes(leak), `stream error: ${leak}`);
    }
  });
});

void describe('provider errors, detailed mode', () => {
  void test('the provider is named and its message shown, with the key and org id stripped and the rest masked', async () => {
    const r = await chat('/detailed/v1/chat/completions', false);
    assert.equal(r.status, 401);
    const e = r.json<{ error: Record<string, unknown> }>().error;
    assert.equal(e['provider'], 'internal-azure-prod');
    assert.equal(r.headers['x-pinpoint-ai-provider'], 'internal-azure-prod');
    assert.match(String(e['message']), /Invalid API key: \[SECRET\]/);
    assert.ok(!r.text.includes(PROV_KEY));
    assert.ok(!r.text.includes(ORG));
  });

  void test('a stream: the in-stream error is masked the same way', async () => {
    const r = await chat('/detailed/v1/chat/completions', true);
    assert.equal(r.status, 200);
    assert.match(r.text, /data: \{"error":/);
    assert.ok(r.text.includes('[SECRET]'));
    assert.ok(!r.text.includes(PROV_KEY));
    assert.ok(!r.text.includes(ORG));
  });
});
