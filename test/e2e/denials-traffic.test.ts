/**
 * E2E: the traffic-shaped denial causes of /work/shared/denial-causes.md (rows 1, 2, 14–16, 18–26),
 * over real sockets to a real upstream. For every code: the request that provokes it (status, code,
 * layer, policy, the RFC-required header), then the request its evidence / remediation says would
 * pass, which must reach the upstream.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { explain } from '../../src/explain/explain.ts';
import {
  assertProblem,
  echo,
  send,
  startGateway,
  startUpstream,
  type Gateway,
  type Problem,
  type Reply,
  type SeenRequest,
  type SendOptions,
  type Upstream,
} from '../helpers/harness.ts';

const JSON_CT = { 'content-type': 'application/json' };
const ORDERS_SPEC = fileURLToPath(new URL('../../src/policies/openapi-validate/fixtures/orders-3.1.yaml', import.meta.url));

/** Client keys (given to the gateway through env, hashed at load) and the gateway's own upstream credential. */
const ALICE_KEY = 'pp_test_alice_5b8e2c71d94f0a36';
const SHOP_KEY = 'pp_test_shop_a17c9e4d20b3f586';
const UPSTREAM_TOKEN = 'upstream-secret-3e9a1f7c5d2b8046';
const ENV = { ALICE_KEY, SHOP_KEY, ORDERS_UPSTREAM_TOKEN: UPSTREAM_TOKEN };

// ---------------------------------------------------------------------------------------------
// One upstream for the whole file. Most paths echo; a few play an application with its own rules.

let slowArrived: (() => void) | undefined;
let slowRelease: Promise<void> = Promise.resolve();

async function upstreamApp(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
  const path = req.url ?? '';
  const reject = (status: number, error: string): void => {
    const text = JSON.stringify({ error });
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  if (path.startsWith('/slow/')) {
    // Holds the request (and its concurrency slot) until the test lets it go.
    slowArrived?.();
    await slowRelease;
  } else if (path.startsWith('/guarded/')) {
    // An upstream that denies when the gateway loses the client's address or its own credential.
    if (req.headers.authorization !== `Bearer ${UPSTREAM_TOKEN}`) return reject(403, 'missing service credential');
    if (req.headers['x-api-key'] !== undefined) return reject(403, 'client credential must not reach the service');
    if (req.headers['x-real-ip'] === undefined || req.headers['x-forwarded-for'] === undefined) return reject(403, 'client address unknown');
  } else if (path.startsWith('/shop/') && req.method === 'POST') {
    // The application's own business rule: the gateway has nothing to do with it.
    const order = JSON.parse(body.toString('utf8') || '{}') as { quantity?: number };
    if ((order.quantity ?? 0) > 1000) return reject(403, 'quantity above your account limit (1000)');
  }
  echo(req, res, body);
}

let up: Upstream;
before(async () => {
  up = await startUpstream(upstreamApp);
});
after(async () => {
  await up.close();
});

// ---------------------------------------------------------------------------------------------
// Helpers

interface Echo {
  method: string;
  path: string;
  headers: Record<string, string | undefined>;
  bodyLength: number;
}

function config(policies: Record<string, unknown>, routes: Record<string, unknown>[], top: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    version: 1,
    errors: { mode: 'detailed' },
    upstreams: { svc: { targets: [{ url: up.url }] } },
    policies,
    routes: routes.map((r) => ({ upstream: 'svc', ...r })),
    ...top,
  };
}

/** What the upstream saw for the request the gateway answered with this request id. */
function seenBy(r: Reply): SeenRequest | undefined {
  const id = r.headers['x-request-id'];
  return up.requests.find((q) => q.headers['x-request-id'] === id);
}

/** A gateway denial: the envelope, the policy header, and the upstream never saw the request. */
function denied(r: Reply, want: { status: number; code: string; layer: string; policy: string }): Problem {
  const p = assertProblem(r, want);
  assert.equal(r.headers['x-pinpoint-policy'], want.policy);
  assert.equal(seenBy(r), undefined, 'a denied request never reaches the upstream');
  return p;
}

/**
 * A 429 from rate-limit: the same envelope as {@link assertProblem}, but retryable (waiting helps),
 * so `retryable: true` and no `x-should-retry: false`.
 */
function tooMany(r: Reply, want: { code: string; policy: string }): Problem {
  assert.equal(r.status, 429, `status (body: ${r.text})`);
  assert.match(String(r.headers['content-type']), /^application\/problem\+json\b/);
  const p = r.json<Problem>();
  assert.equal(p.status, 429);
  assert.equal(p.code, want.code);
  assert.equal(p.layer, 'gateway');
  assert.equal(p.policy, want.policy);
  assert.equal(p.type, `urn:pinpoint:error:${want.code.toLowerCase()}`);
  assert.equal(p.retryable, true);
  assert.equal(r.headers['x-request-id'], p.request_id);
  assert.equal(r.headers['x-pinpoint-code'], want.code);
  assert.equal(r.headers['x-pinpoint-layer'], 'gateway');
  assert.equal(r.headers['x-pinpoint-policy'], want.policy);
  assert.equal(r.headers['x-should-retry'], undefined, 'a rate-limit refusal is worth retrying later');
  assert.ok(String(r.headers['proxy-status']).includes(`details="${want.code}"`), String(r.headers['proxy-status']));
  assert.match(String(r.headers['retry-after']), /^[0-9]+$/, 'Retry-After in delay-seconds (RFC 9110 §10.2.3)');
  assert.equal(seenBy(r), undefined, 'a refused request never reaches the upstream');
  return p;
}

