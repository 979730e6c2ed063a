/**
 * E2E: what the call log holds after real requests (fields, trace, monitor mode, queries), and
 * graceful shutdown: in-flight requests finish and are all logged.
 */
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { SqliteCallLogStore } from '../../src/calllog/sqlite.ts';
import { sha256 as keyHash } from '../../src/credentials/api-keys.ts';
import { assertProblem, send, startGateway, startUpstream, type Gateway, type Reply, type Upstream } from '../helpers/harness.ts';

const KEY = 'pp_calllog_key_aaaaaaaaaaaaaaaa';
const OTHER_KEY = 'pp_calllog_key_bbbbbbbbbbbbbbbb';
const hash = (k: string): string => `sha256:${keyHash(k).toString('hex')}`;

void describe('call log', () => {
  let up: Upstream;
  let gw: Gateway;
  before(async () => {
    up = await startUpstream();
    gw = await startGateway({
      version: 1,
      errors: { mode: 'public' },
      upstreams: { items: { targets: [{ url: up.url }] } },
      policies: {
        key: { type: 'api-key', config: { in: [{ from: 'header', name: 'x-api-key' }] } },
        size: { type: 'request-size', config: { max_bytes: 1000 } },
        'watch-local': { type: 'ip-rules', mode: 'monitor', config: { deny: ['127.0.0.1/32'] } },
      },
      global: { policies: ['watch-local'] },
      consumers: [
        { id: 'alice', credentials: { api_keys: [{ id: 'k_alice', hash: hash(KEY), scopes: ['items:read'] }] } },
        { id: 'bob', credentials: { api_keys: [{ id: 'k_bob', hash: hash(OTHER_KEY) }] } },
      ],
      routes: [
        { id: 'items', paths: ['/items', '/items/{id}'], methods: ['GET', 'POST'], upstream: 'items', policies: ['key', 'size'] },
        { id: 'open', paths: ['/open'], upstream: 'items' },
      ],
    });
  });
  after(async () => {
    await gw.close();
    await up.close();
  });

  void test('an allowed request: every field, the trace with router and each policy, monitor denial', async () => {
    const r = await send(`${gw.url}/items/42?verbose=1`, { headers: { 'x-api-key': KEY, 'user-agent': 'e2e-agent/1.0' } });
    assert.equal(r.status, 200, r.text);
    const id = String(r.headers['x-request-id']);
    const e = await gw.logEntry(id);
    assert.equal(e.requestId, id);
    assert.equal(e.clientIp, '127.0.0.1');
    assert.equal(e.consumer, 'alice');
    assert.equal(e.credentialId, 'k_alice');
    assert.equal(e.route, 'items');
    assert.equal(e.method, 'GET');
    assert.equal(e.host, `127.0.0.1:${gw.port}`);
    assert.equal(e.path, '/items/42');
    assert.equal(e.status, 200);
    assert.equal(e.code, null);
    assert.equal(e.layer, null);
    assert.equal(e.policy, null);
    assert.equal(e.upstreamTarget, up.url);
    assert.equal(e.attempts, 1);
    assert.equal(e.userAgent, 'e2e-agent/1.0');
    assert.equal(e.upstreamBody, null);
    assert.equal(e.monitorDenied, true);
    assert.ok(e.latencyMs > 0);
    assert.ok(e.bytesOut > 0);
    assert.ok(Math.abs(e.ts - Date.now()) < 60_000);
    // The trace: router first, then each policy in pipeline order.
    assert.deepEqual(
      e.trace.map((t) => [t.policy, t.type, t.outcome]),
      [
        ['router', 'router', 'allow'],
        ['watch-local', 'ip-rules', 'monitor'],
        ['size', 'request-size', 'allow'],
        ['key', 'api-key', 'allow'],
      ],
    );
    const monitor = e.trace[1];
    assert.equal(monitor?.code, 'IP_DENIED');
    assert.equal(monitor?.evidence?.client_ip, '127.0.0.1');
    // The secret never reaches the log.
    assert.ok(!JSON.stringify(e).includes(KEY));
  });

  void test('monitor mode: a would-be deny lets the request through, traced and flagged', async () => {
    const r = await send(`${gw.url}/open`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-pinpoint-code'], undefined);
    const e = await gw.logEntry(String(r.headers['x-request-id']));
    assert.equal(e.monitorDenied, true);
    assert.equal(e.code, null);
    const m = e.trace.find((t) => t.policy === 'watch-local');
    assert.equal(m?.outcome, 'monitor');
    assert.equal(m?.code, 'IP_DENIED');
  });

  void test('a denial: status, code, layer and the deciding policy; the trace ends in its deny', async () => {
    const r = await send(`${gw.url}/items`, { method: 'POST', headers: { 'x-api-key': KEY }, body: 'x'.repeat(2000) });
    const p = assertProblem(r, { status: 413, code: 'BODY_TOO_LARGE', layer: 'gateway', policy: 'size' });
    const e = await gw.logEntry(p.request_id);
    assert.equal(e.status, 413);
    assert.equal(e.code, 'BODY_TOO_LARGE');
    assert.equal(e.layer, 'gateway');
    assert.equal(e.policy, 'size');
    assert.equal(e.bytesIn, 2000);
    assert.equal(e.attempts, 0);
    assert.equal(e.upstreamTarget, null);
    const last = e.trace.at(-1);
    assert.deepEqual([last?.policy, last?.outcome, last?.code], ['size', 'deny', 'BODY_TOO_LARGE']);
    assert.equal(last?.evidence?.limit_bytes, 1000);
  });

  void test('a missing key is logged against the route with no consumer', async () => {
    const r = await send(`${gw.url}/items`);
    const p = assertProblem(r, { status: 401, code: 'AUTH_KEY_MISSING', layer: 'gateway', policy: 'key' });
    const e = await gw.logEntry(p.request_id);
    assert.equal(e.consumer, null);
    assert.equal(e.credentialId, null);
    assert.equal(e.route, 'items');
    assert.equal(e.status, 401);
  });

  void test('a routing miss is logged with route null and policy router', async () => {
    const r = await send(`${gw.url}/nothing-here`);
    const p = assertProblem(r, { status: 404, code: 'ROUTE_NOT_FOUND', layer: 'client', policy: 'router' });
    const e = await gw.logEntry(p.request_id);
    assert.equal(e.route, null);
    assert.equal(e.policy, 'router');
    assert.equal(e.layer, 'client');
    assert.deepEqual(e.trace.map((t) => [t.policy, t.outcome, t.code]), [['router', 'deny', 'ROUTE_NOT_FOUND']]);
  });

  void test('queries by request id, route, consumer, status and code', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(String((await send(`${gw.url}/items/${i}`, { headers: { 'x-api-key': OTHER_KEY } })).headers['x-request-id']));
    const denied = await send(`${gw.url}/items/9`, { headers: { 'x-api-key': 'pp_not_a_known_key_000000000' } });
    assert.equal(denied.status, 401);
    const deniedId = String(denied.headers['x-request-id']);
    await gw.waitForLog({ requestId: deniedId }, 1);
    for (const id of ids) await gw.waitForLog({ requestId: id }, 1);

    const bob = gw.queryLog({ consumer: 'bob' });
    assert.deepEqual(bob.map((e) => e.requestId).sort(), [...ids].sort());
    assert.ok(bob.every((e) => e.credentialId === 'k_bob' && e.route === 'items' && e.status === 200));

    const invalid = gw.queryLog({ code: 'AUTH_KEY_INVALID' });
    assert.deepEqual(invalid.map((e) => e.requestId), [deniedId]);
    assert.equal(invalid[0]?.status, 401);

    const s401 = gw.queryLog({ status: 401 });
    assert.ok(s401.some((e) => e.requestId === deniedId));
    assert.ok(s401.every((e) => e.status === 401));

    const items = gw.queryLog({ route: 'items' });
    for (const id of [...ids, deniedId]) assert.ok(items.some((e) => e.requestId === id));
    assert.ok(items.every((e) => e.route === 'items'));

    // Newest first.
    const newest = gw.queryLog({ consumer: 'bob', limit: 1 });
    assert.equal(newest[0]?.requestId, ids[2]);
  });
});

