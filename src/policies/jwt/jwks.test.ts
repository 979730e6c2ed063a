/**
 * `jwt` with a remote JWKS served by a real node:http server on 127.0.0.1:0. The server counts
 * fetches, so caching, the bounded refetch on unknown kid, and the outage behaviour are proven
 * from the key server's side. Time is the request's `now`, advanced by hand.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { KeyIndex } from '../../credentials/api-keys.ts';
import { CATALOG } from '../../errors/catalog.ts';
import { context } from '../../pipeline/testing.ts';
import type { CompiledPolicy, Decision, Deny, RequestFacts } from '../../pipeline/types.ts';
import { compileJwt, type JwtDeps } from './index.ts';
import { fetchJwks, parseJwks } from './jwks.ts';
import type { JwtConfig } from './schema.ts';

const T0 = Date.parse('2026-06-01T12:00:00Z');
const S0 = T0 / 1000;

interface Pair {
  readonly privateKey: CryptoKey;
  readonly jwk: JWK;
}

async function pair(alg: 'RS256' | 'ES256' | 'Ed25519', kid: string): Promise<Pair> {
  const k = await generateKeyPair(alg);
  return { privateKey: k.privateKey, jwk: { ...(await exportJWK(k.publicKey)), kid, alg, use: 'sig' } };
}

const K1 = await pair('RS256', 'k1');
const K2 = await pair('ES256', 'k2');
const K3 = await pair('Ed25519', 'k3');

/** A JWKS server whose answer each test sets. */
class JwksServer {
  server: Server | undefined;
  hits = 0;
  paths: string[] = [];
  keys: JWK[] = [K1.jwk];
  mode: 'ok' | '500' | 'html' | 'not-jwks' | 'hang' = 'ok';
  port = 0;

