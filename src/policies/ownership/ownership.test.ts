/**
 * `ownership`, table-driven: config validated against the schema (defaults filled) and compiled
 * by the module, then decide() over every place an owner value can be, every way it can be
 * absent or malformed, and every way the caller can (not) match. Assertions are on codes,
 * evidence fields and headers.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { validate } from '../../config/validate.ts';
import { KeyIndex } from '../../credentials/api-keys.ts';
import { CATALOG } from '../../errors/catalog.ts';
import { context } from '../../pipeline/testing.ts';
import { ConfigError, type CompiledPolicy, type Decision, type Deny, type Identity, type RequestFacts } from '../../pipeline/types.ts';
import { ownership, parsePointer } from './index.ts';
import { OwnershipSchema, type OwnershipConfig } from './schema.ts';

const PATH = 'policies.own-orders.config';
const CTX = { consumers: [], apiKeys: KeyIndex.build([], {}).index, env: {}, path: PATH, baseDir: '.' };

function compile(raw: Record<string, unknown>): CompiledPolicy {
  const cfg = structuredClone(raw);
  assert.deepEqual(validate(OwnershipSchema, cfg, PATH), [], 'the test config is schema-valid');
  return ownership.compile(cfg as OwnershipConfig, { id: 'own-orders', mode: 'enforce' }, CTX);
}

function jwt(consumer: string, claims: Record<string, unknown>, opts: { scopes?: string[]; roles?: string[] } = {}): Identity {
  return Object.freeze({ consumer, credentialId: `jti-${consumer}`, credentialType: 'jwt', scopes: new Set(opts.scopes ?? []), roles: new Set(opts.roles ?? []), claims: Object.freeze(claims) });
}

const ID = {
  alice: jwt('alice', { sub: 'alice', tenant: 't1', orgs: ['o1', 'o2'], num: 42, empty: '', weird: { a: 1 } }, { scopes: ['orders:read'] }),
  admin: jwt('root', { sub: 'root' }, { scopes: ['orders:admin'] }),
  support: jwt('sam', { sub: 'sam' }, { roles: ['support'] }),
  key: Object.freeze({ consumer: 'shop', credentialId: 'k_shop', credentialType: 'api-key', scopes: new Set<string>() }) as Identity,
} as const;

const PATH_ID = { resource: { from: 'path', name: 'id' } };
const QUERY_OWNER = { resource: { from: 'query', name: 'owner' } };
const HEADER_TENANT = { resource: { from: 'header', name: 'X-Tenant' }, claim: 'tenant' };
const BODY = (name: string, extra: Record<string, unknown> = {}) => ({ resource: { from: 'body', name }, ...extra });

interface Case {
  readonly name: string;
  readonly config: Record<string, unknown>;
  readonly method?: string;
  readonly id: Identity | undefined;
  readonly params?: Record<string, string>;
  readonly query?: string;
  readonly headers?: Record<string, string | string[]>;
  readonly body?: string;
  readonly expect: 'allow' | 'skip' | Deny['code'];
  readonly evidence?: Record<string, unknown>;
  readonly rule?: string;
  /** Whether ctx.body() must have been called. */
  readonly readsBody?: boolean;
}

const LONG = 'x'.repeat(300);

