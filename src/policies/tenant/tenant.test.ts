/**
 * `tenant`, table-driven: config validated against the schema (defaults filled) and compiled by the
 * module against a set of consumers (some with a team), then decide() for every place a request can
 * name its tenant, every way it can be absent or repeated, and every source of the caller's tenant
 * (consumers[].team, a token claim, a list claim, none). Assertions are on codes, evidence and
 * headers; every remediation must come out fully filled in.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { claimsRead } from '../../calllog/replay-record.ts';
import { ConfigSchema, type Config } from '../../config/schema.ts';
import { validate } from '../../config/validate.ts';
import { KeyIndex } from '../../credentials/api-keys.ts';
import { CATALOG, renderTemplate } from '../../errors/catalog.ts';
import { context, decideSync, expectConfigIssues } from '../../pipeline/testing.ts';
import type { CompiledPolicy, ConsumerSpec, Deny, Identity, RequestFacts } from '../../pipeline/types.ts';
import { tenant } from './index.ts';
import { TenantSchema, type TenantConfig } from './schema.ts';

const PATH = 'policies.own-team.config';

const CONSUMERS: readonly ConsumerSpec[] = [
  { id: 'shop', team: 'acme' },
  { id: 'rival', team: 'globex' },
  { id: 'loner' },
  { id: 'alice', team: 'acme' },
];

const CTX = { consumers: CONSUMERS, apiKeys: KeyIndex.build([], {}).index, env: {}, path: PATH, baseDir: '.' };

function compile(raw: Record<string, unknown>): CompiledPolicy {
  const cfg = structuredClone(raw);
  assert.deepEqual(validate(TenantSchema, cfg, PATH), [], 'the test config is schema-valid');
  return tenant.compile(cfg as TenantConfig, { id: 'own-team', mode: 'enforce' }, CTX);
}

function key(consumer: string, scopes: string[] = []): Identity {
  return Object.freeze({ consumer, credentialId: `k_${consumer}`, credentialType: 'api-key', scopes: new Set(scopes) });
}

function jwt(consumer: string, claims: Record<string, unknown>, scopes: string[] = []): Identity {
  return Object.freeze({ consumer, credentialId: `jti-${consumer}`, credentialType: 'jwt', scopes: new Set(scopes), claims: Object.freeze(claims) });
}

const PARAM = { tenant: { from: 'param', name: 'team' } };
const HEADER = { tenant: { from: 'header', name: 'X-Tenant-Id' } };
const QUERY = { tenant: { from: 'query', name: 'tenant' } };
const CLAIM = { ...HEADER, claim: 'tenant_id' };

interface Case {
  readonly name: string;
  readonly config: Record<string, unknown>;
  readonly id: Identity | undefined;
  readonly params?: Record<string, string>;
  readonly query?: string;
  readonly headers?: Record<string, string | string[]>;
  readonly expect: 'allow' | Deny['code'];
  readonly evidence?: Record<string, unknown>;
  readonly rule?: string;
}

const LONG = 'x'.repeat(300);

const CASES: readonly Case[] = [
  // Path parameter, team from consumers[].team.
  { name: 'param: own team', config: PARAM, id: key('shop'), params: { team: 'acme' }, expect: 'allow', rule: "tenant acme is the caller's (consumers[].team)" },
  {
    name: 'param: another team',
    config: PARAM,
    id: key('shop'),
    params: { team: 'globex' },
    expect: 'TENANT_MISMATCH',
    evidence: { requested_tenant: 'globex', tenant: 'path parameter team', caller_tenant: 'acme', caller_tenant_source: 'consumers[].team', consumer: 'shop', override_scopes: [], method: 'GET', route: 'projects' },
  },
  { name: 'param: case matters', config: PARAM, id: key('shop'), params: { team: 'ACME' }, expect: 'TENANT_MISMATCH' },
  { name: 'param: empty value', config: PARAM, id: key('shop'), params: { team: '' }, expect: 'TENANT_MISSING', evidence: { tenant: 'path parameter team', problem: 'empty' } },
  {
    name: 'param: the route has no such parameter (configuration fault)',
    config: PARAM,
    id: key('shop'),
    params: { org: 'acme' },
    expect: 'TENANT_ROUTE_PARAM_MISSING',
    evidence: { name: 'team', params: ['org'], route: 'projects' },
  },
  // Header.
  { name: 'header: own team (name matched case-insensitively)', config: HEADER, id: key('shop'), headers: { 'x-tenant-id': 'acme' }, expect: 'allow' },
  { name: 'header: absent', config: HEADER, id: key('shop'), expect: 'TENANT_MISSING', evidence: { tenant: 'header x-tenant-id', problem: 'absent', consumer: 'shop' } },
  { name: 'header: sent twice', config: HEADER, id: key('shop'), headers: { 'x-tenant-id': ['acme', 'globex'] }, expect: 'TENANT_AMBIGUOUS', evidence: { tenant: 'header x-tenant-id', count: 2 } },
  // Node joins repeated field lines with ", " (RFC 9110 §5.3): that is how a live request arrives.
  { name: 'header: repeated lines, joined', config: HEADER, id: key('shop'), headers: { 'x-tenant-id': 'acme, globex' }, expect: 'TENANT_AMBIGUOUS', evidence: { count: 2 } },
  { name: 'header: another team', config: HEADER, id: key('rival'), headers: { 'x-tenant-id': 'acme' }, expect: 'TENANT_MISMATCH', evidence: { requested_tenant: 'acme', caller_tenant: 'globex' } },
  // Query.
  { name: 'query: own team', config: QUERY, id: key('shop'), query: 'tenant=acme&page=2', expect: 'allow' },
  { name: 'query: percent-decoded before comparing', config: QUERY, id: key('shop'), query: 'tenant=%61cme', expect: 'allow' },
  { name: 'query: sent twice (parameter pollution)', config: QUERY, id: key('shop'), query: 'tenant=acme&tenant=globex', expect: 'TENANT_AMBIGUOUS', evidence: { tenant: 'query parameter tenant', count: 2 } },
  { name: 'query: no query string', config: QUERY, id: key('shop'), expect: 'TENANT_MISSING', evidence: { problem: 'absent' } },
  { name: 'query: absent among others', config: QUERY, id: key('shop'), query: 'page=2', expect: 'TENANT_MISSING', evidence: { problem: 'absent' } },
  // The caller's tenant.
  {
    name: 'a consumer without a team',
    config: HEADER,
    id: key('loner'),
    headers: { 'x-tenant-id': 'acme' },
    expect: 'TENANT_UNKNOWN',
    evidence: { consumer: 'loner', requested_tenant: 'acme', looked_in: 'consumers[].team', known_consumer: true, credential_type: 'api-key', claims_present: [] },
  },
  {
    name: 'a caller no consumer entry describes',
    config: HEADER,
    id: key('stranger'),
    headers: { 'x-tenant-id': 'acme' },
    expect: 'TENANT_UNKNOWN',
    evidence: { known_consumer: false },
  },
  { name: 'claim: own tenant', config: CLAIM, id: jwt('u1', { sub: 'u1', tenant_id: 'initech' }), headers: { 'x-tenant-id': 'initech' }, expect: 'allow', rule: "tenant initech is the caller's (claim tenant_id)" },
  {
    name: 'claim: another tenant',
    config: CLAIM,
    id: jwt('u1', { sub: 'u1', tenant_id: 'initech' }),
    headers: { 'x-tenant-id': 'acme' },
    expect: 'TENANT_MISMATCH',
    evidence: { requested_tenant: 'acme', caller_tenant: 'initech', caller_tenant_source: 'claim tenant_id', consumer: 'u1' },
  },
  { name: 'claim wins over consumers[].team when carried', config: CLAIM, id: jwt('alice', { tenant_id: 'initech' }), headers: { 'x-tenant-id': 'acme' }, expect: 'TENANT_MISMATCH', evidence: { caller_tenant: 'initech' } },
  { name: 'claim not carried: consumers[].team', config: CLAIM, id: jwt('alice', { sub: 'alice' }), headers: { 'x-tenant-id': 'acme' }, expect: 'allow', rule: "tenant acme is the caller's (consumers[].team)" },
  { name: 'claim configured, API key caller: consumers[].team', config: CLAIM, id: key('shop'), headers: { 'x-tenant-id': 'acme' }, expect: 'allow' },
  { name: 'claim: numeric', config: CLAIM, id: jwt('u1', { tenant_id: 42 }), headers: { 'x-tenant-id': '42' }, expect: 'allow' },
  { name: 'claim: list, member', config: CLAIM, id: jwt('u1', { tenant_id: ['t1', 't2'] }), headers: { 'x-tenant-id': 't2' }, expect: 'allow' },
  { name: 'claim: list, not a member', config: CLAIM, id: jwt('u1', { tenant_id: ['t1', 't2'] }), headers: { 'x-tenant-id': 't3' }, expect: 'TENANT_MISMATCH', evidence: { caller_tenant: ['t1', 't2'] } },
  {
    name: 'claim: empty and no team',
    config: CLAIM,
    id: jwt('u1', { sub: 'u1', tenant_id: '' }),
    headers: { 'x-tenant-id': 'acme' },
    expect: 'TENANT_UNKNOWN',
    evidence: { looked_in: 'claim tenant_id, then consumers[].team', credential_type: 'jwt', claims_present: ['sub', 'tenant_id'], known_consumer: false },
  },
  { name: 'claim: an object is no tenant', config: CLAIM, id: jwt('u1', { tenant_id: { id: 'acme' } }), headers: { 'x-tenant-id': 'acme' }, expect: 'TENANT_UNKNOWN' },
  // Overrides.
  { name: 'override scope: any tenant', config: { ...PARAM, override_scopes: ['tenants:admin'] }, id: key('loner', ['tenants:admin']), params: { team: 'globex' }, expect: 'allow', rule: 'override: scope tenants:admin', evidence: { override: 'tenants:admin', requested_tenant: 'globex' } },
  { name: 'override not held: checked as usual', config: { ...PARAM, override_scopes: ['tenants:admin'] }, id: key('shop', ['projects:write']), params: { team: 'globex' }, expect: 'TENANT_MISMATCH', evidence: { override_scopes: ['tenants:admin'] } },
  { name: 'override still needs the request to name a tenant', config: { ...HEADER, override_scopes: ['tenants:admin'] }, id: key('shop', ['tenants:admin']), expect: 'TENANT_MISSING' },
  // No identity.
  {
    name: 'no identity: 401 with the configured challenge',
    config: { ...PARAM, challenge: 'ApiKey realm="projects"' },
    id: undefined,
    params: { team: 'acme' },
    expect: 'AUTH_TENANT_UNAUTHENTICATED',
    evidence: { route: 'projects', method: 'GET', tenant: 'path parameter team' },
  },
  // Evidence hygiene.
  { name: 'long request values are capped in evidence', config: PARAM, id: key('shop'), params: { team: LONG }, expect: 'TENANT_MISMATCH', evidence: { requested_tenant: `${'x'.repeat(128)}…` } },
];

function facts(c: Case): RequestFacts {
  return {
    method: 'GET',
    path: '/teams/x/projects',
    rawQuery: c.query ?? '',
    host: 'api.example.com',
    headers: c.headers ?? {},
    clientIp: '198.51.100.7',
    clientIpSource: 'socket',
    params: c.params ?? {},
    contentLength: undefined,
    now: 0,
  };
}

void describe('tenant decide', () => {
  for (const c of CASES) {
    void test(c.name, () => {
      const d = decideSync(compile(c.config), context({ facts: facts(c), identity: c.id, routeId: 'projects' }));
      if (c.expect === 'allow') assert.equal(d.outcome, 'allow', JSON.stringify(d));
      else {
        assert.equal(d.outcome, 'deny', JSON.stringify(d));
        assert.equal(d.code, c.expect);
        if (CATALOG[d.code].status === 401) assert.deepEqual(d.headers, { 'www-authenticate': (c.config.challenge as string | undefined) ?? 'Bearer realm="pinpoint"' });
        else assert.equal(d.headers, undefined);
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

  void test('status, layer and retryable of each code', () => {
    const table = [
      ['AUTH_TENANT_UNAUTHENTICATED', 401, 'gateway'],
      ['TENANT_MISMATCH', 403, 'gateway'],
      ['TENANT_UNKNOWN', 403, 'gateway'],
      ['TENANT_MISSING', 400, 'client'],
      ['TENANT_AMBIGUOUS', 400, 'client'],
      ['TENANT_ROUTE_PARAM_MISSING', 500, 'gateway'],
    ] as const;
    for (const [code, status, layer] of table) assert.deepEqual([CATALOG[code].status, CATALOG[code].layer, CATALOG[code].retryable], [status, layer, false], code);
  });
});

void describe('tenant compile', () => {
  void test('schema defaults: no claim, no overrides, Bearer challenge', () => {
    const cfg: Record<string, unknown> = { tenant: { from: 'param', name: 'team' } };
    assert.deepEqual(validate(TenantSchema, cfg, PATH), []);
    assert.deepEqual(cfg, { tenant: { from: 'param', name: 'team' }, override_scopes: [], challenge: 'Bearer realm="pinpoint"' });
  });

  void test('compiled policy: id, type, mode; no body needed', () => {
    const p = tenant.compile({ tenant: { from: 'header', name: 'x-t' }, override_scopes: [], challenge: 'x' }, { id: 't', mode: 'monitor' }, CTX);
    assert.deepEqual([p.id, p.type, p.mode, p.needsBody, p.bodyLimit], ['t', 'tenant', 'monitor', undefined, undefined]);
  });

  const SCHEMA_ERRORS: readonly { name: string; config: Record<string, unknown>; path: string; message: RegExp }[] = [
    { name: 'from is not a place the tenant can be', config: { tenant: { from: 'body', name: '/tenant' } }, path: `${PATH}.tenant.from`, message: /must be one of "param", "header", "query"/ },
    { name: 'from: path is spelled param here', config: { tenant: { from: 'path', name: 'team' } }, path: `${PATH}.tenant.from`, message: /must be one of/ },
    { name: 'tenant missing', config: {}, path: PATH, message: /required property 'tenant'/ },
    { name: 'name missing', config: { tenant: { from: 'header' } }, path: `${PATH}.tenant`, message: /required property 'name'/ },
    { name: 'empty claim', config: { ...HEADER, claim: '' }, path: `${PATH}.claim`, message: /must NOT have fewer than 1 characters/ },
  ];
  for (const c of SCHEMA_ERRORS) {
    void test(`schema rejects: ${c.name}`, () => {
      const issues = validate(TenantSchema, structuredClone(c.config), PATH);
      assert.ok(issues.some((i) => i.path === c.path && c.message.test(i.message)), JSON.stringify(issues));
    });
  }

  const COMPILE_ERRORS: readonly { name: string; tenant: { from: 'param' | 'header' | 'query'; name: string }; message: RegExp }[] = [
    { name: 'header name with a space', tenant: { from: 'header', name: 'x tenant' }, message: /not a valid header name/ },
    { name: 'param written with braces', tenant: { from: 'param', name: '{team}' }, message: /without braces/ },
  ];
  for (const c of COMPILE_ERRORS) {
    void test(`compile rejects: ${c.name}`, () => {
      expectConfigIssues(() => tenant.compile({ tenant: c.tenant, override_scopes: [], challenge: 'x' }, { id: 't', mode: 'enforce' }, CTX), [{ path: `${PATH}.tenant.name`, message: c.message }]);
    });
  }

  void test('the tenant claim is recorded for replays (pinpoint impact)', () => {
    const cfg: Record<string, unknown> = {
      version: 1,
      policies: { 'own-team': { type: 'tenant', config: { tenant: { from: 'header', name: 'x-tenant-id' }, claim: 'tenant_id' } } },
      routes: [{ id: 'r', paths: ['/x'], upstream: 'u' }],
      upstreams: { u: { targets: [{ url: 'http://127.0.0.1:1' }] } },
    };
    assert.deepEqual(validate(ConfigSchema, cfg, ''), []);
    assert.ok(claimsRead(cfg as Config).has('tenant_id'));
  });
});
