/**
 * E2E: the credential and authorization rows of /work/shared/denial-causes.md (causes 3–11), one
 * describe per row and one test per code, named by the code. Each test provokes the cause over real
 * sockets (gateway and upstream on 127.0.0.1:0), asserts the problem envelope (status, code, layer,
 * policy, the RFC-required headers), then sends what the remediation/evidence says would pass and
 * checks that the upstream saw it.
 *
 * Real collaborators: a JWKS server and an RFC 7662 introspection server on 127.0.0.1:0 (node:http),
 * tokens signed with jose, Basic password hashes made with the gateway's own scrypt hasher.
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { exportJWK, SignJWT, type JWK, type JWTPayload } from 'jose';
import { hashPassword } from '../../src/credentials/password.ts';
import { assertProblem, closeServer, send, startGateway, startUpstream, type Gateway, type Problem, type Reply, type SeenRequest, type Upstream } from '../helpers/harness.ts';

// ---------------------------------------------------------------------------------------------
// Credentials

const KEYS = {
  read: 'pp_e2e_read_1a2b3c4d5e6f7a8b',
  write: 'pp_e2e_write_9f8e7d6c5b4a3928',
  revoked: 'pp_e2e_revoked_0011223344556677',
  expired: 'pp_e2e_expired_8899aabbccddeeff',
  unknown: 'pp_e2e_unknown_ffffffffffffffff',
} as const;

const sha = (key: string): string => `sha256:${createHash('sha256').update(key).digest('hex')}`;

const BASIC_USER = 'carol';
const BASIC_PASSWORD = 'correct horse battery staple';
const BASIC_HASH = hashPassword(BASIC_PASSWORD);
const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** HMAC secret of the static jwt policy, handed to the gateway through its env (secret_env). */
const JWT_SECRET = 'e2e-hmac-secret-0123456789abcdef-0123456789abcdef-0123456789abcd';
const WRONG_SECRET = 'not-the-gateway-secret-0123456789abcdef-0123456789abcdef-012345';
const ISSUER = 'https://issuer.e2e.test';
const AUDIENCE = 'pinpoint-e2e-api';

const INTRO_CLIENT_ID = 'pinpoint-gateway';
const INTRO_SECRET = 'intro-client-secret-e2e';

const ENV = { E2E_JWT_SECRET: JWT_SECRET, E2E_INTRO_SECRET: INTRO_SECRET, E2E_WRITE_KEY: KEYS.write };

/** RSA pair whose public half the JWKS server publishes (kid k1), and an unrelated one. */
const RSA = generateKeyPairSync('rsa', { modulusLength: 2048 });
const RSA_OTHER = generateKeyPairSync('rsa', { modulusLength: 2048 });
const JWKS_KID = 'k1';

const nowS = (): number => Math.floor(Date.now() / 1000);

interface Signing {
  readonly alg?: string;
  readonly kid?: string;
  readonly key?: Uint8Array | KeyObject;
}

/** A token for the static jwt policy: HS256, kid hs1, right iss/aud, valid for 10 min, unless overridden. */
async function jwt(claims: JWTPayload = {}, s: Signing = {}): Promise<string> {
  const now = nowS();
  const payload: JWTPayload = { iss: ISSUER, aud: AUDIENCE, sub: 'alice', iat: now, exp: now + 600, ...claims };
  const kid = s.kid ?? 'hs1';
  return new SignJWT(payload)
    .setProtectedHeader({ alg: s.alg ?? 'HS256', kid, typ: 'JWT' })
    .sign(s.key ?? new TextEncoder().encode(JWT_SECRET));
}

/** A token for the JWKS policy: RS256, kid k1, signed with `key`. */
async function rsJwt(key: KeyObject, claims: JWTPayload = {}): Promise<string> {
  const now = nowS();
  return new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: 'alice', iat: now, exp: now + 600, ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: JWKS_KID, typ: 'JWT' })
    .sign(key);
}

const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });

// ---------------------------------------------------------------------------------------------
// Collaborators: JWKS server, introspection server

interface Listening {
  readonly server: Server;
  readonly sockets: Set<Socket>;
  port: number;
  hits: number;
}

async function listen(server: Server, port = 0): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

function track(server: Server): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  return sockets;
}

async function startJwks(jwk: JWK): Promise<Listening> {
  const server = createServer((_req, res) => {
    state.hits++;
    res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(JSON.stringify({ keys: [jwk] }));
  });
  const state: Listening = { server, sockets: track(server), port: 0, hits: 0 };
  state.port = await listen(server);
  return state;
}

