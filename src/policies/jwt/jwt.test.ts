/**
 * `jwt` with static keys, driven the way the gateway drives it: compile() then decide(). Real keys
 * (RSA, EC P-256, Ed25519, HMAC) made with jose, real tokens signed with jose's SignJWT, and
 * hand-built tokens for the attacks. Assertions are on codes, evidence and headers, never prose.
 * The remote JWKS is tested over a real loopback server in jwks.test.ts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { CompactSign, exportJWK, exportPKCS8, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { KeyIndex } from '../../credentials/api-keys.ts';
import { CATALOG, type Code } from '../../errors/catalog.ts';
import { evaluate } from '../../pipeline/run.ts';
import { context } from '../../pipeline/testing.ts';
import { ConfigError, type CompiledPolicy, type ConsumerSpec, type Decision, type Deny, type Mode, type RequestFacts } from '../../pipeline/types.ts';
import { JWT_CODES } from './codes.ts';
import { DESCRIPTION } from './decide.ts';
import { compileJwt, jwt } from './index.ts';
import type { JwtConfig } from './schema.ts';

const NOW_MS = Date.parse('2026-06-01T12:00:00Z');
const NOW = NOW_MS / 1000;

/** An RSA pair from jose; the private half as a KeyObject so one key can sign RS* and PS* alike. */
async function rsaPair(): Promise<{ publicKey: CryptoKey; privateKey: KeyObject }> {
  const pair = await generateKeyPair('RS256', { extractable: true });
  return { publicKey: pair.publicKey, privateKey: createPrivateKey(await exportPKCS8(pair.privateKey)) };
}
const rsa = await rsaPair();
const rsaOther = await rsaPair();
const ec = await generateKeyPair('ES256');
const ed = await generateKeyPair('Ed25519');
const RSA_PEM = await exportSPKI(rsa.publicKey);
const EC_JWK = await exportJWK(ec.publicKey);
const ED_JWK = await exportJWK(ed.publicKey);
const SECRET = 'an-hmac-secret-of-at-least-32-bytes!!';
const ENV = { JWT_SECRET: SECRET, SHORT_SECRET: 'too-short' };

const CONSUMERS: readonly ConsumerSpec[] = [{ id: 'alice', groups: ['staff'] }, { id: '42', groups: ['numbers'] }];

const BASE: JwtConfig = {
  // Off here so every case runs the full verification; the cache has its own tests below.
  verified_cache_seconds: 0,
  algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA', 'HS256'],
  keys: [
    { kid: 'rsa1', pem: RSA_PEM },
    { kid: 'ec1', jwk: EC_JWK },
    { kid: 'ed1', jwk: ED_JWK },
    { kid: 'hs1', secret_env: 'JWT_SECRET' },
  ],
  jwks: { cache_seconds: 600, min_refresh_seconds: 30, timeout_ms: 5000 },
  issuer: 'https://issuer.example',
  audience: ['orders-api', 'legacy-api'],
  clock_skew_seconds: 30,
  required_claims: [],
  in: [{ from: 'bearer' }],
  consumer_claim: 'sub',
  scope_claims: ['scope', 'scp'],
  role_claims: ['roles'],
  realm: 'pinpoint',
};

function ctxFor(env: Record<string, string> = ENV) {
  return { consumers: CONSUMERS, apiKeys: KeyIndex.build([], {}).index, env, path: 'policies.auth.config', baseDir: process.cwd() };
}

function compile(config: Partial<JwtConfig> = {}, mode: Mode = 'enforce'): CompiledPolicy {
  return compileJwt({ ...BASE, ...config }, { id: 'auth', mode }, ctxFor());
}

function facts(headers: Record<string, string | undefined> = {}): RequestFacts {
  return { method: 'GET', path: '/orders', rawQuery: '', host: 'api.example.com', headers, clientIp: '198.51.100.7', clientIpSource: 'socket', params: {}, contentLength: undefined, now: NOW_MS };
}

async function decide(p: CompiledPolicy, f: RequestFacts, dryRun = false): Promise<Decision> {
  return p.decide(context({ facts: f, routeId: 'orders', dryRun }));
}

const GOOD: JWTPayload = { iss: 'https://issuer.example', aud: 'orders-api', sub: 'alice', iat: NOW - 60, exp: NOW + 600, scope: 'orders:read orders:write', roles: ['admin'], jti: 't-1' };

type Signer = { alg: string; kid?: string; key: CryptoKey | KeyObject | Uint8Array };
const S = {
  rsa: { alg: 'RS256', kid: 'rsa1', key: rsa.privateKey },
  ps: { alg: 'PS256', kid: 'rsa1', key: rsa.privateKey },
  ec: { alg: 'ES256', kid: 'ec1', key: ec.privateKey },
  ed: { alg: 'EdDSA', kid: 'ed1', key: ed.privateKey },
  hs: { alg: 'HS256', kid: 'hs1', key: new TextEncoder().encode(SECRET) },
} satisfies Record<string, Signer>;

