/** Balancing and passive health of an upstream group, without sockets (pools are never used). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Upstreams } from './upstreams.ts';

function group(n: number, balance: 'round_robin' | 'weighted' = 'round_robin') {
  const ups = Upstreams.build({
    u: {
      targets: Array.from({ length: n }, (_, i) => ({ url: `http://127.0.0.1:${10001 + i}`, weight: 1 })),
      balance,
      timeouts: { connect_ms: 100, response_ms: 100, idle_ms: 100 },
      retries: { attempts: 1, on_status: [503] },
      health: { max_fails: 1, fail_timeout_ms: 1000 },
      connections: 1,
    },
  });
  return { ups, g: ups.groups.get('u')! };
}

void test('a retry goes back to the healthy target when every other one rests (no 1970 retry_at)', async () => {
  const { ups, g } = group(2);
  const [a, b] = g.targets;
  g.failure(b!, 1000); // b rests until 2000
  const first = g.pick(1500);
  assert.equal(first.target, a);
  const retry = g.pick(1500, new Set([a!]));
  assert.equal(retry.target, a);
  await ups.retire(undefined);
});

void test('when every target rests, retry_at is the earliest return, never the epoch', async () => {
  const { ups, g } = group(2);
  g.failure(g.targets[0]!, 1000);
  g.failure(g.targets[1]!, 1200);
  const r = g.pick(1500);
  assert.equal(r.target, undefined);
  assert.equal(r.retryAt, 2000);
  await ups.retire(undefined);
});
