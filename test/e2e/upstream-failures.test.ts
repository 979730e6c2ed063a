/**
 * E2E: upstream failures become the right status and code, attributed to layer upstream and
 * policy upstream:<id>; upstream errors pass through; retries only where they are safe.
 */
import assert from 'node:assert/strict';
import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { assertProblem, baseConfig, freeClosedPort, send, startGateway, startUpstream, type Gateway, type Upstream } from '../helpers/harness.ts';

/** Starts resources for one test and closes them when it ends (in reverse order). */
function scope(t: { after(fn: () => Promise<void>): void }) {
  const closers: (() => Promise<void>)[] = [];
  t.after(async () => {
    for (const c of closers.reverse()) await c();
  });
  return {
    async upstream(...args: Parameters<typeof startUpstream>): Promise<Upstream> {
      const u = await startUpstream(...args);
      closers.push(() => u.close());
      return u;
    },
    async gateway(cfg: Record<string, unknown>): Promise<Gateway> {
      const g = await startGateway(cfg);
      closers.push(() => g.close());
      return g;
    },
  };
}

void describe('upstream failures', () => {
  void test('connection refused: 502 UPSTREAM_CONNECT_REFUSED naming the target', async (t) => {
    const s = scope(t);
    const target = `http://127.0.0.1:${await freeClosedPort()}`;
    const gw = await s.gateway(baseConfig([target], { upstream: { retries: { attempts: 0 } } }));
    const r = await send(`${gw.url}/x`);
    const p = assertProblem(r, { status: 502, code: 'UPSTREAM_CONNECT_REFUSED', layer: 'upstream', policy: 'upstream:svc' });
    assert.equal(p.evidence?.target, target);
    assert.equal(p.evidence?.upstream, 'svc');
    assert.equal(p.retryable, true);
    const e = await gw.logEntry(p.request_id);
    assert.equal(e.status, 502);
    assert.equal(e.code, 'UPSTREAM_CONNECT_REFUSED');
    assert.equal(e.layer, 'upstream');
    assert.equal(e.policy, 'upstream:svc');
    assert.equal(e.upstreamTarget, target);
    assert.equal(e.attempts, 1);
    const last = e.trace.at(-1);
    assert.equal(last?.policy, 'upstream:svc');
    assert.equal(last?.outcome, 'deny');
    assert.equal(last?.code, 'UPSTREAM_CONNECT_REFUSED');
  });

  void test('no answer within timeouts.response_ms: 504 UPSTREAM_RESPONSE_TIMEOUT', async (t) => {
    const s = scope(t);
    const up = await s.upstream(() => undefined); // reads the request, never answers
    const gw = await s.gateway(baseConfig([up.url], { upstream: { retries: { attempts: 0 }, timeouts: { response_ms: 200 } } }));
    const t0 = performance.now();
    const r = await send(`${gw.url}/slow`);
    const elapsed = performance.now() - t0;
    const p = assertProblem(r, { status: 504, code: 'UPSTREAM_RESPONSE_TIMEOUT', layer: 'upstream', policy: 'upstream:svc' });
    assert.equal(p.evidence?.timeout_ms, 200);
    assert.equal(p.evidence?.target, up.url);
    assert.ok(elapsed >= 190 && elapsed < 3000, `answered after ${Math.round(elapsed)} ms`);
    assert.equal(up.requests.length, 1);
  });

  void test('timeouts.response_ms fires on time, not on the HTTP client\'s coarse timer wheel', async (t) => {
    const s = scope(t);
    const up = await s.upstream(() => undefined);
    const gw = await s.gateway(baseConfig([up.url], { upstream: { retries: { attempts: 0 }, timeouts: { response_ms: 300 } } }));
    await send(`${gw.url}/warm`); // the connection exists, so what is timed is the wait for headers
    const t0 = performance.now();
    const r = await send(`${gw.url}/slow`);
    const elapsed = performance.now() - t0;
    assertProblem(r, { status: 504, code: 'UPSTREAM_RESPONSE_TIMEOUT', layer: 'upstream', policy: 'upstream:svc' });
    // undici's own headersTimeout answered after 1,001 and 1,004 ms for 300 ms here. The bound
    // leaves room for a loaded CI host (873 ms was seen once under the full suite).
    assert.ok(elapsed >= 290 && elapsed < 950, `answered after ${Math.round(elapsed)} ms`);
  });

  void test('response_ms does not run while the client is still sending the body', async (t) => {
    const s = scope(t);
    const up = await s.upstream(); // answers once it has the whole body
    const gw = await s.gateway(baseConfig([up.url], { upstream: { retries: { attempts: 0 }, timeouts: { response_ms: 300 } } }));
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${gw.url}/upload`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.write('first part, ');
      // A slow upload: longer than response_ms between the first and the last byte.
      setTimeout(() => req.end('last part'), 700);
    });
    assert.equal(status, 200);
    assert.equal(up.requests[0]?.body.toString(), 'first part, last part');
  });

  void test('a timeout that rests the only target answers 504, not 503, though a retry was allowed', async (t) => {
    const s = scope(t);
    const up = await s.upstream(() => undefined);
    const gw = await s.gateway(
      baseConfig([up.url], { upstream: { retries: { attempts: 1 }, timeouts: { response_ms: 200 }, health: { max_fails: 1, fail_timeout_ms: 30_000 } } }),
    );
    const r = await send(`${gw.url}/slow`);
    const p = assertProblem(r, { status: 504, code: 'UPSTREAM_RESPONSE_TIMEOUT', layer: 'upstream', policy: 'upstream:svc' });
    assert.equal(p.evidence?.target, up.url);
    assert.equal(up.requests.length, 1, 'no second attempt: the only target was resting');
    // The next request finds the target resting: that one is the 503.
    assertProblem(await send(`${gw.url}/slow`), { status: 503, code: 'UPSTREAM_NO_HEALTHY_TARGET', layer: 'upstream', policy: 'upstream:svc' });
  });

  void test('a retryable status that rests the only target passes through instead of a 503', async (t) => {
    const s = scope(t);
    const up = await s.upstream((_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('bad gateway, said the upstream');
    });
    const gw = await s.gateway(baseConfig([up.url], { upstream: { retries: { attempts: 1 }, health: { max_fails: 1, fail_timeout_ms: 30_000 } } }));
    const r = await send(`${gw.url}/x`);
    assert.equal(r.status, 502);
    assert.equal(r.text, 'bad gateway, said the upstream');
    assert.equal(r.headers['x-pinpoint-layer'], 'upstream');
    assert.equal(up.requests.length, 1, 'not retried: the only target was resting');
  });

  void test('socket destroyed before a response: 502 UPSTREAM_RESET', async (t) => {
    const s = scope(t);
    const up = await s.upstream((req: IncomingMessage) => req.socket.destroy());
    const gw = await s.gateway(baseConfig([up.url], { upstream: { retries: { attempts: 0 } } }));
    const r = await send(`${gw.url}/reset`);
    const p = assertProblem(r, { status: 502, code: 'UPSTREAM_RESET', layer: 'upstream', policy: 'upstream:svc' });
    assert.equal(p.evidence?.target, up.url);
  });

  void test('every target failing (max_fails 1): 503 UPSTREAM_NO_HEALTHY_TARGET with Retry-After', async (t) => {
    const s = scope(t);
    const a = `http://127.0.0.1:${await freeClosedPort()}`;
    const b = `http://127.0.0.1:${await freeClosedPort()}`;
    const gw = await s.gateway(
      baseConfig([a, b], { upstream: { retries: { attempts: 1 }, health: { max_fails: 1, fail_timeout_ms: 30_000 } } }),
    );
    const first = await send(`${gw.url}/x`);
    assertProblem(first, { status: 502, code: 'UPSTREAM_CONNECT_REFUSED', layer: 'upstream', policy: 'upstream:svc' });
    const e1 = await gw.logEntry(String(first.headers['x-request-id']));
    assert.equal(e1.attempts, 2, 'both targets were tried');
    const r = await send(`${gw.url}/x`);
    const p = assertProblem(r, { status: 503, code: 'UPSTREAM_NO_HEALTHY_TARGET', layer: 'upstream', policy: 'upstream:svc' });
    const retryAfter = Number(r.headers['retry-after']);
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 30, `retry-after ${String(r.headers['retry-after'])}`);
    assert.equal(p.evidence?.upstream, 'svc');
    assert.ok(!Number.isNaN(Date.parse(String(p.evidence?.retry_at))));
  });

  for (const status of [404, 500]) {
    void test(`an upstream ${status} passes through, marked upstream, body kept in the call log`, async (t) => {
      const s = scope(t);
      const body = JSON.stringify({ error: `upstream says ${status}`, id: 42 });
      const up = await s.upstream((_req, res) => {
        res.writeHead(status, { 'content-type': 'application/json', 'x-upstream-own': 'kept' });
        res.end(body);
      });
      const gw = await s.gateway(baseConfig([up.url]));
      const r = await send(`${gw.url}/thing`);
      assert.equal(r.status, status);
      assert.equal(r.text, body);
      assert.equal(r.headers['content-type'], 'application/json');
      assert.equal(r.headers['x-upstream-own'], 'kept');
      assert.equal(r.headers['x-pinpoint-layer'], 'upstream');
      assert.equal(r.headers['x-pinpoint-code'], undefined);
      assert.equal(r.headers['proxy-status'], undefined);
      const e = await gw.logEntry(String(r.headers['x-request-id']));
      assert.equal(e.status, status);
      assert.equal(e.layer, 'upstream');
      assert.equal(e.code, null);
      assert.equal(e.upstreamTarget, up.url);
      assert.equal(e.upstreamBody, body);
    });
  }

  void test('a client that goes away mid-request: logged 499 CLIENT_CLOSED_REQUEST, the upstream request aborted', async (t) => {
    const s = scope(t);
    let upstreamClosed!: () => void;
    const upstreamGone = new Promise<void>((resolve) => (upstreamClosed = resolve));
    const up = await s.upstream((_req, res) => res.once('close', () => upstreamClosed()), { raw: true });
    const gw = await s.gateway(baseConfig([up.url], { top: { request_id: { trust_incoming: 'always' } } }));
    const req = request(`${gw.url}/hang`, { agent: false, headers: { 'x-request-id': 'client-gone-1' } });
    req.on('error', () => undefined);
    req.end();
    const deadline = Date.now() + 5000;
    while (up.requests.length === 0 && Date.now() < deadline) await sleep(5);
    assert.equal(up.requests.length, 1);
    req.destroy();
    await upstreamGone;
    const e = await gw.logEntry('client-gone-1');
    assert.equal(e.status, 499);
    assert.equal(e.code, 'CLIENT_CLOSED_REQUEST');
    assert.equal(e.layer, 'client');
  });

  void test('an upstream 200 is not marked', async (t) => {
    const s = scope(t);
    const up = await s.upstream();
    const gw = await s.gateway(baseConfig([up.url]));
    const r = await send(`${gw.url}/fine`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-pinpoint-layer'], undefined);
    const e = await gw.logEntry(String(r.headers['x-request-id']));
    assert.equal(e.layer, null);
    assert.equal(e.upstreamBody, null);
  });
});

