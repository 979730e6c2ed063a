/**
 * `jwt` in a replay (`pinpoint impact`): the token was not recorded; the claims the gateway
 * verified were. They go through this config's algorithm allow-list and claim checks, at the time
 * the request was logged, without a signature check (and so without a promise).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { KeyIndex } from '../../credentials/api-keys.ts';
import { context, decideSync } from '../../pipeline/testing.ts';
import type { CompiledPolicy, Decision, ReplayContext, RequestFacts } from '../../pipeline/types.ts';
import { compileJwt } from './index.ts';
import type { JwtConfig } from './schema.ts';

const NOW = Date.parse('2020-03-01T12:00:00Z');
const NOW_S = NOW / 1000;

const BASE: JwtConfig = {
  verified_cache_seconds: 60,
  algorithms: ['HS256'],
  keys: [{ kid: 'hs1', secret_env: 'JWT_SECRET' }],
  jwks: { cache_seconds: 600, min_refresh_seconds: 30, timeout_ms: 5000 },
  issuer: 'https://issuer.example',
  audience: 'orders-api',
  clock_skew_seconds: 30,
  required_claims: [],
  in: [{ from: 'bearer' }],
  consumer_claim: 'sub',
  scope_claims: ['scope', 'scp'],
  role_claims: ['roles'],
  realm: 'pinpoint',
};

function compile(config: Partial<JwtConfig> = {}): CompiledPolicy {
  const ctx = { consumers: [{ id: 'alice', groups: ['staff'] }], apiKeys: KeyIndex.build([], {}).index, env: { JWT_SECRET: 'an-hmac-secret-of-at-least-32-bytes!!' }, path: 'policies.tok.config', baseDir: '.' };
  return compileJwt({ ...BASE, ...config }, { id: 'tok', mode: 'enforce' }, ctx);
}

const CLAIMS = { iss: 'https://issuer.example', aud: 'orders-api', sub: 'alice', iat: NOW_S - 60, exp: NOW_S + 600, scope: 'orders:read', roles: ['admin'], jti: 't-1' };

function replay(token: { claims: Record<string, unknown>; alg: string | null; kid: string | null } | string, asked: string[] = []): ReplayContext {
  const stop = (reason: string): never => {
    throw new Error(`unreplayable: ${reason}`);
  };
  return {
    identity: null,
    claims: null,
    apiKey: () => stop('not a key'),
    basicCredentials: () => undefined,
    basicPasswordCorrect: () => stop('not basic'),
    verifiedToken: (type) => {
      asked.push(type);
      return typeof token === 'string' ? stop(token) : token;
    },
    unreplayable: stop,
  };
}

function facts(headers: Record<string, string>): RequestFacts {
  return { method: 'GET', path: '/orders', rawQuery: '', host: 'h', headers, clientIp: '192.0.2.1', clientIpSource: 'socket', params: {}, contentLength: undefined, now: NOW };
}

const BEARER = { authorization: 'Bearer [redacted#1]' };

function decide(p: CompiledPolicy, r: ReplayContext, headers: Record<string, string> = BEARER): Decision {
  return decideSync(p, context({ facts: facts(headers), dryRun: true, replay: r }));
}

const code = (d: Decision): string => (d.outcome === 'deny' ? d.code : d.outcome);

void describe('jwt replay', () => {
  void test('recorded claims pass this config\u2019s checks: identity, scopes and roles come from them', () => {
    const d = decide(compile(), replay({ claims: CLAIMS, alg: 'HS256', kid: 'hs1' }));
    assert.equal(d.outcome, 'allow');
    if (d.outcome !== 'allow') return;
    assert.equal(d.identity?.consumer, 'alice');
    assert.deepEqual([...(d.identity?.scopes ?? [])], ['orders:read']);
    assert.deepEqual([...(d.identity?.roles ?? [])], ['admin']);
    assert.equal(d.identity?.credentialId, 't-1');
  });

  void test('a changed rule decides: audience, issuer, a required claim, the consumer claim, the allow-list', () => {
    const t = { claims: CLAIMS, alg: 'HS256', kid: 'hs1' };
    assert.equal(code(decide(compile({ audience: 'billing-api' }), replay(t))), 'JWT_AUDIENCE_MISMATCH');
    assert.equal(code(decide(compile({ issuer: 'https://other.example' }), replay(t))), 'JWT_ISSUER_MISMATCH');
    assert.equal(code(decide(compile({ required_claims: ['tenant'] }), replay(t))), 'JWT_CLAIM_MISSING');
    assert.equal(code(decide(compile({ consumer_claim: 'client_id' }), replay(t))), 'JWT_CLAIM_MISSING');
    assert.equal(code(decide(compile(), replay({ ...t, alg: 'HS512' }))), 'JWT_ALG_NOT_ALLOWED');
    assert.equal(code(decide(compile(), replay({ ...t, alg: null }))), 'JWT_ALG_NOT_ALLOWED');
  });

  void test('time is the logged time: exp before it denies, exp after it (but before now) does not', () => {
    const before = { ...CLAIMS, exp: NOW_S - 3600 };
    assert.equal(code(decide(compile(), replay({ claims: before, alg: 'HS256', kid: 'hs1' }))), 'JWT_EXPIRED');
    assert.ok(NOW_S + 600 < Date.now() / 1000);
    assert.equal(code(decide(compile(), replay({ claims: CLAIMS, alg: 'HS256', kid: 'hs1' }))), 'allow');
  });

  void test('no token is decided without the replay context; an unverifiable one stops the decision', () => {
    const asked: string[] = [];
    assert.equal(code(decide(compile(), replay('never asked', asked), {})), 'JWT_MISSING');
    assert.deepEqual(asked, []);
    assert.throws(() => decide(compile(), replay('keys changed', asked)), /unreplayable: keys changed/);
    assert.deepEqual(asked, ['jwt']);
  });
});
