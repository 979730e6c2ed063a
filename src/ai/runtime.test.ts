import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText } from '../config/load.ts';
import { AiRuntime, REST_ENTRIES_MAX } from './runtime.ts';

void test('rest periods stay bounded when a provider listing * fails for many client-chosen model names', () => {
  const r = loadConfigText(
    `version: 1
ai:
  providers:
    local: { type: openai-compatible, base_url: "http://127.0.0.1:9/v1", allow_private_network: true, keys: [{ id: k1, key_env: K }], models: ['*'] }
  models: {}
routes:
  - { id: ai, paths: [/v1/*], ai: { protocol: openai } }
`,
    { env: { K: 'x' } },
  );
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.issues));
  const rt = AiRuntime.build(r.compiled.ai);
  const now = 1_000_000;
  for (let i = 0; i < REST_ENTRIES_MAX * 2; i++) {
    const m = r.compiled.ai.resolve(`local/model-${i}`);
    assert.ok(m !== undefined);
    rt.restTarget(m.targets[0]!, now);
  }
  assert.equal(rt.resting, REST_ENTRIES_MAX);
  // A model whose only target rests is still served by it (the one that comes back soonest).
  const last = r.compiled.ai.resolve(`local/model-${REST_ENTRIES_MAX * 2 - 1}`)!;
  assert.equal(rt.pick(last, new Set(), now + 1), last.targets[0]);
  // Once rests have expired, new ones replace them instead of evicting live ones.
  const later = r.compiled.ai.resolve('local/after')!;
  rt.restTarget(later.targets[0]!, now + 60_000);
  assert.equal(rt.resting, 1);
  void rt.retire(undefined);
});
