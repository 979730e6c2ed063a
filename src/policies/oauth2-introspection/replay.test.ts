/**
 * `oauth2-introspection` in a replay (`pinpoint impact`): the token was not recorded, what the
 * authorization server said about it was. It is interpreted again under this config at the logged
 * time; the server is never asked.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { KeyIndex } from '../../credentials/api-keys.ts';
import { context, decideSync } from '../../pipeline/testing.ts';
import type { CompiledPolicy, Decision, ReplayContext, RequestFacts } from '../../pipeline/types.ts';
import { compileIntrospection } from './index.ts';
import type { IntrospectionConfig } from './schema.ts';

const NOW = Date.parse('2020-03-01T12:00:00Z');
let asked = 0;

function compile(over: Partial<IntrospectionConfig> = {}): CompiledPolicy {
  const config: IntrospectionConfig = {
    endpoint: 'https://auth.example/introspect',
    client_id: 'pinpoint',
    client_secret_env: 'SECRET',
    allow_plain_http: false,
    timeout_ms: 1000,
    cache_ttl_seconds: 60,
    negative_cache_ttl_seconds: 5,
    cache_max_entries: 100,
    consumer_claim: 'client_id',
    scope_claim: 'scope',
    role_claims: ['realm_access.roles'],
    in: [{ from: 'bearer' }],
    realm: 'pinpoint',
    ...over,
  };
  return compileIntrospection(config, { id: 'intro', mode: 'enforce' }, { consumers: [{ id: 'shop', groups: ['g'] }], apiKeys: KeyIndex.build([], {}).index, env: { SECRET: 's' }, path: 'policies.intro.config', baseDir: '.' }, {
    introspector: {
      introspect: () => {
        asked++;
        return Promise.reject(new Error('never called in a replay'));
      },
    },
  });
}

const ACTIVE = { client_id: 'shop', sub: 'u1', scope: 'orders:read', exp: NOW / 1000 + 600, realm_access: { roles: ['buyer'] } };

function replay(claims: Record<string, unknown> | string, credentialId = 'sha256:0123456789ab'): ReplayContext {
  const stop = (reason: string): never => {
    throw new Error(`unreplayable: ${reason}`);
  };
  return {
    identity: { consumer: 'shop', credentialType: 'oauth2-introspection', credentialId },
    claims: null,
    apiKey: () => stop('not a key'),
    basicCredentials: () => undefined,
    basicPasswordCorrect: () => stop('not basic'),
    verifiedToken: () => (typeof claims === 'string' ? stop(claims) : { claims, alg: null, kid: null }),
    unreplayable: stop,
  };
}

function decide(p: CompiledPolicy, r: ReplayContext, headers: Record<string, string> = { authorization: 'Bearer [redacted#1]' }): Decision {
  const facts: RequestFacts = { method: 'GET', path: '/', rawQuery: '', host: 'h', headers, clientIp: '192.0.2.1', clientIpSource: 'socket', params: {}, contentLength: undefined, now: NOW };
  return decideSync(p, context({ facts, dryRun: true, replay: r }));
}

const code = (d: Decision): string => (d.outcome === 'deny' ? d.code : d.outcome);

void describe('oauth2-introspection replay', () => {
  void test('the recorded answer is interpreted under this config, synchronously, without asking the server', () => {
    const d = decide(compile(), replay(ACTIVE));
    assert.equal(code(d), 'allow');
    if (d.outcome === 'allow') {
      assert.equal(d.identity?.consumer, 'shop');
      assert.deepEqual([...(d.identity?.scopes ?? [])], ['orders:read']);
      assert.deepEqual([...(d.identity?.roles ?? [])], ['buyer']);
      // The logged token reference is kept as the credential id.
      assert.equal(d.identity?.credentialId, 'sha256:0123456789ab');
    }
    assert.equal(code(decide(compile({ consumer_claim: 'azp' }), replay(ACTIVE))), 'AUTH_INTROSPECTION_NO_CONSUMER');
    assert.equal(code(decide(compile(), replay({ ...ACTIVE, exp: NOW / 1000 - 1 }))), 'AUTH_INTROSPECTION_TOKEN_EXPIRED');
    assert.equal(asked, 0);
  });

  void test('no token is decided as live; a token the record cannot answer for stops the decision', () => {
    assert.equal(code(decide(compile(), replay('never asked'), {})), 'AUTH_INTROSPECTION_TOKEN_MISSING');
    assert.throws(() => decide(compile(), replay('endpoint changed')), /unreplayable: endpoint changed/);
    assert.equal(asked, 0);
  });
});
