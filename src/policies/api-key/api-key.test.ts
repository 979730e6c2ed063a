/**
 * `api-key` driven the way the gateway drives it: the module's compile() over a KeyIndex built from
 * consumers, then decide(). Assertions are on codes, evidence fields and headers, never on prose.
 */
import { context, decideSync } from '../../pipeline/testing.ts';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hashKey, KeyIndex } from '../../credentials/api-keys.ts';
import { CATALOG } from '../../errors/catalog.ts';
import type { CompiledPolicy, ConsumerSpec, Decision, Deny, Mode, RequestFacts } from '../../pipeline/types.ts';
import { apiKey } from './index.ts';
import type { ApiKeyConfig } from './schema.ts';

const NOW = Date.parse('2026-06-01T12:00:00Z');

const KEYS = {
  read: 'pp_test_read_0123456789abcdef',
  write: 'pp_test_write_fedcba9876543210',
  revoked: 'pp_test_revoked_aaaaaaaaaaaaaaaa',
  expired: 'pp_test_expired_bbbbbbbbbbbbbbbb',
  future: 'pp_test_future_cccccccccccccccc',
  unknown: 'pp_test_unknown_dddddddddddddddd',
} as const;

const CONSUMERS: readonly ConsumerSpec[] = [
  {
    id: 'reader',
    credentials: {
      api_keys: [
        { id: 'k_read', hash: hashKey(KEYS.read), scopes: ['orders:read'] },
        { id: 'k_revoked', hash: hashKey(KEYS.revoked), scopes: ['orders:read'], revoked: true },
        { id: 'k_expired', hash: hashKey(KEYS.expired), scopes: ['orders:read'], expires_at: '2026-05-01T00:00:00Z' },
        { id: 'k_future', hash: hashKey(KEYS.future), scopes: ['orders:read'], expires_at: '2026-07-01T00:00:00Z' },
      ],
    },
  },
  {
    id: 'writer',
    credentials: { api_keys: [{ id: 'k_write', key_env: 'WRITE_KEY', scopes: ['orders:read', 'orders:write'] }] },
  },
];

const built = KeyIndex.build(CONSUMERS, { WRITE_KEY: KEYS.write });
assert.deepEqual(built.issues, [], 'the test key index must build cleanly');

const HEADER = { from: 'header', name: 'x-api-key' } as const;
const BEARER = { from: 'bearer' } as const;
const QUERY = { from: 'query', name: 'api_key' } as const;

function compile(config: Partial<ApiKeyConfig> = {}, mode: Mode = 'enforce'): CompiledPolicy {
  const full: ApiKeyConfig = { in: [HEADER, BEARER], required_scopes: [], realm: 'pinpoint', ...config };
  return apiKey.compile(full, { id: 'test-key', mode }, { consumers: CONSUMERS, apiKeys: built.index, env: {}, path: 'policies.test-key.config', baseDir: process.cwd() });
}

function facts(headers: Record<string, string | string[] | undefined> = {}, rawQuery = '', now = NOW): RequestFacts {
  return {
    method: 'GET',
    path: '/orders',
    rawQuery,
    host: 'api.example.com',
    headers,
    clientIp: '198.51.100.7',
    clientIpSource: 'socket',
    params: {},
    contentLength: undefined,
    now,
  };
}

function decide(p: CompiledPolicy, f: RequestFacts): Decision {
  return decideSync(p, context({ facts: f, routeId: 'orders' }));
}

function asDeny(d: Decision): Deny {
  assert.equal(d.outcome, 'deny', `expected a denial, got ${JSON.stringify(d)}`);
  return d;
}

/** No part of a decision (rule, evidence, headers) may carry a presented secret. */
function assertNoSecret(d: Decision, f: RequestFacts): void {
  const text = JSON.stringify(d, (_k, v: unknown) => (v instanceof Set ? [...(v as Set<unknown>)] : v));
  for (const secret of Object.values(KEYS)) {
    if (JSON.stringify(f).includes(secret)) assert.ok(!text.includes(secret), `decision leaks a presented key: ${text}`);
  }
}

interface Case {
  readonly name: string;
  readonly config?: Partial<ApiKeyConfig>;
  readonly headers?: Record<string, string | string[] | undefined>;
  readonly query?: string;
  readonly now?: number;
  /** 'allow' or the expected denial code. */
  readonly expect: 'allow' | Deny['code'];
  readonly evidence?: Record<string, unknown>;
  readonly headersOut?: Record<string, string>;
  readonly identity?: { consumer: string; credentialId: string; scopes: string[] };
}