void describe('graceful shutdown', () => {
  void test('50 in-flight requests finish with 200 across close(), and all 50 are logged', async (t) => {
    const N = 50;
    let arrived = 0;
    let allArrived: () => void = () => undefined;
    const arrivedAll = new Promise<void>((resolve) => (allArrived = resolve));
    const up = await startUpstream((_req, res) => {
      if (++arrived === N) allArrived();
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('slow ok');
      }, 300);
    });
    const gw = await startGateway(
      {
        version: 1,
        upstreams: { slow: { targets: [{ url: up.url }] } },
        routes: [{ id: 'slow', paths: ['/slow/{n}'], upstream: 'slow' }],
      },
      { shutdownGraceMs: 5000 },
    );
    t.after(async () => {
      await gw.close();
      await up.close();
    });
    const replies = Array.from({ length: N }, (_, i) => send(`${gw.url}/slow/${i}`, { timeoutMs: 8000 }));
    await arrivedAll; // every request is in flight at the upstream
    const closing = gw.app.close();
    const done = await Promise.all(replies);
    await closing;
    assert.deepEqual(
      done.map((r) => r.status),
      Array.from({ length: N }, () => 200),
    );
    assert.ok(done.every((r) => r.text === 'slow ok'));
    // After close the writer has flushed and the store is closed: read the file directly.
    const store = new SqliteCallLogStore(gw.dbFile);
    try {
      const rows = store.query({ route: 'slow', limit: 1000 });
      assert.equal(rows.length, N);
      assert.ok(rows.every((e) => e.status === 200 && e.code === null));
      const ids = new Set(rows.map((e) => e.requestId));
      for (const r of done) assert.ok(ids.has(String(r.headers['x-request-id'])));
    } finally {
      store.close();
    }
    // The listener is gone.
    await assert.rejects(send(`${gw.url}/slow/after`, { timeoutMs: 2000 }), (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED');
  });

  void test('a kept-alive connection during close(): its response says Connection: close, the next request is not taken', async (t) => {
    let arrived!: () => void;
    const first = new Promise<void>((resolve) => (arrived = resolve));
    const up = await startUpstream((_req, res) => {
      arrived();
      setTimeout(() => res.end('ok'), 200);
    });
    const gw = await startGateway({ version: 1, upstreams: { s: { targets: [{ url: up.url }] } }, routes: [{ id: 's', paths: ['/*'], upstream: 's' }] });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    t.after(async () => {
      agent.destroy();
      await gw.close();
      await up.close();
    });
    const get = (p: string): Promise<Reply> =>
      new Promise((resolve, reject) => {
        const req = request(`${gw.url}${p}`, { agent }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), text, json: <T>() => JSON.parse(text) as T });
          });
        });
        req.on('error', reject);
        req.end();
      });
    const one = get('/one');
    const two = get('/two'); // queued behind /one on the same kept-alive socket
    await first;
    const closing = gw.app.close();
    const r = await one;
    assert.equal(r.status, 200);
    // RFC 9112 §9.6: the client learns the connection ends with this response, so the request
    // queued behind it goes out on a new connection, which a draining gateway no longer accepts
    // (a load balancer sends it to another instance), instead of hearing 503 on this one.
    assert.equal(r.headers.connection, 'close');
    await assert.rejects(two, (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED');
    await closing;
    assert.equal(up.requests.length, 1, 'the request queued behind it never reached the upstream');
  });
});