const CASES: readonly Case[] = [
  // Path.
  { name: 'path: owner', config: PATH_ID, id: ID.alice, params: { id: 'alice' }, expect: 'allow', rule: 'owner: path parameter id = sub' },
  {
    name: 'path: not the owner',
    config: PATH_ID,
    method: 'DELETE',
    id: ID.alice,
    params: { id: 'bob' },
    expect: 'OWNERSHIP_NOT_OWNER',
    evidence: { resource: 'path parameter id', resource_value: 'bob', claim: 'sub', caller_value: 'alice', consumer: 'alice', override_permissions: [], method: 'DELETE', route: 'orders' },
  },
  {
    name: 'path: the route has no such parameter (configuration fault)',
    config: PATH_ID,
    id: ID.alice,
    params: { order: 'alice' },
    expect: 'OWNERSHIP_PATH_PARAM_MISSING',
    evidence: { name: 'id', params: ['order'], route: 'orders', path: '/orders/alice' },
  },
  { name: 'path: no such parameter with missing: skip', config: { ...PATH_ID, missing: 'skip' }, id: ID.alice, params: {}, expect: 'skip', rule: 'no path parameter id (missing: skip)' },
  { name: 'path: empty value', config: PATH_ID, id: ID.alice, params: { id: '' }, expect: 'OWNERSHIP_RESOURCE_ID_MISSING', evidence: { resource: 'path parameter id', problem: 'empty' } },
  { name: 'path: case matters', config: PATH_ID, id: ID.alice, params: { id: 'Alice' }, expect: 'OWNERSHIP_NOT_OWNER' },
  // Query.
  { name: 'query: owner', config: QUERY_OWNER, id: ID.alice, query: 'owner=alice&x=1', expect: 'allow' },
  { name: 'query: percent-decoded before comparing', config: QUERY_OWNER, id: jwt('a b', { sub: 'a b' }), query: 'owner=a%20b', expect: 'allow' },
  { name: 'query: sent twice (parameter pollution)', config: QUERY_OWNER, id: ID.alice, query: 'owner=alice&owner=bob', expect: 'OWNERSHIP_RESOURCE_ID_AMBIGUOUS', evidence: { resource: 'query parameter owner', count: 2 } },
  { name: 'query: absent', config: QUERY_OWNER, id: ID.alice, query: 'x=1', expect: 'OWNERSHIP_RESOURCE_ID_MISSING', evidence: { problem: 'absent' } },
  { name: 'query: no query string', config: QUERY_OWNER, id: ID.alice, expect: 'OWNERSHIP_RESOURCE_ID_MISSING', evidence: { problem: 'absent' } },
  { name: 'query: absent with missing: skip', config: { ...QUERY_OWNER, missing: 'skip' }, id: ID.alice, expect: 'skip' },
  // Header.
  { name: 'header: owner (name matched case-insensitively)', config: HEADER_TENANT, id: ID.alice, headers: { 'x-tenant': 't1' }, expect: 'allow' },
  { name: 'header: another tenant', config: HEADER_TENANT, id: ID.alice, headers: { 'x-tenant': 't2' }, expect: 'OWNERSHIP_NOT_OWNER', evidence: { resource: 'header x-tenant', resource_value: 't2', claim: 'tenant', caller_value: 't1' } },
  { name: 'header: several values', config: HEADER_TENANT, id: ID.alice, headers: { 'x-tenant': ['t1', 't2'] }, expect: 'OWNERSHIP_RESOURCE_ID_AMBIGUOUS', evidence: { count: 2 } },
  { name: 'header: absent', config: HEADER_TENANT, id: ID.alice, expect: 'OWNERSHIP_RESOURCE_ID_MISSING', evidence: { resource: 'header x-tenant' } },
  // Body.
  { name: 'body: owner', config: BODY('/customer_id'), method: 'POST', id: ID.alice, body: '{"customer_id":"alice"}', expect: 'allow', readsBody: true },
  // JSON.parse keeps the last of a repeated member; an upstream may act on the first (victim's).
  { name: 'body: repeated member is ambiguous', config: BODY('/customer_id'), method: 'POST', id: ID.alice, body: '{"customer_id":"bob","customer_id":"alice"}', expect: 'OWNERSHIP_RESOURCE_ID_AMBIGUOUS' },
  { name: 'body: nested pointer', config: BODY('/order/customer/id'), method: 'POST', id: ID.alice, body: '{"order":{"customer":{"id":"alice"}}}', expect: 'allow' },
  { name: 'body: escaped pointer token (~1 is /)', config: BODY('/a~1b'), method: 'POST', id: ID.alice, body: '{"a/b":"alice"}', expect: 'allow' },
  { name: 'body: array index', config: BODY('/items/1/owner'), method: 'POST', id: ID.alice, body: '{"items":[{"owner":"x"},{"owner":"alice"}]}', expect: 'allow' },
  { name: 'body: leading-zero index is not an index', config: BODY('/items/01/owner'), method: 'POST', id: ID.alice, body: '{"items":[{},{"owner":"alice"}]}', expect: 'OWNERSHIP_RESOURCE_ID_MISSING', evidence: { problem: 'absent' } },
  { name: 'body: number equals numeric claim', config: BODY('/account', { claim: 'num' }), method: 'POST', id: ID.alice, body: '{"account":42}', expect: 'allow' },
  { name: 'body: someone else', config: BODY('/customer_id'), method: 'PUT', id: ID.alice, body: '{"customer_id":42}', expect: 'OWNERSHIP_NOT_OWNER', evidence: { resource: 'body /customer_id', resource_value: '42', caller_value: 'alice' } },
  {
    name: 'body: not JSON',
    config: BODY('/customer_id'),
    method: 'POST',
    id: ID.alice,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'customer_id=alice',
    expect: 'OWNERSHIP_BODY_NOT_JSON',
    evidence: { resource: 'body /customer_id', content_type: 'application/x-www-form-urlencoded' },
  },
  { name: 'body: empty', config: BODY('/customer_id'), method: 'POST', id: ID.alice, body: '', expect: 'OWNERSHIP_RESOURCE_ID_MISSING', evidence: { problem: 'empty body' } },
  { name: 'body: null member', config: BODY('/customer_id'), method: 'POST', id: ID.alice, body: '{"customer_id":null}', expect: 'OWNERSHIP_RESOURCE_ID_MISSING', evidence: { problem: 'null' } },
  { name: 'body: object member', config: BODY('/customer_id'), method: 'POST', id: ID.alice, body: '{"customer_id":{"id":"alice"}}', expect: 'OWNERSHIP_RESOURCE_ID_MISSING', evidence: { problem: 'a object, not a string or number' } },
  { name: 'body: array member', config: BODY('/customer_id'), method: 'POST', id: ID.alice, body: '{"customer_id":["alice"]}', expect: 'OWNERSHIP_RESOURCE_ID_MISSING', evidence: { problem: 'a array, not a string or number' } },
  { name: 'body: absent member with missing: skip', config: BODY('/customer_id', { missing: 'skip' }), method: 'POST', id: ID.alice, body: '{}', expect: 'skip' },
  { name: 'body: JSON array at the root', config: BODY('/0'), method: 'POST', id: ID.alice, body: '["alice"]', expect: 'allow' },
  // Claims.
  { name: 'claim consumer with an API key identity', config: { ...PATH_ID, claim: 'consumer' }, id: ID.key, params: { id: 'shop' }, expect: 'allow' },
  {
    name: 'claim the credential does not carry (API key, no claims): body never read',
    config: BODY('/customer_id'),
    method: 'POST',
    id: ID.key,
    body: '{"customer_id":"shop"}',
    expect: 'OWNERSHIP_CLAIM_MISSING',
    evidence: { claim: 'sub', consumer: 'shop', credential_type: 'api-key', claims_present: [] },
    readsBody: false,
  },
  { name: 'an empty claim counts as missing', config: { ...PATH_ID, claim: 'empty' }, id: ID.alice, params: { id: '' }, expect: 'OWNERSHIP_CLAIM_MISSING', evidence: { claims_present: ['empty', 'num', 'orgs', 'sub', 'tenant', 'weird'] } },
  { name: 'an object claim counts as missing', config: { ...PATH_ID, claim: 'weird' }, id: ID.alice, params: { id: 'x' }, expect: 'OWNERSHIP_CLAIM_MISSING' },
  { name: 'array claim: member', config: { ...PATH_ID, claim: 'orgs' }, id: ID.alice, params: { id: 'o2' }, expect: 'allow' },
  { name: 'array claim: not a member', config: { ...PATH_ID, claim: 'orgs' }, id: ID.alice, params: { id: 'o3' }, expect: 'OWNERSHIP_NOT_OWNER', evidence: { caller_value: ['o1', 'o2'] } },
  // Overrides.
  { name: 'override by scope', config: { ...PATH_ID, override_permissions: ['orders:admin'] }, id: ID.admin, params: { id: 'alice' }, expect: 'allow', rule: 'override: scope orders:admin', evidence: { override: 'orders:admin', via: 'scope' } },
  { name: 'override by role', config: { ...PATH_ID, override_permissions: ['orders:admin', 'support'] }, id: ID.support, params: { id: 'alice' }, expect: 'allow', evidence: { via: 'role' } },
  { name: 'override not held: checked as usual', config: { ...PATH_ID, override_permissions: ['orders:admin'] }, id: ID.alice, params: { id: 'bob' }, expect: 'OWNERSHIP_NOT_OWNER', evidence: { override_permissions: ['orders:admin'] } },
  { name: 'override needs no body', config: BODY('/customer_id', { override_permissions: ['orders:admin'] }), method: 'POST', id: ID.admin, body: 'not json', expect: 'allow', readsBody: false },
  // Methods.
  { name: 'method not listed: skip', config: { ...PATH_ID, methods: ['POST'] }, method: 'GET', id: undefined, params: { id: 'bob' }, expect: 'skip', rule: 'GET not checked' },
  { name: 'listing GET checks HEAD', config: { ...PATH_ID, methods: ['GET'] }, method: 'HEAD', id: ID.alice, params: { id: 'bob' }, expect: 'OWNERSHIP_NOT_OWNER' },
  // No identity.
  {
    name: 'no identity: 401, body never read',
    config: BODY('/customer_id'),
    method: 'POST',
    id: undefined,
    body: '{"customer_id":"alice"}',
    expect: 'AUTH_OWNERSHIP_UNAUTHENTICATED',
    evidence: { route: 'orders', method: 'POST', resource: 'body /customer_id', claim: 'sub' },
    readsBody: false,
  },
  // Evidence hygiene.
  { name: 'long request values are capped in evidence', config: PATH_ID, id: ID.alice, params: { id: LONG }, expect: 'OWNERSHIP_NOT_OWNER', evidence: { resource_value: `${'x'.repeat(128)}…` } },
];