void describe('retries', () => {
  void test('a GET is retried on another target when the first refuses', async (t) => {
    const s = scope(t);
    const dead = `http://127.0.0.1:${await freeClosedPort()}`;
    const live = await s.upstream();
    const gw = await s.gateway(baseConfig([dead, live.url], { upstream: { retries: { attempts: 1 } } }));
    const r = await send(`${gw.url}/r`);
    assert.equal(r.status, 200, r.text);
    assert.equal(live.requests.length, 1);
    const e = await gw.logEntry(String(r.headers['x-request-id']));
    assert.equal(e.attempts, 2);
    assert.equal(e.status, 200);
    assert.equal(e.code, null);
    assert.equal(e.upstreamTarget, live.url);
    const failed = e.trace.filter((x) => x.policy === 'upstream:svc');
    assert.equal(failed.length, 1);
    assert.equal(failed[0]?.code, 'UPSTREAM_CONNECT_REFUSED');
  });

  void test('a POST with a body is not retried', async (t) => {
    const s = scope(t);
    const dead = `http://127.0.0.1:${await freeClosedPort()}`;
    const live = await s.upstream();
    const gw = await s.gateway(baseConfig([dead, live.url], { upstream: { retries: { attempts: 3 } } }));
    const r = await send(`${gw.url}/r`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
    const p = assertProblem(r, { status: 502, code: 'UPSTREAM_CONNECT_REFUSED', layer: 'upstream', policy: 'upstream:svc' });
    assert.equal(p.evidence?.target, dead);
    assert.equal(live.requests.length, 0);
    const e = await gw.logEntry(p.request_id);
    assert.equal(e.attempts, 1);
  });

  void test('a PUT whose body came whole with its head is retried, with the same body', async (t) => {
    const s = scope(t);
    const dead = `http://127.0.0.1:${await freeClosedPort()}`;
    const live = await s.upstream();
    const gw = await s.gateway(baseConfig([dead, live.url], { upstream: { retries: { attempts: 1 } } }));
    const body = JSON.stringify({ id: 7, note: 'x'.repeat(2000) });
    const r = await send(`${gw.url}/items/7`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body });
    assert.equal(r.status, 200, r.text);
    assert.equal(live.requests.length, 1);
    assert.equal(live.requests[0]?.body.toString(), body);
    assert.equal(live.requests[0]?.headers['content-length'], String(Buffer.byteLength(body)));
    const e = await gw.logEntry(String(r.headers['x-request-id']));
    assert.equal(e.attempts, 2);
    assert.equal(e.upstreamTarget, live.url);
  });

  void test('a PUT whose body is still coming is streamed, so it is not retried', async (t) => {
    const s = scope(t);
    const dead = `http://127.0.0.1:${await freeClosedPort()}`;
    const live = await s.upstream();
    const gw = await s.gateway(baseConfig([dead, live.url], { upstream: { retries: { attempts: 1 } } }));
    const { status, requestId } = await new Promise<{ status: number; requestId: string }>((resolve, reject) => {
      const req = request(`${gw.url}/items/7`, { method: 'PUT', headers: { 'content-type': 'text/plain', 'content-length': '10' } }, (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, requestId: String(res.headers['x-request-id']) });
      });
      req.on('error', reject);
      req.flushHeaders();
      // The head alone first: the body follows in a later read, so the gateway streams it.
      setTimeout(() => req.end('0123456789'), 150);
    });
    assert.equal(status, 502);
    assert.equal(live.requests.length, 0);
    const e = await gw.logEntry(requestId);
    assert.equal(e.attempts, 1);
    assert.equal(e.code, 'UPSTREAM_CONNECT_REFUSED');
  });

  void test('a GET is retried on a status in on_status', async (t) => {
    const s = scope(t);
    const busy = await s.upstream((_req, res) => {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('busy');
    });
    const live = await s.upstream();
    const gw = await s.gateway(baseConfig([busy.url, live.url], { upstream: { retries: { attempts: 1, on_status: [503] } } }));
    const r = await send(`${gw.url}/r`);
    assert.equal(r.status, 200, r.text);
    assert.equal(busy.requests.length, 1);
    assert.equal(live.requests.length, 1);
    assert.equal(r.headers['x-pinpoint-layer'], undefined);
    const e = await gw.logEntry(String(r.headers['x-request-id']));
    assert.equal(e.attempts, 2);
    assert.equal(e.upstreamTarget, live.url);
  });

  void test('a status not in on_status is not retried', async (t) => {
    const s = scope(t);
    const busy = await s.upstream((_req, res) => {
      res.writeHead(503);
      res.end('busy');
    });
    const live = await s.upstream();
    const gw = await s.gateway(baseConfig([busy.url, live.url], { upstream: { retries: { attempts: 1, on_status: [502] } } }));
    const r = await send(`${gw.url}/r`);
    assert.equal(r.status, 503);
    assert.equal(r.text, 'busy');
    assert.equal(r.headers['x-pinpoint-layer'], 'upstream');
    assert.equal(live.requests.length, 0);
  });

  void test('when the last attempt also answers a retryable status, that answer passes through', async (t) => {
    const s = scope(t);
    const handler = (_req: IncomingMessage, res: ServerResponse): void => {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('still busy');
    };
    const a = await s.upstream(handler);
    const b = await s.upstream(handler);
    const gw = await s.gateway(baseConfig([a.url, b.url], { upstream: { retries: { attempts: 1, on_status: [503] }, health: { max_fails: 5 } } }));
    const r = await send(`${gw.url}/r`);
    assert.equal(r.status, 503);
    assert.equal(r.text, 'still busy');
    assert.equal(r.headers['x-pinpoint-layer'], 'upstream');
    assert.equal(a.requests.length + b.requests.length, 2);
    const e = await gw.logEntry(String(r.headers['x-request-id']));
    assert.equal(e.attempts, 2);
    assert.equal(e.layer, 'upstream');
  });
});