/** Sends a request that must pass: 2xx, and the upstream saw it. */
async function passes(url: string, opts: SendOptions = {}): Promise<{ r: Reply; seen: SeenRequest }> {
  const r = await send(url, opts);
  assert.ok(r.status >= 200 && r.status < 300, `expected 2xx, got ${r.status}: ${r.text}`);
  assert.equal(r.headers['x-pinpoint-code'], undefined);
  const seen = seenBy(r);
  assert.ok(seen !== undefined, 'the upstream saw the request');
  assert.equal(seen.method, opts.method ?? 'GET');
  return { r, seen };
}

/** Edits the gateway's config file and reloads it (what an operator does to apply a remediation). */
function reconfigure(gw: Gateway, edit: (cfg: Record<string, unknown>) => void): void {
  const cfg = parse(readFileSync(gw.configFile, 'utf8')) as Record<string, unknown>;
  edit(cfg);
  writeFileSync(gw.configFile, stringify(cfg));
  const result = gw.app.reload();
  assert.equal(result.applied, true, JSON.stringify(result.issues));
}

function policyConfig(cfg: Record<string, unknown>, id: string): Record<string, unknown> {
  const policies = cfg.policies as Record<string, { config: Record<string, unknown> }>;
  return (policies[id] as { config: Record<string, unknown> }).config;
}

// ---------------------------------------------------------------------------------------------

void describe('cause 1: wrong URL', () => {
  let gw: Gateway;
  before(async () => {
    gw = await startGateway(config({}, [{ id: 'users', paths: ['/users', '/users/{id}'], methods: ['GET'] }]));
  });
  after(() => gw.close());

  void test('ROUTE_NOT_FOUND', async () => {
    for (const wrong of ['/user', '/Users', '/users/']) {
      const r = await send(`${gw.url}${wrong}`);
      const p = denied(r, { status: 404, code: 'ROUTE_NOT_FOUND', layer: 'client', policy: 'router' });
      assert.equal(p.evidence?.path, wrong);
      const nearest = p.evidence?.nearest as string[];
      assert.ok(Array.isArray(nearest), JSON.stringify(p.evidence));
      assert.equal(nearest[0], '/users', `${wrong}: nearest ${JSON.stringify(nearest)}`);
      // The fix: call the path the evidence names.
      const { seen } = await passes(`${gw.url}${nearest[0]}`);
      assert.equal(seen.path, '/users');
    }
  });
});

void describe('cause 2: wrong method', () => {
  let gw: Gateway;
  before(async () => {
    gw = await startGateway(
      config({}, [
        { id: 'orders-create', paths: ['/orders'], methods: ['POST'] },
        { id: 'orders-read', paths: ['/orders/{id}'], methods: ['GET'] },
      ]),
    );
  });
  after(() => gw.close());

  void test('METHOD_NOT_ALLOWED', async () => {
    const r = await send(`${gw.url}/orders`, { method: 'GET' });
    const p = denied(r, { status: 405, code: 'METHOD_NOT_ALLOWED', layer: 'client', policy: 'router' });
    const allow = String(r.headers.allow).split(',').map((s) => s.trim());
    assert.deepEqual(allow, ['POST'], `Allow: ${String(r.headers.allow)}`);
    assert.deepEqual(p.evidence?.allow, allow);
    // The fix: one of the methods Allow names.
    const { seen } = await passes(`${gw.url}/orders`, { method: allow[0] as string, headers: JSON_CT, body: '{"item":"tea"}' });
    assert.equal(seen.path, '/orders');
    assert.equal(seen.body.toString(), '{"item":"tea"}');
  });
});

void describe('cause 14: client IP not allowed / denied', () => {
  void test('IP_DENIED', async () => {
    // The test client plays a load balancer the gateway trusts: the client is the X-Forwarded-For entry.
    const gw = await startGateway(
      config({ 'ip-blocklist': { type: 'ip-rules', config: { deny: ['203.0.113.0/24'] } } }, [{ id: 'ip', paths: ['/ip/*'], policies: ['ip-blocklist'] }], {
        trusted_proxies: ['127.0.0.1/32'],
      }),
    );
    try {
      const r = await send(`${gw.url}/ip/a`, { headers: { 'x-forwarded-for': '203.0.113.7' } });
      const p = denied(r, { status: 403, code: 'IP_DENIED', layer: 'gateway', policy: 'ip-blocklist' });
      assert.equal(p.evidence?.client_ip, '203.0.113.7');
      assert.equal(p.evidence?.ip_source, 'x-forwarded-for');
      assert.equal(p.evidence?.rule, '203.0.113.0/24');
      // The fix: a client outside the deny rule passes, and the upstream is told who it is.
      const { seen } = await passes(`${gw.url}/ip/a`, { headers: { 'x-forwarded-for': '198.51.100.9' } });
      assert.equal(seen.headers['x-real-ip'], '198.51.100.9');
    } finally {
      await gw.close();
    }
  });

  void test('IP_NOT_ALLOWED', async () => {
    // The client (198.51.100.9, an allowed office address) comes through a proxy at 127.0.0.1 that
    // is not in trusted_proxies: its X-Forwarded-For is not believed, the proxy's address is judged.
    const gw = await startGateway(config({ 'office-only': { type: 'ip-rules', config: { allow: ['198.51.100.0/24'] } } }, [{ id: 'ip', paths: ['/ip/*'], policies: ['office-only'] }]));
    try {
      const viaProxy = { headers: { 'x-forwarded-for': '198.51.100.9' } };
      const r = await send(`${gw.url}/ip/b`, viaProxy);
      const p = denied(r, { status: 403, code: 'IP_NOT_ALLOWED', layer: 'gateway', policy: 'office-only' });
      assert.equal(p.evidence?.client_ip, '127.0.0.1');
      assert.equal(p.evidence?.ip_source, 'socket', 'the evidence says the address is the socket peer, not the forwarded client');
      assert.deepEqual(p.evidence?.allow, ['198.51.100.0/24']);

      // The remediation: add the proxy in front of the gateway to trusted_proxies.
      reconfigure(gw, (cfg) => (cfg.trusted_proxies = ['127.0.0.1/32']));
      const { r: ok, seen } = await passes(`${gw.url}/ip/b`, viaProxy);
      assert.equal(seen.headers['x-real-ip'], '198.51.100.9');
      assert.equal((await gw.logEntry(String(ok.headers['x-request-id']))).clientIp, '198.51.100.9');

      // Now the forwarded address is the one judged, and the evidence says where it came from.
      const outside = await send(`${gw.url}/ip/b`, { headers: { 'x-forwarded-for': '203.0.113.50' } });
      const p2 = denied(outside, { status: 403, code: 'IP_NOT_ALLOWED', layer: 'gateway', policy: 'office-only' });
      assert.equal(p2.evidence?.client_ip, '203.0.113.50');
      assert.equal(p2.evidence?.ip_source, 'x-forwarded-for');
    } finally {
      await gw.close();
    }
  });
});

