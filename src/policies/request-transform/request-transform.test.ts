/**
 * `request-transform` through its module: the RequestTransform it produces, what the proxy then
 * sends (src/proxy/transform.ts), the trace it leaves (names only), and compile errors by path.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyIndex } from '../../credentials/api-keys.ts';
import { context, decideSync } from '../../pipeline/testing.ts';
import { ConfigError, type Allow, type CompiledPolicy, type RequestFacts } from '../../pipeline/types.ts';
import { transformHeaders, transformQuery } from '../../proxy/transform.ts';
import { requestTransform } from './index.ts';
import type { RequestTransformConfig } from './schema.ts';

const SECRET = 'upstream-token-5c1f0e8b9a7d';
const ENV = { ORDERS_TOKEN: SECRET, REGION: 'eu-west-1', EMPTY: '', CRLF: 'a\r\nx-injected: 1' };
const PATH = 'policies.upstream-credential.config';
const EMPTY: RequestTransformConfig = { set_headers: {}, remove_headers: [], rename_headers: [], set_query: {}, remove_query: [] };

function compile(config: Partial<RequestTransformConfig>, env: Record<string, string | undefined> = ENV): CompiledPolicy {
  const ctx = { consumers: [], apiKeys: KeyIndex.build([], {}).index, env, path: PATH, baseDir: process.cwd() };
  return requestTransform.compile({ ...EMPTY, ...config }, { id: 'upstream-credential', mode: 'enforce' }, ctx);
}

function facts(headers: Record<string, string | string[] | undefined>, rawQuery = ''): RequestFacts {
  return { method: 'POST', path: '/orders', rawQuery, host: 'api.example.com', headers, clientIp: '198.51.100.1', clientIpSource: 'socket', params: {}, contentLength: undefined, now: 0 };
}

function decide(p: CompiledPolicy, f: RequestFacts): Allow {
  const d = decideSync(p, context({ facts: f }));
  assert.equal(d.outcome, 'allow', 'request-transform never denies');
  return d;
}

interface Case {
  readonly name: string;
  readonly config: Partial<RequestTransformConfig>;
  readonly headers?: Record<string, string | string[] | undefined>;
  readonly query?: string;
  readonly transform: Allow['transform'];
  readonly rule: string;
  readonly evidence?: Record<string, readonly string[]>;
}

const CASES: readonly Case[] = [
  {
    name: 'swap the client credential for the upstream one',
    config: { remove_headers: ['Authorization', 'x-api-key'], set_headers: { Authorization: 'Bearer ${env:ORDERS_TOKEN}' } },
    headers: { authorization: 'Bearer client-jwt', 'x-api-key': 'pp_client' },
    transform: { setHeaders: { authorization: `Bearer ${SECRET}` }, removeHeaders: ['authorization', 'x-api-key'] },
    rule: 'set authorization; removed authorization, x-api-key',
    evidence: { set_headers: ['authorization'], removed_headers: ['authorization', 'x-api-key'] },
  },
  {
    name: 'removal of an absent header is not reported as a change',
    config: { remove_headers: ['x-api-key'] },
    headers: {},
    transform: { removeHeaders: ['x-api-key'] },
    rule: 'nothing to change',
  },
  {
    name: 'several placeholders in one value, and literal text',
    config: { set_headers: { 'x-upstream-ctx': 'region=${env:REGION};v=2' } },
    transform: { setHeaders: { 'x-upstream-ctx': 'region=eu-west-1;v=2' } },
    rule: 'set x-upstream-ctx',
  },
  {
    name: 'rename reads the client value: remove + set',
    config: { rename_headers: [{ from: 'X-User', to: 'x-client-user' }] },
    headers: { 'x-user': 'alice' },
    transform: { setHeaders: { 'x-client-user': 'alice' }, removeHeaders: ['x-user'] },
    rule: 'renamed x-user→x-client-user',
    evidence: { renamed_headers: ['x-user→x-client-user'] },
  },
  {
    name: 'rename of an absent header changes nothing',
    config: { rename_headers: [{ from: 'x-user', to: 'x-client-user' }] },
    headers: {},
    transform: {},
    rule: 'nothing to change',
  },
  {
    name: 'rename of a header kept as a list combines it (RFC 9110 §5.3)',
    config: { rename_headers: [{ from: 'x-tag', to: 'x-client-tag' }] },
    headers: { 'x-tag': ['a', 'b'] },
    transform: { setHeaders: { 'x-client-tag': 'a, b' }, removeHeaders: ['x-tag'] },
    rule: 'renamed x-tag→x-client-tag',
  },
  {
    name: 'rename alongside set and remove',
    config: { set_headers: { 'x-gw': '1' }, remove_headers: ['cookie'], rename_headers: [{ from: 'x-user', to: 'x-client-user' }] },
    headers: { 'x-user': 'bob', cookie: 'sid=1' },
    transform: { setHeaders: { 'x-gw': '1', 'x-client-user': 'bob' }, removeHeaders: ['cookie', 'x-user'] },
    rule: 'set x-gw; removed cookie; renamed x-user→x-client-user',
  },
  {
    name: 'query: set from env, remove a key the client put in the URL',
    config: { set_query: { key: '${env:ORDERS_TOKEN}' }, remove_query: ['api_key', 'debug'] },
    query: 'api_key=pp_client&page=2',
    transform: { setQuery: { key: SECRET }, removeQuery: ['api_key', 'debug'] },
    rule: 'set query key; removed query api_key',
    evidence: { set_query: ['key'], removed_query: ['api_key'] },
  },
  { name: 'empty config: an empty transform', config: {}, transform: {}, rule: 'nothing to change' },
];

void describe('request-transform decide', () => {
  for (const c of CASES) {
    void test(c.name, () => {
      const d = decide(compile(c.config), facts(c.headers ?? {}, c.query));
      assert.deepEqual(d.transform, c.transform);
      assert.equal(d.rule, c.rule);
      if (c.evidence !== undefined) assert.deepEqual(d.evidence, c.evidence);
      // The trace (rule + evidence) names what changed, never a value.
      const traced = JSON.stringify({ rule: d.rule, evidence: d.evidence });
      for (const v of [SECRET, 'alice', 'bob', 'pp_client', 'eu-west-1']) assert.ok(!traced.includes(v), `trace leaks a value: ${traced}`);
    });
  }

  void test('what the proxy sends upstream after the transform', () => {
    const p = compile({
      remove_headers: ['x-api-key'],
      set_headers: { authorization: 'Bearer ${env:ORDERS_TOKEN}' },
      rename_headers: [{ from: 'x-user', to: 'x-client-user' }],
      set_query: { key: 'k1' },
      remove_query: ['api_key'],
    });
    const d = decide(p, facts({ authorization: 'Bearer client', 'x-api-key': 'pp_client', 'x-user': 'alice' }, 'api_key=pp_client&page=2'));
    assert.ok(d.transform !== undefined);
    const raw = ['Authorization', 'Bearer client', 'X-Api-Key', 'pp_client', 'X-User', 'alice', 'Accept', 'application/json'];
    assert.deepEqual(transformHeaders(raw, [d.transform]), ['Accept', 'application/json', 'authorization', `Bearer ${SECRET}`, 'x-client-user', 'alice']);
    assert.equal(transformQuery('api_key=pp_client&page=2', [d.transform]), 'page=2&key=k1');
  });

  void test('the compiled transform is frozen and reused when nothing depends on the request', () => {
    const p = compile({ set_headers: { 'x-gw': '1' } });
    const a = decide(p, facts({}));
    const b = decide(p, facts({ 'x-other': 'y' }));
    assert.equal(a.transform, b.transform);
    assert.ok(Object.isFrozen(a.transform) && Object.isFrozen(a.transform?.setHeaders));
  });
});

void describe('request-transform compile', () => {
  const BAD: readonly { name: string; config: Partial<RequestTransformConfig>; env?: Record<string, string>; issues: readonly [string, string][] }[] = [
    {
      name: 'unset env variable, naming the exact path',
      config: { set_headers: { authorization: 'Bearer ${env:MISSING_TOKEN}' } },
      issues: [[`${PATH}.set_headers.authorization`, 'environment variable MISSING_TOKEN is not set']],
    },
    {
      name: 'empty env variable',
      config: { set_query: { key: '${env:EMPTY}' } },
      issues: [[`${PATH}.set_query.key`, 'environment variable EMPTY is empty']],
    },
    {
      name: 'every unset variable is reported',
      config: { set_headers: { 'x-a': '${env:A1}', 'x.b': '${env:B2}' } },
      issues: [
        [`${PATH}.set_headers.x-a`, 'environment variable A1 is not set'],
        [`${PATH}.set_headers["x.b"]`, 'environment variable B2 is not set'],
      ],
    },
    {
      name: 'placeholder that is not ${env:NAME}',
      config: { set_headers: { 'x-a': '${ENV:ORDERS_TOKEN}' } },
      issues: [[`${PATH}.set_headers.x-a`, 'unsupported placeholder ${ENV:ORDERS_TOKEN}: only ${env:NAME} is recognised']],
    },
    {
      name: 'CR/LF in the resolved value (header injection); the value is not echoed',
      config: { set_headers: { 'x-a': '${env:CRLF}' } },
      issues: [[`${PATH}.set_headers.x-a`, 'the value (after ${env:...} substitution) contains control or non-Latin-1 characters, which a header cannot carry']],
    },
    { name: 'not a header name', config: { set_headers: { 'bad name': 'x' } }, issues: [[`${PATH}.set_headers["bad name"]`, '"bad name" is not a header name']] },
    { name: 'framing header', config: { set_headers: { 'Content-Length': '0' } }, issues: [[`${PATH}.set_headers.Content-Length`, 'content-length is managed by the proxy and cannot be set']] },
    { name: 'duplicate set by case', config: { set_headers: { 'x-a': '1', 'X-A': '2' } }, issues: [[`${PATH}.set_headers.X-A`, `same header as ${PATH}.set_headers.x-a (header names are case-insensitive)`]] },
    { name: 'removing Host', config: { remove_headers: ['x-a', 'Host'] }, issues: [[`${PATH}.remove_headers[1]`, 'host is managed by the proxy and cannot be removed']] },
    { name: 'rename to itself', config: { rename_headers: [{ from: 'x-a', to: 'X-A' }] }, issues: [[`${PATH}.rename_headers[0].to`, 'renaming a header to itself changes nothing']] },
    { name: 'rename of a set header', config: { set_headers: { 'x-a': '1' }, rename_headers: [{ from: 'x-a', to: 'x-b' }] }, issues: [[`${PATH}.rename_headers[0].from`, "x-a is also in set_headers; rename reads the client's value, set replaces it — keep one"]] },
    { name: 'rename onto a set header', config: { set_headers: { 'x-b': '1' }, rename_headers: [{ from: 'x-a', to: 'x-b' }] }, issues: [[`${PATH}.rename_headers[0].to`, 'x-b is also in set_headers; keep one']] },
    { name: 'rename of a removed header', config: { remove_headers: ['x-a'], rename_headers: [{ from: 'x-a', to: 'x-b' }] }, issues: [[`${PATH}.rename_headers[0].from`, 'x-a is also in remove_headers, so there would be nothing to rename']] },
    { name: 'two renames onto one name', config: { rename_headers: [{ from: 'x-a', to: 'x-c' }, { from: 'x-b', to: 'x-c' }] }, issues: [[`${PATH}.rename_headers[1].to`, 'two headers are renamed to x-c']] },
    { name: 'rename of a framing header', config: { rename_headers: [{ from: 'transfer-encoding', to: 'x-te' }] }, issues: [[`${PATH}.rename_headers[0].from`, 'transfer-encoding is managed by the proxy and cannot be renamed']] },
  ];
  for (const c of BAD) {
    void test(`rejects: ${c.name}`, () => {
      assert.throws(
        () => compile(c.config, c.env),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.deepEqual(err.issues.map((i) => [i.path, i.message]), c.issues);
          assert.ok(!err.message.includes(SECRET) && !err.message.includes('x-injected'), 'a config error never carries a resolved value');
          return true;
        },
      );
    });
  }

  void test('set and remove of the same header: the configured value replaces the client one', () => {
    const d = decide(compile({ set_headers: { authorization: 'Bearer ${env:ORDERS_TOKEN}' }, remove_headers: ['authorization'] }), facts({ authorization: 'Bearer c' }));
    assert.deepEqual(transformHeaders(['authorization', 'Bearer c'], d.transform ? [d.transform] : []), ['authorization', `Bearer ${SECRET}`]);
  });

  void test('id, type and mode; never needs the body', () => {
    const p = compile({});
    assert.deepEqual([p.id, p.type, p.mode, p.needsBody], ['upstream-credential', 'request-transform', 'enforce', undefined]);
  });
});
