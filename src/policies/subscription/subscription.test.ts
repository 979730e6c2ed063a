/**
 * `subscription`, table-driven: config validated against the schema (defaults filled) and compiled
 * by the module against a set of consumers, then decide() for every subscription state, expiry on
 * either side of `facts.now`, and callers with no subscription or no identity. Assertions are on
 * codes, evidence fields and headers; every remediation must come out fully filled in.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { validate } from '../../config/validate.ts';
import { KeyIndex } from '../../credentials/api-keys.ts';
import { CATALOG, renderTemplate } from '../../errors/catalog.ts';
import { context, decideSync, expectConfigIssues } from '../../pipeline/testing.ts';
import type { CompiledPolicy, ConsumerSpec, Deny, Identity, RequestFacts } from '../../pipeline/types.ts';
import { subscription } from './index.ts';
import { SubscriptionSchema, type SubscriptionPolicyConfig } from './schema.ts';

const PATH = 'policies.orders-subscribers.config';
const NOW = Date.parse('2025-06-01T12:00:00Z');

const CONSUMERS: readonly ConsumerSpec[] = [
  { id: 'active', subscriptions: [{ api: 'orders', status: 'active', plan: 'pro' }] },
  { id: 'active-until-later', subscriptions: [{ api: 'orders', status: 'active', expires_at: '2025-06-01T12:00:01Z' }] },
  { id: 'active-ended', subscriptions: [{ api: 'orders', status: 'active', plan: 'free', expires_at: '2025-06-01T11:00:00Z' }] },
  { id: 'ends-now', subscriptions: [{ api: 'orders', status: 'active', expires_at: '2025-06-01T12:00:00Z' }] },
  { id: 'pending', subscriptions: [{ api: 'orders', status: 'pending', plan: 'pro' }] },
  { id: 'pending-ended', subscriptions: [{ api: 'orders', status: 'pending', expires_at: '2025-05-01T00:00:00Z' }] },
  { id: 'rejected', subscriptions: [{ api: 'orders', status: 'rejected' }] },
  { id: 'rejected-ended', subscriptions: [{ api: 'orders', status: 'rejected', expires_at: '2025-05-01T00:00:00Z' }] },
  { id: 'expired', subscriptions: [{ api: 'orders', status: 'expired', plan: 'pro' }] },
  { id: 'suspended', subscriptions: [{ api: 'orders', status: 'suspended', expires_at: '2026-01-01T00:00:00+02:00' }] },
  { id: 'other-api', subscriptions: [{ api: 'orders-v1', status: 'active' }, { api: 'billing', status: 'pending' }] },
  { id: 'nothing' },
];

const CTX = { consumers: CONSUMERS, apiKeys: KeyIndex.build([], {}).index, env: {}, path: PATH, baseDir: '.' };

function compile(raw: Record<string, unknown>, consumers: readonly ConsumerSpec[] = CONSUMERS): CompiledPolicy {
  const cfg = structuredClone(raw);
  assert.deepEqual(validate(SubscriptionSchema, cfg, PATH), [], 'the test config is schema-valid');
  return subscription.compile(cfg as SubscriptionPolicyConfig, { id: 'orders-subscribers', mode: 'enforce' }, { ...CTX, consumers });
}

const who = (consumer: string): Identity => Object.freeze({ consumer, credentialId: `k_${consumer}`, credentialType: 'api-key', scopes: new Set<string>() });

const FACTS: RequestFacts = {
  method: 'POST',
  path: '/orders',
  rawQuery: '',
  host: 'api.example.com',
  headers: {},
  clientIp: '198.51.100.7',
  clientIpSource: 'socket',
  params: {},
  contentLength: undefined,
  now: NOW,
};

interface Case {
  readonly name: string;
  readonly config?: Record<string, unknown>;
  /** Consumer id of the caller; null for no identity. */
  readonly caller: string | null;
  readonly now?: number;
  readonly expect: 'allow' | Deny['code'];
  readonly evidence?: Record<string, unknown>;
  readonly rule?: string;
}

const ORDERS = { api: 'orders' };