void describe('cause 15: rate limit / quota exceeded', () => {
  let gw: Gateway;
  const key = { 'x-api-key': ALICE_KEY };
  before(async () => {
    gw = await startGateway(
      config(
        {
          'rl-key': { type: 'api-key', config: {} },
          'per-second': { type: 'rate-limit', config: { limits: [{ id: 'one-per-second', by: ['consumer'], rate: { limit: 1, window: '1s', burst: 1 } }] } },
          'daily-quota': { type: 'rate-limit', config: { limits: [{ id: 'daily', by: ['consumer'], quota: { limit: 1, period: 'day' } }] } },
        },
        [
          { id: 'rate', paths: ['/rl/rate'], policies: ['rl-key', 'per-second'] },
          { id: 'quota', paths: ['/rl/quota'], policies: ['rl-key', 'daily-quota'] },
        ],
        { consumers: [{ id: 'alice', credentials: { api_keys: [{ id: 'k_alice', key_env: 'ALICE_KEY' }] } }] },
      ),
      { env: ENV },
    );
  });
  after(() => gw.close());

  void test('RATE_LIMIT_EXCEEDED', async () => {
    const { r: first } = await passes(`${gw.url}/rl/rate`, { headers: key });
    assert.equal(first.headers['ratelimit-policy'], '"one-per-second";q=1;w=1');
    assert.equal(first.headers.ratelimit, '"one-per-second";r=0;t=1');

    const r = await send(`${gw.url}/rl/rate`, { headers: key });
    const p = tooMany(r, { code: 'RATE_LIMIT_EXCEEDED', policy: 'per-second' });
    assert.equal(r.headers['retry-after'], '1');
    assert.equal(r.headers['ratelimit-policy'], '"one-per-second";q=1;w=1');
    assert.equal(r.headers.ratelimit, '"one-per-second";r=0;t=1');
    assert.equal(p.evidence?.limit_id, 'one-per-second');
    assert.equal(p.evidence?.counted_by, 'consumer');
    assert.equal(p.evidence?.key, 'consumer=alice');
    assert.equal(p.evidence?.retry_after_s, 1);

    // The fix: wait Retry-After, then send again.
    await sleep(Number(r.headers['retry-after']) * 1000);
    await passes(`${gw.url}/rl/rate`, { headers: key });
  });

  void test('RATE_LIMIT_QUOTA_EXCEEDED', async () => {
    const { r: first } = await passes(`${gw.url}/rl/quota`, { headers: key });
    assert.equal(first.headers['ratelimit-policy'], '"daily";q=1;w=86400');
    assert.match(String(first.headers.ratelimit), /^"daily";r=0;t=[0-9]+$/);

    const r = await send(`${gw.url}/rl/quota`, { headers: key });
    const p = tooMany(r, { code: 'RATE_LIMIT_QUOTA_EXCEEDED', policy: 'daily-quota' });
    assert.equal(r.headers['ratelimit-policy'], '"daily";q=1;w=86400');
    assert.equal(r.headers.ratelimit, `"daily";r=0;t=${String(r.headers['retry-after'])}`);
    assert.equal(p.evidence?.limit_id, 'daily');
    assert.equal(p.evidence?.key, 'consumer=alice');
    // Retry-After points at the next UTC midnight, which evidence.reset_at names.
    const now = new Date();
    const midnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
    assert.equal(p.evidence?.reset_at, new Date(midnight).toISOString());
    const retryAfter = Number(r.headers['retry-after']);
    assert.ok(Math.abs(retryAfter - (midnight - Date.now()) / 1000) <= 5, `Retry-After ${retryAfter}`);

    // The other remediation (nobody waits until midnight in a test): the API owner raises the quota.
    reconfigure(gw, (cfg) => {
      const limits = policyConfig(cfg, 'daily-quota').limits as { quota: { limit: number } }[];
      (limits[0] as { quota: { limit: number } }).quota.limit = 2;
    });
    await passes(`${gw.url}/rl/quota`, { headers: key });
  });
});