const CHALLENGE_DEFAULT = 'Bearer realm="pinpoint", ApiKey realm="pinpoint", in="header", name="x-api-key"';
const CHALLENGE_HEADER_ONLY = 'ApiKey realm="pinpoint", in="header", name="x-api-key"';

const CASES: readonly Case[] = [
  // Accepted places.
  {
    name: 'key in the accepted header',
    headers: { 'x-api-key': KEYS.read },
    expect: 'allow',
    evidence: { key_id: 'k_read', consumer: 'reader', found_in: 'header x-api-key' },
    identity: { consumer: 'reader', credentialId: 'k_read', scopes: ['orders:read'] },
  },
  {
    name: 'key as a bearer token',
    headers: { authorization: `Bearer ${KEYS.read}` },
    expect: 'allow',
    evidence: { key_id: 'k_read', consumer: 'reader', found_in: 'Authorization: Bearer' },
    identity: { consumer: 'reader', credentialId: 'k_read', scopes: ['orders:read'] },
  },
  {
    name: 'bearer scheme is case-insensitive (RFC 9110 §11.1)',
    headers: { authorization: `bearer ${KEYS.read}` },
    expect: 'allow',
    identity: { consumer: 'reader', credentialId: 'k_read', scopes: ['orders:read'] },
  },
  {
    name: 'key in an accepted query parameter',
    config: { in: [QUERY] },
    query: `x=1&api_key=${KEYS.read}`,
    expect: 'allow',
    evidence: { key_id: 'k_read', consumer: 'reader', found_in: 'query parameter api_key' },
    identity: { consumer: 'reader', credentialId: 'k_read', scopes: ['orders:read'] },
  },
  {
    name: 'key from key_env, with every required scope',
    config: { required_scopes: ['orders:write'] },
    headers: { 'x-api-key': KEYS.write },
    expect: 'allow',
    identity: { consumer: 'writer', credentialId: 'k_write', scopes: ['orders:read', 'orders:write'] },
  },
  {
    name: 'key that expires later is accepted',
    headers: { 'x-api-key': KEYS.future },
    expect: 'allow',
    identity: { consumer: 'reader', credentialId: 'k_future', scopes: ['orders:read'] },
  },
  {
    name: 'first accepted place wins when several carry a key',
    headers: { 'x-api-key': KEYS.read, authorization: `Bearer ${KEYS.write}` },
    expect: 'allow',
    identity: { consumer: 'reader', credentialId: 'k_read', scopes: ['orders:read'] },
  },

  // Missing.
  { name: 'no key at all', expect: 'AUTH_KEY_MISSING', evidence: { accepted: 'header x-api-key or Authorization: Bearer' }, headersOut: { 'www-authenticate': CHALLENGE_DEFAULT } },
  { name: 'empty accepted header counts as missing', headers: { 'x-api-key': '' }, expect: 'AUTH_KEY_MISSING' },
  {
    name: 'Basic credentials are not taken for a misplaced key',
    headers: { authorization: 'Basic dXNlcjpwYXNz' },
    expect: 'AUTH_KEY_MISSING',
    config: { in: [HEADER] },
    headersOut: { 'www-authenticate': CHALLENGE_HEADER_ONLY },
  },
  {
    name: 'query-only policy: challenge names the query parameter',
    config: { in: [QUERY] },
    expect: 'AUTH_KEY_MISSING',
    evidence: { accepted: 'query parameter api_key' },
    headersOut: { 'www-authenticate': 'ApiKey realm="pinpoint", in="query", name="api_key"' },
  },
  {
    name: 'custom realm in the challenge',
    config: { in: [BEARER], realm: 'orders' },
    expect: 'AUTH_KEY_MISSING',
    headersOut: { 'www-authenticate': 'Bearer realm="orders"' },
  },

  // Wrong place.
  {
    name: 'query parameter when only the header is accepted',
    config: { in: [HEADER] },
    query: `api_key=${KEYS.read}`,
    expect: 'AUTH_KEY_WRONG_PLACE',
    evidence: { found_in: 'query parameter api_key', accepted: 'header x-api-key', found_key_id: 'k_read' },
    headersOut: { 'www-authenticate': CHALLENGE_HEADER_ONLY },
  },
  {
    name: 'Authorization without the Bearer scheme',
    headers: { authorization: KEYS.read },
    expect: 'AUTH_KEY_WRONG_PLACE',
    evidence: { found_in: 'Authorization header without the Bearer scheme', found_key_id: 'k_read' },
    headersOut: { 'www-authenticate': CHALLENGE_DEFAULT },
  },
  {
    name: 'Authorization with another scheme',
    headers: { authorization: `Token ${KEYS.read}` },
    expect: 'AUTH_KEY_WRONG_PLACE',
    evidence: { found_in: 'Authorization: Token', found_key_id: 'k_read' },
  },
  {
    name: 'Bearer when only the header is accepted',
    config: { in: [HEADER] },
    headers: { authorization: `Bearer ${KEYS.read}` },
    expect: 'AUTH_KEY_WRONG_PLACE',
    evidence: { found_in: 'Authorization: Bearer', accepted: 'header x-api-key', found_key_id: 'k_read' },
    headersOut: { 'www-authenticate': CHALLENGE_HEADER_ONLY },
  },
  {
    name: 'x-api-key when only Bearer is accepted',
    config: { in: [BEARER] },
    headers: { 'x-api-key': KEYS.write },
    expect: 'AUTH_KEY_WRONG_PLACE',
    evidence: { found_in: 'header x-api-key', accepted: 'Authorization: Bearer', found_key_id: 'k_write' },
    headersOut: { 'www-authenticate': 'Bearer realm="pinpoint"' },
  },
  {
    name: 'a common header other than the accepted one',
    config: { in: [HEADER] },
    headers: { 'x-auth-token': KEYS.read },
    expect: 'AUTH_KEY_WRONG_PLACE',
    evidence: { found_in: 'header x-auth-token', found_key_id: 'k_read' },
  },
  {
    name: 'a value in the wrong place that is not a key: found_key_id null',
    config: { in: [HEADER] },
    query: `token=${KEYS.unknown}`,
    expect: 'AUTH_KEY_WRONG_PLACE',
    evidence: { found_in: 'query parameter token', found_key_id: null },
  },

  // Key problems.
  {
    name: 'unknown key',
    headers: { 'x-api-key': KEYS.unknown },
    expect: 'AUTH_KEY_INVALID',
    evidence: { found_in: 'header x-api-key', key_length: KEYS.unknown.length },
    headersOut: { 'www-authenticate': 'Bearer realm="pinpoint", error="invalid_token", ApiKey realm="pinpoint", in="header", name="x-api-key"' },
  },
  {
    name: 'unknown bearer token',
    headers: { authorization: `Bearer ${KEYS.unknown}` },
    expect: 'AUTH_KEY_INVALID',
    evidence: { found_in: 'Authorization: Bearer' },
  },
  {
    name: 'revoked key',
    headers: { 'x-api-key': KEYS.revoked },
    expect: 'AUTH_KEY_REVOKED',
    evidence: { key_id: 'k_revoked', consumer: 'reader' },
    headersOut: { 'www-authenticate': 'Bearer realm="pinpoint", error="invalid_token", ApiKey realm="pinpoint", in="header", name="x-api-key"' },
  },
  {
    name: 'expired key',
    headers: { 'x-api-key': KEYS.expired },
    expect: 'AUTH_KEY_EXPIRED',
    evidence: { key_id: 'k_expired', consumer: 'reader', expired_at: '2026-05-01T00:00:00.000Z', expired_seconds_ago: (NOW - Date.parse('2026-05-01T00:00:00Z')) / 1000 },
  },
  {
    name: 'key expires exactly now',
    headers: { 'x-api-key': KEYS.future },
    now: Date.parse('2026-07-01T00:00:00Z'),
    expect: 'AUTH_KEY_EXPIRED',
    evidence: { key_id: 'k_future', expired_at: '2026-07-01T00:00:00.000Z', expired_seconds_ago: 0 },
  },
  {
    name: 'key lacking a required scope',
    config: { required_scopes: ['orders:write'] },
    headers: { 'x-api-key': KEYS.read },
    expect: 'AUTH_KEY_SCOPE_MISSING',
    evidence: { key_id: 'k_read', consumer: 'reader', missing_scopes: ['orders:write'], required_scopes: ['orders:write'], key_scopes: ['orders:read'] },
    headersOut: {
      'www-authenticate':
        'Bearer realm="pinpoint", error="insufficient_scope", scope="orders:write", ApiKey realm="pinpoint", in="header", name="x-api-key"',
    },
    identity: { consumer: 'reader', credentialId: 'k_read', scopes: ['orders:read'] },
  },
  {
    name: 'only the missing scopes are listed',
    config: { required_scopes: ['orders:read', 'orders:admin', 'orders:write'] },
    headers: { authorization: `Bearer ${KEYS.write}` },
    expect: 'AUTH_KEY_SCOPE_MISSING',
    evidence: { key_id: 'k_write', missing_scopes: ['orders:admin'], required_scopes: ['orders:read', 'orders:admin', 'orders:write'] },
    identity: { consumer: 'writer', credentialId: 'k_write', scopes: ['orders:read', 'orders:write'] },
  },
];