interface IntrospectionCall {
  readonly token: string;
  readonly authorized: boolean;
}

/** RFC 7662 authorization server: answers per token, refuses clients without the gateway's credentials. */
function introspectionServer(calls: IntrospectionCall[]): Server {
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const token = new URLSearchParams(body).get('token') ?? '';
      const authorized = req.headers.authorization === basic(INTRO_CLIENT_ID, INTRO_SECRET);
      calls.push({ token, authorized });
      if (!authorized) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"invalid_client"}');
        return;
      }
      const now = nowS();
      const answer: Record<string, unknown> =
        token === 'tok_active'
          ? { active: true, sub: 'alice', client_id: 'shop', scope: 'orders:read', exp: now + 3600 }
          : token === 'tok_expired'
            ? { active: true, sub: 'alice', client_id: 'shop', scope: 'orders:read', exp: now - 120 }
            : { active: false };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    });
  });
  return server;
}

// ---------------------------------------------------------------------------------------------
// The gateway under test

interface Ports {
  readonly upstream: string;
  readonly jwks: number;
  readonly introspection: number;
  readonly introspectionDown: number;
}

function gatewayConfig(p: Ports, rbacExtraRules: readonly Record<string, unknown>[] = []): Record<string, unknown> {
  const jwtStatic = {
    type: 'jwt',
    config: {
      algorithms: ['HS256'],
      keys: [{ kid: 'hs1', secret_env: 'E2E_JWT_SECRET' }],
      issuer: ISSUER,
      audience: AUDIENCE,
    },
  };
  return {
    version: 1,
    errors: { mode: 'detailed' },
    upstreams: { svc: { targets: [{ url: p.upstream }] } },
    policies: {
      'keys-any': { type: 'api-key', config: { in: [{ from: 'header', name: 'x-api-key' }, { from: 'bearer' }] } },
      'keys-write': { type: 'api-key', config: { in: [{ from: 'header', name: 'x-api-key' }, { from: 'bearer' }], required_scopes: ['orders:write'] } },
      'jwt-static': jwtStatic,
      'jwt-jwks': {
        type: 'jwt',
        config: { algorithms: ['RS256'], jwks_url: `http://127.0.0.1:${p.jwks}/.well-known/jwks.json`, issuer: ISSUER, audience: AUDIENCE },
      },
      'basic-login': { type: 'basic-auth', config: {} },
      introspect: {
        type: 'oauth2-introspection',
        config: { endpoint: `http://127.0.0.1:${p.introspection}/introspect`, client_id: INTRO_CLIENT_ID, client_secret_env: 'E2E_INTRO_SECRET' },
      },
      'introspect-down': {
        type: 'oauth2-introspection',
        config: { endpoint: `http://127.0.0.1:${p.introspectionDown}/introspect`, client_id: INTRO_CLIENT_ID, client_secret_env: 'E2E_INTRO_SECRET', timeout_ms: 2000 },
      },
      'reports-rbac': { type: 'rbac', config: { rules: [{ methods: ['GET'], permission: 'reports:read' }] } },
      'docs-rbac': {
        type: 'rbac',
        config: {
          roles: { reader: ['docs:read'], writer: ['docs:read', 'docs:write'], admin: ['docs:read', 'docs:write', 'docs:delete'] },
          rules: [
            { methods: ['GET'], permission: 'docs:read' },
            { methods: ['POST', 'PUT'], permission: 'docs:write' },
            { methods: ['DELETE'], permission: 'docs:delete' },
            ...rbacExtraRules,
          ],
        },
      },
      'user-owner': {
        type: 'ownership',
        config: { resource: { from: 'path', name: 'id' }, claim: 'sub', override_permissions: ['users:admin'] },
      },
    },
    consumers: [
      {
        id: 'partner',
        credentials: {
          api_keys: [
            { id: 'k_read', hash: sha(KEYS.read), scopes: ['orders:read'] },
            { id: 'k_revoked', hash: sha(KEYS.revoked), scopes: ['orders:read'], revoked: true },
            { id: 'k_expired', hash: sha(KEYS.expired), scopes: ['orders:read'], expires_at: '2020-01-01T00:00:00Z' },
          ],
        },
      },
      { id: 'shop', credentials: { api_keys: [{ id: 'k_write', key_env: 'E2E_WRITE_KEY', scopes: ['orders:read', 'orders:write'] }] } },
      { id: 'carol-co', credentials: { basic_auth: [{ username: BASIC_USER, password_hash: BASIC_HASH }] } },
    ],
    routes: [
      { id: 'keys', paths: ['/keys/*'], upstream: 'svc', policies: ['keys-any'] },
      { id: 'orders-create', paths: ['/orders'], methods: ['POST'], upstream: 'svc', policies: ['keys-write'] },
      { id: 'jwt', paths: ['/jwt/*'], upstream: 'svc', policies: ['jwt-static'] },
      { id: 'jwks', paths: ['/jwks/*'], upstream: 'svc', policies: ['jwt-jwks'] },
      { id: 'basic', paths: ['/basic/*'], upstream: 'svc', policies: ['basic-login'] },
      { id: 'introspect', paths: ['/introspect/*'], upstream: 'svc', policies: ['introspect'] },
      { id: 'introspect-down', paths: ['/introspect-down/*'], upstream: 'svc', policies: ['introspect-down'] },
      { id: 'reports', paths: ['/reports'], methods: ['GET'], upstream: 'svc', policies: ['jwt-static', 'reports-rbac'] },
      { id: 'docs', paths: ['/docs/{id}'], upstream: 'svc', policies: ['jwt-static', 'docs-rbac'] },
      { id: 'users', paths: ['/users/{id}'], methods: ['GET', 'PUT'], upstream: 'svc', policies: ['jwt-static', 'user-owner'] },
    ],
  };
}

