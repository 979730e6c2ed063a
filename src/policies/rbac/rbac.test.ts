/**
 * `rbac` through the path the gateway takes: the config is validated against the policy schema
 * (ajv fills defaults), compiled by the module, then decide() runs. Table-driven; assertions are on
 * codes, evidence fields and headers.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { validate } from '../../config/validate.ts';
import { KeyIndex } from '../../credentials/api-keys.ts';
import { CATALOG } from '../../errors/catalog.ts';
import { context, decideSync } from '../../pipeline/testing.ts';
import { ConfigError, type CompiledPolicy, type Decision, type Deny, type Identity, type RequestFacts } from '../../pipeline/types.ts';
import { rbac } from './index.ts';
import { RbacSchema, type RbacConfig } from './schema.ts';

const PATH = 'policies.orders-rbac.config';
const CTX = { consumers: [], apiKeys: KeyIndex.build([], {}).index, env: {}, path: PATH, baseDir: '.' };

const BASE = {
  levels: ['read', 'write', 'admin'],
  rules: [
    { methods: ['GET'], permission: 'orders:read' },
    { methods: ['POST', 'PUT'], permission: 'orders:write' },
    { methods: ['DELETE'], permission: ['orders:admin', 'audit:write'] },
  ],
  roles: { writer: ['orders:write'], auditor: ['audit:write'], clerk: ['orders:read'] },
  grants: [
    { role: 'clerk', groups: ['shop-staff'] },
    { permission: 'orders:admin', consumers: ['ops-bot'] },
    { permission: 'audit:write', groups: ['auditors'] },
  ],
};

/** Validates like the config loader does (defaults filled), then compiles. */
function compile(raw: Record<string, unknown> = BASE): CompiledPolicy {
  const cfg = structuredClone(raw);
  const issues = validate(RbacSchema, cfg, PATH);
  assert.deepEqual(issues, [], 'the test config is schema-valid');
  return rbac.compile(cfg as RbacConfig, { id: 'orders-rbac', mode: 'enforce' }, CTX);
}

function identity(consumer: string, opts: { scopes?: string[]; roles?: string[]; groups?: string[] } = {}): Identity {
  return Object.freeze({
    consumer,
    credentialId: `cred-${consumer}`,
    credentialType: 'jwt',
    scopes: new Set(opts.scopes ?? []),
    roles: new Set(opts.roles ?? []),
    groups: new Set(opts.groups ?? []),
  });
}

const ID = {
  reader: identity('reader', { scopes: ['orders:read'] }),
  admin: identity('root', { scopes: ['orders:admin'] }),
  writer: identity('wendy', { roles: ['writer'] }),
  carol: identity('carol', { groups: ['shop-staff'] }),
  opsBot: identity('ops-bot'),
  opsAuditor: identity('ops-bot', { groups: ['auditors'] }),
  stranger: identity('x', { roles: ['no-such-role'], groups: ['no-such-group'] }),
  nested: identity('n', { scopes: ['billing:invoices:admin'] }),
  shallow: identity('s', { scopes: ['billing:admin', 'other:admin'] }),
  su: identity('su', { scopes: ['superuser'] }),
} as const;

function facts(method: string, path = '/orders/42'): RequestFacts {
  return { method, path, rawQuery: '', host: 'api.example.com', headers: {}, clientIp: '198.51.100.7', clientIpSource: 'socket', params: { id: '42' }, contentLength: undefined, now: 0 };
}

function asDeny(d: Decision): Deny {
  assert.equal(d.outcome, 'deny', `expected a denial, got ${JSON.stringify(d)}`);
  return d;
}

interface Case {
  readonly name: string;
  readonly config?: Record<string, unknown>;
  readonly method: string;
  readonly id: Identity | undefined;
  readonly expect: 'allow' | Deny['code'];
  readonly evidence?: Record<string, unknown>;
  readonly rule?: string;
}