async function sign(claims: JWTPayload, s: Signer = S.rsa): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: s.alg, ...(s.kid !== undefined ? { kid: s.kid } : {}), typ: 'JWT' }).sign(s.key);
}

const b64u = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** A token built by hand, HMAC-signed with any bytes: what an attacker's own code produces. */
function hmacToken(header: Record<string, unknown>, payload: unknown, secret: string | Buffer): string {
  const input = `${b64u(header)}.${b64u(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

function asDeny(d: Decision): Deny {
  assert.equal(d.outcome, 'deny', `expected a denial, got ${JSON.stringify(d)}`);
  return d;
}

// The RFC 6750 error_description for each token code comes from decide.ts itself: the test checks
// that the challenge carries the code's own description, not a copy of the wording.
const DESCRIPTIONS: Partial<Record<Code, string>> = DESCRIPTION;

interface Case {
  readonly name: string;
  /** The Authorization header (or other headers) to send; built lazily so signing stays async. */
  readonly headers: () => Promise<Record<string, string>> | Record<string, string>;
  readonly config?: Partial<JwtConfig>;
  readonly expect: 'allow' | Code;
  readonly evidence?: Record<string, unknown>;
  readonly identity?: { consumer: string; credentialId?: string; scopes?: string[]; roles?: string[]; groups?: string[] | null };
}

const bearer = (t: string | Promise<string>) => async () => ({ authorization: `Bearer ${await t}` });
const SQL_KID = "k1' OR '1'='1'; DROP TABLE keys; --";

const CASES: readonly Case[] = [
  // Accepted tokens, one per key type.
  {
    name: 'RS256 with kid',
    headers: bearer(sign(GOOD, S.rsa)),
    expect: 'allow',
    evidence: { consumer: 'alice', kid: 'rsa1', alg: 'RS256', iss: 'https://issuer.example', jti: 't-1', known_consumer: true },
    identity: { consumer: 'alice', credentialId: 't-1', scopes: ['orders:read', 'orders:write'], roles: ['admin'], groups: ['staff'] },
  },
  { name: 'PS256 with the same RSA key', headers: bearer(sign(GOOD, S.ps)), expect: 'allow' },
  { name: 'ES256 (EC P-256 JWK)', headers: bearer(sign({ ...GOOD, scope: undefined, scp: ['a', 'b'] }, S.ec)), expect: 'allow', identity: { consumer: 'alice', scopes: ['a', 'b'] } },
  { name: 'EdDSA (Ed25519 JWK)', headers: bearer(sign(GOOD, S.ed)), expect: 'allow' },
  { name: 'HS256 (secret from the environment)', headers: bearer(sign(GOOD, S.hs)), expect: 'allow' },
  { name: 'no kid: tried against keys able to verify the alg', headers: bearer(sign({ ...GOOD, jti: undefined }, { alg: 'RS256', key: rsa.privateKey })), expect: 'allow', identity: { consumer: 'alice', credentialId: 'jwt:RS256' } },
  { name: 'bearer scheme is case-insensitive', headers: async () => ({ authorization: `bearer ${await sign(GOOD)}` }), expect: 'allow' },
  { name: 'aud as a list with one accepted value', headers: bearer(sign({ ...GOOD, aud: ['other', 'legacy-api'] })), expect: 'allow' },
  { name: 'expired 29 s ago: within the 30 s skew', headers: bearer(sign({ ...GOOD, exp: NOW - 29 })), expect: 'allow' },
  { name: 'nbf 29 s ahead: within the skew', headers: bearer(sign({ ...GOOD, nbf: NOW + 29 })), expect: 'allow' },
  {
    name: 'a subject that is not a configured consumer: no groups',
    headers: bearer(sign({ ...GOOD, sub: 'bob', jti: undefined })),
    expect: 'allow',
    evidence: { known_consumer: false },
    identity: { consumer: 'bob', credentialId: 'kid:rsa1', groups: null },
  },
  { name: 'numeric consumer claim', headers: bearer(sign({ ...GOOD, sub: undefined, uid: 42 })), config: { consumer_claim: 'uid' }, expect: 'allow', identity: { consumer: '42', groups: ['numbers'] } },
  { name: 'issuer and audience unchecked when unset', headers: bearer(sign({ sub: 'alice' })), config: { issuer: undefined, audience: undefined }, expect: 'allow', identity: { consumer: 'alice', scopes: [], roles: [] } },
  { name: 'token from a cookie', headers: async () => ({ cookie: `theme=dark; at=${await sign(GOOD)}; x=1` }), config: { in: [{ from: 'cookie', name: 'at' }] }, expect: 'allow' },
  { name: 'token from a custom header', headers: async () => ({ 'x-token': await sign(GOOD) }), config: { in: [{ from: 'header', name: 'X-Token' }] }, expect: 'allow' },

  // Missing.
  { name: 'no token', headers: () => ({}), expect: 'JWT_MISSING', evidence: { accepted: 'Authorization: Bearer', found_scheme: null } },
  { name: 'Basic credentials instead of a token', headers: () => ({ authorization: 'Basic dXNlcjpwYXNz' }), expect: 'JWT_MISSING', evidence: { found_scheme: 'Basic' } },
  { name: 'Bearer with nothing after it', headers: () => ({ authorization: 'Bearer ' }), expect: 'JWT_MISSING' },
  { name: 'cookie policy, no such cookie', headers: () => ({ cookie: 'other=1' }), config: { in: [{ from: 'cookie', name: 'at' }] }, expect: 'JWT_MISSING', evidence: { accepted: 'cookie at' } },

  // Malformed.
  { name: 'one part', headers: bearer('abc'), expect: 'JWT_MALFORMED', evidence: { reason: 'not three dot-separated parts', parts: 1 } },
  { name: 'two parts', headers: bearer('abc.def'), expect: 'JWT_MALFORMED', evidence: { parts: 2 } },
  { name: 'five parts: an encrypted JWT', headers: bearer('a.b.c.d.e'), expect: 'JWT_MALFORMED', evidence: { reason: 'encrypted token (JWE) is not supported' } },
  { name: 'not base64url', headers: bearer('ab+c.de/f.ghi'), expect: 'JWT_MALFORMED', evidence: { reason: 'a part is not base64url' } },
  { name: 'empty header', headers: bearer(`.${b64u({})}.sig`), expect: 'JWT_MALFORMED', evidence: { reason: 'empty header or payload' } },
  { name: 'header is not JSON', headers: bearer(`${b64u('{"alg":')}.${b64u({})}.sig`), expect: 'JWT_MALFORMED', evidence: { reason: 'header is not JSON' } },
  { name: 'header is a JSON array', headers: bearer(`${b64u(['RS256'])}.${b64u({})}.sig`), expect: 'JWT_MALFORMED', evidence: { reason: 'header is not a JSON object' } },
  { name: 'header without alg', headers: bearer(`${b64u({ typ: 'JWT' })}.${b64u({})}.sig`), expect: 'JWT_MALFORMED', evidence: { reason: 'header has no alg' } },
  { name: 'kid that is not a string', headers: bearer(`${b64u({ alg: 'RS256', kid: 7 })}.${b64u({})}.sig`), expect: 'JWT_MALFORMED', evidence: { reason: 'kid is not a string' } },
  { name: 'unsupported crit extension (RFC 7515 §4.1.11)', headers: bearer(hmacToken({ alg: 'HS256', kid: 'hs1', crit: ['x'], x: 1 }, GOOD, SECRET)), expect: 'JWT_MALFORMED', evidence: { reason: 'header lists crit extensions, none of which is supported' } },
  {
    name: 'validly signed payload that is not JSON',
    headers: bearer(new CompactSign(new TextEncoder().encode('not json')).setProtectedHeader({ alg: 'HS256', kid: 'hs1' }).sign(S.hs.key)),
    expect: 'JWT_MALFORMED',
    evidence: { reason: 'payload is not JSON' },
  },
  { name: 'payload is a JSON array', headers: bearer(hmacToken({ alg: 'HS256', kid: 'hs1' }, [1, 2], SECRET)), expect: 'JWT_MALFORMED', evidence: { reason: 'payload is not a JSON object' } },
  { name: 'exp is not a NumericDate', headers: bearer(sign({ ...GOOD, exp: 'tomorrow' as unknown as number })), expect: 'JWT_MALFORMED', evidence: { reason: 'exp is not a NumericDate (RFC 7519 §2)' } },

  // Algorithm.
  { name: 'alg none (unsigned)', headers: bearer(`${b64u({ alg: 'none', typ: 'JWT' })}.${b64u(GOOD)}.`), expect: 'JWT_ALG_NOT_ALLOWED', evidence: { alg: 'none', reason: 'unsigned token (alg none) is never accepted' } },
  { name: 'alg None, any case', headers: bearer(`${b64u({ alg: 'nOnE' })}.${b64u(GOOD)}.`), expect: 'JWT_ALG_NOT_ALLOWED', evidence: { alg: 'none' } },
  { name: 'alg none with a kid and a signature', headers: bearer(`${b64u({ alg: 'none', kid: 'rsa1' })}.${b64u(GOOD)}.c2ln`), expect: 'JWT_ALG_NOT_ALLOWED', evidence: { alg: 'none' } },
  {
    name: 'an algorithm not in the allow-list',
    headers: bearer(sign(GOOD, { alg: 'RS512', kid: 'rsa1', key: rsa.privateKey })),
    expect: 'JWT_ALG_NOT_ALLOWED',
    evidence: { alg: 'RS512', expected: ['RS256', 'PS256', 'ES256', 'EdDSA', 'HS256'], reason: 'not in the allow-list' },
  },
  { name: 'an algorithm nobody supports', headers: bearer(`${b64u({ alg: 'XS999' })}.${b64u(GOOD)}.c2ln`), expect: 'JWT_ALG_NOT_ALLOWED', evidence: { alg: 'XS999' } },
  {
    name: 'key confusion: HS256 signed with the RSA public key as the secret, RSA kid',
    headers: bearer(hmacToken({ alg: 'HS256', kid: 'rsa1' }, GOOD, RSA_PEM)),
    expect: 'JWT_ALG_NOT_ALLOWED',
    evidence: { alg: 'HS256', kid: 'rsa1', key_type: ['RSA'], expected: ['RS256', 'PS256'], reason: 'the key cannot verify this algorithm' },
  },
  {
    name: 'key confusion without kid: only HMAC keys are tried, and the signature fails',
    headers: bearer(hmacToken({ alg: 'HS256' }, GOOD, RSA_PEM)),
    expect: 'JWT_SIGNATURE_INVALID',
    evidence: { kid: null, alg: 'HS256', keys_tried: 1 },
  },
  {
    name: 'key confusion when HS256 is not allowed at all',
    headers: bearer(hmacToken({ alg: 'HS256', kid: 'rsa1' }, GOOD, RSA_PEM)),
    config: { algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'], keys: (BASE.keys ?? []).slice(0, 3) },
    expect: 'JWT_ALG_NOT_ALLOWED',
    evidence: { alg: 'HS256', reason: 'not in the allow-list' },
  },
  { name: 'ES256 header with the RSA kid', headers: bearer(sign(GOOD, { alg: 'ES256', kid: 'rsa1', key: ec.privateKey })), expect: 'JWT_ALG_NOT_ALLOWED', evidence: { kid: 'rsa1', key_type: ['RSA'] } },

  // Keys.
  { name: 'unknown kid', headers: bearer(sign(GOOD, { alg: 'RS256', kid: 'nope', key: rsa.privateKey })), expect: 'JWT_KEY_UNKNOWN', evidence: { kid: 'nope', alg: 'RS256', key_source: 'static keys' } },
  { name: 'kid path traversal is only a lookup key', headers: bearer(sign(GOOD, { alg: 'RS256', kid: '../../etc/passwd', key: rsa.privateKey })), expect: 'JWT_KEY_UNKNOWN', evidence: { kid: '../../etc/passwd' } },
  { name: 'kid with SQL is only a lookup key', headers: bearer(sign(GOOD, { alg: 'RS256', kid: SQL_KID, key: rsa.privateKey })), expect: 'JWT_KEY_UNKNOWN', evidence: { kid: SQL_KID } },
  { name: 'kid that is a URL is only a lookup key', headers: bearer(sign(GOOD, { alg: 'RS256', kid: 'https://evil.example/jwks.json', key: rsa.privateKey })), expect: 'JWT_KEY_UNKNOWN' },
  { name: 'kid __proto__ is not an object property', headers: bearer(sign(GOOD, { alg: 'RS256', kid: '__proto__', key: rsa.privateKey })), expect: 'JWT_KEY_UNKNOWN', evidence: { kid: '__proto__' } },
  { name: 'kid with a NUL byte', headers: bearer(sign(GOOD, { alg: 'RS256', kid: 'rsa1\u0000', key: rsa.privateKey })), expect: 'JWT_KEY_UNKNOWN' },
  { name: 'a very long kid is clipped in evidence', headers: bearer(sign(GOOD, { alg: 'RS256', kid: 'k'.repeat(5000), key: rsa.privateKey })), expect: 'JWT_KEY_UNKNOWN', evidence: { kid: `${'k'.repeat(128)}…` } },

  // Signature.
  { name: 'signed by another key under a trusted kid', headers: bearer(sign(GOOD, { alg: 'RS256', kid: 'rsa1', key: rsaOther.privateKey })), expect: 'JWT_SIGNATURE_INVALID', evidence: { kid: 'rsa1', alg: 'RS256', keys_tried: 1 } },
  {
    name: 'payload altered after signing',
    headers: async () => {
      const [h, , s] = (await sign(GOOD)).split('.');
      return { authorization: `Bearer ${h}.${b64u({ ...GOOD, sub: 'admin' })}.${s}` };
    },
    expect: 'JWT_SIGNATURE_INVALID',
  },
  { name: 'empty signature', headers: async () => ({ authorization: `Bearer ${(await sign(GOOD)).split('.').slice(0, 2).join('.')}.` }), expect: 'JWT_SIGNATURE_INVALID' },
  { name: 'HMAC with the wrong secret', headers: bearer(hmacToken({ alg: 'HS256', kid: 'hs1' }, GOOD, 'another-secret-that-is-32-bytes-long')), expect: 'JWT_SIGNATURE_INVALID', evidence: { kid: 'hs1' } },

  // Claims.
  {
    name: 'expired',
    headers: bearer(sign({ ...GOOD, exp: NOW - 3600 })),
    expect: 'JWT_EXPIRED',
    evidence: { exp: '2026-06-01T11:00:00.000Z', expired_seconds_ago: 3600, clock_skew_seconds: 30, kid: 'rsa1', sub: 'alice' },
  },
  { name: 'expired exactly at the skew boundary', headers: bearer(sign({ ...GOOD, exp: NOW - 30 })), expect: 'JWT_EXPIRED', evidence: { expired_seconds_ago: 30 } },
  { name: 'skew 0: expired exactly now (RFC 7519 §4.1.4)', headers: bearer(sign({ ...GOOD, exp: NOW })), config: { clock_skew_seconds: 0 }, expect: 'JWT_EXPIRED', evidence: { expired_seconds_ago: 0 } },
  { name: 'not yet valid', headers: bearer(sign({ ...GOOD, nbf: NOW + 120 })), expect: 'JWT_NOT_YET_VALID', evidence: { nbf: '2026-06-01T12:02:00.000Z', valid_in_seconds: 120, clock_skew_seconds: 30 } },
  { name: 'issued in the future', headers: bearer(sign({ ...GOOD, iat: NOW + 600 })), expect: 'JWT_ISSUED_IN_FUTURE', evidence: { iat: '2026-06-01T12:10:00.000Z', seconds_ahead: 600, clock_skew_seconds: 30 } },
  { name: 'wrong audience', headers: bearer(sign({ ...GOOD, aud: 'billing-api' })), expect: 'JWT_AUDIENCE_MISMATCH', evidence: { expected: ['orders-api', 'legacy-api'], got: ['billing-api'] } },
  { name: 'no audience', headers: bearer(sign({ ...GOOD, aud: undefined })), expect: 'JWT_AUDIENCE_MISMATCH', evidence: { got: ['(none)'] } },
  { name: 'wrong issuer', headers: bearer(sign({ ...GOOD, iss: 'https://evil.example' })), expect: 'JWT_ISSUER_MISMATCH', evidence: { expected: ['https://issuer.example'], got: 'https://evil.example' } },
  { name: 'no issuer', headers: bearer(sign({ ...GOOD, iss: undefined })), expect: 'JWT_ISSUER_MISMATCH', evidence: { got: '(none)' } },
  { name: 'issuer list', headers: bearer(sign({ ...GOOD, iss: 'https://b.example' })), config: { issuer: ['https://a.example', 'https://b.example'] }, expect: 'allow' },
  {
    name: 'missing required claims',
    headers: bearer(sign({ ...GOOD, jti: undefined })),
    config: { required_claims: ['exp', 'jti', 'tenant'] },
    expect: 'JWT_CLAIM_MISSING',
    evidence: { missing_claims: ['jti', 'tenant'], required_claims: ['exp', 'jti', 'tenant'] },
  },
  { name: 'no exp while exp is required', headers: bearer(sign({ ...GOOD, exp: undefined })), config: { required_claims: ['exp'] }, expect: 'JWT_CLAIM_MISSING', evidence: { missing_claims: ['exp'] } },
  { name: 'no consumer claim', headers: bearer(sign({ ...GOOD, sub: undefined })), expect: 'JWT_CLAIM_MISSING', evidence: { missing_claims: ['sub'], reason: 'consumer_claim' } },
];

void describe('jwt decide (static keys)', () => {
  for (const c of CASES) {
    void test(c.name, async () => {
      const headers = await c.headers();
      const d = await decide(compile(c.config), facts(headers));
      if (c.expect === 'allow') assert.equal(d.outcome, 'allow', JSON.stringify(d));
      else assert.equal(asDeny(d).code, c.expect, JSON.stringify(d));
      if (c.evidence !== undefined) {
        assert.ok(d.outcome !== 'skip' && d.evidence !== undefined);
        for (const [k, v] of Object.entries(c.evidence)) assert.deepEqual(d.evidence[k], v, `evidence.${k}`);
      }
      if (d.outcome === 'deny') {
        assert.equal(d.identity, undefined);
        const description = DESCRIPTIONS[d.code];
        const expected = description === undefined ? 'Bearer realm="pinpoint"' : `Bearer realm="pinpoint", error="invalid_token", error_description="${description}"`;
        assert.deepEqual(d.headers, { 'www-authenticate': expected });
      }
      if (c.identity !== undefined) {
        assert.ok(d.outcome === 'allow' && d.identity !== undefined);
        const id = d.identity;
        assert.equal(id.consumer, c.identity.consumer);
        assert.equal(id.credentialType, 'jwt');
        if (c.identity.credentialId !== undefined) assert.equal(id.credentialId, c.identity.credentialId);
        if (c.identity.scopes !== undefined) assert.deepEqual([...id.scopes], c.identity.scopes);
        if (c.identity.roles !== undefined) assert.deepEqual([...(id.roles ?? [])], c.identity.roles);
        if (c.identity.groups === null) assert.equal(id.groups, undefined);
        else if (c.identity.groups !== undefined) assert.deepEqual([...(id.groups ?? [])], c.identity.groups);
      }
      // Never the token, any part of its signature, or a secret.
      const text = JSON.stringify(d, (_k, v: unknown) => (v instanceof Set ? [...(v as Set<unknown>)] : v));
      const token = /Bearer (\S+)/.exec(headers.authorization ?? '')?.[1] ?? headers['x-token'] ?? '';
      const signature = token.split('.')[2] ?? '';
      if (token.length > 20) assert.ok(!text.includes(token), 'decision leaks the token');
      if (signature.length > 20) assert.ok(!text.includes(signature), 'decision leaks the signature');
      assert.ok(!text.includes(SECRET));
    });
  }
});

void describe('jwt contract', () => {
  void test('every catalog code of the policy is exercised (JWKS_UNREACHABLE in jwks.test.ts)', () => {
    const seen = new Set(CASES.map((c) => c.expect));
    for (const code of Object.keys(JWT_CODES)) if (code !== 'JWT_JWKS_UNREACHABLE') assert.ok(seen.has(code as Code), code);
  });

  void test('every token failure is a 401 (RFC 6750 §3.1); only the key server outage is a 503', () => {
    for (const [code, entry] of Object.entries(JWT_CODES)) assert.equal(entry.status, code === 'JWT_JWKS_UNREACHABLE' ? 503 : 401, code);
    assert.equal(CATALOG.JWT_JWKS_UNREACHABLE.layer, 'gateway');
    assert.equal(CATALOG.JWT_JWKS_UNREACHABLE.retryable, true);
  });

  void test('the verified payload becomes identity.claims', async () => {
    const d = await decide(compile(), facts({ authorization: `Bearer ${await sign({ ...GOOD, tenant: 't9' })}` }));
    assert.ok(d.outcome === 'allow');
    assert.equal(d.identity?.claims?.tenant, 't9');
    assert.ok(Object.isFrozen(d.identity?.claims));
  });

  void test('missing, malformed and disallowed-algorithm answers need no promise', () => {
    const p = compile();
    for (const authorization of [undefined, 'Bearer a.b', `Bearer ${b64u({ alg: 'none' })}.${b64u(GOOD)}.`]) {
      const d = p.decide(context({ facts: facts({ authorization }) }));
      assert.equal(typeof (d as { then?: unknown }).then, 'undefined', String(authorization));
      assert.equal((d as Decision).outcome, 'deny');
    }
  });

  void test('the first accepted place wins', async () => {
    const p = compile({ in: [{ from: 'header', name: 'x-token' }, { from: 'bearer' }] });
    const d = await decide(p, facts({ 'x-token': 'garbage', authorization: `Bearer ${await sign(GOOD)}` }));
    assert.equal(asDeny(d).code, 'JWT_MALFORMED');
  });

  void test('a dry run with static keys decides exactly as live', async () => {
    const p = compile();
    assert.equal((await decide(p, facts({ authorization: `Bearer ${await sign(GOOD)}` }), true)).outcome, 'allow');
    assert.equal(asDeny(await decide(p, facts({ authorization: `Bearer ${await sign({ ...GOOD, exp: NOW - 3600 })}` }), true)).code, 'JWT_EXPIRED');
  });

  void test('the compiled policy carries id, type and mode; the module compiles the same', () => {
    const p = compile({}, 'monitor');
    assert.deepEqual([p.id, p.type, p.mode, p.bodyLimit, p.needsBody], ['auth', 'jwt', 'monitor', undefined, undefined]);
    assert.equal(jwt.compile(BASE, { id: 'x', mode: 'enforce' }, ctxFor()).type, 'jwt');
  });

  void test('runs in the real pipeline: identity adopted, denial traced with evidence', async () => {
    const p = compile();
    const plan = [{ policy: p, position: 0, attachedTo: 'route' as const }];
    const ok = await evaluate(plan, facts({ authorization: `Bearer ${await sign(GOOD)}` }), 'orders', { get: () => undefined });
    assert.equal(ok.allowed, true);
    assert.equal(ok.identity?.consumer, 'alice');
    const bad = await evaluate(plan, facts({ authorization: `Bearer ${await sign({ ...GOOD, aud: 'x' })}` }), 'orders', { get: () => undefined });
    assert.equal(bad.deny?.code, 'JWT_AUDIENCE_MISMATCH');
    assert.deepEqual(bad.trace[0]?.evidence?.got, ['x']);
  });
});

interface ErrorCase {
  readonly name: string;
  readonly config: Partial<JwtConfig>;
  readonly env?: Record<string, string>;
  readonly issues: readonly { path: string; message: RegExp }[];
}

const RSA_1024_PEM = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
const PRIVATE_PEM = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const P = 'policies.auth.config';

const ERROR_CASES: readonly ErrorCase[] = [
  { name: 'alg none in the allow-list', config: { algorithms: ['RS256', 'none' as 'RS256'], keys: [{ pem: RSA_PEM }] }, issues: [{ path: `${P}.algorithms[1]`, message: /unsigned/ }] },
  { name: 'NONE in any case', config: { algorithms: ['NONE' as 'RS256'], keys: [{ pem: RSA_PEM }] }, issues: [{ path: `${P}.algorithms[0]`, message: /never allowed/ }] },
  { name: 'an unknown algorithm', config: { algorithms: ['RS256', 'XS1' as 'RS256'], keys: [{ pem: RSA_PEM }] }, issues: [{ path: `${P}.algorithms[1]`, message: /"XS1" is not a supported/ }] },
  { name: 'an empty allow-list', config: { algorithms: [], keys: [{ pem: RSA_PEM }] }, issues: [{ path: `${P}.algorithms`, message: /no default/ }] },
  { name: 'neither keys nor jwks_url', config: { keys: [] }, issues: [{ path: P, message: /set keys or jwks_url/ }] },
  { name: 'both keys and jwks_url', config: { jwks_url: 'https://issuer.example/jwks.json' }, issues: [{ path: P, message: /not both/ }] },
  { name: 'a key with no material', config: { algorithms: ['RS256'], keys: [{ kid: 'k' }] }, issues: [{ path: `${P}.keys[0]`, message: /exactly one of pem, jwk or secret_env \(got none\)/ }] },
  { name: 'a key with two sources', config: { algorithms: ['RS256'], keys: [{ pem: RSA_PEM, jwk: EC_JWK }] }, issues: [{ path: `${P}.keys[0]`, message: /got pem and jwk/ }] },
  { name: 'a private key PEM', config: { algorithms: ['ES256'], keys: [{ pem: PRIVATE_PEM }] }, issues: [{ path: `${P}.keys[0].pem`, message: /private key/ }] },
  { name: 'garbage PEM', config: { algorithms: ['RS256'], keys: [{ pem: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----' }] }, issues: [{ path: `${P}.keys[0].pem`, message: /not a usable PEM/ }] },
  { name: 'an inline symmetric JWK', config: { algorithms: ['HS256'], keys: [{ jwk: { kty: 'oct', k: b64u(SECRET) } }] }, issues: [{ path: `${P}.keys[0].jwk`, message: /secret_env/ }] },
  { name: 'a private JWK', config: { algorithms: ['ES256'], keys: [{ jwk: { ...EC_JWK, d: 'AAAA' } }] }, issues: [{ path: `${P}.keys[0].jwk`, message: /private key/ }] },
  { name: 'an encryption JWK', config: { algorithms: ['ES256'], keys: [{ jwk: { ...EC_JWK, use: 'enc' } }] }, issues: [{ path: `${P}.keys[0].jwk`, message: /"sig"/ }] },
  { name: 'secret_env not set', config: { algorithms: ['HS256'], keys: [{ secret_env: 'NOT_SET_ANYWHERE' }] }, issues: [{ path: `${P}.keys[0].secret_env`, message: /NOT_SET_ANYWHERE is not set/ }] },
  { name: 'a secret shorter than 32 bytes (RFC 7518 §3.2)', config: { algorithms: ['HS256'], keys: [{ secret_env: 'SHORT_SECRET' }] }, issues: [{ path: `${P}.keys[0]`, message: /too short/ }] },
  { name: 'a secret that is not the declared base64', config: { algorithms: ['HS256'], keys: [{ secret_env: 'JWT_SECRET', secret_encoding: 'base64' }] }, issues: [{ path: `${P}.keys[0].secret_encoding`, message: /not valid base64/ }] },
  { name: 'an RSA key under 2048 bits', config: { algorithms: ['RS256'], keys: [{ pem: RSA_1024_PEM }] }, issues: [{ path: `${P}.keys[0]`, message: /1024 bits is too small/ }] },
  { name: 'a key alg its type cannot verify', config: { algorithms: ['RS256', 'ES256'], keys: [{ jwk: EC_JWK, alg: 'RS256' }, { pem: RSA_PEM }] }, issues: [{ path: `${P}.keys[0]`, message: /RS256 cannot be used with a EC P-256 key/ }] },
  { name: 'a key no allowed algorithm fits', config: { algorithms: ['RS256'], keys: [{ pem: RSA_PEM }, { jwk: ED_JWK }] }, issues: [{ path: `${P}.keys[1]`, message: /none of which is in algorithms/ }] },
  { name: 'an allowed algorithm no key can verify', config: { algorithms: ['RS256', 'HS256'], keys: [{ pem: RSA_PEM }] }, issues: [{ path: `${P}.algorithms[1]`, message: /no key in keys can verify HS256/ }] },
  { name: 'duplicate kid', config: { algorithms: ['RS256', 'ES256'], keys: [{ kid: 'a', pem: RSA_PEM }, { kid: 'a', jwk: EC_JWK }] }, issues: [{ path: `${P}.keys[1].kid`, message: /already used by keys\[0\]/ }] },
  { name: 'kid differs from the JWK kid', config: { algorithms: ['ES256'], keys: [{ kid: 'a', jwk: { ...EC_JWK, kid: 'b' } }] }, issues: [{ path: `${P}.keys[0].kid`, message: /differs/ }] },
  { name: 'jwks_url over plain http to a remote host', config: { keys: [], jwks_url: 'http://issuer.example/jwks.json' }, issues: [{ path: `${P}.jwks_url`, message: /use https/ }] },
  { name: 'jwks_url with credentials', config: { keys: [], jwks_url: 'https://u:p@issuer.example/jwks.json' }, issues: [{ path: `${P}.jwks_url`, message: /credentials/ }] },
  { name: 'realm with a control character', config: { realm: 'a\r\nb' }, issues: [{ path: `${P}.realm`, message: /control/ }] },
  {
    name: 'every problem is reported, each at its path',
    config: { algorithms: ['none' as 'RS256', 'RS256'], keys: [{ pem: RSA_PEM }, { secret_env: 'NOPE' }, { pem: PRIVATE_PEM }] },
    issues: [
      { path: `${P}.algorithms[0]`, message: /never allowed/ },
      { path: `${P}.keys[1].secret_env`, message: /NOPE/ },
      { path: `${P}.keys[2].pem`, message: /private/ },
    ],
  },
];

void describe('jwt compile errors', () => {
  for (const c of ERROR_CASES) {
    void test(c.name, () => {
      let caught: unknown;
      try {
        jwt.compile({ ...BASE, ...c.config }, { id: 'auth', mode: 'enforce' }, ctxFor(c.env ?? ENV));
      } catch (err) {
        caught = err;
      }
      assert.ok(caught instanceof ConfigError, `expected ConfigError, got ${String(caught)}`);
      assert.deepEqual(
        caught.issues.map((i) => i.path),
        c.issues.map((i) => i.path),
        JSON.stringify(caught.issues),
      );
      c.issues.forEach((e, i) => assert.match(caught.issues[i]?.message ?? '', e.message));
    });
  }

  void test('http is allowed for a loopback JWKS; base64 secrets decode', () => {
    assert.equal(compile({ keys: [], jwks_url: 'http://127.0.0.1:1/jwks.json' }).type, 'jwt');
    const b64 = Buffer.from(SECRET).toString('base64');
    assert.equal(compileJwt({ ...BASE, algorithms: ['HS256'], keys: [{ secret_env: 'S', secret_encoding: 'base64' }] }, { id: 'a', mode: 'enforce' }, ctxFor({ S: b64 })).type, 'jwt');
  });
});

void describe('verified-token cache', () => {
  void test('a repeated token is answered from the cache, synchronously, with claims still checked', async () => {
    const p = compile({ verified_cache_seconds: 60 });
    // Expires 10 s from now: still in the cache at +45 s, but past exp plus the 30 s skew.
    const token = await sign({ ...GOOD, exp: NOW + 10 });
    const first = await decide(p, facts({ authorization: `Bearer ${token}` }));
    assert.equal(first.outcome, 'allow');
    // The second decision needs no signature check: it comes back synchronously.
    const again = p.decide(context({ facts: facts({ authorization: `Bearer ${token}` }), routeId: 'orders' }));
    assert.equal(typeof (again as { then?: unknown }).then, 'undefined');
    assert.equal((again as Decision).outcome, 'allow');
    // Claims are re-checked against the clock: past exp the cached token is refused.
    const later = { ...facts({ authorization: `Bearer ${token}` }), now: NOW_MS + 45_000 };
    const expired = p.decide(context({ facts: later, routeId: 'orders' })) as Decision;
    assert.equal(expired.outcome, 'deny');
    assert.equal(expired.outcome === 'deny' ? expired.code : '', 'JWT_EXPIRED');
  });

  void test('a token with a forged signature is not cached as valid', async () => {
    const p = compile({ verified_cache_seconds: 60 });
    const token = await sign(GOOD);
    const forged = `${token.slice(0, token.lastIndexOf('.') + 1)}${'A'.repeat(token.length - token.lastIndexOf('.') - 1)}`;
    for (let i = 0; i < 2; i++) {
      const d = await decide(p, facts({ authorization: `Bearer ${forged}` }));
      assert.equal(d.outcome === 'deny' ? d.code : d.outcome, 'JWT_SIGNATURE_INVALID');
    }
  });
});
