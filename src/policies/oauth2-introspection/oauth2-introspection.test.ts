/**
 * `oauth2-introspection` against a real RFC 7662 endpoint: a node:http server on 127.0.0.1:0 that
 * answers per token (active, inactive, 500, garbage, hang…) and counts calls, so caching is proven
 * by what reached the server. Assertions are on codes, evidence and headers, never on prose.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KeyIndex } from '../../credentials/api-keys.ts';
import { CATALOG } from '../../errors/catalog.ts';
import { context } from '../../pipeline/testing.ts';
import { ConfigError, type CompileContext, type CompiledPolicy, type ConsumerSpec, type Decision, type Deny, type RequestFacts } from '../../pipeline/types.ts';
import { basicAuthorization } from './client.ts';
import { oauth2Introspection } from './index.ts';
import type { IntrospectionConfig } from './schema.ts';

const NOW = Date.parse('2026-06-01T12:00:00Z');
const NOW_S = NOW / 1000;
const SECRET = 'intro-secret:with/odd chars';
const CLIENT_ID = 'pin:point';

const CONSUMERS: readonly ConsumerSpec[] = [{ id: 'alice', groups: ['buyers', 'staff'] }];

// ---------------------------------------------------------------------------------------------
// The introspection server.

interface Seen {
  readonly method: string;
  readonly contentType: string | undefined;
  readonly authorization: string | undefined;
  readonly body: string;
}

const seen: Seen[] = [];
let server: http.Server;
let base = '';

function answer(token: string): { status: number; body: string } | 'hang' | { delayMs: number; status: number; body: string } {
  const json = (o: unknown, status = 200) => ({ status, body: JSON.stringify(o) });
  switch (token) {
    case 'tok_alice':
      return json({
        active: true,
        sub: 'alice',
        client_id: 'shop-app',
        scope: 'orders:read orders:write',
        exp: NOW_S + 3600,
        jti: 'jti-alice-1',
        realm_access: { roles: ['buyer', 'auditor'] },
        access_token: token,
        refresh_token: 'rt-should-never-appear',
        echo: token,
        token_type: 'Bearer',
      });
    case 'tok_inactive':
      return json({ active: false });
    case 'tok_500':
      return { status: 500, body: 'boom' };
    case 'tok_garbage':
      return { status: 200, body: '<html>not json' };
    case 'tok_noactive':
      return json({ sub: 'x' });
    case 'tok_array':
      return json([1, 2]);
    case 'tok_hang':
      return 'hang';
    case 'tok_nosub':
      return json({ active: true, client_id: 'batch-job', scope: 'orders:read', exp: NOW_S + 3600 });
    case 'tok_expired':
      return json({ active: true, sub: 'alice', exp: NOW_S - 30 });
    case 'tok_short':
      return json({ active: true, sub: 'alice', exp: NOW_S + 2 });
    case 'tok_noexp':
      return json({ active: true, sub: 'alice', scope: ['a', 'b'], roles: 'r1 r2' });
    case 'tok_slow':
      return { delayMs: 80, status: 200, body: JSON.stringify({ active: true, sub: 'slow', exp: NOW_S + 3600 }) };
    default:
      if (token.startsWith('tok_user_')) return json({ active: true, sub: token.slice('tok_user_'.length), exp: NOW_S + 3600 });
      return json({ active: false });
  }
}

before(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', contentType: req.headers['content-type'], authorization: req.headers.authorization, body });
      // RFC 7662 §2.3: a protected resource with wrong credentials gets 401.
      if (req.headers.authorization !== basicAuthorization(CLIENT_ID, SECRET)) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"invalid_client"}');
        return;
      }
      const token = new URLSearchParams(body).get('token') ?? '';
      const a = answer(token);
      if (a === 'hang') return;
      const send = () => res.writeHead(a.status, { 'content-type': 'application/json' }).end(a.body);
      if ('delayMs' in a) setTimeout(send, a.delayMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

// ---------------------------------------------------------------------------------------------
// Helpers.

function ctxFor(env: Record<string, string | undefined> = { INTRO_SECRET: SECRET }): CompileContext {
  return { consumers: CONSUMERS, apiKeys: KeyIndex.build([], {}).index, env, path: 'policies.orders-token.config', baseDir: '.' };
}

function fullConfig(config: Partial<IntrospectionConfig> = {}): IntrospectionConfig {
  return {
    endpoint: `${base}/introspect`,
    allow_plain_http: false,
    client_id: CLIENT_ID,
    client_secret_env: 'INTRO_SECRET',
    in: [{ from: 'bearer' }],
    timeout_ms: 1000,
    cache_ttl_seconds: 60,
    negative_cache_ttl_seconds: 5,
    cache_max_entries: 100,
    consumer_claim: 'sub',
    scope_claim: 'scope',
    role_claims: ['realm_access.roles'],
    realm: 'pinpoint',
    ...config,
  };
}

function compile(config: Partial<IntrospectionConfig> = {}): CompiledPolicy {
  return oauth2Introspection.compile(fullConfig(config), { id: 'orders-token', mode: 'enforce' }, ctxFor());
}

function facts(headers: Record<string, string> = {}, now = NOW, rawQuery = ''): RequestFacts {
  return { method: 'GET', path: '/orders', rawQuery, host: 'api.example.com', headers, clientIp: '198.51.100.7', clientIpSource: 'socket', params: {}, contentLength: undefined, now };
}

function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

function isPromise(d: Decision | Promise<Decision>): d is Promise<Decision> {
  return typeof (d as { then?: unknown }).then === 'function';
}

async function decide(p: CompiledPolicy, f: RequestFacts, dryRun = false): Promise<Decision> {
  return await p.decide(context({ facts: f, routeId: 'orders', dryRun }));
}

function asDeny(d: Decision): Deny {
  assert.equal(d.outcome, 'deny', `expected a denial, got ${JSON.stringify(d)}`);
  return d;
}

function serialise(d: Decision): string {
  return JSON.stringify(d, (_k, v: unknown) => (v instanceof Set ? [...(v as Set<unknown>)] : v));
}

/** Server calls made while running fn. */
async function calls(fn: () => Promise<void>): Promise<number> {
  const before = seen.length;
  await fn();
  return seen.length - before;
}