const CASES: readonly Case[] = [
  { name: 'active', caller: 'active', expect: 'allow', rule: 'subscribed to orders' },
  { name: 'active, ends later', caller: 'active-until-later', expect: 'allow' },
  { name: 'active, ends one millisecond later', caller: 'ends-now', now: NOW - 1, expect: 'allow' },
  {
    name: 'no subscription at all',
    caller: 'nothing',
    expect: 'SUBSCRIPTION_MISSING',
    evidence: { consumer: 'nothing', api: 'orders', status: null, expires_at: null, plan: null, subscribed_apis: [], known_consumer: true, route: 'orders-create' },
  },
  {
    name: 'subscribed to other APIs only: they are named',
    caller: 'other-api',
    expect: 'SUBSCRIPTION_MISSING',
    evidence: { subscribed_apis: ['billing', 'orders-v1'], known_consumer: true },
  },
  {
    name: 'a caller no consumer entry describes (e.g. a token subject)',
    caller: 'stranger',
    expect: 'SUBSCRIPTION_MISSING',
    evidence: { consumer: 'stranger', subscribed_apis: [], known_consumer: false },
  },
  { name: 'api ids match exactly', config: { api: 'Orders' }, caller: 'active', expect: 'SUBSCRIPTION_MISSING' },
  {
    name: 'pending',
    caller: 'pending',
    expect: 'SUBSCRIPTION_PENDING',
    evidence: { consumer: 'pending', api: 'orders', status: 'pending', expires_at: null, plan: 'pro' },
  },
  { name: 'pending with allow_pending', config: { api: 'orders', allow_pending: true }, caller: 'pending', expect: 'allow', rule: 'pending subscription to orders (allow_pending)' },
  {
    name: 'pending whose end has passed: expired, even with allow_pending',
    config: { api: 'orders', allow_pending: true },
    caller: 'pending-ended',
    expect: 'SUBSCRIPTION_EXPIRED',
    evidence: { status: 'pending', expired_by: 'expires_at', expires_at: '2025-05-01T00:00:00.000Z' },
  },
  { name: 'rejected', caller: 'rejected', expect: 'SUBSCRIPTION_REJECTED', evidence: { status: 'rejected', expires_at: null, plan: null } },
  { name: 'rejected and past its end: rejected (renewing would not help)', caller: 'rejected-ended', expect: 'SUBSCRIPTION_REJECTED' },
  {
    name: 'suspended (end time normalised to UTC in evidence)',
    caller: 'suspended',
    expect: 'SUBSCRIPTION_SUSPENDED',
    evidence: { status: 'suspended', expires_at: '2025-12-31T22:00:00.000Z' },
  },
  {
    name: 'expired by status',
    caller: 'expired',
    expect: 'SUBSCRIPTION_EXPIRED',
    evidence: { status: 'expired', expired_by: 'status', expired: 'its status is expired', expired_seconds_ago: null, expires_at: null, plan: 'pro' },
  },
  {
    name: 'active but past expires_at',
    caller: 'active-ended',
    expect: 'SUBSCRIPTION_EXPIRED',
    evidence: { status: 'active', expired_by: 'expires_at', expires_at: '2025-06-01T11:00:00.000Z', expired_seconds_ago: 3600, expired: 'at 2025-06-01T11:00:00.000Z, 3600 s ago', plan: 'free' },
  },
  { name: 'expires_at equal to now counts as ended', caller: 'ends-now', expect: 'SUBSCRIPTION_EXPIRED', evidence: { expired_seconds_ago: 0 } },
  {
    name: 'no identity: 401 with the configured challenge',
    config: { api: 'orders', challenge: 'ApiKey realm="orders"' },
    caller: null,
    expect: 'AUTH_SUBSCRIPTION_UNAUTHENTICATED',
    evidence: { route: 'orders-create', method: 'POST', api: 'orders' },
  },
];

void describe('subscription decide', () => {
  for (const c of CASES) {
    void test(c.name, () => {
      const p = compile(c.config ?? ORDERS);
      const d = decideSync(p, context({ facts: { ...FACTS, now: c.now ?? NOW }, identity: c.caller === null ? undefined : who(c.caller), routeId: 'orders-create' }));
      if (c.expect === 'allow') assert.equal(d.outcome, 'allow', JSON.stringify(d));
      else {
        assert.equal(d.outcome, 'deny', JSON.stringify(d));
        assert.equal(d.code, c.expect);
        if (CATALOG[d.code].status === 401) assert.deepEqual(d.headers, { 'www-authenticate': (c.config?.challenge as string | undefined) ?? 'Bearer realm="pinpoint"' });
        else assert.equal(d.headers, undefined);
        // No denial leaves the caller guessing: every placeholder of the remediation is filled.
        const text = renderTemplate(CATALOG[d.code].remediation, d.evidence);
        assert.ok(!/\{[a-z_]+\}/.test(text), text);
      }
      if (c.rule !== undefined) assert.equal(d.rule, c.rule);
      if (c.evidence !== undefined) {
        assert.ok(d.evidence !== undefined, 'has evidence');
        for (const [k, v] of Object.entries(c.evidence)) assert.deepEqual(d.evidence[k], v, `evidence.${k}`);
      }
    });
  }

  void test('every denial of an identified caller carries consumer, api, status, expires_at and plan', () => {
    const p = compile(ORDERS);
    for (const caller of ['nothing', 'pending', 'rejected', 'expired', 'active-ended', 'suspended']) {
      const d = decideSync(p, context({ facts: FACTS, identity: who(caller) }));
      assert.equal(d.outcome, 'deny', caller);
      for (const k of ['consumer', 'api', 'status', 'expires_at', 'plan']) assert.ok(Object.hasOwn(d.evidence, k), `${caller}: evidence.${k}`);
    }
  });

  void test('status, layer and retryable of each code', () => {
    const table = [
      ['AUTH_SUBSCRIPTION_UNAUTHENTICATED', 401],
      ['SUBSCRIPTION_MISSING', 403],
      ['SUBSCRIPTION_PENDING', 403],
      ['SUBSCRIPTION_REJECTED', 403],
      ['SUBSCRIPTION_EXPIRED', 403],
      ['SUBSCRIPTION_SUSPENDED', 403],
    ] as const;
    for (const [code, status] of table) assert.deepEqual([CATALOG[code].status, CATALOG[code].layer, CATALOG[code].retryable], [status, 'gateway', false], code);
  });
});

