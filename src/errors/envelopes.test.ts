import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { maskProviderText, providerErrorBody, type Envelope, type ProviderErrorInfo } from './envelopes.ts';

const KEY = 'sk-prov-SUPERSECRET-9f8e7d6c5b4a3928';
const ORG = 'org-internal-42-acme';

const info: ProviderErrorInfo = {
  status: 429,
  type: 'rate_limit_error',
  code: null,
  message: 'slow down',
  param: null,
  providerRequestId: 'req_1',
  provider: 'claude',
  providerType: 'anthropic',
  model: 'fast',
  requestId: 'r1',
  attempts: 2,
  policy: 'model:fast',
  typeBase: 'https://errors.example.com/',
  detailed: true,
  secrets: [],
};

/** A provider 401 quoting the gateway's provider key, an internal host and an org id. */
const leaky: ProviderErrorInfo = {
  ...info,
  status: 401,
  type: 'invalid_request_error',
  code: 'invalid_api_key',
  message: `Invalid API key: ${KEY} for org ${ORG} at https://10.1.2.3/admin (mail ops@corp.example)`,
  providerRequestId: 'req_internal_77',
  provider: 'internal-azure-prod',
  providerType: 'openai-compatible',
  model: 'gpt-4o-mini',
  secrets: [KEY, ORG],
};

const ENVELOPES: readonly Envelope[] = ['openai', 'anthropic', 'problem'];

void test('a provider error as problem+json takes its type from the configured type_base', () => {
  const body = providerErrorBody('problem', info);
  assert.deepEqual(
    { type: body['type'], status: body['status'], code: body['code'], layer: body['layer'], policy: body['policy'], request_id: body['request_id'] },
    { type: 'https://errors.example.com/ai_provider_error', status: 429, code: 'AI_PROVIDER_ERROR', layer: 'provider', policy: 'model:fast', request_id: 'r1' },
  );
});

void describe('public mode', () => {
  const pub = { ...leaky, detailed: false };

  void test('no provider text, key, org, internal URL, provider id/type or provider request id, in any envelope', () => {
    for (const env of ENVELOPES) {
      const text = JSON.stringify(providerErrorBody(env, pub));
      for (const leak of [KEY, ORG, '10.1.2.3', 'ops@corp.example', 'internal-azure-prod', 'openai-compatible', 'req_internal_77', 'Invalid API key']) {
        assert.ok(!text.includes(leak), `${env}: ${leak} in ${text}`);
      }
    }
  });

  void test('the OpenAI shape stays: error.message is the catalog title, short machine type/code kept', () => {
    const body = providerErrorBody('openai', pub) as { error: Record<string, unknown> };
    assert.equal(typeof body.error['message'], 'string');
    assert.equal(body.error['type'], 'invalid_request_error');
    assert.equal(body.error['code'], 'invalid_api_key');
    assert.equal(body.error['pinpoint_code'], 'AI_PROVIDER_ERROR');
    assert.equal(body.error['layer'], 'provider');
    assert.equal(body.error['provider_status'], 401);
    assert.equal(body.error['request_id'], 'r1');
    assert.ok('param' in body.error);
    const ant = providerErrorBody('anthropic', pub) as { type: string; error: Record<string, unknown> };
    assert.equal(ant.type, 'error');
    assert.equal(ant.error['type'], 'authentication_error');
    assert.equal(ant.error['provider_error_code'], 'invalid_api_key');
    const problem = providerErrorBody('problem', pub);
    assert.equal(problem['code'], 'AI_PROVIDER_ERROR');
    assert.equal(problem['detail'], undefined);
  });

  void test('a provider type or code that is free text, random-looking or holds a secret is dropped', () => {
    const cases: ReadonlyArray<[string | null, string | null]> = [
      [KEY, 'invalid_api_key'],
      ['invalid request: bad key', `${ORG}`],
      ['x'.repeat(60), 'a1B2c3D4e5F6g7H8i9'],
    ];
    for (const [type, code] of cases) {
      const body = providerErrorBody('openai', { ...pub, type, code }) as { error: Record<string, unknown> };
      const text = JSON.stringify(body);
      if (type !== null) assert.ok(!text.includes(type), type);
      assert.ok(!text.includes(ORG));
      assert.equal(body.error['type'], type === KEY || type?.includes(' ') === true || type?.length === 60 ? 'authentication_error' : type);
    }
    const ok = providerErrorBody('openai', { ...pub, status: 429, type: 'RESOURCE_EXHAUSTED', code: '429' }) as { error: Record<string, unknown> };
    assert.deepEqual([ok.error['type'], ok.error['code']], ['RESOURCE_EXHAUSTED', '429']);
  });
});

void describe('detailed mode', () => {
  void test('the provider and its message are shown, masked as the call log masks them and without configured secrets', () => {
    for (const env of ENVELOPES) {
      const text = JSON.stringify(providerErrorBody(env, leaky));
      for (const leak of [KEY, ORG, 'ops@corp.example']) assert.ok(!text.includes(leak), `${env}: ${leak}`);
      assert.ok(text.includes('internal-azure-prod'), env);
      assert.ok(text.includes('[SECRET]'), env);
    }
    const body = providerErrorBody('openai', leaky) as { error: Record<string, unknown> };
    assert.equal(body.error['provider'], 'internal-azure-prod');
    assert.equal(body.error['code'], 'invalid_api_key');
    assert.match(String(body.error['message']), /Invalid API key: \[SECRET\] for org \[SECRET\]/);
  });

  void test('a configured secret the masking detectors would not recognise is still stripped', () => {
    const plain = 'plainwordsecretvalue';
    assert.equal(maskProviderText(`bad key ${plain}!`, [plain]), 'bad key [SECRET]!');
    assert.equal(maskProviderText('nothing here', [plain, '']), 'nothing here');
  });
});