function facts(c: Case): RequestFacts {
  const params = c.params ?? {};
  return {
    method: c.method ?? 'GET',
    path: `/orders/${Object.values(params)[0] ?? ''}`,
    rawQuery: c.query ?? '',
    host: 'api.example.com',
    headers: c.headers ?? {},
    clientIp: '198.51.100.7',
    clientIpSource: 'socket',
    params,
    contentLength: c.body === undefined ? undefined : Buffer.byteLength(c.body),
    now: 0,
  };
}

void describe('ownership decide', () => {
  for (const c of CASES) {
    void test(c.name, async () => {
      let bodyReads = 0;
      const body = () => {
        bodyReads++;
        return c.body === undefined ? Promise.reject(new Error('no body in this case')) : Promise.resolve(Buffer.from(c.body));
      };
      const d: Decision = await compile(c.config).decide(context({ facts: facts(c), identity: c.id, routeId: 'orders', body }));
      if (c.expect === 'allow' || c.expect === 'skip') assert.equal(d.outcome, c.expect, JSON.stringify(d));
      else {
        assert.equal(d.outcome, 'deny', JSON.stringify(d));
        assert.equal(d.code, c.expect);
        if (CATALOG[d.code].status === 401) assert.deepEqual(d.headers, { 'www-authenticate': 'Bearer realm="pinpoint"' });
        else assert.equal(d.headers, undefined);
      }
      if (c.rule !== undefined) assert.equal(d.rule, c.rule);
      if (c.evidence !== undefined) {
        assert.ok(d.outcome !== 'skip' && d.evidence !== undefined, 'has evidence');
        for (const [k, v] of Object.entries(c.evidence)) assert.deepEqual(d.evidence[k], v, `evidence.${k}`);
      }
      const source = (c.config.resource as { from: string }).from;
      if (c.readsBody !== undefined) assert.equal(bodyReads, c.readsBody ? 1 : 0, 'body reads');
      if (source !== 'body') assert.equal(bodyReads, 0, 'only a body rule reads the body');
    });
  }

  void test('non-body rules decide synchronously', () => {
    const d = compile(PATH_ID).decide(context({ facts: facts({ name: '', config: PATH_ID, id: ID.alice, params: { id: 'alice' }, expect: 'allow' }), identity: ID.alice }));
    assert.equal(typeof (d as { then?: unknown }).then, 'undefined');
  });

  void test('a failing body read is not swallowed (the gateway reports it, e.g. BODY_TOO_LARGE)', async () => {
    const p = compile(BODY('/customer_id'));
    const err = new Error('body passed 10 bytes');
    await assert.rejects(
      async () => await p.decide(context({ facts: { ...facts({ name: '', config: {}, id: ID.alice, expect: 'allow' }), method: 'POST' }, identity: ID.alice, body: () => Promise.reject(err) })),
      (e) => e === err,
    );
  });

  void test('status and layer of each code', () => {
    const table = [
      ['AUTH_OWNERSHIP_UNAUTHENTICATED', 401, 'gateway'],
      ['OWNERSHIP_NOT_OWNER', 403, 'gateway'],
      ['OWNERSHIP_CLAIM_MISSING', 403, 'gateway'],
      ['OWNERSHIP_RESOURCE_ID_MISSING', 400, 'client'],
      ['OWNERSHIP_RESOURCE_ID_AMBIGUOUS', 400, 'client'],
      ['OWNERSHIP_BODY_NOT_JSON', 400, 'client'],
      ['OWNERSHIP_PATH_PARAM_MISSING', 500, 'gateway'],
    ] as const;
    for (const [code, status, layer] of table) assert.deepEqual([CATALOG[code].status, CATALOG[code].layer], [status, layer], code);
  });
});