void describe('cause 16: too many concurrent requests', () => {
  let gw: Gateway;
  before(async () => {
    gw = await startGateway(
      config({ 'one-at-a-time': { type: 'rate-limit', config: { limits: [{ id: 'parallel', by: ['route'], concurrency: 1 }] } } }, [
        { id: 'slow', paths: ['/slow/*'], policies: ['one-at-a-time'] },
      ]),
    );
  });
  after(() => gw.close());

  void test('RATE_LIMIT_CONCURRENCY_EXCEEDED', async () => {
    let release = (): void => undefined;
    slowRelease = new Promise<void>((resolve) => (release = resolve));
    const arrived = new Promise<void>((resolve) => (slowArrived = resolve));
    try {
      const holding = send(`${gw.url}/slow/first`);
      await arrived; // the first request holds the only slot, waiting in the upstream

      const r = await send(`${gw.url}/slow/second`);
      const p = tooMany(r, { code: 'RATE_LIMIT_CONCURRENCY_EXCEEDED', policy: 'one-at-a-time' });
      assert.equal(r.headers['retry-after'], '1', 'concurrency_retry_after default');
      assert.equal(r.headers['ratelimit-policy'], '"parallel";q=1;qu="concurrent-requests"');
      assert.equal(r.headers.ratelimit, '"parallel";r=0');
      assert.equal(p.evidence?.limit_id, 'parallel');
      assert.equal(p.evidence?.in_flight, 1);
      assert.equal(p.evidence?.limit, 1);

      // The fix: wait for the running request to finish, then send.
      release();
      const first = await holding;
      assert.equal(first.status, 200, first.text);
      // The slot is given back when the exchange is recorded: its call-log entry is the signal.
      await gw.logEntry(String(first.headers['x-request-id']));
      const { seen } = await passes(`${gw.url}/slow/second`);
      assert.equal(seen.path, '/slow/second');
    } finally {
      release();
      slowArrived = undefined;
    }
  });
});

void describe('cause 18: body too large', () => {
  let gw: Gateway;
  before(async () => {
    gw = await startGateway(config({ 'upload-limit': { type: 'request-size', config: { max_bytes: 1024 } } }, [{ id: 'upload', paths: ['/upload'], policies: ['upload-limit'] }]));
  });
  after(() => gw.close());

  const chunks = (total: number): Readable => Readable.from([Buffer.alloc(total / 2, 'a'), Buffer.alloc(total / 2, 'b')]);

  void test('BODY_TOO_LARGE', async () => {
    // Declared: refused from Content-Length, before the body is read.
    const r = await send(`${gw.url}/upload`, { method: 'POST', body: Buffer.alloc(2048, 'x') });
    const p = denied(r, { status: 413, code: 'BODY_TOO_LARGE', layer: 'gateway', policy: 'upload-limit' });
    assert.equal(p.evidence?.limit_bytes, 1024);
    assert.equal(p.evidence?.received_bytes, 2048);

    // Chunked: no Content-Length, counted while it streams.
    const c = await send(`${gw.url}/upload`, { method: 'POST', body: chunks(2048) });
    const pc = assertProblem(c, { status: 413, code: 'BODY_TOO_LARGE', layer: 'gateway', policy: 'upload-limit' });
    assert.equal(pc.evidence?.limit_bytes, 1024);
    assert.ok(Number(pc.evidence?.received_bytes) > 1024, JSON.stringify(pc.evidence));
    // The upstream may have seen the head of the streamed request, never a complete body.
    assert.notEqual(seenBy(c)?.complete, true);
    const e = await gw.logEntry(pc.request_id);
    assert.deepEqual([e.status, e.code, e.policy], [413, 'BODY_TOO_LARGE', 'upload-limit']);
    assert.equal(e.trace.at(-1)?.code, 'BODY_TOO_LARGE');

    // The fix: at most limit_bytes, declared or streamed.
    const limit = Number(p.evidence?.limit_bytes);
    const { seen } = await passes(`${gw.url}/upload`, { method: 'POST', body: Buffer.alloc(limit, 'x') });
    assert.equal(seen.body.length, limit);
    const { seen: seenChunked } = await passes(`${gw.url}/upload`, { method: 'POST', body: chunks(limit) });
    assert.equal(seenChunked.body.length, limit);
  });
});