  async start(): Promise<void> {
    this.server = createServer((req: IncomingMessage, res: ServerResponse) => {
      this.hits++;
      this.paths.push(req.url ?? '');
      switch (this.mode) {
        case 'ok':
          res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(JSON.stringify({ keys: this.keys }));
          return;
        case '500':
          res.writeHead(500, { 'content-type': 'text/plain' }).end('internal secret stack trace SECRET-MARKER');
          return;
        case 'html':
          res.writeHead(200, { 'content-type': 'text/html' }).end('<html>SECRET-MARKER</html>');
          return;
        case 'not-jwks':
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"issuer":"SECRET-MARKER"}');
          return;
        case 'hang':
          return; // never answers
      }
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/.well-known/jwks.json`;
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (s === undefined) return;
    this.server = undefined;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

const srv = new JwksServer();
before(() => srv.start());
after(() => srv.stop());

function reset(): void {
  srv.hits = 0;
  srv.paths = [];
  srv.keys = [K1.jwk];
  srv.mode = 'ok';
}

function config(over: Partial<JwtConfig> = {}): JwtConfig {
  return {
    algorithms: ['RS256', 'ES256', 'EdDSA', 'Ed25519'],
    keys: [],
    jwks_url: srv.url,
    jwks: { cache_seconds: 600, min_refresh_seconds: 30, timeout_ms: 2000 },
    verified_cache_seconds: 0,
    clock_skew_seconds: 30,
    required_claims: [],
    in: [{ from: 'bearer' }],
    consumer_claim: 'sub',
    scope_claims: ['scope', 'scp'],
    role_claims: ['roles'],
    realm: 'pinpoint',
    ...over,
  };
}

/** Counts fetch attempts at the gateway side too (useful once the server is gone). */
function counted(): { deps: JwtDeps; attempts: () => number } {
  let n = 0;
  return {
    deps: {
      fetcher: (url, timeoutMs) => {
        n++;
        return fetchJwks(url, timeoutMs);
      },
    },
    attempts: () => n,
  };
}

function compileWith(deps: JwtDeps, over: Partial<JwtConfig> = {}): CompiledPolicy {
  return compileJwt(config(over), { id: 'idp', mode: 'enforce' }, { consumers: [], apiKeys: KeyIndex.build([], {}).index, env: {}, path: 'policies.idp.config', baseDir: process.cwd() }, deps);
}

function compile(over: Partial<JwtConfig> = {}): CompiledPolicy {
  return compileWith({}, over);
}

async function token(p: Pair, claims: JWTPayload = {}, kid: string | undefined = p.jwk.kid): Promise<string> {
  return new SignJWT({ sub: 'alice', iat: S0, exp: S0 + 3600, ...claims })
    .setProtectedHeader({ alg: p.jwk.alg as string, ...(kid !== undefined ? { kid } : {}) })
    .sign(p.privateKey);
}

function facts(tok: string, now: number): RequestFacts {
  return { method: 'GET', path: '/', rawQuery: '', host: 'h', headers: { authorization: `Bearer ${tok}` }, clientIp: '127.0.0.1', clientIpSource: 'socket', params: {}, contentLength: undefined, now };
}

async function decide(p: CompiledPolicy, tok: string, now = T0, dryRun = false): Promise<Decision> {
  return p.decide(context({ facts: facts(tok, now), dryRun }));
}

function asDeny(d: Decision): Deny {
  assert.equal(d.outcome, 'deny', `expected a denial, got ${JSON.stringify(d)}`);
  return d;
}

void describe('jwt with a remote JWKS', () => {
  void test('fetched once, then answered from cache', async () => {
    reset();
    const p = compile();
    const t = await token(K1);
    assert.equal((await decide(p, t)).outcome, 'allow');
    assert.equal(srv.hits, 1);
    for (let i = 1; i <= 5; i++) assert.equal((await decide(p, t, T0 + i * 1000)).outcome, 'allow');
    assert.equal(srv.hits, 1, 'no refetch while the cache is fresh');
    const sync = p.decide(context({ facts: facts(t, T0) }));
    assert.equal(typeof (sync as { then?: unknown }).then, 'function', 'signature checks are promise-based (jose)');
    await sync;
  });

  void test('concurrent first requests share one fetch', async () => {
    reset();
    const p = compile();
    const t = await token(K1);
    const ds = await Promise.all([0, 1, 2, 3, 4].map(() => decide(p, t)));
    assert.ok(ds.every((d) => d.outcome === 'allow'));
    assert.equal(srv.hits, 1);
  });

  void test('unknown kid: one refetch, then held back for min_refresh_seconds', async () => {
    reset();
    const p = compile();
    await decide(p, await token(K1));
    assert.equal(srv.hits, 1);
    const stranger = await token(K2); // k2 is not published
    const first = asDeny(await decide(p, stranger, T0 + 31_000));
    assert.equal(first.code, 'JWT_KEY_UNKNOWN');
    assert.equal(srv.hits, 2, 'an unknown kid triggers one refetch');
    assert.deepEqual([first.evidence.kid, first.evidence.key_source, first.evidence.refetch_held_seconds], ['k2', `jwks 127.0.0.1:${srv.port}`, 30]);
    for (const dt of [32_000, 40_000, 60_000]) {
      const d = asDeny(await decide(p, stranger, T0 + dt));
      assert.equal(d.code, 'JWT_KEY_UNKNOWN');
    }
    assert.equal(srv.hits, 2, 'no refetch within 30 s of the last one');
    asDeny(await decide(p, stranger, T0 + 61_000));
    assert.equal(srv.hits, 3, 'allowed again after the interval');
    assert.match(first.headers?.['www-authenticate'] ?? '', /error="invalid_token"/);
  });

  void test('key rotation: a new kid is fetched and accepted', async () => {
    reset();
    const p = compile();
    await decide(p, await token(K1));
    srv.keys = [K1.jwk, K2.jwk, K3.jwk];
    assert.equal((await decide(p, await token(K2), T0 + 30_000)).outcome, 'allow');
    assert.equal((await decide(p, await token(K3), T0 + 30_001)).outcome, 'allow', 'fetched in the same refresh');
    assert.equal(srv.hits, 2);
  });

  void test('cache expiry: refreshed after cache_seconds', async () => {
    reset();
    const p = compile({ jwks: { cache_seconds: 60, min_refresh_seconds: 30, timeout_ms: 2000 } });
    const t = await token(K1);
    await decide(p, t);
    await decide(p, t, T0 + 59_999);
    assert.equal(srv.hits, 1);
    await decide(p, t, T0 + 60_000);
    assert.equal(srv.hits, 2);
  });

  void test('kid injection strings are lookup keys: unknown kid, and the server only ever sees the configured path', async () => {
    reset();
    const p = compile();
    await decide(p, await token(K1));
    const kids = ['../../etc/passwd', "1' OR '1'='1", '/.well-known/other.json', 'http://127.0.0.1:1/x', '%2e%2e%2f', '__proto__'];
    let now = T0;
    for (const kid of kids) {
      now += 31_000; // let each one trigger its refetch
      const d = asDeny(await decide(p, await token(K1, {}, kid), now));
      assert.equal(d.code, 'JWT_KEY_UNKNOWN', kid);
      assert.equal(d.evidence.kid, kid);
    }
    assert.equal(srv.hits, 1 + kids.length);
    assert.deepEqual(new Set(srv.paths), new Set(['/.well-known/jwks.json']));
  });

  void test('key confusion through a JWKS: HS256 on an RSA kid is refused before any verification', async () => {
    reset();
    srv.keys = [K1.jwk, { kty: 'oct', k: 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA', kid: 'hmac' }];
    const p = compile({ algorithms: ['RS256', 'HS256'] });
    const [, payload] = (await token(K1)).split('.');
    const header = Buffer.from(JSON.stringify({ alg: 'HS256', kid: 'k1' })).toString('base64url');
    const forged = `${header}.${payload}.c2lnbmF0dXJl`;
    const d = asDeny(await decide(p, forged));
    assert.equal(d.code, 'JWT_ALG_NOT_ALLOWED');
    assert.deepEqual(d.evidence.key_type, ['RSA']);
    // The oct key in the JWKS was skipped (a published secret is no secret): its kid is unknown.
    const viaHmacKid = asDeny(await decide(p, `${Buffer.from(JSON.stringify({ alg: 'HS256', kid: 'hmac' })).toString('base64url')}.${payload}.c2ln`, T0 + 31_000));
    assert.equal(viaHmacKid.code, 'JWT_KEY_UNKNOWN');
  });

  void test('parseJwks skips unusable keys and says why', () => {
    const { set, skipped } = parseJwks(
      {
        keys: [
          K1.jwk,
          { ...K2.jwk, use: 'enc' },
          { kty: 'oct', k: 'AAAA', kid: 'sym' },
          { ...K2.jwk, kid: 'wrong-alg', alg: 'RS256' },
          'not an object',
          { kty: 'EC', crv: 'P-256', kid: 'broken' },
        ],
      },
      new Set(['RS256', 'ES256'] as const),
    );
    assert.equal(set.size, 1);
    assert.deepEqual(
      skipped.map((s) => s.kid),
      ['k2', 'sym', 'wrong-alg', null, 'broken'],
    );
  });
});

void describe('jwt when the JWKS cannot be fetched', () => {
  /** Asserts the 503 shape and that nothing from the response body leaks. */
  function assertUnreachable(d: Decision, error: string | RegExp): Deny {
    const deny = asDeny(d);
    assert.equal(deny.code, 'JWT_JWKS_UNREACHABLE');
    assert.equal(deny.evidence.jwks_host, `127.0.0.1:${srv.port}`);
    if (typeof error === 'string') assert.equal(deny.evidence.error, error);
    else assert.match(String(deny.evidence.error), error);
    assert.equal(deny.headers?.['www-authenticate'], undefined, 'not a token problem: no Bearer challenge');
    assert.match(deny.headers?.['retry-after'] ?? '', /^\d+$/);
    assert.ok(!JSON.stringify(deny).includes('SECRET-MARKER'), 'the response body never reaches evidence');
    assert.ok(!JSON.stringify(deny).includes('/.well-known/jwks.json'), 'only the host, not the full URL');
    return deny;
  }

  void test('the catalog entry: 503, gateway layer, retryable, says it is not the client\u2019s fault', () => {
    const e = CATALOG.JWT_JWKS_UNREACHABLE;
    assert.deepEqual([e.status, e.layer, e.retryable, e.proxyStatus], [503, 'gateway', true, 'proxy_internal_error']);
    assert.match(e.remediation, /\{jwks_host\}/);
    assert.match(e.remediation, /\{error\}/);
  });

  const BAD: readonly { mode: JwksServer['mode']; error: string }[] = [
    { mode: '500', error: 'HTTP_500' },
    { mode: 'html', error: 'INVALID_JSON' },
    { mode: 'not-jwks', error: 'INVALID_JWKS' },
  ];
  for (const b of BAD) {
    void test(`server answers ${b.mode}: 503 ${b.error}`, async () => {
      reset();
      srv.mode = b.mode;
      const d = assertUnreachable(await decide(compile(), await token(K1)), b.error);
      assert.equal(d.evidence.retry_after_seconds, 30);
      assert.equal(d.headers?.['retry-after'], '30');
    });
  }

  void test('timeout: 503 TIMEOUT within timeout_ms', async () => {
    reset();
    srv.mode = 'hang';
    const p = compile({ jwks: { cache_seconds: 600, min_refresh_seconds: 30, timeout_ms: 200 } });
    const t0 = performance.now();
    assertUnreachable(await decide(p, await token(K1)), /^(TIMEOUT|UND_ERR_HEADERS_TIMEOUT)$/);
    assert.ok(performance.now() - t0 < 2000, 'gave up near timeout_ms');
    srv.server?.closeAllConnections();
  });

  void test('server down: 503 ECONNREFUSED; retries held back by min_refresh_seconds; recovers', async () => {
    reset();
    const { deps, attempts } = counted();
    const p = compileWith(deps);
    const t = await token(K1);
    await srv.stop();
    try {
      const d = assertUnreachable(await decide(p, t), 'ECONNREFUSED');
      assert.equal(d.evidence.kid, 'k1');
      assert.equal(attempts(), 1);
      const again = assertUnreachable(await decide(p, t, T0 + 10_000), 'ECONNREFUSED');
      assert.equal(again.evidence.retry_after_seconds, 20, 'answered from the recorded failure');
      assert.equal(attempts(), 1, 'no fetch within min_refresh_seconds of a failed one');
    } finally {
      await srv.start();
    }
    // The restarted server may have another port; a policy pointing at it verifies again.
    assert.equal((await decide(compile(), t, T0 + 31_000)).outcome, 'allow');
  });

  void test('stale keys survive an outage; an unknown kid during it is the gateway\u2019s problem, not the client\u2019s', async () => {
    reset();
    const { deps, attempts } = counted();
    const p = compileWith(deps, { jwks: { cache_seconds: 60, min_refresh_seconds: 30, timeout_ms: 2000 } });
    const t = await token(K1);
    assert.equal((await decide(p, t)).outcome, 'allow');
    srv.mode = '500';
    assert.equal((await decide(p, t, T0 + 120_000)).outcome, 'allow', 'known kid: stale key still verifies');
    assert.equal(attempts(), 2, 'the stale cache was refreshed (and failed)');
    assertUnreachable(await decide(p, await token(K2), T0 + 125_000), 'HTTP_500');
    assertUnreachable(await decide(p, await token(K2), T0 + 151_000), 'HTTP_500');
    assert.equal(attempts(), 3);
  });
});

void describe('jwt dry runs never fetch', () => {
  void test('nothing cached: Skip "key not cached (dry run)", and no fetch', async () => {
    reset();
    const p = compile();
    const d = await decide(p, await token(K1), T0, true);
    assert.deepEqual(d, { outcome: 'skip', rule: 'key not cached (dry run)' });
    assert.equal(srv.hits, 0);
  });

  void test('cached key: the dry run decides like live, synchronously up to jose', async () => {
    reset();
    const p = compile();
    await decide(p, await token(K1));
    assert.equal((await decide(p, await token(K1), T0 + 1000, true)).outcome, 'allow');
    assert.equal(asDeny(await decide(p, await token(K1, { exp: S0 - 3600 }), T0 + 1000, true)).code, 'JWT_EXPIRED');
    assert.equal(srv.hits, 1);
  });

  void test('unknown kid: Skip while a live request would refetch, the live answer while refetch is held back', async () => {
    reset();
    const p = compile();
    await decide(p, await token(K1));
    const stranger = await token(K2);
    assert.deepEqual(await decide(p, stranger, T0 + 1000, true), asDeny(await decide(p, stranger, T0 + 1000)), 'held back: same answer as live');
    assert.equal(srv.hits, 1);
    assert.deepEqual(await decide(p, stranger, T0 + 31_000, true), { outcome: 'skip', rule: 'key not cached (dry run)' });
    assert.equal(srv.hits, 1, 'the dry run did not fetch');
  });

  void test('stale cache: a dry run uses it without fetching', async () => {
    reset();
    const p = compile({ jwks: { cache_seconds: 60, min_refresh_seconds: 30, timeout_ms: 2000 } });
    await decide(p, await token(K1));
    assert.equal((await decide(p, await token(K1), T0 + 3_600_000, true)).outcome, 'allow');
    assert.equal(srv.hits, 1);
  });
});
