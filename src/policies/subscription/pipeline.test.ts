/**
 * `subscription` and `tenant` with real neighbours through the real planner and evaluator
 * (src/pipeline/plan.ts, run.ts): api-key identifies the caller, then subscription, tenant and rbac
 * decide in PIPELINE_ORDER whatever order they were attached in. A caller wrong on several counts
 * hears the broadest cause first; monitor mode traces the would-be denial and lets the request on.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { validate } from '../../config/validate.ts';
import { hashKey, KeyIndex } from '../../credentials/api-keys.ts';
import { plan } from '../../pipeline/plan.ts';
import { evaluateSync, type ConsumerPolicies } from '../../pipeline/run.ts';
import type { CompiledPolicy, ConsumerSpec, Mode, PolicyModule, RequestFacts } from '../../pipeline/types.ts';
import { apiKey } from '../api-key/index.ts';
import { rbac } from '../rbac/index.ts';
import { tenant } from '../tenant/index.ts';
import { subscription } from './index.ts';

const KEYS = { shop: 'pp_unit_shop_0123456789abcdef', rival: 'pp_unit_rival_fedcba9876543210', newbie: 'pp_unit_newbie_00112233445566' } as const;

const CONSUMERS: ConsumerSpec[] = [
  { id: 'shop', team: 'acme', subscriptions: [{ api: 'projects', status: 'active' }], credentials: { api_keys: [{ id: 'k_shop', hash: hashKey(KEYS.shop), scopes: ['projects:read'] }] } },
  { id: 'rival', team: 'globex', subscriptions: [{ api: 'projects', status: 'active' }], credentials: { api_keys: [{ id: 'k_rival', hash: hashKey(KEYS.rival), scopes: ['projects:write'] }] } },
  { id: 'newbie', team: 'globex', subscriptions: [{ api: 'projects', status: 'pending' }], credentials: { api_keys: [{ id: 'k_newbie', hash: hashKey(KEYS.newbie), scopes: [] }] } },
];

const keys = KeyIndex.build(CONSUMERS, {});
assert.deepEqual(keys.issues, []);

function make<S extends PolicyModule>(mod: S, id: string, raw: Record<string, unknown>, mode: Mode = 'enforce'): CompiledPolicy {
  const cfg = structuredClone(raw);
  const path = `policies.${id}.config`;
  assert.deepEqual(validate(mod.schema, cfg, path), [], `${id} config is schema-valid`);
  return mod.compile(cfg, { id, mode }, { consumers: CONSUMERS, apiKeys: keys.index, env: {}, path, baseDir: '.' });
}

function policies(modes: { subs?: Mode; team?: Mode } = {}): CompiledPolicy[] {
  // Attached deliberately out of order: the plan sorts them.
  return [
    make(rbac, 'writers', { rules: [{ methods: ['POST'], permission: 'projects:write' }], unmatched: 'allow' }),
    make(tenant, 'team', { tenant: { from: 'param', name: 'team' } }, modes.team),
    make(subscription, 'subs', { api: 'projects' }, modes.subs),
    make(apiKey, 'key', {}),
  ];
}

const NO_CONSUMER_POLICIES: ConsumerPolicies = { get: () => undefined };

function facts(key: string | undefined, team: string, method = 'POST'): RequestFacts {
  return {
    method,
    path: `/teams/${team}/projects`,
    rawQuery: '',
    host: 'api.example.com',
    headers: key === undefined ? {} : { 'x-api-key': key },
    clientIp: '198.51.100.7',
    clientIpSource: 'socket',
    params: { team },
    contentLength: undefined,
    now: Date.parse('2025-06-01T00:00:00Z'),
  };
}

void describe('subscription and tenant in the pipeline', () => {
  const planned = plan([], policies());

  void test('the plan runs authentication, then subscription, tenant, rbac', () => {
    assert.deepEqual(planned.map((p) => p.policy.id), ['key', 'subs', 'team', 'writers']);
  });

  void test('pending subscription, wrong tenant and no permission: the caller hears about the subscription', () => {
    const v = evaluateSync(planned, facts(KEYS.newbie, 'acme'), 'projects', NO_CONSUMER_POLICIES);
    assert.deepEqual([v.allowed, v.deny?.code, v.denyPolicy?.id, v.identity?.consumer], [false, 'SUBSCRIPTION_PENDING', 'subs', 'newbie']);
    assert.deepEqual(v.trace.map((t) => [t.policy, t.outcome]), [['key', 'allow'], ['subs', 'deny']]);
  });

  void test('subscribed, wrong tenant, no permission: the tenant, not the permission', () => {
    const v = evaluateSync(planned, facts(KEYS.shop, 'globex'), 'projects', NO_CONSUMER_POLICIES);
    assert.deepEqual([v.deny?.code, v.denyPolicy?.id], ['TENANT_MISMATCH', 'team']);
    assert.deepEqual(v.deny?.evidence.caller_tenant, 'acme');
  });

  void test('subscribed, own tenant, no permission: rbac answers', () => {
    const v = evaluateSync(planned, facts(KEYS.shop, 'acme'), 'projects', NO_CONSUMER_POLICIES);
    assert.deepEqual([v.deny?.code, v.denyPolicy?.id], ['RBAC_PERMISSION_MISSING', 'writers']);
  });

  void test('subscribed, own tenant, permitted: allowed, every policy traced', () => {
    const v = evaluateSync(planned, facts(KEYS.rival, 'globex'), 'projects', NO_CONSUMER_POLICIES);
    assert.equal(v.allowed, true);
    assert.deepEqual(v.trace.map((t) => [t.policy, t.outcome]), [['key', 'allow'], ['subs', 'allow'], ['team', 'allow'], ['writers', 'allow']]);
  });

  void test('no credential: authentication answers first, subscription never runs', () => {
    const v = evaluateSync(planned, facts(undefined, 'acme'), 'projects', NO_CONSUMER_POLICIES);
    assert.deepEqual([v.deny?.code, v.denyPolicy?.id], ['AUTH_KEY_MISSING', 'key']);
  });

  void test('without an authentication policy: 401 from subscription, naming the missing identity', () => {
    const v = evaluateSync(plan([], [make(subscription, 'subs', { api: 'projects' })]), facts(KEYS.shop, 'acme'), 'projects', NO_CONSUMER_POLICIES);
    assert.deepEqual([v.deny?.code, v.deny?.headers], ['AUTH_SUBSCRIPTION_UNAUTHENTICATED', { 'www-authenticate': 'Bearer realm="pinpoint"' }]);
  });

  void test('monitor mode: both would-be denials traced as monitor, the request goes on', () => {
    const v = evaluateSync(plan([], policies({ subs: 'monitor', team: 'monitor' })), facts(KEYS.newbie, 'acme', 'GET'), 'projects', NO_CONSUMER_POLICIES);
    assert.equal(v.allowed, true);
    assert.deepEqual(v.monitorDenied, ['subs', 'team']);
    assert.deepEqual(
      v.trace.map((t) => [t.policy, t.outcome, t.code]),
      [
        ['key', 'allow', undefined],
        ['subs', 'monitor', 'SUBSCRIPTION_PENDING'],
        ['team', 'monitor', 'TENANT_MISMATCH'],
        ['writers', 'allow', undefined],
      ],
    );
  });

  void test('a monitor-mode subscription before an enforcing tenant: both reported, the tenant denies', () => {
    const v = evaluateSync(plan([], policies({ subs: 'monitor' })), facts(KEYS.newbie, 'acme'), 'projects', NO_CONSUMER_POLICIES);
    assert.deepEqual([v.allowed, v.deny?.code, v.monitorDenied], [false, 'TENANT_MISMATCH', ['subs']]);
  });

  void test('attached to the consumer, subscription runs right after authentication', () => {
    const base = plan([], [make(apiKey, 'key', {}), make(rbac, 'writers', { rules: [{ methods: ['POST'], permission: 'projects:write' }] })]);
    const own = make(subscription, 'subs', { api: 'projects' });
    const v = evaluateSync(base, facts(KEYS.newbie, 'globex'), 'projects', { get: (c) => (c === 'newbie' ? [own] : undefined) });
    assert.deepEqual([v.deny?.code, v.trace.map((t) => t.policy)], ['SUBSCRIPTION_PENDING', ['key', 'subs']]);
  });
});
