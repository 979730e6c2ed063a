import assert from 'node:assert/strict';
import { test } from 'node:test';
import { providerErrorBody, type ProviderErrorInfo } from './envelopes.ts';

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
};

void test('a provider error as problem+json takes its type from the configured type_base', () => {
  const body = providerErrorBody('problem', info);
  assert.deepEqual(
    { type: body['type'], status: body['status'], code: body['code'], layer: body['layer'], policy: body['policy'], request_id: body['request_id'] },
    { type: 'https://errors.example.com/ai_provider_error', status: 429, code: 'AI_PROVIDER_ERROR', layer: 'provider', policy: 'model:fast', request_id: 'r1' },
  );
});
