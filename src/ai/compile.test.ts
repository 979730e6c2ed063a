/**
 * AI config rejection: each bad `ai` section (or AI/prompt route) names its exact path, so a bad
 * config never goes live. Runs in memory through the same loader as the gateway.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { ConfigIssue } from '../pipeline/types.ts';
import { loadConfigText } from '../config/load.ts';
import { DIRECT_CACHE_MAX } from './compile.ts';
import { encryptSecret } from './secrets.ts';

const ROUTE = `routes:
  - id: ai
    paths: [/v1/*]
    ai: { protocol: openai }
`;

function load(ai: string, routes = ROUTE, env: Record<string, string> = {}) {
  return loadConfigText(`version: 1\nai:\n${ai}\n${routes}`, { file: 'pinpoint.yaml', env });
}

function paths(ai: string, routes = ROUTE, env: Record<string, string> = {}): string[] {
  const r = load(ai, routes, env);
  assert.equal(r.ok, false, 'expected the config to be rejected');
  return r.ok ? [] : r.issues.map((i: ConfigIssue) => i.path);
}

const OK = `  providers:
    oa: { type: openai, keys: [{ id: k1, key_env: OA_KEY }] }
  models:
    chat: { targets: [{ provider: oa, model: gpt-4o-mini }] }`;

void test('a valid AI config loads, with the key read from the environment', () => {
  const r = load(OK, ROUTE, { OA_KEY: 'sk-test' });
  assert.equal(r.ok, true, r.ok ? '' : JSON.stringify(r.issues));
  if (!r.ok) return;
  const m = r.compiled.ai.resolve('chat');
  assert.equal(m?.targets[0]?.provider.keys[0]?.secret, 'sk-test');
  assert.equal(m?.targets[0]?.provider.baseUrl, 'https://api.openai.com/v1');
  assert.equal(r.compiled.routes[0]?.kind, 'ai');
  assert.equal(r.compiled.routes[0]?.envelope, 'openai');
});

void test('each broken AI setting is rejected naming its path', () => {
  assert.deepEqual(paths(OK), ['ai.providers.oa.keys[0].key_env']);
  assert.deepEqual(paths(`  providers:\n    az: { type: azure-openai, base_url: "https://x.openai.azure.com" }\n  models: {}`), ['ai.providers.az.api_version']);
  assert.deepEqual(paths(`  providers:\n    c: { type: openai-compatible }\n  models: {}`), ['ai.providers.c.base_url']);
  assert.deepEqual(paths(`  providers:\n    c: { type: openai-compatible, base_url: "http://169.254.169.254/v1" }\n  models: {}`), ['ai.providers.c.base_url']);
  assert.deepEqual(paths(`  providers: {}\n  models:\n    m: { targets: [{ provider: nope, model: x }] }`), ['ai.models.m.targets[0].provider']);
  assert.deepEqual(
    paths(`  providers:\n    c: { type: openai-compatible, base_url: "http://10.0.0.1/v1", allow_private_network: true }\n  models:\n    a: { targets: [{ provider: c, model: x }] }\n    b: { aliases: [a], targets: [{ provider: c, model: y }] }`),
    ['ai.models.b.aliases[0]'],
  );
});

void test('an encrypted key needs the secret key, and the right one', () => {
  const key = randomBytes(32);
  const enc = encryptSecret('sk-secret', key);
  const ai = `  providers:\n    oa: { type: openai, keys: [{ id: k1, encrypted: "${enc}" }] }\n  models: {}`;
  assert.deepEqual(paths(ai), ['ai.providers.oa.keys[0].encrypted']);
  assert.deepEqual(paths(ai, ROUTE, { PINPOINT_SECRET_KEY: randomBytes(32).toString('base64') }), ['ai.providers.oa.keys[0].encrypted']);
  const r = load(ai, ROUTE, { PINPOINT_SECRET_KEY: key.toString('base64') });
  assert.equal(r.ok, true);
  if (r.ok) assert.equal(r.compiled.ai.providers.get('oa')?.keys[0]?.secret, 'sk-secret');
});

void test('a route gives exactly one of upstream, ai and prompt; prompts use only declared variables', () => {
  assert.deepEqual(paths(OK, `routes:\n  - { id: r, paths: [/x] }\n`, { OA_KEY: 'k' }), ['routes[0]']);
  assert.deepEqual(paths(OK, `routes:\n  - { id: r, paths: [/x], ai: { protocol: openai, models: [nope] } }\n`, { OA_KEY: 'k' }), ['routes[0].ai.models[0]']);
  const prompt = `routes:\n  - id: p\n    paths: [/p]\n    prompt:\n      model: chat\n      template: "Hi {{name}} {{other}}"\n      variables: { name: { type: string } }\n`;
  assert.deepEqual(paths(OK, prompt, { OA_KEY: 'k' }), ['routes[0].prompt.template']);
});

void test('provider/model names resolve only for models the provider lists', () => {
  const r = load(`  providers:\n    oa: { type: openai, keys: [{ id: k1, key_env: K }], models: [gpt-4o] }\n  models: {}`, ROUTE, { K: 'x' });
  assert.equal(r.ok, true);
  if (!r.ok) return;
  assert.equal(r.compiled.ai.resolve('oa/gpt-4o')?.targets[0]?.model, 'gpt-4o');
  assert.equal(r.compiled.ai.resolve('oa/gpt-5'), undefined);
  assert.equal(r.compiled.ai.resolve('other/gpt-4o'), undefined);
});

void test('a provider listing * takes any model name; names past the cache bound still resolve', () => {
  const r = load(`  providers:\n    oa: { type: openai, keys: [{ id: k1, key_env: K }], models: ['*'] }\n  models: {}`, ROUTE, { K: 'x' });
  assert.equal(r.ok, true, r.ok ? '' : JSON.stringify(r.issues));
  if (!r.ok) return;
  for (let i = 0; i < DIRECT_CACHE_MAX + 50; i++) assert.equal(r.compiled.ai.resolve(`oa/model-${i}`)?.targets[0]?.model, `model-${i}`);
  assert.equal(r.compiled.ai.resolve('oa/model-0')?.targets[0]?.model, 'model-0', 'a cached name');
  assert.equal(r.compiled.ai.resolve(`oa/model-${DIRECT_CACHE_MAX + 10}`)?.name, `oa/model-${DIRECT_CACHE_MAX + 10}`, 'a name past the bound');
  assert.equal(r.compiled.ai.resolve('nope/model-0'), undefined);
});
