import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText } from '../config/load.ts';
import { AiRuntime, REST_ENTRIES_MAX } from './runtime.ts';

function runtime() {
  const r = loadConfigText(
    `version: 1
ai:
  providers:
    local: { type: openai-compatible, base_url: "http://127.0.0.1:9/v1", allow_private_network: true, keys: [{ id: k1, key_env: K }], models: ['*'] }
  models:
    chat: { balance: ordered, targets: [{ provider: local, model: a }, { provider: local, model: b }] }
routes:
  - { id: ai, paths: [/v1/*], ai: { protocol: openai } }
`,
    { env: { K: 'x' } },
  );
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.issues));
  return { ai: r.compiled.ai, rt: AiRuntime.build(r.compiled.ai) };
}

void test('a rested target is skipped until its rest ends', () => {
  const { ai, rt } = runtime();
  const chat = ai.resolve('chat')!;
  const [a, b] = chat.targets;
  rt.restTarget(a!, 1_000);
  assert.equal(rt.pick(chat, new Set(), 1_001), b);
  assert.equal(rt.pick(chat, new Set(), 1_000 + 10_000), a, 'the default rest is 10 s');
  void rt.retire(undefined);
});

void test('rest periods stay bounded when a provider listing * fails for many client-chosen model names', () => {
  const { ai, rt } = runtime();
  const chat = ai.resolve('chat')!;
  const now = 1_000_000;
  rt.restTarget(chat.targets[0]!, now);
  for (let i = 0; i < REST_ENTRIES_MAX * 2; i++) rt.restTarget(ai.resolve(`local/model-${i}`)!.targets[0]!, now);
  assert.equal(rt.resting, REST_ENTRIES_MAX);
  // The oldest rest went first: chat's first target is tried again although its 10 s are not over.
  assert.equal(rt.pick(chat, new Set(), now + 1), chat.targets[0]);
  void rt.retire(undefined);
});