void describe('cause 19: Content-Type missing or wrong', () => {
  let gw: Gateway;
  before(async () => {
    gw = await startGateway(config({ 'json-only': { type: 'content-type', config: {} } }, [{ id: 'orders', paths: ['/orders'], policies: ['json-only'] }]));
  });
  after(() => gw.close());

  void test('CONTENT_TYPE_MISSING', async () => {
    const r = await send(`${gw.url}/orders`, { method: 'POST', body: '{"item":"tea"}' });
    const p = denied(r, { status: 415, code: 'CONTENT_TYPE_MISSING', layer: 'client', policy: 'json-only' });
    assert.equal(r.headers['accept-post'], 'application/json');
    assert.deepEqual(p.evidence?.accepted, ['application/json', 'application/*+json']);
    const { seen } = await passes(`${gw.url}/orders`, { method: 'POST', headers: { 'content-type': String(r.headers['accept-post']) }, body: '{"item":"tea"}' });
    assert.equal(seen.headers['content-type'], 'application/json');
  });

  void test('CONTENT_TYPE_NOT_ACCEPTED', async () => {
    const r = await send(`${gw.url}/orders`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'item=tea' });
    const p = denied(r, { status: 415, code: 'CONTENT_TYPE_NOT_ACCEPTED', layer: 'client', policy: 'json-only' });
    assert.equal(r.headers['accept-post'], 'application/json');
    assert.equal(p.evidence?.sent, 'application/x-www-form-urlencoded');
    // The fix: serialise the body as JSON, and say so.
    const { seen } = await passes(`${gw.url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8' }, body: '{"item":"tea"}' });
    assert.equal(seen.body.toString(), '{"item":"tea"}');
  });
});

void describe('cause 20: body or parameters fail the OpenAPI description', () => {
  let gw: Gateway;
  const tenant = { 'x-tenant': 'acme' };
  const order = (quantity: number): string => JSON.stringify({ customer: 'c-1', items: [{ sku: 'ABC-1', quantity }] });
  before(async () => {
    gw = await startGateway(config({ 'orders-contract': { type: 'openapi-validate', config: { spec: ORDERS_SPEC } } }, [{ id: 'orders', paths: ['/orders', '/orders/{id}'], policies: ['orders-contract'] }]));
  });
  after(() => gw.close());

  void test('OPENAPI_BODY_INVALID', async () => {
    const r = await send(`${gw.url}/orders`, { method: 'POST', headers: { ...JSON_CT, ...tenant }, body: order(0) });
    const p = denied(r, { status: 400, code: 'OPENAPI_BODY_INVALID', layer: 'client', policy: 'orders-contract' });
    assert.deepEqual(p.evidence?.errors, ['/body/items/0/quantity: must be >= 1']);
    assert.deepEqual(p.evidence?.rules, ['/body/items/0/quantity: minimum 1']);
    assert.equal(p.evidence?.operation_id, 'createOrder');
    const { seen } = await passes(`${gw.url}/orders`, { method: 'POST', headers: { ...JSON_CT, ...tenant }, body: order(1) });
    assert.equal(seen.body.toString(), order(1));
  });

  void test('OPENAPI_PARAMS_INVALID', async () => {
    const r = await send(`${gw.url}/orders/0`, { headers: { 'x-request-priority': '12' } });
    const p = denied(r, { status: 400, code: 'OPENAPI_PARAMS_INVALID', layer: 'client', policy: 'orders-contract' });
    assert.equal(p.evidence?.operation_id, 'getOrder');
    assert.equal(p.evidence?.error_count, 2);
    // One JSON pointer per failing field, each naming the part of the request to fix (header names lower-cased).
    assert.deepEqual([...(p.evidence?.errors as string[])].sort(), ['/header/x-request-priority: must be <= 9', '/path/id: must be >= 1']);
    assert.deepEqual([...(p.evidence?.rules as string[])].sort(), ['/header/x-request-priority: maximum 9', '/path/id: minimum 1']);
    const { seen } = await passes(`${gw.url}/orders/7`, { headers: { 'x-request-priority': '5' } });
    assert.equal(seen.path, '/orders/7');
  });

  void test('OPENAPI_BODY_NOT_JSON', async () => {
    const r = await send(`${gw.url}/orders`, { method: 'POST', headers: { ...JSON_CT, ...tenant }, body: '{"customer": "c-1", "items": [' });
    const p = denied(r, { status: 400, code: 'OPENAPI_BODY_NOT_JSON', layer: 'client', policy: 'orders-contract' });
    assert.equal(p.evidence?.content_type, 'application/json');
    assert.equal(p.evidence?.reason, 'JSON ends early');
    assert.ok(!r.text.includes('"items": ['), 'the body is never quoted back');
    await passes(`${gw.url}/orders`, { method: 'POST', headers: { ...JSON_CT, ...tenant }, body: order(3) });
  });
});

void describe('cause 21: CORS preflight rejected', () => {
  const APP = 'https://app.example.com';
  let gw: Gateway;
  before(async () => {
    gw = await startGateway(
      config(
        {
          'browser-cors': {
            type: 'cors',
            config: { allow_origins: [APP], allow_methods: ['GET', 'POST', 'PUT'], allow_headers: ['content-type', 'x-api-key'] },
          },
          'cors-key': { type: 'api-key', config: {} },
        },
        [{ id: 'cart', paths: ['/cart', '/cart/{id}'], methods: ['GET', 'POST', 'PUT', 'DELETE'], policies: ['browser-cors', 'cors-key'] }],
        { consumers: [{ id: 'shop', credentials: { api_keys: [{ id: 'k_shop', key_env: 'SHOP_KEY' }] } }] },
      ),
      { env: ENV },
    );
  });
  after(() => gw.close());

  const preflight = (origin: string, method: string, headers?: string): Promise<Reply> =>
    send(`${gw.url}/cart/1`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': method, ...(headers !== undefined ? { 'access-control-request-headers': headers } : {}) },
    });

  /** A refused preflight grants nothing, and its call-log entry names what was missing. */
  async function refused(r: Reply, code: string): Promise<Record<string, unknown>> {
    denied(r, { status: 403, code, layer: 'gateway', policy: 'browser-cors' });
    for (const h of Object.keys(r.headers)) assert.ok(!h.startsWith('access-control-allow-'), `no ${h} on a refused preflight`);
    const e = await gw.logEntry(String(r.headers['x-request-id']));
    assert.equal(e.method, 'OPTIONS');
    assert.equal(e.status, 403);
    assert.equal(e.code, code);
    assert.equal(e.policy, 'browser-cors');
    const t = e.trace.find((x) => x.policy === 'browser-cors');
    assert.equal(t?.outcome, 'deny');
    assert.equal(t?.code, code);
    return { ...t?.evidence };
  }

  /** An allowed preflight: 204 from the gateway, with the allowance, and no upstream call. */
  function granted(r: Reply, origin: string): void {
    assert.equal(r.status, 204, r.text);
    assert.equal(r.headers['access-control-allow-origin'], origin);
    assert.equal(r.headers['access-control-allow-methods'], 'GET, POST, PUT');
    assert.equal(r.headers['access-control-allow-headers'], 'content-type, x-api-key');
    assert.equal(r.headers['access-control-max-age'], '600');
    assert.match(String(r.headers.vary), /\bOrigin\b/);
    assert.equal(seenBy(r), undefined, 'the gateway answers preflights itself');
  }

  void test('CORS_PREFLIGHT_ORIGIN_NOT_ALLOWED', async () => {
    const ev = await refused(await preflight('https://evil.example', 'PUT', 'content-type'), 'CORS_PREFLIGHT_ORIGIN_NOT_ALLOWED');
    assert.equal(ev.origin, 'https://evil.example');
    assert.deepEqual(ev.allowed_origins, [APP]);
    granted(await preflight(APP, 'PUT', 'content-type'), APP);
  });

  void test('CORS_PREFLIGHT_METHOD_NOT_ALLOWED', async () => {
    const ev = await refused(await preflight(APP, 'DELETE'), 'CORS_PREFLIGHT_METHOD_NOT_ALLOWED');
    assert.equal(ev.method, 'DELETE');
    assert.deepEqual(ev.allowed_methods, ['GET', 'POST', 'PUT']);
    granted(await preflight(APP, 'PUT'), APP);
  });

  void test('CORS_PREFLIGHT_HEADERS_NOT_ALLOWED', async () => {
    const ev = await refused(await preflight(APP, 'PUT', 'content-type,x-debug'), 'CORS_PREFLIGHT_HEADERS_NOT_ALLOWED');
    assert.deepEqual(ev.headers_not_allowed, ['x-debug']);
    assert.deepEqual(ev.allowed_headers, ['content-type', 'x-api-key']);
    granted(await preflight(APP, 'PUT', 'content-type,x-api-key'), APP);
  });

  void test('AUTH_KEY_MISSING', async () => {
    // After an allowed preflight, the actual request is denied by a later policy (no key): the
    // denial carries Access-Control-Allow-Origin, so the page can read the 401 and its code.
    const r = await send(`${gw.url}/cart/1`, { method: 'PUT', headers: { origin: APP, ...JSON_CT }, body: '{"qty":1}' });
    denied(r, { status: 401, code: 'AUTH_KEY_MISSING', layer: 'gateway', policy: 'cors-key' });
    assert.match(String(r.headers['www-authenticate']), /in="header", name="x-api-key"/);
    assert.equal(r.headers['access-control-allow-origin'], APP);
    const exposed = String(r.headers['access-control-expose-headers']).split(',').map((s) => s.trim());
    for (const h of ['x-request-id', 'x-pinpoint-code', 'x-pinpoint-layer', 'x-pinpoint-policy']) assert.ok(exposed.includes(h), `exposes ${h}`);
    // The fix: send the key (a header the preflight allows).
    const { r: ok, seen } = await passes(`${gw.url}/cart/1`, { method: 'PUT', headers: { origin: APP, ...JSON_CT, 'x-api-key': SHOP_KEY }, body: '{"qty":1}' });
    assert.equal(ok.headers['access-control-allow-origin'], APP);
    assert.equal(seen.headers.origin, APP);
  });
});

void describe('cause 22: CSRF token missing or wrong', () => {
  let gw: Gateway;
  const TOKEN = 'c2f1e0d9b8a7';
  before(async () => {
    gw = await startGateway(
      config(
        {
          'double-submit': { type: 'csrf', config: {} },
          'xhr-only': { type: 'csrf', config: { mode: 'header' } },
        },
        [
          { id: 'account', paths: ['/account'], policies: ['double-submit'] },
          { id: 'legacy', paths: ['/legacy'], policies: ['xhr-only'] },
        ],
      ),
    );
  });
  after(() => gw.close());

  const post = (headers: Record<string, string>): SendOptions => ({ method: 'POST', headers: { ...JSON_CT, ...headers }, body: '{"name":"x"}' });

  void test('CSRF_TOKEN_MISSING', async () => {
    const r = await send(`${gw.url}/account`, post({ cookie: `session=s1; csrf_token=${TOKEN}` }));
    const p = denied(r, { status: 403, code: 'CSRF_TOKEN_MISSING', layer: 'client', policy: 'double-submit' });
    assert.equal(p.evidence?.cookie_name, 'csrf_token');
    assert.equal(p.evidence?.header_name, 'x-csrf-token');
    await passes(`${gw.url}/account`, post({ cookie: `session=s1; csrf_token=${TOKEN}`, [String(p.evidence?.header_name)]: TOKEN }));
  });

  void test('CSRF_COOKIE_MISSING', async () => {
    const r = await send(`${gw.url}/account`, post({ cookie: 'session=s1', 'x-csrf-token': TOKEN }));
    const p = denied(r, { status: 403, code: 'CSRF_COOKIE_MISSING', layer: 'client', policy: 'double-submit' });
    assert.deepEqual(p.evidence?.cookie_names, ['session']);
    assert.equal(p.evidence?.header_present, true);
    assert.ok(!r.text.includes(TOKEN), 'token values never appear in the answer');
    await passes(`${gw.url}/account`, post({ cookie: `session=s1; ${String(p.evidence?.cookie_name)}=${TOKEN}`, 'x-csrf-token': TOKEN }));
  });

  void test('CSRF_TOKEN_MISMATCH', async () => {
    const r = await send(`${gw.url}/account`, post({ cookie: `session=s1; csrf_token=${TOKEN}`, 'x-csrf-token': 'stale-token' }));
    const p = denied(r, { status: 403, code: 'CSRF_TOKEN_MISMATCH', layer: 'client', policy: 'double-submit' });
    assert.equal(p.evidence?.header_length, 'stale-token'.length);
    assert.equal(p.evidence?.cookie_length, TOKEN.length);
    assert.ok(!r.text.includes(TOKEN) && !r.text.includes('stale-token'), 'token values never appear in the answer');
    await passes(`${gw.url}/account`, post({ cookie: `session=s1; csrf_token=${TOKEN}`, 'x-csrf-token': TOKEN }));
  });

  void test('CSRF_HEADER_MISSING', async () => {
    const r = await send(`${gw.url}/legacy`, post({ cookie: 'session=s1' }));
    const p = denied(r, { status: 403, code: 'CSRF_HEADER_MISSING', layer: 'client', policy: 'xhr-only' });
    assert.equal(p.evidence?.header_name, 'x-requested-with');
    const { seen } = await passes(`${gw.url}/legacy`, post({ cookie: 'session=s1', [String(p.evidence?.header_name)]: 'fetch' }));
    assert.equal(seen.headers['x-requested-with'], 'fetch');
  });
});

void describe('cause 23: Origin / Referer policy violated', () => {
  const APP = 'https://app.example.com';
  let gw: Gateway;
  before(async () => {
    gw = await startGateway(config({ 'same-site': { type: 'origin', config: { allowed_origins: [APP] } } }, [{ id: 'transfer', paths: ['/transfer'], policies: ['same-site'] }]));
  });
  after(() => gw.close());

  const post = (headers: Record<string, string>): SendOptions => ({ method: 'POST', headers: { ...JSON_CT, ...headers }, body: '{"amount":10}' });

  void test('ORIGIN_NOT_ALLOWED', async () => {
    const r = await send(`${gw.url}/transfer`, post({ origin: 'https://evil.example' }));
    const p = denied(r, { status: 403, code: 'ORIGIN_NOT_ALLOWED', layer: 'gateway', policy: 'same-site' });
    assert.equal(p.evidence?.origin, 'https://evil.example');
    assert.deepEqual(p.evidence?.allowed_origins, [APP]);
    await passes(`${gw.url}/transfer`, post({ origin: String(p.evidence?.allowed_origins[0]) }));
  });

  void test('ORIGIN_MISSING', async () => {
    const r = await send(`${gw.url}/transfer`, post({}));
    const p = denied(r, { status: 403, code: 'ORIGIN_MISSING', layer: 'client', policy: 'same-site' });
    assert.equal(p.evidence?.referer, 'absent');
    await passes(`${gw.url}/transfer`, post({ origin: APP }));
  });

  void test('ORIGIN_REFERER_NOT_ALLOWED', async () => {
    const r = await send(`${gw.url}/transfer`, post({ referer: 'https://evil.example/pay?token=abc123' }));
    const p = denied(r, { status: 403, code: 'ORIGIN_REFERER_NOT_ALLOWED', layer: 'gateway', policy: 'same-site' });
    assert.equal(p.evidence?.referer_origin, 'https://evil.example');
    assert.ok(!r.text.includes('abc123'), 'only the Referer origin is kept, never its query');
    await passes(`${gw.url}/transfer`, post({ referer: `${APP}/checkout` }));
  });
});

void describe('cause 24: required header missing or malformed', () => {
  let gw: Gateway;
  before(async () => {
    gw = await startGateway(
      config(
        {
          'tenant-header': { type: 'required-headers', config: { headers: [{ name: 'x-tenant', pattern: '[a-z0-9-]{3,32}' }] } },
          'internal-only': { type: 'required-headers', config: { headers: [{ name: 'x-internal-caller', values: ['billing', 'support'], status: 403 }] } },
        },
        [
          { id: 'tenant', paths: ['/tenant/*'], policies: ['tenant-header'] },
          { id: 'internal', paths: ['/internal/*'], policies: ['internal-only'] },
        ],
      ),
    );
  });
  after(() => gw.close());

  void test('REQUIRED_HEADER_MISSING', async () => {
    const r = await send(`${gw.url}/tenant/x`);
    const p = denied(r, { status: 400, code: 'REQUIRED_HEADER_MISSING', layer: 'client', policy: 'tenant-header' });
    assert.equal(p.evidence?.header, 'x-tenant');
    assert.deepEqual(p.evidence?.failing_headers, ['x-tenant']);
    const { seen } = await passes(`${gw.url}/tenant/x`, { headers: { [String(p.evidence?.header)]: 'acme' } });
    assert.equal(seen.headers['x-tenant'], 'acme');
  });

  void test('REQUIRED_HEADER_MALFORMED', async () => {
    const r = await send(`${gw.url}/tenant/x`, { headers: { 'x-tenant': 'ACME!' } });
    const p = denied(r, { status: 400, code: 'REQUIRED_HEADER_MALFORMED', layer: 'client', policy: 'tenant-header' });
    assert.equal(p.evidence?.header, 'x-tenant');
    assert.equal(p.evidence?.received, 'ACME!');
    await passes(`${gw.url}/tenant/x`, { headers: { 'x-tenant': 'acme' } });
  });

  void test('REQUIRED_HEADER_MISSING_FORBIDDEN', async () => {
    const r = await send(`${gw.url}/internal/x`);
    const p = denied(r, { status: 403, code: 'REQUIRED_HEADER_MISSING_FORBIDDEN', layer: 'gateway', policy: 'internal-only' });
    assert.equal(p.evidence?.header, 'x-internal-caller');
    await passes(`${gw.url}/internal/x`, { headers: { 'x-internal-caller': 'billing' } });
  });

  void test('REQUIRED_HEADER_MALFORMED_FORBIDDEN', async () => {
    const r = await send(`${gw.url}/internal/x`, { headers: { 'x-internal-caller': 'marketing' } });
    const p = denied(r, { status: 403, code: 'REQUIRED_HEADER_MALFORMED_FORBIDDEN', layer: 'gateway', policy: 'internal-only' });
    assert.equal(p.evidence?.header, 'x-internal-caller');
    assert.equal(p.evidence?.received, 'marketing');
    await passes(`${gw.url}/internal/x`, { headers: { 'x-internal-caller': 'support' } });
  });
});

void describe('cause 25: forwarding headers lost', () => {
  const policies = {
    'service-key': { type: 'api-key', config: {} },
    'upstream-credential': {
      type: 'request-transform',
      config: { remove_headers: ['x-api-key'], set_headers: { authorization: 'Bearer ${env:ORDERS_UPSTREAM_TOKEN}' } },
    },
  };
  const consumers = [{ id: 'shop', credentials: { api_keys: [{ id: 'k_shop', key_env: 'SHOP_KEY' }] } }];
  const routes = [{ id: 'guarded', paths: ['/guarded/*'], policies: ['service-key', 'upstream-credential'] }];

  /** Nothing secret in the call log: neither the client's key nor the injected credential. */
  async function logIsClean(gw: Gateway, r: Reply): Promise<void> {
    const e = await gw.logEntry(String(r.headers['x-request-id']));
    assert.equal(e.consumer, 'shop');
    const t = e.trace.find((x) => x.policy === 'upstream-credential');
    assert.equal(t?.outcome, 'allow');
    const logged = JSON.stringify(e);
    assert.ok(!logged.includes(UPSTREAM_TOKEN) && !logged.includes(SHOP_KEY), logged);
  }

  void test('the upstream sees the real client and the gateway credential, not the client key', async () => {
    const gw = await startGateway(config(policies, routes, { consumers }), { env: ENV });
    try {
      // A client trying to plant its own forwarding headers is not believed (no trusted proxies).
      const { r, seen } = await passes(`${gw.url}/guarded/orders?x=1`, {
        headers: { 'x-api-key': SHOP_KEY, 'x-forwarded-for': '10.9.9.9', 'x-real-ip': '10.9.9.9', forwarded: 'for=10.9.9.9' },
      });
      const h = r.json<Echo>().headers;
      assert.equal(seen.path, '/guarded/orders?x=1');
      assert.equal(h['x-forwarded-for'], '127.0.0.1');
      assert.equal(h['x-real-ip'], '127.0.0.1');
      assert.equal(h['x-forwarded-proto'], 'http');
      assert.equal(h['x-forwarded-host'], `127.0.0.1:${gw.port}`);
      assert.equal(h.forwarded, `for=127.0.0.1;proto=http;host="127.0.0.1:${gw.port}"`);
      assert.equal(h.authorization, `Bearer ${UPSTREAM_TOKEN}`);
      assert.equal(h['x-api-key'], undefined);
      await logIsClean(gw, r);
    } finally {
      await gw.close();
    }
  });

  void test('behind a trusted proxy, the upstream sees the original client', async () => {
    const gw = await startGateway(config(policies, routes, { consumers, trusted_proxies: ['127.0.0.1/32'] }), { env: ENV });
    try {
      const { r } = await passes(`${gw.url}/guarded/orders`, {
        headers: {
          'x-api-key': SHOP_KEY,
          'x-forwarded-for': '198.51.100.9',
          'x-forwarded-proto': 'https',
          'x-forwarded-host': 'shop.example.com',
          forwarded: 'for=198.51.100.9;proto=https;host="shop.example.com"',
        },
      });
      const h = r.json<Echo>().headers;
      assert.equal(h['x-forwarded-for'], '198.51.100.9, 127.0.0.1');
      assert.equal(h['x-real-ip'], '198.51.100.9');
      assert.equal(h['x-forwarded-proto'], 'https');
      assert.equal(h['x-forwarded-host'], 'shop.example.com');
      // The proxy's element first (the real client), then the hop from the proxy to the gateway (RFC 7239 §4).
      assert.equal(h.forwarded, `for=198.51.100.9;proto=https;host="shop.example.com", for=127.0.0.1;proto=http;host="127.0.0.1:${gw.port}"`);
      assert.equal(h.authorization, `Bearer ${UPSTREAM_TOKEN}`);
      assert.equal(h['x-api-key'], undefined);
      await logIsClean(gw, r);
    } finally {
      await gw.close();
    }
  });
});

void describe('cause 26: the upstream application itself returned 403', () => {
  let gw: Gateway;
  before(async () => {
    gw = await startGateway(config({}, [{ id: 'shop', paths: ['/shop/*'] }]));
  });
  after(() => gw.close());

  void test('upstream 403 passes through, layer upstream', async () => {
    const r = await send(`${gw.url}/shop/orders`, { method: 'POST', headers: JSON_CT, body: JSON.stringify({ item: 'tea', quantity: 5000 }) });
    assert.equal(r.status, 403);
    assert.equal(r.headers['x-pinpoint-layer'], 'upstream');
    assert.equal(r.headers['x-pinpoint-code'], undefined);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.text, JSON.stringify({ error: 'quantity above your account limit (1000)' }));
    assert.equal(seenBy(r)?.complete, true, 'the request reached the upstream');

    const e = await gw.logEntry(String(r.headers['x-request-id']));
    assert.equal(e.status, 403);
    assert.equal(e.layer, 'upstream');
    assert.equal(e.code, null);
    assert.equal(e.upstreamBody, r.text);
    assert.equal(e.upstreamTarget, up.url);

    const x = explain(e);
    assert.equal(x.outcome, 'denied_by_upstream');
    assert.equal(x.layer, 'upstream');
    assert.equal(x.code, null);
    assert.equal(x.status, 403);
    assert.equal(x.upstream.body, r.text);
    assert.equal(typeof x.fix, 'string');
    assert.ok(x.trace.every((t) => t.outcome !== 'deny'), 'every gateway step allowed it');

    // The fix lies in the upstream's own rule: a request it accepts goes through.
    const { seen } = await passes(`${gw.url}/shop/orders`, { method: 'POST', headers: JSON_CT, body: JSON.stringify({ item: 'tea', quantity: 5 }) });
    assert.equal(seen.path, '/shop/orders');
  });
});
