/**
 * E2E: balancing over real targets and passive health (max_fails / fail_timeout_ms).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { assertProblem, baseConfig, send, startGateway, startUpstream, type Gateway, type Upstream } from '../helpers/harness.ts';

async function sequential(gw: Gateway, n: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) statuses.push((await send(`${gw.url}/b/${i}`)).status);
  return statuses;
}

void describe('balancing', () => {
  void test('round_robin over 3 targets: 30 sequential GETs split 10/10/10', async (t) => {
    const ups: Upstream[] = await Promise.all([startUpstream(), startUpstream(), startUpstream()]);
    const gw = await startGateway(baseConfig(ups.map((u) => u.url), { upstream: { balance: 'round_robin' } }));
    t.after(async () => {
      await gw.close();
      await Promise.all(ups.map((u) => u.close()));
    });
    const statuses = await sequential(gw, 30);
    assert.deepEqual(new Set(statuses), new Set([200]));
    assert.deepEqual(ups.map((u) => u.requests.length), [10, 10, 10]);
    // Strict rotation, not merely an even total.
    const rows = gw.queryLog({ route: 'r', limit: 30 }).reverse();
    assert.equal(rows.length, 30);
    for (let i = 3; i < rows.length; i++) assert.equal(rows[i]?.upstreamTarget, rows[i - 3]?.upstreamTarget);
  });

  void test('weighted 3:1 over 40 requests: 30/10, smoothly interleaved', async (t) => {
    const [heavy, light] = await Promise.all([startUpstream(), startUpstream()]);
    const gw = await startGateway({
      version: 1,
      upstreams: { svc: { balance: 'weighted', targets: [{ url: heavy.url, weight: 3 }, { url: light.url, weight: 1 }] } },
      routes: [{ id: 'r', paths: ['/*'], upstream: 'svc' }],
    });
    t.after(async () => {
      await gw.close();
      await heavy.close();
      await light.close();
    });
    await sequential(gw, 40);
    assert.equal(heavy.requests.length, 30);
    assert.equal(light.requests.length, 10);
    // Smooth weighted round-robin: the light target gets one of every 4 consecutive requests.
    const rows = gw.queryLog({ route: 'r', limit: 40 }).reverse();
    for (let i = 0; i < 40; i += 4) {
      const window = rows.slice(i, i + 4).filter((e) => e.upstreamTarget === light.url);
      assert.equal(window.length, 1, `requests ${i}..${i + 3}`);
    }
  });

  void test('a failing target is skipped after max_fails and comes back after fail_timeout_ms', async (t) => {
    let aBroken = true;
    const a = await startUpstream((req, res) => {
      if (aBroken) {
        req.socket.destroy();
        return;
      }
      res.end('a');
    });
    const b = await startUpstream((_req, res) => res.end('b'));
    const failTimeout = 400;
    const gw = await startGateway(
      baseConfig([a.url, b.url], { upstream: { retries: { attempts: 0 }, health: { max_fails: 2, fail_timeout_ms: failTimeout } } }),
    );
    t.after(async () => {
      await gw.close();
      await a.close();
      await b.close();
    });
    // Round-robin: A (fail 1), B, A (fail 2: A rests), then B only.
    assertProblem(await send(`${gw.url}/1`), { status: 502, code: 'UPSTREAM_RESET', layer: 'upstream', policy: 'upstream:svc' });
    assert.equal((await send(`${gw.url}/2`)).text, 'b');
    assertProblem(await send(`${gw.url}/3`), { status: 502, code: 'UPSTREAM_RESET', layer: 'upstream', policy: 'upstream:svc' });
    const restingSince = Date.now();
    assert.equal(a.requests.length, 2);
    for (let i = 0; i < 6; i++) assert.equal((await send(`${gw.url}/rest/${i}`)).text, 'b');
    assert.equal(a.requests.length, 2, 'A is not tried while it rests');

    aBroken = false;
    // The rest period is a timer in the gateway: wait it out (plus margin), then A is back.
    await sleep(Math.max(0, restingSince + failTimeout + 100 - Date.now()));
    const texts = [(await send(`${gw.url}/back/1`)).text, (await send(`${gw.url}/back/2`)).text];
    assert.deepEqual(texts.sort(), ['a', 'b']);
    assert.equal(a.requests.length, 3);
  });

  void test('a GET retried away from a failing target still succeeds while the target is taken out', async (t) => {
    const a = await startUpstream((req) => req.socket.destroy());
    const b = await startUpstream((_req, res) => res.end('b'));
    const gw = await startGateway(baseConfig([a.url, b.url], { upstream: { retries: { attempts: 1 }, health: { max_fails: 1, fail_timeout_ms: 30_000 } } }));
    t.after(async () => {
      await gw.close();
      await a.close();
      await b.close();
    });
    for (let i = 0; i < 5; i++) {
      const r = await send(`${gw.url}/x/${i}`);
      assert.equal(r.status, 200);
      assert.equal(r.text, 'b');
    }
    assert.equal(a.requests.length, 1, 'A failed once and then rested');
  });
});