void describe('api-key decide', () => {
  for (const c of CASES) {
    void test(c.name, () => {
      const p = compile(c.config);
      const f = facts(c.headers, c.query, c.now);
      const d = decide(p, f);
      if (c.expect === 'allow') {
        assert.equal(d.outcome, 'allow', `expected allow, got ${JSON.stringify(d)}`);
      } else {
        const deny = asDeny(d);
        assert.equal(deny.code, c.expect);
      }
      if (c.evidence !== undefined) {
        const ev = d.outcome === 'skip' ? undefined : d.evidence;
        assert.ok(ev !== undefined, 'decision has evidence');
        for (const [k, v] of Object.entries(c.evidence)) assert.deepEqual(ev[k], v, `evidence.${k}`);
      }
      if (c.headersOut !== undefined) {
        const deny = asDeny(d);
        assert.deepEqual(deny.headers, c.headersOut);
      }
      if (c.identity !== undefined) {
        assert.ok(d.outcome !== 'skip');
        const id = d.identity;
        assert.ok(id !== undefined, 'identity is set');
        assert.equal(id.consumer, c.identity.consumer);
        assert.equal(id.credentialId, c.identity.credentialId);
        assert.equal(id.credentialType, 'api-key');
        assert.deepEqual([...id.scopes].sort(), [...c.identity.scopes].sort());
      } else if (d.outcome === 'deny') {
        assert.equal(d.identity, undefined, 'an unidentified caller gets no identity');
      }
      assertNoSecret(d, f);
    });
  }
});