// ---------------------------------------------------------------------------------------------

interface Case {
  readonly name: string;
  readonly token?: string;
  readonly headers?: Record<string, string>;
  readonly config?: Partial<IntrospectionConfig>;
  readonly expect: 'allow' | Deny['code'];
  readonly evidence?: Record<string, unknown>;
  readonly challenge?: string;
}

const CASES: readonly Case[] = [
  { name: 'active token', token: 'tok_alice', expect: 'allow', evidence: { consumer: 'alice', credential_id: 'jti-alice-1', cached: false } },
  {
    name: 'no token',
    expect: 'AUTH_INTROSPECTION_TOKEN_MISSING',
    evidence: { accepted: 'Authorization: Bearer', authorization_scheme: null },
    challenge: 'Bearer realm="pinpoint"',
  },
  {
    name: 'Basic credentials instead of a bearer token: the scheme is named',
    headers: { authorization: 'Basic dXNlcjpwYXNz' },
    expect: 'AUTH_INTROSPECTION_TOKEN_MISSING',
    evidence: { authorization_scheme: 'Basic' },
    challenge: 'Bearer realm="pinpoint"',
  },
  { name: 'a bare token without a scheme', headers: { authorization: 'tok_alice' }, expect: 'AUTH_INTROSPECTION_TOKEN_MISSING', evidence: { authorization_scheme: '(no scheme)' } },
  {
    name: 'inactive token',
    token: 'tok_inactive',
    expect: 'AUTH_INTROSPECTION_TOKEN_INACTIVE',
    evidence: { endpoint_host: 'HOST', cached: false },
    challenge: 'Bearer realm="pinpoint", error="invalid_token"',
  },
  {
    name: 'active but exp in the past',
    token: 'tok_expired',
    expect: 'AUTH_INTROSPECTION_TOKEN_EXPIRED',
    evidence: { expired_at: new Date((NOW_S - 30) * 1000).toISOString() },
    challenge: 'Bearer realm="pinpoint", error="invalid_token"',
  },
  {
    name: 'active without the consumer member',
    token: 'tok_nosub',
    expect: 'AUTH_INTROSPECTION_NO_CONSUMER',
    evidence: { consumer_claim: 'sub', members: ['active', 'client_id', 'exp', 'scope'] },
    challenge: 'Bearer realm="pinpoint", error="invalid_token"',
  },
  { name: 'consumer_claim client_id', token: 'tok_nosub', config: { consumer_claim: 'client_id' }, expect: 'allow', evidence: { consumer: 'batch-job' } },
  { name: 'endpoint answers 500', token: 'tok_500', expect: 'INTROSPECTION_UNAVAILABLE', evidence: { endpoint_host: 'HOST', failure: 'HTTP 500', status: 500, error_code: null } },
  { name: 'endpoint answers garbage', token: 'tok_garbage', expect: 'INTROSPECTION_UNAVAILABLE', evidence: { failure: 'invalid JSON', status: 200 } },
  { name: 'answer without active', token: 'tok_noactive', expect: 'INTROSPECTION_UNAVAILABLE', evidence: { failure: 'answer has no boolean "active" member' } },
  { name: 'answer is a JSON array', token: 'tok_array', expect: 'INTROSPECTION_UNAVAILABLE', evidence: { failure: 'answer is not a JSON object' } },
  {
    name: 'endpoint hangs past timeout_ms',
    token: 'tok_hang',
    config: { timeout_ms: 150 },
    expect: 'INTROSPECTION_UNAVAILABLE',
    evidence: { failure: 'timeout after 150 ms', status: null, error_code: 'TIMEOUT' },
  },
  { name: 'token in an accepted header', headers: { 'x-access-token': 'tok_alice' }, config: { in: [{ from: 'header', name: 'X-Access-Token' }] }, expect: 'allow' },
  {
    name: 'bearer token when only a header is accepted',
    token: 'tok_alice',
    config: { in: [{ from: 'header', name: 'x-access-token' }] },
    expect: 'AUTH_INTROSPECTION_TOKEN_MISSING',
    evidence: { accepted: 'header x-access-token', authorization_scheme: 'Bearer' },
  },
  { name: 'custom realm', config: { realm: 'orders' }, expect: 'AUTH_INTROSPECTION_TOKEN_MISSING', challenge: 'Bearer realm="orders"' },
];

