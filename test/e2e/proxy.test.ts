/**
 * E2E: the README demo against the real demo upstream, the problem envelope, request ids and
 * what the upstream is told (forwarding headers, hop-by-hop, Host, paths).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { startDemoUpstream } from '../../src/demo/upstream.ts';
import { assertProblem, baseConfig, closeServer, send, startGateway, startUpstream, UUID, type Gateway, type Upstream } from '../helpers/harness.ts';

const READ_KEY = 'pp_demo_read_7f3a9c2e41b8d605';
const WRITE_KEY = 'pp_demo_write_c4e18b7a92d3f056';
const JSON_CT = { 'content-type': 'application/json' };

function demoConfig(upstreamPort: number, mode: 'detailed' | 'public'): Record<string, unknown> {
  const cfg = parse(readFileSync(new URL('../../examples/demo/pinpoint.yaml', import.meta.url), 'utf8')) as Record<string, unknown>;
  const upstreams = cfg.upstreams as { orders: { targets: { url: string }[] } };
  upstreams.orders.targets = [{ url: `http://127.0.0.1:${upstreamPort}` }];
  cfg.errors = { mode };
  return cfg;
}

void describe('demo scenario (README), detailed errors', () => {
  let demo: { server: Server; port: number };
  let gw: Gateway;
  before(async () => {
    demo = await startDemoUpstream(0);
    gw = await startGateway(demoConfig(demo.port, 'detailed'));
  });
  after(async () => {
    await gw.close();
    await closeServer(demo.server);
  });

  void test('1. POST without a key: 401 AUTH_KEY_MISSING with WWW-Authenticate', async () => {
    const r = await send(`${gw.url}/orders`, { method: 'POST', headers: JSON_CT, body: '{"item":"tea"}' });
    const p = assertProblem(r, { status: 401, code: 'AUTH_KEY_MISSING', layer: 'gateway', policy: 'orders-write-key' });
    const challenge = String(r.headers['www-authenticate']);
    assert.match(challenge, /Bearer realm="pinpoint"/);
    assert.match(challenge, /in="header", name="x-api-key"/);
    assert.equal(typeof p.detail, 'string');
    assert.equal(typeof p.remediation, 'string');
  });

  void test('2. read-only key: 403 AUTH_KEY_SCOPE_MISSING naming orders:write', async () => {
    const r = await send(`${gw.url}/orders`, { method: 'POST', headers: { ...JSON_CT, 'x-api-key': READ_KEY }, body: '{"item":"tea"}' });
    const p = assertProblem(r, { status: 403, code: 'AUTH_KEY_SCOPE_MISSING', layer: 'gateway', policy: 'orders-write-key' });
    assert.deepEqual(p.evidence?.missing_scopes, ['orders:write']);
    assert.equal(p.evidence?.key_id, 'k_demo_read');
    assert.equal(p.evidence?.consumer, 'demo-reader');
    // RFC 6750 §3.1: a 403 may carry the Bearer challenge with error="insufficient_scope".
    const challenge = r.headers['www-authenticate'];
    if (challenge !== undefined) assert.match(challenge, /error="insufficient_scope"/);
    // The key itself never appears in the answer.
    assert.ok(!r.text.includes(READ_KEY));
  });

  void test('3. write key: 201 from the upstream, no gateway marks', async () => {
    const r = await send(`${gw.url}/orders`, { method: 'POST', headers: { ...JSON_CT, 'x-api-key': WRITE_KEY }, body: '{"item":"tea"}' });
    assert.equal(r.status, 201, r.text);
    const order = r.json<{ item: string; created_by: string }>();
    assert.equal(order.item, 'tea');
    assert.equal(order.created_by, '127.0.0.1', 'the upstream saw the client in X-Forwarded-For');
    assert.match(String(r.headers['x-request-id']), UUID);
    assert.equal(r.headers['x-pinpoint-code'], undefined);
    assert.equal(r.headers['x-pinpoint-layer'], undefined);
    assert.equal(r.headers['proxy-status'], undefined);
  });

  void test('GET with the read key reaches the upstream', async () => {
    const r = await send(`${gw.url}/orders/ord_1`, { headers: { authorization: `Bearer ${READ_KEY}` } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json<{ id: string }>().id, 'ord_1');
  });

  void test('HEAD, which the 405 lists in Allow, gets the GET answer without its body', async () => {
    const get = await send(`${gw.url}/orders`, { headers: { 'x-api-key': READ_KEY } });
    const head = await send(`${gw.url}/orders`, { method: 'HEAD', headers: { 'x-api-key': READ_KEY } });
    assert.equal(head.status, 200, head.text);
    assert.equal(head.text, '');
    assert.equal(head.headers['content-type'], 'application/json');
    assert.equal(head.headers['content-length'], get.headers['content-length']);
  });

  void test('GET /Orders: 404 ROUTE_NOT_FOUND with the nearest route', async () => {
    const r = await send(`${gw.url}/Orders`);
    const p = assertProblem(r, { status: 404, code: 'ROUTE_NOT_FOUND', layer: 'client', policy: 'router' });
    assert.ok(Array.isArray(p.evidence?.nearest));
    assert.ok((p.evidence.nearest as string[]).includes('/orders'), `nearest: ${JSON.stringify(p.evidence.nearest)}`);
  });

  void test('DELETE /orders: 405 METHOD_NOT_ALLOWED with Allow', async () => {
    const r = await send(`${gw.url}/orders`, { method: 'DELETE' });
    const p = assertProblem(r, { status: 405, code: 'METHOD_NOT_ALLOWED', layer: 'client', policy: 'router' });
    const allow = String(r.headers.allow).split(',').map((s) => s.trim());
    assert.ok(allow.includes('GET') && allow.includes('POST'), `allow: ${String(r.headers.allow)}`);
    assert.ok(!allow.includes('DELETE'));
    assert.deepEqual(p.evidence?.allow, allow);
  });

  void test('key in the query string: 401 AUTH_KEY_WRONG_PLACE', async () => {
    const r = await send(`${gw.url}/orders?api_key=${READ_KEY}`);
    const p = assertProblem(r, { status: 401, code: 'AUTH_KEY_WRONG_PLACE', layer: 'client', policy: 'orders-read-key' });
    assert.equal(p.evidence?.found_in, 'query parameter api_key');
    assert.equal(p.evidence?.found_key_id, 'k_demo_read');
    assert.ok(r.headers['www-authenticate'] !== undefined);
  });

  void test('quantity 5000: the upstream 403 passes through, marked layer upstream, body unchanged', async () => {
    const r = await send(`${gw.url}/orders`, {
      method: 'POST',
      headers: { ...JSON_CT, 'x-api-key': WRITE_KEY },
      body: JSON.stringify({ item: 'tea', quantity: 5000 }),
    });
    assert.equal(r.status, 403);
    assert.equal(r.headers['x-pinpoint-layer'], 'upstream');
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.text, JSON.stringify({ error: 'quantity above your account limit (1000)' }));
    assert.equal(r.headers['x-pinpoint-code'], undefined);
    assert.match(String(r.headers['x-request-id']), UUID);
    const e = await gw.logEntry(String(r.headers['x-request-id']));
    assert.equal(e.status, 403);
    assert.equal(e.layer, 'upstream');
    assert.equal(e.code, null);
    assert.equal(e.consumer, 'demo-writer');
    assert.equal(e.upstreamBody, r.text);
  });
});

void describe('demo scenario, public errors', () => {
  let demo: { server: Server; port: number };
  let gw: Gateway;
  before(async () => {
    demo = await startDemoUpstream(0);
    gw = await startGateway(demoConfig(demo.port, 'public'));
  });
  after(async () => {
    await gw.close();
    await closeServer(demo.server);
  });

  const PUBLIC = ['code', 'layer', 'policy', 'request_id', 'retryable', 'status', 'title', 'type'];

  void test('a scope denial carries exactly the public members', async () => {
    const r = await send(`${gw.url}/orders`, { method: 'POST', headers: { ...JSON_CT, 'x-api-key': READ_KEY }, body: '{"item":"tea"}' });
    const p = assertProblem(r, { status: 403, code: 'AUTH_KEY_SCOPE_MISSING', layer: 'gateway', policy: 'orders-write-key' });
    assert.deepEqual(Object.keys(p).sort(), PUBLIC);
    assert.ok(!r.text.includes('k_demo_read'), 'no key id leaks in public mode');
  });

  void test('a routing miss carries exactly the public members', async () => {
    const r = await send(`${gw.url}/Orders`);
    const p = assertProblem(r, { status: 404, code: 'ROUTE_NOT_FOUND', layer: 'client', policy: 'router' });
    assert.deepEqual(Object.keys(p).sort(), PUBLIC);
  });

  void test('HEAD denial: headers only, no body', async () => {
    const r = await send(`${gw.url}/orders/ord_1`, { method: 'HEAD' });
    assert.equal(r.status, 401);
    assert.equal(r.headers['x-pinpoint-code'], 'AUTH_KEY_MISSING');
    assert.equal(r.body.length, 0);
    assert.match(String(r.headers['x-request-id']), UUID);
  });
});

void describe('request ids', () => {
  let up: Upstream;
  let gw: Gateway;
  before(async () => {
    up = await startUpstream();
    gw = await startGateway(baseConfig([up.url], { route: { paths: ['/ok/*'] }, top: { request_id: { trust_incoming: 'always' } } }));
  });
  after(async () => {
    await gw.close();
    await up.close();
  });

  void test('a valid incoming id is kept on a local reply', async () => {
    const id = 'trace-01.abc:XYZ_9';
    const r = await send(`${gw.url}/nope`, { headers: { 'x-request-id': id } });
    const p = assertProblem(r, { status: 404, code: 'ROUTE_NOT_FOUND', layer: 'client', policy: 'router' });
    assert.equal(p.request_id, id);
  });

  void test('an id with spaces is replaced', async () => {
    const r = await send(`${gw.url}/nope`, { headers: { 'x-request-id': 'has spaces in it' } });
    const p = assertProblem(r, { status: 404, code: 'ROUTE_NOT_FOUND', layer: 'client', policy: 'router' });
    assert.match(p.request_id, UUID);
  });

  void test('a 300-character id is replaced', async () => {
    const r = await send(`${gw.url}/nope`, { headers: { 'x-request-id': 'a'.repeat(300) } });
    const p = assertProblem(r, { status: 404, code: 'ROUTE_NOT_FOUND', layer: 'client', policy: 'router' });
    assert.match(p.request_id, UUID);
  });

  void test('a 200-character id is kept (upper bound)', async () => {
    const id = 'b'.repeat(200);
    const r = await send(`${gw.url}/ok/x`, { headers: { 'x-request-id': id } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-request-id'], id);
  });

  void test('proxied: the client and the upstream see the same id', async () => {
    const before = up.requests.length;
    const r = await send(`${gw.url}/ok/a`);
    assert.equal(r.status, 200);
    const id = String(r.headers['x-request-id']);
    assert.match(id, UUID);
    assert.equal(up.requests.length, before + 1);
    assert.equal(up.requests.at(-1)?.headers['x-request-id'], id);
  });

  void test('proxied: a valid incoming id reaches the upstream unchanged; an invalid one is replaced there too', async () => {
    const r1 = await send(`${gw.url}/ok/b`, { headers: { 'x-request-id': 'client-chosen-1' } });
    assert.equal(r1.headers['x-request-id'], 'client-chosen-1');
    assert.equal(up.requests.at(-1)?.headers['x-request-id'], 'client-chosen-1');
    const r2 = await send(`${gw.url}/ok/c`, { headers: { 'x-request-id': 'bad id' } });
    const id = String(r2.headers['x-request-id']);
    assert.match(id, UUID);
    assert.equal(up.requests.at(-1)?.headers['x-request-id'], id);
  });
});

interface Echo {
  method: string;
  path: string;
  headers: Record<string, string | undefined>;
}

void describe('forwarding', () => {
  let up: Upstream;
  let direct: Gateway;
  let behindProxy: Gateway;
  before(async () => {
    up = await startUpstream();
    direct = await startGateway(
      baseConfig([`${up.url}/v2`], {
        top: {
          routes: [
            { id: 'api', paths: ['/api/*'], upstream: 'svc', strip_prefix: '/api' },
            { id: 'keep-host', paths: ['/host/*'], upstream: 'svc', preserve_host: true },
          ],
        },
      }),
    );
    behindProxy = await startGateway(
      baseConfig([up.url], {
        top: {
          trusted_proxies: ['127.0.0.1/32'],
          policies: { blocklist: { type: 'ip-rules', config: { deny: ['203.0.113.7'] } } },
          global: { policies: ['blocklist'] },
        },
      }),
    );
  });
  after(async () => {
    await direct.close();
    await behindProxy.close();
    await up.close();
  });

  void test('the upstream is told about the client; a client-sent X-Forwarded-For is replaced', async () => {
    const r = await send(`${direct.url}/api/who`, {
      headers: { 'x-forwarded-for': '1.2.3.4', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example', forwarded: 'for=1.2.3.4', 'x-real-ip': '1.2.3.4' },
    });
    assert.equal(r.status, 200, r.text);
    const h = r.json<Echo>().headers;
    assert.equal(h['x-forwarded-for'], '127.0.0.1');
    assert.equal(h['x-real-ip'], '127.0.0.1');
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(h['x-forwarded-host'], `127.0.0.1:${direct.port}`);
    assert.equal(h.forwarded, `for=127.0.0.1;proto=http;host="127.0.0.1:${direct.port}"`);
  });

  void test('behind a trusted proxy, X-Forwarded-For is extended and names the client', async () => {
    const r = await send(`${behindProxy.url}/who`, { headers: { 'x-forwarded-for': '198.51.100.9' } });
    assert.equal(r.status, 200, r.text);
    const h = r.json<Echo>().headers;
    assert.equal(h['x-forwarded-for'], '198.51.100.9, 127.0.0.1');
    assert.equal(h['x-real-ip'], '198.51.100.9');
    const e = await behindProxy.logEntry(String(r.headers['x-request-id']));
    assert.equal(e.clientIp, '198.51.100.9');
  });

  void test('behind a trusted proxy, ip-rules judge the address from X-Forwarded-For', async () => {
    const r = await send(`${behindProxy.url}/who`, { headers: { 'x-forwarded-for': '203.0.113.7' } });
    const p = assertProblem(r, { status: 403, code: 'IP_DENIED', layer: 'gateway', policy: 'blocklist' });
    assert.equal(p.evidence?.client_ip, '203.0.113.7');
    assert.equal(p.evidence?.ip_source, 'x-forwarded-for');
  });

  void test('behind a trusted proxy, an X-Forwarded-For entry with a port is judged by its address', async () => {
    const r = await send(`${behindProxy.url}/who`, { headers: { 'x-forwarded-for': '203.0.113.7:4444' } });
    const p = assertProblem(r, { status: 403, code: 'IP_DENIED', layer: 'gateway', policy: 'blocklist' });
    assert.equal(p.evidence?.client_ip, '203.0.113.7');
  });

  void test('trusted proxies writing Forwarded: the upstream gets X-Forwarded-* from it, never the client\'s own', async () => {
    const gw = await startGateway(baseConfig([up.url], { top: { trusted_proxies: ['127.0.0.1/32'], trusted_proxy_header: 'forwarded' } }));
    try {
      const r = await send(`${gw.url}/who`, {
        headers: { forwarded: 'for=198.51.100.7;proto=https;host=api.example.com', 'x-forwarded-for': '203.0.113.5', 'x-forwarded-proto': 'gopher', 'x-forwarded-host': 'evil.example' },
      });
      assert.equal(r.status, 200, r.text);
      const h = r.json<Echo>().headers;
      assert.equal(h['x-forwarded-for'], '198.51.100.7, 127.0.0.1');
      assert.equal(h['x-forwarded-proto'], 'https');
      assert.equal(h['x-forwarded-host'], 'api.example.com');
      assert.equal(h['x-real-ip'], '198.51.100.7');
      assert.equal(h.forwarded, `for=198.51.100.7;proto=https;host=api.example.com, for=127.0.0.1;proto=http;host="127.0.0.1:${gw.port}"`);
    } finally {
      await gw.close();
    }
  });

  void test('without trusted proxies, X-Forwarded-For cannot dodge ip-rules (judged on the socket)', async () => {
    const gw = await startGateway(
      baseConfig([up.url], {
        top: { policies: { blocklist: { type: 'ip-rules', config: { deny: ['127.0.0.1'] } } }, global: { policies: ['blocklist'] } },
      }),
    );
    try {
      const r = await send(`${gw.url}/who`, { headers: { 'x-forwarded-for': '198.51.100.9' } });
      const p = assertProblem(r, { status: 403, code: 'IP_DENIED', layer: 'gateway', policy: 'blocklist' });
      assert.equal(p.evidence?.client_ip, '127.0.0.1');
      assert.equal(p.evidence?.ip_source, 'socket');
    } finally {
      await gw.close();
    }
  });

  void test('hop-by-hop request headers are not forwarded; end-to-end ones are', async () => {
    const r = await send(`${direct.url}/api/hop`, {
      headers: {
        connection: 'keep-alive, x-hop-secret',
        'x-hop-secret': 'only-for-the-gateway',
        'keep-alive': 'timeout=5',
        te: 'trailers',
        'proxy-authorization': 'Basic Zm9vOmJhcg==',
        'proxy-connection': 'keep-alive',
        'x-end-to-end': 'yes',
        authorization: 'Bearer end-to-end',
      },
    });
    assert.equal(r.status, 200, r.text);
    const h = r.json<Echo>().headers;
    assert.equal(h['x-hop-secret'], undefined);
    assert.equal(h['keep-alive'], undefined);
    assert.equal(h.te, undefined);
    assert.equal(h['proxy-authorization'], undefined);
    assert.equal(h['proxy-connection'], undefined);
    assert.equal(h['x-end-to-end'], 'yes');
    assert.equal(h.authorization, 'Bearer end-to-end');
  });

  void test('hop-by-hop response headers from the upstream are not passed back', async () => {
    const hop = await startUpstream((_req, res) => {
      res.writeHead(200, { connection: 'x-up-hop', 'x-up-hop': 'secret', 'x-up-e2e': 'ok', 'content-length': '2' });
      res.end('ok');
    });
    const gw = await startGateway(baseConfig([hop.url]));
    try {
      const r = await send(`${gw.url}/x`);
      assert.equal(r.status, 200);
      assert.equal(r.text, 'ok');
      assert.equal(r.headers['x-up-hop'], undefined);
      assert.equal(r.headers['x-up-e2e'], 'ok');
    } finally {
      await gw.close();
      await hop.close();
    }
  });

  void test('Expect: 100-continue (curl sends it for bodies over 1 KB) is answered by the gateway and the body forwarded', async () => {
    const body = Buffer.alloc(2048, 'a');
    const r = await new Promise<{ status: number; text: string; continued: boolean }>((resolve, reject) => {
      let continued = false;
      const req = request(
        { host: '127.0.0.1', port: direct.port, path: '/api/expect', method: 'POST', agent: false, headers: { expect: '100-continue', 'content-length': body.length } },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text, continued }));
        },
      );
      req.on('continue', () => {
        continued = true;
        req.end(body);
      });
      req.on('error', reject);
      req.setTimeout(5000, () => req.destroy(new Error('timed out')));
    });
    assert.ok(r.continued, 'the client got 100 Continue');
    assert.equal(r.status, 200, r.text);
    const e = JSON.parse(r.text) as Echo & { bodyLength: number };
    assert.equal(e.bodyLength, body.length);
    assert.equal(e.headers.expect, undefined, 'the expectation was met by the gateway, not forwarded');
  });

  void test('Host is the target\u2019s; strip_prefix and the target base path apply; the query is unchanged', async () => {
    const query = 'b=2&a=1&a=%20x&empty=&flag&enc=%2F%3F';
    const r = await send(`${direct.url}/api/items/7?${query}`);
    assert.equal(r.status, 200, r.text);
    const e = r.json<Echo>();
    assert.equal(e.path, `/v2/items/7?${query}`);
    assert.equal(e.headers.host, `127.0.0.1:${up.port}`);
  });

  void test('strip_prefix leaving nothing forwards the base path with "/"', async () => {
    const r = await send(`${direct.url}/api/`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json<Echo>().path, '/v2/');
  });

  void test('preserve_host sends the client\u2019s Host', async () => {
    const r = await send(`${direct.url}/host/x?q=1`, { headers: { host: 'api.example.test:8443' } });
    assert.equal(r.status, 200, r.text);
    const e = r.json<Echo>();
    assert.equal(e.headers.host, 'api.example.test:8443');
    assert.equal(e.headers['x-forwarded-host'], 'api.example.test:8443');
    assert.equal(e.path, '/v2/host/x?q=1');
  });
});