void describe('subscription compile', () => {
  void test('schema defaults: allow_pending false, Bearer challenge', () => {
    const cfg: Record<string, unknown> = { api: 'orders' };
    assert.deepEqual(validate(SubscriptionSchema, cfg, PATH), []);
    assert.deepEqual(cfg, { api: 'orders', allow_pending: false, challenge: 'Bearer realm="pinpoint"' });
  });

  void test('compiled policy: id, type, mode; no body needed', () => {
    const p = subscription.compile({ api: 'orders', allow_pending: false, challenge: 'x' }, { id: 's', mode: 'monitor' }, CTX);
    assert.deepEqual([p.id, p.type, p.mode, p.needsBody, p.bodyLimit], ['s', 'subscription', 'monitor', undefined, undefined]);
  });

  void test('an api id no consumer has subscribed to compiles (subscriptions come later)', () => {
    const d = decideSync(compile({ api: 'brand-new' }), context({ facts: FACTS, identity: who('active') }));
    assert.equal(d.outcome === 'deny' && d.code, 'SUBSCRIPTION_MISSING');
  });

  const SCHEMA_ERRORS: readonly { name: string; config: Record<string, unknown>; path: string; message: RegExp }[] = [
    { name: 'api missing', config: {}, path: PATH, message: /required property 'api'/ },
    { name: 'api not an id', config: { api: 'orders v2' }, path: `${PATH}.api`, message: /must match pattern/ },
    { name: 'allow_pending not a boolean', config: { api: 'orders', allow_pending: 'yes' }, path: `${PATH}.allow_pending`, message: /must be boolean/ },
    { name: 'unknown field, with a hint', config: { api: 'orders', allow_pendings: true }, path: PATH, message: /unknown field "allow_pendings" \(did you mean "allow_pending"\?\)/ },
  ];
  for (const c of SCHEMA_ERRORS) {
    void test(`schema rejects: ${c.name}`, () => {
      const issues = validate(SubscriptionSchema, structuredClone(c.config), PATH);
      assert.ok(issues.some((i) => i.path === c.path && c.message.test(i.message)), JSON.stringify(issues));
    });
  }

  void test('two subscriptions of one consumer to the same API are refused, naming the second', () => {
    const consumers: ConsumerSpec[] = [
      { id: 'a', subscriptions: [{ api: 'billing', status: 'active' }] },
      { id: 'b', subscriptions: [{ api: 'orders', status: 'active' }, { api: 'billing', status: 'active' }, { api: 'orders', status: 'rejected' }] },
    ];
    expectConfigIssues(() => subscription.compile({ api: 'orders', allow_pending: false, challenge: 'x' }, { id: 's', mode: 'enforce' }, { ...CTX, consumers }), [
      { path: 'consumers[1].subscriptions[2].api', message: /b already has a subscription to API orders \(subscriptions\[0\]\)/ },
    ]);
    // Duplicates for another API are that API's policy's business.
    assert.doesNotThrow(() => subscription.compile({ api: 'billing', allow_pending: false, challenge: 'x' }, { id: 's', mode: 'enforce' }, { ...CTX, consumers }));
  });

  void test('an expires_at the schema accepts but Date cannot represent fails closed (config error)', () => {
    const consumers: ConsumerSpec[] = [{ id: 'a', subscriptions: [{ api: 'orders', status: 'active', expires_at: '2016-12-31T23:59:60Z' }] }];
    expectConfigIssues(() => subscription.compile({ api: 'orders', allow_pending: false, challenge: 'x' }, { id: 's', mode: 'enforce' }, { ...CTX, consumers }), [
      { path: 'consumers[0].subscriptions[0].expires_at', message: /not a time this gateway can represent/ },
    ]);
  });
});