void describe('api-key contract', () => {
  void test('every 401 denial carries WWW-Authenticate (RFC 9110 §11.6.1)', () => {
    for (const c of CASES) {
      const d = decide(compile(c.config), facts(c.headers, c.query, c.now));
      if (d.outcome !== 'deny') continue;
      if (CATALOG[d.code].status === 401) assert.ok(d.headers?.['www-authenticate'] !== undefined, `${c.name}: no www-authenticate`);
    }
  });

  void test('AUTH_KEY_SCOPE_MISSING is a 403: the caller is known', () => {
    assert.equal(CATALOG.AUTH_KEY_SCOPE_MISSING.status, 403);
  });

  void test('the compiled policy carries id, type and mode', () => {
    const p = compile({}, 'monitor');
    assert.equal(p.id, 'test-key');
    assert.equal(p.type, 'api-key');
    assert.equal(p.mode, 'monitor');
    assert.equal(p.bodyLimit, undefined);
  });

  void test('compile copies its config: later edits to the input do not change decisions', () => {
    const config: ApiKeyConfig = { in: [HEADER], required_scopes: ['orders:write'], realm: 'pinpoint' };
    const p = apiKey.compile(config, { id: 'k', mode: 'enforce' }, { consumers: CONSUMERS, apiKeys: built.index, env: {}, path: 'policies.k.config', baseDir: process.cwd() });
    config.in.push(BEARER);
    config.required_scopes.length = 0;
    const d = asDeny(decide(p, facts({ 'x-api-key': KEYS.read })));
    assert.equal(d.code, 'AUTH_KEY_SCOPE_MISSING');
    const wrong = asDeny(decide(p, facts({ authorization: `Bearer ${KEYS.read}` })));
    assert.equal(wrong.code, 'AUTH_KEY_WRONG_PLACE');
  });

  void test('multi-valued header: the first value is read', () => {
    const d = decide(compile(), facts({ 'x-api-key': [KEYS.read, KEYS.unknown] }));
    assert.equal(d.outcome, 'allow');
  });

  void test('evidence never contains the presented key, whatever the outcome', () => {
    const places: readonly { headers?: Record<string, string>; query?: string }[] = [
      { headers: { 'x-api-key': '' } },
      { headers: { authorization: '' } },
      { query: 'api_key=' },
    ];
    for (const secret of Object.values(KEYS)) {
      for (const config of [{}, { in: [HEADER] }, { in: [BEARER] }, { in: [QUERY] }, { required_scopes: ['nope'] }]) {
        for (const shape of places) {
          const headers = shape.headers === undefined ? {} : Object.fromEntries(Object.keys(shape.headers).map((k) => [k, k === 'authorization' ? `Bearer ${secret}` : secret]));
          const query = shape.query === undefined ? '' : `api_key=${secret}`;
          const f = facts(headers, query);
          assertNoSecret(decide(compile(config), f), f);
        }
        const raw = facts({ authorization: secret });
        assertNoSecret(decide(compile(config), raw), raw);
      }
    }
  });
});
