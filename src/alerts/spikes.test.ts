import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SpikeDetector } from './spikes.ts';

const opts = { windowMs: 60_000, factor: 3, minCount: 10, alpha: 0.5, cooldownMs: 600_000 };

void test('a burst from nothing alerts once it reaches min_count; below it, never', () => {
  const d = new SpikeDetector(opts);
  for (let i = 0; i < 9; i++) d.record('AUTH_KEY_MISSING', 'orders', null, `r${i}`);
  assert.deepEqual(d.rotate(60_000), []);
  const d2 = new SpikeDetector(opts);
  for (let i = 0; i < 12; i++) d2.record('AUTH_KEY_MISSING', 'orders', null, `r${i}`);
  const [a] = d2.rotate(60_000);
  assert.deepEqual([a?.code, a?.route, a?.consumer, a?.count, a?.examples.length], ['AUTH_KEY_MISSING', 'orders', '(anonymous)', 12, 5]);
});

void test('steady traffic builds a baseline; a window at factor × baseline alerts, below it does not', () => {
  const d = new SpikeDetector({ ...opts, cooldownMs: 0 });
  const windowOf = (n: number, t: number) => {
    for (let i = 0; i < n; i++) d.record('RATE_LIMIT_EXCEEDED', 'r', 'shop', `x${i}`);
    return d.rotate(t);
  };
  windowOf(20, 60_000); // first window: alerts (from nothing), baseline 10
  assert.deepEqual(windowOf(20, 120_000), []); // baseline 10 → 20 is 2×: no alert; baseline 15
  assert.deepEqual(windowOf(20, 180_000), []); // baseline 17.5
  const spike = windowOf(60, 240_000); // 60 ≥ 3 × 18.75
  assert.equal(spike.length, 1);
  assert.equal(spike[0]?.count, 60);
});

void test('cooldown: the same key does not alert twice within it', () => {
  const d = new SpikeDetector(opts);
  for (const t of [60_000, 120_000]) {
    for (let i = 0; i < 50; i++) d.record('IP_DENIED', 'r', null, 'x');
    const alerts = d.rotate(t);
    assert.equal(alerts.length, t === 60_000 ? 1 : 0);
  }
});