const CASES: readonly Case[] = [
  // Scopes.
  { name: 'GET with the exact scope', method: 'GET', id: ID.reader, expect: 'allow', evidence: { rule: 'rules[0]', held_via: ['scope orders:read'] } },
  { name: 'HEAD needs what GET needs', method: 'HEAD', id: ID.reader, expect: 'allow', evidence: { rule: 'rules[0]' } },
  {
    name: 'POST with only the read scope',
    method: 'POST',
    id: ID.reader,
    expect: 'RBAC_PERMISSION_MISSING',
    evidence: {
      method: 'POST',
      route: 'orders',
      path: '/orders/42',
      rule: 'rules[1]',
      required_permissions: ['orders:write'],
      missing_permissions: ['orders:write'],
      also_satisfied_by: ['orders:admin'],
      consumer: 'reader',
      credential_type: 'jwt',
      scopes: ['orders:read'],
      roles: [],
      groups: [],
      permissions_held: ['orders:read'],
    },
  },
  // Levels.
  { name: 'admin level implies write', method: 'PUT', id: ID.admin, expect: 'allow', evidence: { held_via: ['scope orders:admin'] } },
  { name: 'admin level implies read', method: 'GET', id: ID.admin, expect: 'allow', evidence: { held_via: ['scope orders:admin'] } },
  { name: 'without levels, admin does not imply write', config: { ...BASE, levels: [] }, method: 'POST', id: ID.admin, expect: 'RBAC_PERMISSION_MISSING', evidence: { also_satisfied_by: [] } },
  { name: 'write does not imply admin', method: 'DELETE', id: ID.writer, expect: 'RBAC_PERMISSION_MISSING', evidence: { missing_permissions: ['orders:admin', 'audit:write'], also_satisfied_by: ['audit:admin'] } },
  {
    name: 'the resource is everything before the last colon',
    config: { rules: [{ permission: 'billing:invoices:read' }], levels: ['read', 'admin'] },
    method: 'GET',
    id: ID.nested,
    expect: 'allow',
    evidence: { held_via: ['scope billing:invoices:admin'] },
  },
  {
    name: 'a higher level of another resource does not count',
    config: { rules: [{ permission: 'billing:invoices:read' }], levels: ['read', 'admin'] },
    method: 'GET',
    id: ID.shallow,
    expect: 'RBAC_PERMISSION_MISSING',
    evidence: { also_satisfied_by: ['billing:invoices:admin'] },
  },
  { name: 'a permission without a level matches exactly', config: { rules: [{ permission: 'superuser' }], levels: ['read'] }, method: 'GET', id: ID.su, expect: 'allow' },
  // Roles and grants.
  { name: 'role from the credential', method: 'POST', id: ID.writer, expect: 'allow', evidence: { held_via: ['role writer → orders:write'] } },
  { name: 'role write level implies read', method: 'GET', id: ID.writer, expect: 'allow', evidence: { held_via: ['role writer → orders:write'] } },
  { name: 'role granted to a group', method: 'GET', id: ID.carol, expect: 'allow', evidence: { held_via: ['grant orders:read to group shop-staff'] } },
  {
    name: 'group member lacking write: evidence lists groups and granted permissions',
    method: 'POST',
    id: ID.carol,
    expect: 'RBAC_PERMISSION_MISSING',
    evidence: { groups: ['shop-staff'], scopes: [], permissions_held: ['orders:read'] },
  },
  {
    name: 'ALL listed permissions are required: only the missing one is named',
    method: 'DELETE',
    id: ID.opsBot,
    expect: 'RBAC_PERMISSION_MISSING',
    evidence: { required_permissions: ['orders:admin', 'audit:write'], missing_permissions: ['audit:write'], permissions_held: ['orders:admin'] },
  },
  {
    name: 'ALL listed permissions held (consumer grant + group grant)',
    method: 'DELETE',
    id: ID.opsAuditor,
    expect: 'allow',
    evidence: { held_via: ['grant orders:admin to consumer ops-bot', 'grant audit:write to group auditors'] },
  },
  { name: 'unknown roles and groups on the identity grant nothing', method: 'GET', id: ID.stranger, expect: 'RBAC_PERMISSION_MISSING', evidence: { roles: ['no-such-role'], permissions_held: [] } },
  // Rule matching.
  { name: 'a method no rule covers', method: 'PATCH', id: ID.admin, expect: 'RBAC_METHOD_NOT_COVERED', evidence: { method: 'PATCH', covered_methods: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'] } },
  { name: 'uncovered method with unmatched: allow', config: { ...BASE, unmatched: 'allow' }, method: 'PATCH', id: undefined, expect: 'allow', rule: 'no rule for PATCH (unmatched: allow)' },
  { name: 'uncovered method is refused even without identity', method: 'OPTIONS', id: undefined, expect: 'RBAC_METHOD_NOT_COVERED' },
  {
    name: 'a rule without methods decides the rest',
    config: { rules: [{ methods: ['GET'], permission: 'orders:read' }, { permission: 'orders:write' }] },
    method: 'PATCH',
    id: ID.reader,
    expect: 'RBAC_PERMISSION_MISSING',
    evidence: { rule: 'rules[1]', missing_permissions: ['orders:write'] },
  },
  {
    name: 'covered methods are * once a rule decides all',
    config: { rules: [{ methods: ['GET'], permission: 'orders:read' }, { permission: 'orders:write' }] },
    method: 'GET',
    id: ID.reader,
    expect: 'allow',
    rule: 'rules[0]: orders:read',
  },
  // No identity.
  { name: 'no identity', method: 'GET', id: undefined, expect: 'AUTH_RBAC_UNAUTHENTICATED', evidence: { method: 'GET', route: 'orders', rule: 'rules[0]', required_permissions: ['orders:read'] } },
];

void describe('rbac decide', () => {
  for (const c of CASES) {
    void test(c.name, () => {
      const d = decideSync(compile(c.config), context({ facts: facts(c.method), identity: c.id, routeId: 'orders' }));
      if (c.expect === 'allow') assert.equal(d.outcome, 'allow', JSON.stringify(d));
      else assert.equal(asDeny(d).code, c.expect);
      if (c.rule !== undefined) assert.equal(d.rule, c.rule);
      if (c.evidence !== undefined) {
        assert.ok(d.outcome !== 'skip' && d.evidence !== undefined, 'has evidence');
        for (const [k, v] of Object.entries(c.evidence)) assert.deepEqual(d.evidence[k], v, `evidence.${k}`);
      }
      if (d.outcome === 'deny') {
        if (CATALOG[d.code].status === 401) assert.deepEqual(d.headers, { 'www-authenticate': 'Bearer realm="pinpoint"' });
        else assert.equal(d.headers, undefined);
      }
    });
  }

  void test('custom challenge on the 401', () => {
    const d = asDeny(decideSync(compile({ ...BASE, challenge: 'ApiKey realm="shop", in="header", name="x-api-key"' }), context({ facts: facts('GET') })));
    assert.equal(d.headers?.['www-authenticate'], 'ApiKey realm="shop", in="header", name="x-api-key"');
    assert.equal(d.evidence.route, null, 'no route id: null, not a made-up value');
  });

  void test('codes: 401 for no identity, 403 for the rest, all gateway-layer', () => {
    assert.deepEqual(
      (['AUTH_RBAC_UNAUTHENTICATED', 'RBAC_PERMISSION_MISSING', 'RBAC_METHOD_NOT_COVERED'] as const).map((c) => [CATALOG[c].status, CATALOG[c].layer]),
      [[401, 'gateway'], [403, 'gateway'], [403, 'gateway']],
    );
  });

  void test('schema defaults: unmatched deny, no grants, roles or levels, Bearer challenge', () => {
    const cfg: Record<string, unknown> = { rules: [{ permission: 'x' }] };
    assert.deepEqual(validate(RbacSchema, cfg, PATH), []);
    assert.deepEqual(cfg, { rules: [{ methods: [], permission: 'x' }], unmatched: 'deny', grants: [], roles: {}, levels: [], challenge: 'Bearer realm="pinpoint"' });
  });

  void test('compiled policy: id, type, mode; no body needed', () => {
    const p = compile();
    assert.deepEqual([p.id, p.type, p.mode, p.needsBody, p.bodyLimit], ['orders-rbac', 'rbac', 'enforce', undefined, undefined]);
  });

  void test('compile copies its config', () => {
    const cfg = structuredClone(BASE) as unknown as RbacConfig;
    assert.deepEqual(validate(RbacSchema, cfg, PATH), []);
    const p = rbac.compile(cfg, { id: 'r', mode: 'enforce' }, CTX);
    (cfg.rules[0] as { permission: string }).permission = 'nothing';
    (cfg.roles.writer as string[]).push('orders:admin');
    assert.equal(decideSync(p, context({ facts: facts('GET'), identity: ID.reader })).outcome, 'allow');
    assert.equal(asDeny(decideSync(p, context({ facts: facts('DELETE'), identity: ID.writer }))).code, 'RBAC_PERMISSION_MISSING');
  });
});

interface ErrorCase {
  readonly name: string;
  readonly config: Record<string, unknown>;
  readonly issues: readonly { path: string; message: RegExp }[];
}

const ERRORS: readonly ErrorCase[] = [
  {
    name: 'grant of an unknown role',
    config: { ...BASE, grants: [{ role: 'wrter', groups: ['g'] }] },
    issues: [{ path: `${PATH}.grants[0].role`, message: /unknown role "wrter" \(roles: writer, auditor, clerk\)/ }],
  },
  { name: 'grant of a role when no roles exist', config: { rules: BASE.rules, grants: [{ role: 'x', consumers: ['c'] }] }, issues: [{ path: `${PATH}.grants[0].role`, message: /none defined/ }] },
  { name: 'grant with both permission and role', config: { ...BASE, grants: [{ role: 'writer', permission: 'a', consumers: ['c'] }] }, issues: [{ path: `${PATH}.grants[0]`, message: /exactly one of permission and role/ }] },
  { name: 'grant with neither', config: { ...BASE, grants: [{ consumers: ['c'] }] }, issues: [{ path: `${PATH}.grants[0]`, message: /exactly one/ }] },
  { name: 'grant to nobody', config: { ...BASE, grants: [{ permission: 'a' }] }, issues: [{ path: `${PATH}.grants[0]`, message: /grants to nobody/ }] },
  { name: 'repeated level', config: { ...BASE, levels: ['read', 'write', 'read'] }, issues: [{ path: `${PATH}.levels[2]`, message: /already levels\[0\]/ }] },
  {
    name: 'a method decided twice',
    config: { rules: [{ methods: ['GET', 'POST'], permission: 'a' }, { methods: ['PUT', 'POST'], permission: 'b' }] },
    issues: [{ path: `${PATH}.rules[1].methods[1]`, message: /POST is already decided by rules\[0\]/ }],
  },
  {
    name: 'HEAD after GET',
    config: { rules: [{ methods: ['GET'], permission: 'a' }, { methods: ['HEAD'], permission: 'b' }] },
    issues: [{ path: `${PATH}.rules[1].methods[0]`, message: /a rule listing GET also decides HEAD/ }],
  },
  {
    name: 'a rule after a rule for every method',
    config: { rules: [{ permission: 'a' }, { methods: ['GET'], permission: 'b' }, { permission: 'c' }] },
    issues: [
      { path: `${PATH}.rules[1]`, message: /never applies: rules\[0\]/ },
      { path: `${PATH}.rules[2]`, message: /never applies: rules\[0\]/ },
    ],
  },
  {
    name: 'every issue is reported, in config order',
    config: { ...BASE, levels: ['a', 'a'], grants: [{ permission: 'p' }, { role: 'nope', consumers: ['c'] }], rules: [{ permission: 'a' }, { permission: 'b' }] },
    issues: [
      { path: `${PATH}.levels[1]`, message: /already/ },
      { path: `${PATH}.grants[0]`, message: /nobody/ },
      { path: `${PATH}.grants[1].role`, message: /unknown role/ },
      { path: `${PATH}.rules[1]`, message: /never applies/ },
    ],
  },
];

void describe('rbac compile errors', () => {
  for (const c of ERRORS) {
    void test(c.name, () => {
      let caught: unknown;
      try {
        compile(c.config);
      } catch (err) {
        caught = err;
      }
      assert.ok(caught instanceof ConfigError, `expected ConfigError, got ${String(caught)}`);
      assert.deepEqual(caught.issues.map((i) => i.path), c.issues.map((i) => i.path));
      c.issues.forEach((e, i) => assert.match(caught.issues[i]?.message ?? '', e.message));
    });
  }

  const SCHEMA_ERRORS: readonly ErrorCase[] = [
    { name: 'no rules', config: { rules: [] }, issues: [{ path: `${PATH}.rules`, message: /fewer than 1/ }] },
    { name: 'a level containing a colon', config: { rules: [{ permission: 'a' }], levels: ['read', 'a:b'] }, issues: [{ path: `${PATH}.levels[1]`, message: /pattern/ }] },
    { name: 'an unknown method', config: { rules: [{ methods: ['FETCH'], permission: 'a' }] }, issues: [{ path: `${PATH}.rules[0].methods[0]`, message: /must be one of/ }] },
    { name: 'an empty permission list', config: { rules: [{ permission: [] }] }, issues: [{ path: `${PATH}.rules[0].permission`, message: /./ }] },
  ];
  for (const c of SCHEMA_ERRORS) {
    void test(`schema: ${c.name}`, () => {
      const issues = validate(RbacSchema, structuredClone(c.config), PATH);
      assert.ok(issues.length > 0);
      for (const e of c.issues) assert.ok(issues.some((i) => i.path === e.path && e.message.test(i.message)), `${e.path} in ${JSON.stringify(issues)}`);
    });
  }
});