void describe('ownership compile', () => {
  void test('needsBody only for a body rule', () => {
    assert.equal(compile(BODY('/owner_id')).needsBody, true);
    for (const cfg of [PATH_ID, QUERY_OWNER, HEADER_TENANT]) assert.equal(compile(cfg).needsBody, undefined);
  });

  void test('schema defaults: claim sub, no overrides, every method, missing deny, Bearer challenge', () => {
    const cfg: Record<string, unknown> = { resource: { from: 'path', name: 'id' } };
    assert.deepEqual(validate(OwnershipSchema, cfg, PATH), []);
    assert.deepEqual(cfg, { resource: { from: 'path', name: 'id' }, claim: 'sub', override_permissions: [], methods: [], missing: 'deny', challenge: 'Bearer realm="pinpoint"' });
  });

  void test('compiled policy: id, type, mode', () => {
    const p = ownership.compile({ resource: { from: 'path', name: 'id' }, claim: 'sub', override_permissions: [], methods: [], missing: 'deny', challenge: 'x' }, { id: 'o', mode: 'monitor' }, CTX);
    assert.deepEqual([p.id, p.type, p.mode, p.bodyLimit], ['o', 'ownership', 'monitor', undefined]);
  });

  const ERRORS: readonly { name: string; resource: { from: string; name: string }; message: RegExp }[] = [
    { name: 'body name without a leading slash', resource: { from: 'body', name: 'owner_id' }, message: /must start with "\/"/ },
    { name: 'body pointer with a bad escape', resource: { from: 'body', name: '/a~2b' }, message: /invalid escape/ },
    { name: 'header name with a space', resource: { from: 'header', name: 'x owner' }, message: /not a valid header name/ },
    { name: 'path name written with braces', resource: { from: 'path', name: '{id}' }, message: /without braces/ },
  ];
  for (const c of ERRORS) {
    void test(c.name, () => {
      let caught: unknown;
      try {
        compile({ resource: c.resource });
      } catch (err) {
        caught = err;
      }
      assert.ok(caught instanceof ConfigError, String(caught));
      assert.deepEqual(caught.issues.map((i) => i.path), [`${PATH}.resource.name`]);
      assert.match(caught.issues[0]?.message ?? '', c.message);
    });
  }

  void test('schema rejects an unknown source with its path', () => {
    const issues = validate(OwnershipSchema, { resource: { from: 'cookie', name: 'x' } }, PATH);
    assert.ok(issues.some((i) => i.path === `${PATH}.resource.from` && /must be one of/.test(i.message)), JSON.stringify(issues));
  });

  void test('parsePointer (RFC 6901 §3–4)', () => {
    const table: readonly [string, string[] | RegExp][] = [
      ['', []],
      ['/a', ['a']],
      ['/a/b', ['a', 'b']],
      ['/', ['']],
      ['/a~1b', ['a/b']],
      ['/m~0n', ['m~n']],
      ['/~01', ['~1']],
      ['a', /must start/],
      ['/~', /invalid escape/],
    ];
    for (const [input, want] of table) {
      const got = parsePointer(input);
      if (want instanceof RegExp) assert.match(String(got), want, input);
      else assert.deepEqual(got, want, input);
    }
  });
});