let up: Upstream;
let jwks: Listening;
let gw: Gateway;
let ports: Ports;
const introCalls: IntrospectionCall[] = [];
let intro: { server: Server; sockets: Set<Socket> };
/** The introspection endpoint that is down: its port is known, nothing listens until a test starts it. */
let introDown: { server: Server; sockets: Set<Socket>; port: number };

before(async () => {
  up = await startUpstream();
  jwks = await startJwks({ ...(await exportJWK(RSA.publicKey)), kid: JWKS_KID, alg: 'RS256', use: 'sig' });
  const introServer = introspectionServer(introCalls);
  intro = { server: introServer, sockets: track(introServer) };
  const introPort = await listen(introServer);
  // Bound then released: nothing answers there (ECONNREFUSED) until the remediation starts it again.
  const downServer = introspectionServer(introCalls);
  const downSockets = track(downServer);
  const downPort = await listen(downServer);
  await new Promise<void>((resolve) => downServer.close(() => resolve()));
  introDown = { server: downServer, sockets: downSockets, port: downPort };
  ports = { upstream: up.url, jwks: jwks.port, introspection: introPort, introspectionDown: downPort };
  gw = await startGateway(gatewayConfig(ports), { env: ENV });
});

after(async () => {
  await gw.close();
  await up.close();
  await closeServer(jwks.server, jwks.sockets);
  await closeServer(intro.server, intro.sockets);
  if (introDown.server.listening) await closeServer(introDown.server, introDown.sockets);
});

// ---------------------------------------------------------------------------------------------
// Assertions

interface Want {
  readonly status: number;
  readonly code: string;
  readonly layer: string;
  readonly policy: string;
  /** Exact WWW-Authenticate, or a pattern it must match; required on every 401 (RFC 9110 §15.5.2). */
  readonly challenge?: string | RegExp;
}

/** The gateway's own denial: the envelope, the policy header and the challenge a 401 must carry. */
function denied(r: Reply, want: Want): Problem & { evidence: Record<string, unknown> } {
  const p = assertProblem(r, want);
  assert.equal(r.headers['x-pinpoint-policy'], want.policy);
  assert.equal(r.headers['cache-control'], 'no-store');
  const challenge = r.headers['www-authenticate'];
  if (want.status === 401) assert.ok(challenge !== undefined && challenge !== '', 'a 401 carries WWW-Authenticate (RFC 9110 §15.5.2)');
  if (typeof want.challenge === 'string') assert.equal(challenge, want.challenge);
  else if (want.challenge !== undefined) assert.match(String(challenge), want.challenge);
  assert.ok(p.evidence !== undefined && typeof p.evidence === 'object', 'detailed mode carries evidence');
  assert.equal(typeof p.remediation, 'string');
  return p as Problem & { evidence: Record<string, unknown> };
}

/** A passing request: 2xx from the upstream, no gateway marks, and the upstream saw this very request. */
function reached(r: Reply, method: string, path: string): SeenRequest {
  assert.ok(r.status >= 200 && r.status < 300, `expected the upstream's 2xx, got ${r.status}: ${r.text}`);
  assert.equal(r.headers['x-pinpoint-code'], undefined);
  assert.equal(r.headers['proxy-status'], undefined);
  const id = String(r.headers['x-request-id']);
  const seen = up.requests.find((s) => s.headers['x-request-id'] === id);
  assert.ok(seen !== undefined, `the upstream saw request ${id}`);
  assert.equal(seen.method, method);
  assert.equal(seen.path, path);
  return seen;
}