void describe('oauth2-introspection decide (real endpoint)', () => {
  for (const c of CASES) {
    void test(c.name, async () => {
      const p = compile(c.config);
      const headers = c.headers ?? (c.token !== undefined ? bearer(c.token) : {});
      const d = await decide(p, facts(headers));
      if (c.expect === 'allow') assert.equal(d.outcome, 'allow', serialise(d));
      else assert.equal(asDeny(d).code, c.expect);
      if (c.evidence !== undefined) {
        assert.ok(d.outcome !== 'skip');
        const ev = d.evidence ?? {};
        for (const [k, v] of Object.entries(c.evidence)) assert.deepEqual(ev[k], v === 'HOST' ? new URL(base).host : v, `evidence.${k}`);
      }
      if (c.challenge !== undefined) assert.equal(asDeny(d).headers?.['www-authenticate'], c.challenge);
      if (d.outcome === 'deny') {
        if (CATALOG[d.code].status === 401) assert.ok(d.headers?.['www-authenticate'] !== undefined, 'a 401 carries WWW-Authenticate (RFC 9110 §11.6.1)');
        else if (CATALOG[d.code].status === 503) assert.equal(d.headers?.['retry-after'], '1', 'a 503 says when to retry (RFC 9110 §10.2.3)');
        else assert.equal(d.headers, undefined);
        assert.equal(d.identity, undefined);
      }
      // Never the token, never the gateway's secret.
      const text = serialise(d);
      if (c.token !== undefined) assert.ok(!text.includes(c.token), text);
      assert.ok(!text.includes(SECRET) && !text.includes('rt-should-never-appear'), text);
    });
  }

  void test('the endpoint is unreachable (stopped): ECONNREFUSED, not the client\u2019s fault', async () => {
    const gone = http.createServer();
    await new Promise<void>((resolve) => gone.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(gone.address() as AddressInfo).port}/introspect`;
    await new Promise<void>((resolve) => gone.close(() => resolve()));
    const d = asDeny(await decide(compile({ endpoint }), facts(bearer('tok_alice'))));
    assert.equal(d.code, 'INTROSPECTION_UNAVAILABLE');
    assert.equal(d.evidence.error_code, 'ECONNREFUSED');
    assert.equal(d.evidence.endpoint_host, new URL(endpoint).host);
    const entry = CATALOG.INTROSPECTION_UNAVAILABLE;
    assert.deepEqual([entry.status, entry.layer, entry.retryable], [503, 'gateway', true]);
  });

  void test('the endpoint refuses the gateway\u2019s credentials: HTTP 401 named in evidence', async () => {
    const p = oauth2Introspection.compile(fullConfig(), { id: 'x', mode: 'enforce' }, ctxFor({ INTRO_SECRET: 'wrong' }));
    const d = asDeny(await decide(p, facts(bearer('tok_alice'))));
    assert.equal(d.code, 'INTROSPECTION_UNAVAILABLE');
    assert.deepEqual([d.evidence.failure, d.evidence.status], ['HTTP 401', 401]);
  });
});

void describe('oauth2-introspection request (RFC 7662 §2.1)', () => {
  void test('POST, form-encoded token with hint, HTTP Basic with form-encoded client credentials', async () => {
    const n = seen.length;
    await decide(compile(), facts(bearer('tok_alice')));
    const s = seen[n];
    assert.ok(s !== undefined);
    assert.equal(s.method, 'POST');
    assert.equal(s.contentType, 'application/x-www-form-urlencoded');
    assert.deepEqual(Object.fromEntries(new URLSearchParams(s.body)), { token: 'tok_alice', token_type_hint: 'access_token' });
    const decoded = Buffer.from((s.authorization ?? '').replace(/^Basic /, ''), 'base64').toString('utf8');
    assert.equal(decoded, 'pin%3Apoint:intro-secret%3Awith%2Fodd+chars');
  });
});

void describe('oauth2-introspection identity', () => {
  void test('consumer, scopes, roles (dotted claim), groups from config, claims without anything token-like', async () => {
    const d = await decide(compile(), facts(bearer('tok_alice')));
    assert.equal(d.outcome, 'allow');
    const id = d.identity;
    assert.ok(id !== undefined);
    assert.equal(id.consumer, 'alice');
    assert.equal(id.credentialId, 'jti-alice-1');
    assert.equal(id.credentialType, 'oauth2-introspection');
    assert.deepEqual([...id.scopes], ['orders:read', 'orders:write']);
    assert.deepEqual([...(id.roles ?? [])], ['buyer', 'auditor']);
    assert.deepEqual([...(id.groups ?? [])], ['buyers', 'staff']);
    const claims = id.claims ?? {};
    assert.deepEqual(Object.keys(claims).sort(), ['active', 'client_id', 'exp', 'jti', 'realm_access', 'scope', 'sub', 'token_type']);
    assert.ok(Object.isFrozen(id) && Object.isFrozen(claims) && Object.isFrozen(claims.realm_access));
  });

  void test('scope as an array, roles as a space-separated string, no jti: credential id is a hash prefix', async () => {
    const d = await decide(compile({ role_claims: ['roles'] }), facts(bearer('tok_noexp')));
    assert.ok(d.outcome === 'allow' && d.identity !== undefined);
    assert.deepEqual([...d.identity.scopes], ['a', 'b']);
    assert.deepEqual([...(d.identity.roles ?? [])], ['r1', 'r2']);
    assert.match(d.identity.credentialId, /^sha256:[0-9a-f]{12}$/);
    assert.deepEqual([...(d.identity.groups ?? [])], ['buyers', 'staff']);
  });

  void test('a consumer not in config has no groups', async () => {
    const d = await decide(compile(), facts(bearer('tok_user_bob')));
    assert.ok(d.outcome === 'allow' && d.identity !== undefined);
    assert.equal(d.identity.consumer, 'bob');
    assert.equal(d.identity.groups?.size, 0);
  });

  void test('the cached identity is the same object (built once per token)', async () => {
    const p = compile();
    const a = await decide(p, facts(bearer('tok_alice')));
    const b = await decide(p, facts(bearer('tok_alice')));
    assert.ok(a.outcome === 'allow' && b.outcome === 'allow');
    assert.equal(a.identity, b.identity);
  });
});

void describe('oauth2-introspection cache', () => {
  void test('a cached answer is served synchronously without calling the endpoint', async () => {
    const p = compile();
    assert.equal(await calls(async () => void (await decide(p, facts(bearer('tok_alice'))))), 1);
    const again = p.decide(context({ facts: facts(bearer('tok_alice'), NOW + 1000) }));
    assert.ok(!isPromise(again), 'a cache hit decides synchronously');
    assert.equal(again.outcome, 'allow');
    assert.equal(again.evidence?.cached, true);
  });

  void test('positive answers live until exp when exp comes before cache_ttl', async () => {
    const p = compile({ cache_ttl_seconds: 60 });
    const n = await calls(async () => {
      for (const t of [0, 1000, 1999]) assert.equal((await decide(p, facts(bearer('tok_short'), NOW + t))).outcome, 'allow');
    });
    assert.equal(n, 1, 'one call while the token is within exp');
    // At exp the cached answer is gone; the server now answers "expired" (its exp is in the past).
    const m = await calls(async () => assert.equal(asDeny(await decide(p, facts(bearer('tok_short'), NOW + 2000))).code, 'AUTH_INTROSPECTION_TOKEN_EXPIRED'));
    assert.equal(m, 1);
  });

  void test('positive answers live until cache_ttl when it comes before exp', async () => {
    const p = compile({ cache_ttl_seconds: 10 });
    assert.equal(await calls(async () => { for (const t of [0, 5000, 9999]) await decide(p, facts(bearer('tok_alice'), NOW + t)); }), 1);
    assert.equal(await calls(async () => void (await decide(p, facts(bearer('tok_alice'), NOW + 10_000)))), 1);
  });

  void test('cache_ttl_seconds 0 asks every time', async () => {
    const p = compile({ cache_ttl_seconds: 0 });
    assert.equal(await calls(async () => { for (let i = 0; i < 3; i++) await decide(p, facts(bearer('tok_alice'))); }), 3);
  });

  void test('inactive answers are cached for negative_cache_ttl_seconds only', async () => {
    const p = compile({ negative_cache_ttl_seconds: 5 });
    const n = await calls(async () => {
      for (const t of [0, 4999]) assert.equal(asDeny(await decide(p, facts(bearer('tok_inactive'), NOW + t))).code, 'AUTH_INTROSPECTION_TOKEN_INACTIVE');
    });
    assert.equal(n, 1);
    const d = asDeny(p.decide(context({ facts: facts(bearer('tok_inactive'), NOW + 1) })) as Decision);
    assert.equal(d.evidence.cached, true);
    assert.equal(await calls(async () => void (await decide(p, facts(bearer('tok_inactive'), NOW + 5000)))), 1);
  });

  void test('endpoint failures are never cached', async () => {
    const p = compile();
    assert.equal(await calls(async () => { for (let i = 0; i < 3; i++) await decide(p, facts(bearer('tok_500'))); }), 3);
  });

  void test('bounded LRU: the least recently used token is evicted first', async () => {
    const p = compile({ cache_max_entries: 2 });
    const use = (name: string) => decide(p, facts(bearer(`tok_user_${name}`)));
    assert.equal(await calls(async () => { await use('a'); await use('b'); await use('a'); await use('c'); }), 3, 'a, b, c (a again is a hit)');
    assert.equal(await calls(async () => void (await use('a'))), 0, 'a was used recently: kept');
    assert.equal(await calls(async () => void (await use('b'))), 1, 'b was least recently used: evicted');
  });

  void test('concurrent requests with one token share one call', async () => {
    const p = compile();
    const n = await calls(async () => {
      const all = await Promise.all([1, 2, 3, 4].map(() => decide(p, facts(bearer('tok_slow')))));
      for (const d of all) assert.equal(d.outcome, 'allow');
    });
    assert.equal(n, 1);
  });
});

void describe('oauth2-introspection dry run', () => {
  void test('not cached: skip, and the endpoint is not called', async () => {
    const p = compile();
    let d: Decision | undefined;
    assert.equal(await calls(async () => void (d = await decide(p, facts(bearer('tok_alice')), true))), 0);
    assert.deepEqual(d, { outcome: 'skip', rule: 'not cached (dry run)' });
  });

  void test('cached: answers from the cache, synchronously', async () => {
    const p = compile();
    await decide(p, facts(bearer('tok_inactive')));
    const d = p.decide(context({ facts: facts(bearer('tok_inactive')), dryRun: true }));
    assert.ok(!isPromise(d));
    assert.equal(asDeny(d).code, 'AUTH_INTROSPECTION_TOKEN_INACTIVE');
  });

  void test('a missing token is still a denial (no remote call needed)', async () => {
    assert.equal(asDeny(await decide(compile(), facts(), true)).code, 'AUTH_INTROSPECTION_TOKEN_MISSING');
  });
});

void describe('oauth2-introspection compile', () => {
  interface ErrorCase {
    readonly name: string;
    readonly config: Partial<IntrospectionConfig>;
    readonly env?: Record<string, string | undefined>;
    readonly paths: readonly string[];
  }
  const P = 'policies.orders-token.config';
  const ERRORS: readonly ErrorCase[] = [
    { name: 'plain http to a remote host', config: { endpoint: 'http://auth.example.com/introspect' }, paths: [`${P}.endpoint`] },
    { name: 'credentials in the URL', config: { endpoint: 'https://u:p@auth.example.com/introspect' }, paths: [`${P}.endpoint`] },
    { name: 'not a URL', config: { endpoint: 'http://' }, paths: [`${P}.endpoint`] },
    { name: 'secret variable not set', config: {}, env: {}, paths: [`${P}.client_secret_env`] },
    { name: 'secret variable empty, and plain http', config: { endpoint: 'http://auth.example.com/' }, env: { INTRO_SECRET: '' }, paths: [`${P}.endpoint`, `${P}.client_secret_env`] },
  ];
  for (const c of ERRORS) {
    void test(c.name, () => {
      let caught: unknown;
      try {
        oauth2Introspection.compile(fullConfig(c.config), { id: 'orders-token', mode: 'enforce' }, ctxFor(c.env));
      } catch (err) {
        caught = err;
      }
      assert.ok(caught instanceof ConfigError, String(caught));
      assert.deepEqual(caught.issues.map((i) => i.path), c.paths);
      assert.ok(!caught.message.includes(SECRET));
    });
  }

  void test('accepted endpoints: https, loopback http, http with allow_plain_http', () => {
    for (const config of [
      { endpoint: 'https://auth.example.com/introspect' },
      { endpoint: 'http://localhost:9000/introspect' },
      { endpoint: 'http://[::1]:9000/introspect' },
      { endpoint: 'http://auth.internal/introspect', allow_plain_http: true },
    ]) {
      const p = oauth2Introspection.compile(fullConfig(config), { id: 'x', mode: 'monitor' }, ctxFor());
      assert.deepEqual([p.type, p.mode, p.needsBody, p.bodyLimit], ['oauth2-introspection', 'monitor', undefined, undefined]);
    }
  });

  void test('compile copies its config', async () => {
    const config = fullConfig({ in: [{ from: 'header', name: 'x-access-token' }] });
    const p = oauth2Introspection.compile(config, { id: 'x', mode: 'enforce' }, ctxFor());
    config.in.push({ from: 'bearer' });
    assert.equal(asDeny(await decide(p, facts(bearer('tok_alice')))).code, 'AUTH_INTROSPECTION_TOKEN_MISSING');
  });

  void test('token in an accepted query parameter', async () => {
    const p = compile({ in: [{ from: 'query', name: 'access_token' }] });
    const d = await decide(p, facts({}, NOW, 'x=1&access_token=tok_alice'));
    assert.equal(d.outcome, 'allow');
  });
});
