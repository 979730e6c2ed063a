/**
 * `api-key` in a replay (`pinpoint impact`): the key was not recorded, so the presented value is a
 * placeholder the replay context resolves; the rest of the decision is the live one, at the time
 * the request was logged.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { hashKey, KeyIndex, type KeyRecord } from '../../credentials/api-keys.ts';
import { context, decideSync } from '../../pipeline/testing.ts';
import type { ConsumerSpec, ReplayContext, RequestFacts } from '../../pipeline/types.ts';
import { apiKey } from './index.ts';

const NOW = Date.parse('2020-03-01T12:00:00Z');
const CONSUMERS: readonly ConsumerSpec[] = [
  {
    id: 'alice',
    credentials: {
      api_keys: [
        { id: 'k_read', hash: hashKey('pp_a_read_000000000000'), scopes: ['orders:read'] },
        { id: 'k_plain', hash: hashKey('pp_a_plain_00000000000'), scopes: [] },
        { id: 'k_revoked', hash: hashKey('pp_a_revoked_000000000'), scopes: ['orders:read'], revoked: true },
        { id: 'k_exp', hash: hashKey('pp_a_exp_0000000000000'), scopes: ['orders:read'], expires_at: '2020-03-01T11:59:59Z' },
        { id: 'k_later', hash: hashKey('pp_a_later_00000000000'), scopes: ['orders:read'], expires_at: '2020-03-01T12:00:01Z' },
      ],
    },
  },
];
const KEYS = KeyIndex.build(CONSUMERS, {}).index;

const policy = apiKey.compile(
  { in: [{ from: 'header', name: 'x-api-key' }], required_scopes: ['orders:read'], realm: 'pinpoint' },
  { id: 'key', mode: 'enforce' },
  { consumers: CONSUMERS, apiKeys: KEYS, env: {}, path: 'policies.key.config', baseDir: '.' },
);

/** A replay context whose placeholders name key ids (as the call log's do). */
function replay(calls: string[]): ReplayContext {
  const stop = (reason: string): never => {
    throw new Error(`unreplayable: ${reason}`);
  };
  return {
    identity: null,
    claims: null,
    apiKey: (presented, keys): KeyRecord | undefined => {
      calls.push(presented);
      const m = /key=([^\]]+)\]$/.exec(presented);
      if (m === null) return stop('no key id');
      return keys.byId(m[1] as string);
    },
    basicCredentials: () => undefined,
    basicPasswordCorrect: () => stop('not basic'),
    verifiedToken: () => stop('not a token'),
    unreplayable: stop,
  };
}

function facts(headers: Record<string, string>, rawQuery = ''): RequestFacts {
  return { method: 'GET', path: '/orders', rawQuery, host: 'h', headers, clientIp: '192.0.2.1', clientIpSource: 'socket', params: {}, contentLength: undefined, now: NOW };
}

function decide(headers: Record<string, string>, rawQuery = '', calls: string[] = []) {
  return decideSync(policy, context({ facts: facts(headers, rawQuery), dryRun: true, replay: replay(calls) }));
}

void describe('api-key replay', () => {
  void test('the recorded key id decides: allowed, revoked, expired at the logged time, scope missing', () => {
    const ok = decide({ 'x-api-key': '[redacted#1 key=k_read]' });
    assert.equal(ok.outcome, 'allow');
    assert.equal(ok.outcome === 'allow' ? ok.identity?.credentialId : null, 'k_read');
    const code = (id: string): string | undefined => {
      const d = decide({ 'x-api-key': `[redacted#1 key=${id}]` });
      return d.outcome === 'deny' ? d.code : d.outcome;
    };
    assert.equal(code('k_revoked'), 'AUTH_KEY_REVOKED');
    assert.equal(code('k_exp'), 'AUTH_KEY_EXPIRED');
    // Expired a second after the request came: judged then, it was valid.
    assert.equal(code('k_later'), 'allow');
    assert.equal(code('k_plain'), 'AUTH_KEY_SCOPE_MISSING');
    assert.equal(code('k_gone'), 'AUTH_KEY_INVALID');
  });

  void test('no key anywhere is decided without the replay context; a key elsewhere is named by its recorded id', () => {
    const calls: string[] = [];
    const missing = decide({}, '', calls);
    assert.equal(missing.outcome === 'deny' ? missing.code : missing.outcome, 'AUTH_KEY_MISSING');
    assert.deepEqual(calls, []);
    const elsewhere = decide({}, `api_key=${encodeURIComponent('[redacted#1 key=k_read]')}`, calls);
    assert.equal(elsewhere.outcome === 'deny' ? elsewhere.code : elsewhere.outcome, 'AUTH_KEY_WRONG_PLACE');
    assert.equal(elsewhere.outcome === 'deny' ? elsewhere.evidence.found_key_id : null, 'k_read');
  });

  void test('what the replay context cannot resolve stops the decision instead of being guessed', () => {
    assert.throws(() => decide({ 'x-api-key': '[redacted#1]' }), /unreplayable: no key id/);
  });

  void test('live traffic never consults a replay context', () => {
    const d = decideSync(policy, context({ facts: facts({ 'x-api-key': 'pp_a_read_000000000000' }) }));
    assert.equal(d.outcome, 'allow');
  });
});