const url = (path: string): string => `${gw.url}${path}`;

const API_KEY_CHALLENGE = 'Bearer realm="pinpoint", ApiKey realm="pinpoint", in="header", name="x-api-key"';
const INVALID_TOKEN = /^Bearer realm="pinpoint", error="invalid_token"/;

/** An evidence member that must be a list of strings. */
function strings(v: unknown): string[] {
  assert.ok(Array.isArray(v) && v.every((x): x is string => typeof x === 'string'), `a list of strings: ${JSON.stringify(v)}`);
  return v;
}

/** The header an api-key denial says to use, read from evidence.accepted ("header x-api-key or …"). */
function acceptedHeader(p: { evidence: Record<string, unknown> }): string {
  const m = /header ([A-Za-z0-9-]+)/.exec(String(p.evidence.accepted));
  assert.ok(m?.[1] !== undefined, `evidence.accepted names a header: ${String(p.evidence.accepted)}`);
  return m[1];
}

// ---------------------------------------------------------------------------------------------
// The causes

void describe('cause 3: missing credential', () => {
  void test('AUTH_KEY_MISSING', async () => {
    const r = await send(url('/keys/a'));
    const p = denied(r, { status: 401, code: 'AUTH_KEY_MISSING', layer: 'gateway', policy: 'keys-any', challenge: API_KEY_CHALLENGE });
    assert.equal(p.evidence.accepted, 'header x-api-key or Authorization: Bearer');

    const ok = await send(url('/keys/a'), { headers: { [acceptedHeader(p)]: KEYS.read } });
    reached(ok, 'GET', '/keys/a');
  });

  void test('JWT_MISSING', async () => {
    const r = await send(url('/jwt/a'));
    const p = denied(r, { status: 401, code: 'JWT_MISSING', layer: 'gateway', policy: 'jwt-static', challenge: 'Bearer realm="pinpoint"' });
    assert.equal(p.evidence.accepted, 'Authorization: Bearer');
    assert.equal(p.evidence.found_scheme, null);

    const ok = await send(url('/jwt/a'), { headers: bearer(await jwt()) });
    reached(ok, 'GET', '/jwt/a');
  });

  void test('BASIC_AUTH_MISSING', async () => {
    const r = await send(url('/basic/a'), { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    const p = denied(r, { status: 401, code: 'BASIC_AUTH_MISSING', layer: 'gateway', policy: 'basic-login', challenge: 'Basic realm="pinpoint", charset="UTF-8"' });
    assert.equal(p.evidence.expected, 'Authorization: Basic');

    const ok = await send(url('/basic/a'), { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', authorization: basic(BASIC_USER, BASIC_PASSWORD) } });
    reached(ok, 'POST', '/basic/a');
  });

  void test('AUTH_INTROSPECTION_TOKEN_MISSING', async () => {
    const before = introCalls.length;
    const r = await send(url('/introspect/a'));
    const p = denied(r, { status: 401, code: 'AUTH_INTROSPECTION_TOKEN_MISSING', layer: 'gateway', policy: 'introspect', challenge: 'Bearer realm="pinpoint"' });
    assert.equal(p.evidence.accepted, 'Authorization: Bearer');
    assert.equal(introCalls.length, before, 'no token: the authorization server is not asked');

    const ok = await send(url('/introspect/a'), { headers: bearer('tok_active') });
    reached(ok, 'GET', '/introspect/a');
  });
});

void describe('cause 4: credential in the wrong place', () => {
  void test('AUTH_KEY_WRONG_PLACE', async (t) => {
    await t.test('key in the query string', async () => {
      const r = await send(url(`/keys/q?api_key=${KEYS.read}`));
      const p = denied(r, { status: 401, code: 'AUTH_KEY_WRONG_PLACE', layer: 'client', policy: 'keys-any', challenge: API_KEY_CHALLENGE });
      assert.equal(p.evidence.found_in, 'query parameter api_key');
      assert.equal(p.evidence.found_key_id, 'k_read', 'what was found is a real key: it is only misplaced');
      assert.ok(!r.text.includes(KEYS.read), 'the key itself is never echoed');

      const ok = await send(url('/keys/q'), { headers: { [acceptedHeader(p)]: KEYS.read } });
      reached(ok, 'GET', '/keys/q');
    });

    await t.test('Authorization: <key> without the Bearer scheme', async () => {
      const r = await send(url('/keys/b'), { headers: { authorization: KEYS.read } });
      const p = denied(r, { status: 401, code: 'AUTH_KEY_WRONG_PLACE', layer: 'client', policy: 'keys-any', challenge: API_KEY_CHALLENGE });
      assert.equal(p.evidence.found_in, 'Authorization header without the Bearer scheme');
      assert.equal(p.evidence.found_key_id, 'k_read');
      assert.match(String(p.evidence.accepted), /Authorization: Bearer/);
      assert.ok(!r.text.includes(KEYS.read));

      const ok = await send(url('/keys/b'), { headers: { authorization: `Bearer ${KEYS.read}` } });
      reached(ok, 'GET', '/keys/b');
    });
  });

  void test('BASIC_AUTH_WRONG_SCHEME', async () => {
    const r = await send(url('/basic/s'), { headers: { authorization: `Bearer ${KEYS.read}` } });
    const p = denied(r, { status: 401, code: 'BASIC_AUTH_WRONG_SCHEME', layer: 'client', policy: 'basic-login', challenge: 'Basic realm="pinpoint", charset="UTF-8"' });
    assert.equal(p.evidence.found_scheme, 'Bearer');
    assert.equal(p.evidence.expected, 'Authorization: Basic');
    assert.ok(!r.text.includes(KEYS.read));

    const ok = await send(url('/basic/s'), { headers: { authorization: basic(BASIC_USER, BASIC_PASSWORD) } });
    reached(ok, 'GET', '/basic/s');
  });
});

void describe('cause 5: invalid, revoked or expired API key', () => {
  void test('AUTH_KEY_INVALID', async () => {
    const r = await send(url('/keys/i'), { headers: { 'x-api-key': KEYS.unknown } });
    const p = denied(r, { status: 401, code: 'AUTH_KEY_INVALID', layer: 'gateway', policy: 'keys-any', challenge: /error="invalid_token"/ });
    assert.equal(p.evidence.found_in, 'header x-api-key');
    assert.ok(!r.text.includes(KEYS.unknown));

    reached(await send(url('/keys/i'), { headers: { 'x-api-key': KEYS.read } }), 'GET', '/keys/i');
  });

  void test('AUTH_KEY_REVOKED', async () => {
    const r = await send(url('/keys/r'), { headers: { 'x-api-key': KEYS.revoked } });
    const p = denied(r, { status: 401, code: 'AUTH_KEY_REVOKED', layer: 'gateway', policy: 'keys-any', challenge: /error="invalid_token"/ });
    assert.equal(p.evidence.key_id, 'k_revoked');
    assert.equal(p.evidence.consumer, 'partner');

    reached(await send(url('/keys/r'), { headers: { 'x-api-key': KEYS.read } }), 'GET', '/keys/r');
  });

  void test('AUTH_KEY_EXPIRED', async () => {
    const r = await send(url('/keys/e'), { headers: { authorization: `Bearer ${KEYS.expired}` } });
    const p = denied(r, { status: 401, code: 'AUTH_KEY_EXPIRED', layer: 'gateway', policy: 'keys-any', challenge: /error="invalid_token"/ });
    assert.equal(p.evidence.key_id, 'k_expired');
    assert.equal(p.evidence.expired_at, '2020-01-01T00:00:00.000Z');
    assert.ok(Number(p.evidence.expired_seconds_ago) > 0);

    reached(await send(url('/keys/e'), { headers: { authorization: `Bearer ${KEYS.read}` } }), 'GET', '/keys/e');
  });
});

void describe('cause 6: key lacks the scope for this method', () => {
  void test('AUTH_KEY_SCOPE_MISSING', async () => {
    const body = '{"item":"tea"}';
    const headers = { 'content-type': 'application/json' };
    const r = await send(url('/orders'), { method: 'POST', headers: { ...headers, 'x-api-key': KEYS.read }, body });
    // RFC 6750 §3.1: insufficient_scope names the scope the route needs.
    const p = denied(r, { status: 403, code: 'AUTH_KEY_SCOPE_MISSING', layer: 'gateway', policy: 'keys-write', challenge: /error="insufficient_scope", scope="orders:write"/ });
    assert.deepEqual(p.evidence.missing_scopes, ['orders:write']);
    assert.deepEqual(p.evidence.key_scopes, ['orders:read']);
    assert.equal(p.evidence.key_id, 'k_read');

    // The fix: the key holding every missing scope (k_write has orders:read and orders:write).
    const missing = strings(p.evidence.missing_scopes);
    const writeScopes = ['orders:read', 'orders:write'];
    assert.ok(missing.every((s) => writeScopes.includes(s)));
    const ok = await send(url('/orders'), { method: 'POST', headers: { ...headers, 'x-api-key': KEYS.write }, body });
    const seen = reached(ok, 'POST', '/orders');
    assert.equal(seen.body.toString('utf8'), body);
  });
});

void describe('cause 7: JWT rejected', () => {
  void test('JWT_SIGNATURE_INVALID', async (t) => {
    await t.test('static HMAC key: signed with another secret', async () => {
      const r = await send(url('/jwt/sig'), { headers: bearer(await jwt({}, { key: new TextEncoder().encode(WRONG_SECRET) })) });
      const p = denied(r, { status: 401, code: 'JWT_SIGNATURE_INVALID', layer: 'gateway', policy: 'jwt-static', challenge: INVALID_TOKEN });
      assert.equal(p.evidence.kid, 'hs1');
      assert.equal(p.evidence.alg, 'HS256');

      reached(await send(url('/jwt/sig'), { headers: bearer(await jwt()) }), 'GET', '/jwt/sig');
    });

    await t.test('remote JWKS: kid k1 but signed by another RSA key', async () => {
      const r = await send(url('/jwks/sig'), { headers: bearer(await rsJwt(RSA_OTHER.privateKey)) });
      const p = denied(r, { status: 401, code: 'JWT_SIGNATURE_INVALID', layer: 'gateway', policy: 'jwt-jwks', challenge: INVALID_TOKEN });
      assert.equal(p.evidence.kid, JWKS_KID);
      assert.equal(p.evidence.alg, 'RS256');
      assert.ok(jwks.hits >= 1, 'the key came from the JWKS server');

      reached(await send(url('/jwks/sig'), { headers: bearer(await rsJwt(RSA.privateKey)) }), 'GET', '/jwks/sig');
    });
  });

  void test('JWT_EXPIRED', async () => {
    const now = nowS();
    const r = await send(url('/jwt/exp'), { headers: bearer(await jwt({ iat: now - 7200, exp: now - 3600 })) });
    const p = denied(r, { status: 401, code: 'JWT_EXPIRED', layer: 'gateway', policy: 'jwt-static', challenge: INVALID_TOKEN });
    assert.equal(p.evidence.exp, new Date((now - 3600) * 1000).toISOString());
    assert.ok(Number(p.evidence.expired_seconds_ago) >= 3600);

    reached(await send(url('/jwt/exp'), { headers: bearer(await jwt()) }), 'GET', '/jwt/exp');
  });

  void test('JWT_NOT_YET_VALID', async () => {
    const now = nowS();
    const r = await send(url('/jwt/nbf'), { headers: bearer(await jwt({ nbf: now + 3600 })) });
    const p = denied(r, { status: 401, code: 'JWT_NOT_YET_VALID', layer: 'gateway', policy: 'jwt-static', challenge: INVALID_TOKEN });
    assert.equal(p.evidence.nbf, new Date((now + 3600) * 1000).toISOString());
    assert.ok(Number(p.evidence.valid_in_seconds) > 3000);

    reached(await send(url('/jwt/nbf'), { headers: bearer(await jwt({ nbf: now })) }), 'GET', '/jwt/nbf');
  });

  void test('JWT_AUDIENCE_MISMATCH', async () => {
    const r = await send(url('/jwt/aud'), { headers: bearer(await jwt({ aud: 'some-other-api' })) });
    const p = denied(r, { status: 401, code: 'JWT_AUDIENCE_MISMATCH', layer: 'gateway', policy: 'jwt-static', challenge: INVALID_TOKEN });
    assert.deepEqual(p.evidence.got, ['some-other-api']);
    assert.deepEqual(p.evidence.expected, [AUDIENCE]);

    const aud = strings(p.evidence.expected)[0];
    reached(await send(url('/jwt/aud'), { headers: bearer(await jwt({ aud })) }), 'GET', '/jwt/aud');
  });

  void test('JWT_ISSUER_MISMATCH', async () => {
    const r = await send(url('/jwt/iss'), { headers: bearer(await jwt({ iss: 'https://evil.example' })) });
    const p = denied(r, { status: 401, code: 'JWT_ISSUER_MISMATCH', layer: 'gateway', policy: 'jwt-static', challenge: INVALID_TOKEN });
    assert.equal(p.evidence.got, 'https://evil.example');
    assert.deepEqual(p.evidence.expected, [ISSUER]);

    const iss = strings(p.evidence.expected)[0];
    reached(await send(url('/jwt/iss'), { headers: bearer(await jwt({ iss })) }), 'GET', '/jwt/iss');
  });

  void test('JWT_ALG_NOT_ALLOWED', async () => {
    // Same secret, an algorithm the policy's allow-list does not name.
    const r = await send(url('/jwt/alg'), { headers: bearer(await jwt({}, { alg: 'HS512' })) });
    const p = denied(r, { status: 401, code: 'JWT_ALG_NOT_ALLOWED', layer: 'gateway', policy: 'jwt-static', challenge: INVALID_TOKEN });
    assert.equal(p.evidence.alg, 'HS512');
    assert.deepEqual(p.evidence.expected, ['HS256']);

    const alg = strings(p.evidence.expected)[0];
    reached(await send(url('/jwt/alg'), { headers: bearer(await jwt({}, { alg })) }), 'GET', '/jwt/alg');
  });
});

void describe('cause 8: JWT valid but its scope lacks the permission', () => {
  void test('RBAC_PERMISSION_MISSING', async () => {
    const r = await send(url('/reports'), { headers: bearer(await jwt({ scope: 'profile orders:read' })) });
    const p = denied(r, { status: 403, code: 'RBAC_PERMISSION_MISSING', layer: 'gateway', policy: 'reports-rbac' });
    assert.deepEqual(p.evidence.missing_permissions, ['reports:read']);
    assert.deepEqual([...strings(p.evidence.scopes)].sort(), ['orders:read', 'profile']);
    assert.equal(p.evidence.consumer, 'alice');
    assert.equal(p.evidence.credential_type, 'jwt');
    assert.equal(p.evidence.method, 'GET');
    assert.equal(p.evidence.route, 'reports');

    const scope = ['profile', ...strings(p.evidence.missing_permissions)].join(' ');
    reached(await send(url('/reports'), { headers: bearer(await jwt({ scope })) }), 'GET', '/reports');
  });
});

void describe('cause 9: OAuth2 token inactive at the introspection endpoint', () => {
  void test('AUTH_INTROSPECTION_TOKEN_INACTIVE', async () => {
    const before = introCalls.length;
    const r = await send(url('/introspect/i'), { headers: bearer('tok_revoked_at_the_server') });
    const p = denied(r, { status: 401, code: 'AUTH_INTROSPECTION_TOKEN_INACTIVE', layer: 'gateway', policy: 'introspect', challenge: 'Bearer realm="pinpoint", error="invalid_token"' });
    assert.equal(p.evidence.endpoint_host, `127.0.0.1:${ports.introspection}`);
    assert.equal(p.evidence.cached, false);
    assert.match(String(p.evidence.token_ref), /^sha256:[0-9a-f]{12}$/);
    assert.ok(!r.text.includes('tok_revoked_at_the_server'), 'the token is never echoed');
    // The authorization server really was asked, with the gateway's client credentials.
    const asked = introCalls.slice(before);
    assert.deepEqual(asked, [{ token: 'tok_revoked_at_the_server', authorized: true }]);

    reached(await send(url('/introspect/i'), { headers: bearer('tok_active') }), 'GET', '/introspect/i');
  });

  void test('AUTH_INTROSPECTION_TOKEN_EXPIRED', async () => {
    const r = await send(url('/introspect/x'), { headers: bearer('tok_expired') });
    const p = denied(r, { status: 401, code: 'AUTH_INTROSPECTION_TOKEN_EXPIRED', layer: 'gateway', policy: 'introspect', challenge: 'Bearer realm="pinpoint", error="invalid_token"' });
    assert.ok(Date.parse(String(p.evidence.expired_at)) < Date.now());

    reached(await send(url('/introspect/x'), { headers: bearer('tok_active') }), 'GET', '/introspect/x');
  });

  void test('INTROSPECTION_UNAVAILABLE', async () => {
    const r = await send(url('/introspect-down/d'), { headers: bearer('tok_active') });
    const p = denied(r, { status: 503, code: 'INTROSPECTION_UNAVAILABLE', layer: 'gateway', policy: 'introspect-down' });
    assert.equal(p.retryable, true);
    assert.equal(p.evidence.endpoint_host, `127.0.0.1:${introDown.port}`);
    assert.equal(p.evidence.error_code, 'ECONNREFUSED');
    const retryAfter = r.headers['retry-after'];

    // The remediation: bring the endpoint up and retry (failures are not cached).
    await listen(introDown.server, introDown.port);
    reached(await send(url('/introspect-down/d'), { headers: bearer('tok_active') }), 'GET', '/introspect-down/d');

    // RFC 9110 §10.2.3 / the project rule "Retry-After on 429/503": a retryable 503 says when to come back.
    assert.ok(retryAfter !== undefined && /^[0-9]+$/.test(retryAfter), `503 INTROSPECTION_UNAVAILABLE carries Retry-After (got ${String(retryAfter)})`);
  });
});

void describe('cause 10: RBAC role lacks the permission for this route and method', () => {
  void test('RBAC_PERMISSION_MISSING', async () => {
    const writer = await jwt({ sub: 'wendy', roles: ['writer'] });
    // The writer role may create…
    const created = await send(url('/docs/d1'), { method: 'POST', headers: { ...bearer(writer), 'content-type': 'application/json' }, body: '{"title":"x"}' });
    reached(created, 'POST', '/docs/d1');

    // …but not delete.
    const r = await send(url('/docs/d1'), { method: 'DELETE', headers: bearer(writer) });
    const p = denied(r, { status: 403, code: 'RBAC_PERMISSION_MISSING', layer: 'gateway', policy: 'docs-rbac' });
    assert.deepEqual(p.evidence.missing_permissions, ['docs:delete']);
    assert.deepEqual(p.evidence.roles, ['writer']);
    assert.equal(p.evidence.method, 'DELETE');
    assert.equal(p.evidence.route, 'docs');
    assert.equal(p.evidence.rule, 'rules[2]');
    assert.deepEqual(p.evidence.permissions_held, ['docs:read', 'docs:write']);

    // The fix: a credential whose role carries docs:delete.
    const admin = await jwt({ sub: 'ada', roles: ['admin'] });
    reached(await send(url('/docs/d1'), { method: 'DELETE', headers: bearer(admin) }), 'DELETE', '/docs/d1');
  });

  void test('RBAC_METHOD_NOT_COVERED', async () => {
    const admin = await jwt({ sub: 'ada', roles: ['admin'] });
    const r = await send(url('/docs/d2'), { method: 'PATCH', headers: { ...bearer(admin), 'content-type': 'application/json' }, body: '{}' });
    const p = denied(r, { status: 403, code: 'RBAC_METHOD_NOT_COVERED', layer: 'gateway', policy: 'docs-rbac' });
    assert.equal(p.evidence.method, 'PATCH');
    assert.deepEqual([...strings(p.evidence.covered_methods)].sort(), ['DELETE', 'GET', 'HEAD', 'POST', 'PUT']);

    // The remediation is the operator's: add a rule for the method. A gateway with that rule lets it through.
    const fixed = await startGateway(gatewayConfig(ports, [{ methods: ['PATCH'], permission: 'docs:write' }]), { env: ENV });
    try {
      const ok = await send(`${fixed.url}/docs/d2`, { method: 'PATCH', headers: { ...bearer(admin), 'content-type': 'application/json' }, body: '{}' });
      reached(ok, 'PATCH', '/docs/d2');
    } finally {
      await fixed.close();
    }
  });
});

void describe('cause 11: caller acts on a resource it does not own', () => {
  void test('OWNERSHIP_NOT_OWNER', async () => {
    const alice = await jwt({ sub: 'alice' });
    const r = await send(url('/users/bob'), { headers: bearer(alice) });
    const p = denied(r, { status: 403, code: 'OWNERSHIP_NOT_OWNER', layer: 'gateway', policy: 'user-owner' });
    assert.equal(p.evidence.resource, 'path parameter id');
    assert.equal(p.evidence.resource_value, 'bob');
    assert.equal(p.evidence.claim, 'sub');
    assert.equal(p.evidence.caller_value, 'alice');
    assert.deepEqual(p.evidence.override_permissions, ['users:admin']);

    // The caller's own resource passes…
    reached(await send(url(`/users/${String(p.evidence.caller_value)}`), { headers: bearer(alice) }), 'GET', '/users/alice');
    // …and a credential holding an override permission may act on anyone's.
    const override = strings(p.evidence.override_permissions)[0];
    const admin = await jwt({ sub: 'ada', scope: override });
    reached(await send(url('/users/bob'), { method: 'PUT', headers: { ...bearer(admin), 'content-type': 'application/json' }, body: '{"name":"Bob"}' }), 'PUT', '/users/bob');
  });
});
