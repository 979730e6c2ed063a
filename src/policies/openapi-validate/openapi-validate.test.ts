/**
 * `openapi-validate` against the orders API fixtures (fixtures/orders-3.0.yaml and its 3.1 twin):
 * every case runs against both documents and must give the same code, pointers and rules.
 * Assertions are on codes, evidence and headers, never on prose.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { KeyIndex } from '../../credentials/api-keys.ts';
import { CATALOG } from '../../errors/catalog.ts';
import { context } from '../../pipeline/testing.ts';
import { ConfigError, type CompiledPolicy, type Decision, type RequestFacts } from '../../pipeline/types.ts';
import { openapiValidate } from './index.ts';
import type { OpenApiValidateConfig } from './schema.ts';

const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const VERSIONS = ['3.0', '3.1'] as const;
const PATH = 'policies.orders-contract.config';
const DEFAULTS: Omit<OpenApiValidateConfig, 'spec'> = { base_path: '', use_servers: false, unknown_operations: 'deny', max_errors: 20 };

function compile(version: (typeof VERSIONS)[number], config: Partial<OpenApiValidateConfig> = {}, baseDir = FIXTURES): CompiledPolicy {
  const ctx = { consumers: [], apiKeys: KeyIndex.build([], {}).index, env: {}, path: PATH, baseDir };
  return openapiValidate.compile({ spec: `orders-${version}.yaml`, ...DEFAULTS, ...config }, { id: 'orders-contract', mode: 'enforce' }, ctx);
}

const compiled = new Map(VERSIONS.map((v) => [v, compile(v)]));

interface Req {
  readonly method?: string;
  readonly path: string;
  readonly query?: string;
  readonly headers?: Record<string, string>;
  /** A string or object is sent as-is / as JSON; a Buffer as bytes. */
  readonly body?: string | Buffer | Record<string, unknown>;
  /** Send the body chunked (no Content-Length). */
  readonly chunked?: boolean;
}

interface Outcome {
  readonly decision: Decision;
  /** Whether decide returned a promise (it must not, unless a JSON body is read). */
  readonly async: boolean;
  readonly bodyRead: boolean;
}

const TENANT = { 'x-tenant': 'acme-eu' };
const JSON_CT = { ...TENANT, 'content-type': 'application/json' };

async function run(p: CompiledPolicy, r: Req): Promise<Outcome> {
  const buf = r.body === undefined ? undefined : Buffer.isBuffer(r.body) ? r.body : Buffer.from(typeof r.body === 'string' ? r.body : JSON.stringify(r.body));
  const headers: Record<string, string> = { ...r.headers };
  if (buf !== undefined) {
    if (r.chunked === true) headers['transfer-encoding'] = 'chunked';
    else headers['content-length'] = String(buf.length);
  }
  const facts: RequestFacts = {
    method: r.method ?? 'GET',
    path: r.path,
    rawQuery: r.query ?? '',
    host: 'api.example.com',
    headers,
    clientIp: '198.51.100.1',
    clientIpSource: 'socket',
    params: {},
    contentLength: buf === undefined || r.chunked === true ? undefined : buf.length,
    now: 0,
  };
  let bodyRead = false;
  const body = (): Promise<Buffer> => {
    bodyRead = true;
    return Promise.resolve(buf ?? Buffer.alloc(0));
  };
  const d = p.decide(context({ facts, routeId: 'orders', body }));
  const async = typeof (d as { then?: unknown }).then === 'function';
  return { decision: await d, async, bodyRead };
}

type Expect =
  | 'allow'
  | 'skip'
  | 'OPENAPI_OPERATION_NOT_FOUND'
  | 'OPENAPI_METHOD_NOT_ALLOWED'
  | 'OPENAPI_PARAMS_INVALID'
  | 'OPENAPI_BODY_INVALID'
  | 'OPENAPI_BODY_NOT_JSON'
  | 'OPENAPI_MEDIA_TYPE_UNSUPPORTED';

interface Case {
  readonly name: string;
  readonly config?: Partial<OpenApiValidateConfig>;
  readonly req: Req;
  readonly expect: Expect;
  /** Exact `errors` evidence. */
  readonly errors?: readonly string[];
  /** Exact `rules` evidence. */
  readonly rules?: readonly string[];
  /** Evidence fields to compare one by one. */
  readonly evidence?: Record<string, unknown>;
  /** Exact denial headers; null asserts none. */
  readonly headers?: Record<string, string> | null;
  /** Whether the body must have been read (default: not asserted). */
  readonly bodyRead?: boolean;
}

const GOOD_ORDER = { customer: 'c-1', note: null, items: [{ sku: 'ABC-1', quantity: 2, bundle: [{ sku: 'XYZ-9', quantity: 1 }] }] };

const CASES: readonly Case[] = [
  // Operations: found, 404, 405.
  { name: 'described operation, valid', req: { path: '/orders', headers: TENANT }, expect: 'allow', evidence: { operation: 'GET /orders', operation_id: 'listOrders' }, bodyRead: false },
  { name: 'concrete path before templated (/orders/mine)', req: { path: '/orders/mine' }, expect: 'allow', evidence: { operation: 'GET /orders/mine', operation_id: 'listMyOrders' } },
  { name: 'HEAD follows GET (RFC 9110 §9.3.2)', req: { method: 'HEAD', path: '/orders', headers: TENANT }, expect: 'allow', evidence: { operation: 'GET /orders' } },
  {
    name: 'path not in the document: 404 with nearest paths',
    req: { path: '/order', headers: TENANT },
    expect: 'OPENAPI_OPERATION_NOT_FOUND',
    evidence: { method: 'GET', path: '/order', base_path: '(none)', nearest: ['/orders', '/orders/{id}', '/orders/mine'] },
    headers: null,
  },
  { name: 'trailing slash is another path', req: { path: '/orders/' }, expect: 'OPENAPI_OPERATION_NOT_FOUND' },
  { name: 'letter case matters', req: { path: '/Orders' }, expect: 'OPENAPI_OPERATION_NOT_FOUND' },
  {
    name: 'method not in the document: 405 with Allow from it',
    req: { method: 'PUT', path: '/orders', headers: TENANT },
    expect: 'OPENAPI_METHOD_NOT_ALLOWED',
    evidence: { method: 'PUT', path_template: '/orders', allow: ['GET', 'HEAD', 'POST'] },
    headers: { allow: 'GET, HEAD, POST' },
  },
  {
    name: '405 on a templated path',
    req: { method: 'POST', path: '/orders/42' },
    expect: 'OPENAPI_METHOD_NOT_ALLOWED',
    evidence: { path_template: '/orders/{id}', allow: ['GET', 'HEAD', 'PATCH', 'DELETE'] },
    headers: { allow: 'GET, HEAD, PATCH, DELETE' },
  },
  {
    name: 'a method missing on the concrete path falls back to the templated one',
    req: { method: 'DELETE', path: '/orders/mine' },
    expect: 'OPENAPI_PARAMS_INVALID',
    errors: ['/path/id: must be integer'],
    rules: ['/path/id: type integer'],
  },

  // Parameters: path, query, header, cookie.
  { name: 'path parameter coerced from a string', req: { path: '/orders/42' }, expect: 'allow', evidence: { operation: 'GET /orders/{id}' } },
  { name: 'path parameter below minimum', req: { path: '/orders/0' }, expect: 'OPENAPI_PARAMS_INVALID', errors: ['/path/id: must be >= 1'], rules: ['/path/id: minimum 1'] },
  { name: 'path parameter outside int32', req: { path: '/orders/3000000000' }, expect: 'OPENAPI_PARAMS_INVALID', errors: ['/path/id: must match format "int32"'], rules: ['/path/id: format int32'] },
  { name: 'percent-encoded path parameter is decoded', req: { path: '/orders/%34%32' }, expect: 'allow' },
  { name: 'several parameters in one segment', req: { path: '/files/report.pdf' }, expect: 'allow', evidence: { operation: 'GET /files/{name}.{ext}' } },
  {
    name: 'several parameters in one segment, both wrong',
    req: { path: '/files/Report.doc' },
    expect: 'OPENAPI_PARAMS_INVALID',
    errors: ['/path/name: must match pattern "^[a-z]+$"', '/path/ext: must be equal to one of the allowed values'],
    rules: ['/path/name: pattern ^[a-z]+$', '/path/ext: enum pdf, csv'],
  },
  { name: 'query parameters coerced and in range', req: { path: '/orders', query: 'limit=10&status=open&tag=a&tag=b&ids=1,2,3&filter[min_total]=2.5&filter[currency]=EUR', headers: TENANT }, expect: 'allow' },
  { name: 'query integer that is not a number', req: { path: '/orders', query: 'limit=ten', headers: TENANT }, expect: 'OPENAPI_PARAMS_INVALID', errors: ['/query/limit: must be integer'], rules: ['/query/limit: type integer'] },
  { name: 'empty query integer', req: { path: '/orders', query: 'limit=', headers: TENANT }, expect: 'OPENAPI_PARAMS_INVALID', errors: ['/query/limit: must be integer'] },
  { name: 'a primitive sent twice', req: { path: '/orders', query: 'limit=1&limit=2', headers: TENANT }, expect: 'OPENAPI_PARAMS_INVALID', errors: ['/query/limit: must be integer'] },
  {
    name: 'every failing parameter is listed, in request order',
    req: { path: '/orders', query: 'limit=0&status=lost&tag=a&tag=b&tag=c&tag=d&ids=1,2,x&filter[min_total]=-1&filter[currency]=eur', headers: { 'x-tenant': 'Bad_Tenant', cookie: 'session=short' } },
    expect: 'OPENAPI_PARAMS_INVALID',
    errors: [
      '/query/limit: must be >= 1',
      '/query/status: must be equal to one of the allowed values',
      '/query/tag: must NOT have more than 3 items',
      '/query/ids/2: must be integer',
      '/query/filter/min_total: must be >= 0',
      '/query/filter/currency: must match pattern "^[A-Z]{3}$"',
      '/header/x-tenant: must match pattern "^[a-z0-9-]{3,32}$"',
      '/cookie/session: must NOT have fewer than 8 characters',
    ],
    rules: [
      '/query/limit: minimum 1',
      '/query/status: enum open, shipped, cancelled',
      '/query/tag: maxItems 3',
      '/query/ids/2: type integer',
      '/query/filter/min_total: minimum 0',
      '/query/filter/currency: pattern ^[A-Z]{3}$',
      '/header/x-tenant: pattern ^[a-z0-9-]{3,32}$',
      '/cookie/session: minLength 8',
    ],
    evidence: { operation: 'GET /orders', operation_id: 'listOrders', error_count: 8 },
  },
  {
    name: 'an array item too long',
    req: { path: '/orders', query: 'tag=abcdefghijk', headers: TENANT },
    expect: 'OPENAPI_PARAMS_INVALID',
    errors: ['/query/tag/0: must NOT have more than 10 characters'],
    rules: ['/query/tag/0: maxLength 10'],
  },
  { name: 'required header missing (path-level parameter)', req: { path: '/orders' }, expect: 'OPENAPI_PARAMS_INVALID', errors: ['/header/x-tenant: is required'], rules: ['/header/x-tenant: required'] },
  { name: 'header names are case-insensitive', req: { path: '/orders', headers: { 'x-tenant': 'acme' } }, expect: 'allow' },
  {
    name: 'header parameter coerced to integer and bounded',
    req: { path: '/orders/7', headers: { 'x-request-priority': '12' } },
    expect: 'OPENAPI_PARAMS_INVALID',
    errors: ['/header/x-request-priority: must be <= 9'],
    rules: ['/header/x-request-priority: maximum 9'],
  },
  { name: 'an Accept header parameter is ignored (Parameter Object: SHALL be ignored)', req: { path: '/orders', headers: { ...TENANT, accept: 'text/html' } }, expect: 'allow' },
  { name: 'cookie parameter valid', req: { path: '/orders', headers: { ...TENANT, cookie: 'theme=dark; session=abcdefgh12' } }, expect: 'allow' },

  // JSON body.
  { name: 'valid body (readOnly id not required in a request; nullable note)', req: { method: 'POST', path: '/orders', headers: JSON_CT, body: GOOD_ORDER }, expect: 'allow', bodyRead: true, evidence: { operation: 'POST /orders', operation_id: 'createOrder' } },
  { name: 'charset parameter does not change the media type', req: { method: 'POST', path: '/orders', headers: { ...TENANT, 'content-type': 'application/json; charset=utf-8' }, body: GOOD_ORDER }, expect: 'allow' },
  { name: 'a UTF-8 BOM is tolerated (RFC 8259 §8.1)', req: { method: 'POST', path: '/orders', headers: JSON_CT, body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(GOOD_ORDER))]) }, expect: 'allow' },
  {
    name: 'every failing body field, nested and recursive, as JSON pointers',
    req: {
      method: 'POST',
      path: '/orders',
      headers: JSON_CT,
      body: { customer: '', note: 5, discount: 100, extra: 1, items: [{ sku: 'ABC-1', quantity: 0 }, { quantity: 1, bundle: [{ sku: 'x', quantity: 1 }] }] },
    },
    expect: 'OPENAPI_BODY_INVALID',
    errors: [
      '/body/extra: is not allowed',
      '/body/customer: must NOT have fewer than 1 characters',
      '/body/note: must be string,null',
      '/body/discount: must be < 100',
      '/body/items/0/quantity: must be >= 1',
      '/body/items/1/sku: is required',
      '/body/items/1/bundle/0/sku: must match pattern "^[A-Z]{3}-[0-9]+$"',
    ],
    rules: [
      '/body/extra: additionalProperties false',
      '/body/customer: minLength 1',
      '/body/note: type string,null',
      '/body/discount: exclusiveMaximum 100',
      '/body/items/0/quantity: minimum 1',
      '/body/items/1/sku: required',
      '/body/items/1/bundle/0/sku: pattern ^[A-Z]{3}-[0-9]+$',
    ],
    evidence: { operation: 'POST /orders', error_count: 7 },
    bodyRead: true,
  },
  {
    name: 'a body nested past the stack is refused, not a crash',
    req: { method: 'POST', path: '/orders', headers: JSON_CT, body: `{"customer":"c","items":[${'{"sku":"ABC-1","quantity":1,"bundle":['.repeat(40000)}${']}'.repeat(40000)}]}` },
    expect: 'OPENAPI_BODY_INVALID',
    errors: ['/body: is nested too deeply to validate'],
    rules: ['/body: depth'],
  },
  { name: 'missing required fields', req: { method: 'POST', path: '/orders', headers: JSON_CT, body: {} }, expect: 'OPENAPI_BODY_INVALID', errors: ['/body/customer: is required', '/body/items: is required'] },
  { name: 'body of the wrong JSON type', req: { method: 'POST', path: '/orders', headers: JSON_CT, body: '[1,2]' }, expect: 'OPENAPI_BODY_INVALID', errors: ['/body: must be object'], rules: ['/body: type object'] },
  { name: 'required body absent', req: { method: 'POST', path: '/orders', headers: TENANT }, expect: 'OPENAPI_BODY_INVALID', errors: ['/body: is required'], rules: ['/body: requestBody required'], bodyRead: false },
  { name: 'chunked body that turns out empty', req: { method: 'POST', path: '/orders', headers: JSON_CT, body: '', chunked: true }, expect: 'OPENAPI_BODY_INVALID', errors: ['/body: is required'], bodyRead: true },
  { name: 'chunked JSON body', req: { method: 'POST', path: '/orders', headers: JSON_CT, body: GOOD_ORDER, chunked: true }, expect: 'allow', bodyRead: true },
  {
    name: 'truncated JSON: its own code, no body text in evidence',
    req: { method: 'POST', path: '/orders', headers: JSON_CT, body: '{"customer": "secret-name", ' },
    expect: 'OPENAPI_BODY_NOT_JSON',
    evidence: { operation: 'POST /orders', content_type: 'application/json', reason: 'JSON ends early', received_bytes: 28 },
  },
  {
    name: 'not JSON at all',
    req: { method: 'POST', path: '/orders', headers: JSON_CT, body: 'customer=secret-name&items=1' },
    expect: 'OPENAPI_BODY_NOT_JSON',
    evidence: { content_type: 'application/json', reason: 'invalid JSON' },
  },
  {
    name: 'JSON with a syntax error gives where it stopped',
    req: { method: 'POST', path: '/orders', headers: JSON_CT, body: '{"customer" "c"}' },
    expect: 'OPENAPI_BODY_NOT_JSON',
    evidence: { reason: 'invalid JSON at character 12' },
  },
  {
    name: 'not UTF-8',
    req: { method: 'POST', path: '/orders', headers: JSON_CT, body: Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d]) },
    expect: 'OPENAPI_BODY_NOT_JSON',
    evidence: { reason: 'not UTF-8 (RFC 8259 §8.1)', received_bytes: 5 },
  },
  {
    name: 'a body format the operation does not take: 415 with Accept-Post',
    req: { method: 'POST', path: '/orders', headers: { ...TENANT, 'content-type': 'application/x-www-form-urlencoded' }, body: 'customer=c' },
    expect: 'OPENAPI_MEDIA_TYPE_UNSUPPORTED',
    evidence: { operation: 'POST /orders', sent: 'application/x-www-form-urlencoded', accepted: ['application/json', 'multipart/form-data'] },
    headers: { 'accept-post': 'application/json, multipart/form-data' },
    bodyRead: false,
  },
  { name: 'a body without Content-Type', req: { method: 'POST', path: '/orders', headers: TENANT, body: GOOD_ORDER }, expect: 'OPENAPI_MEDIA_TYPE_UNSUPPORTED', evidence: { sent: 'no Content-Type' } },
  { name: 'a non-JSON format the operation takes is not read', req: { method: 'POST', path: '/orders', headers: { ...TENANT, 'content-type': 'multipart/form-data; boundary=x' }, body: '--x--' }, expect: 'allow', bodyRead: false },
  {
    name: 'parameters and body both wrong: parameters give the code, every field is listed',
    req: { method: 'POST', path: '/orders', headers: { 'content-type': 'application/json' }, body: { customer: 'c', items: [] } },
    expect: 'OPENAPI_PARAMS_INVALID',
    errors: ['/header/x-tenant: is required', '/body/items: must NOT have fewer than 1 items'],
    rules: ['/header/x-tenant: required', '/body/items: minItems 1'],
  },
  {
    name: 'parameters wrong and body not JSON: one list',
    req: { method: 'POST', path: '/orders', headers: { 'content-type': 'application/json' }, body: '{' },
    expect: 'OPENAPI_PARAMS_INVALID',
    errors: ['/header/x-tenant: is required', '/body: is not valid JSON: JSON ends early'],
  },
  {
    name: 'request body by $ref, +json media type, nullable',
    req: { method: 'PATCH', path: '/orders/5', headers: { 'content-type': 'application/merge-patch+json' }, body: { note: null, status: 'cancelled' } },
    expect: 'allow',
    evidence: { operation: 'PATCH /orders/{id}', operation_id: 'updateOrder' },
  },
  {
    name: 'request body by $ref, invalid',
    req: { method: 'PATCH', path: '/orders/5', headers: { 'content-type': 'application/merge-patch+json' }, body: { status: 'lost' } },
    expect: 'OPENAPI_BODY_INVALID',
    errors: ['/body/status: must be equal to one of the allowed values'],
    rules: ['/body/status: enum open, cancelled'],
  },
  { name: 'minProperties on an empty patch', req: { method: 'PATCH', path: '/orders/5', headers: { 'content-type': 'application/merge-patch+json' }, body: {} }, expect: 'OPENAPI_BODY_INVALID', errors: ['/body: must NOT have fewer than 1 properties'], rules: ['/body: minProperties 1'] },
  {
    name: 'PATCH with the wrong format: Accept-Patch (RFC 5789 §3.1)',
    req: { method: 'PATCH', path: '/orders/5', headers: { 'content-type': 'application/json' }, body: {} },
    expect: 'OPENAPI_MEDIA_TYPE_UNSUPPORTED',
    headers: { 'accept-patch': 'application/merge-patch+json' },
  },
  { name: 'an operation without a request body never reads one', req: { method: 'DELETE', path: '/orders/5', headers: JSON_CT, body: { x: 1 } }, expect: 'allow', bodyRead: false },

  // Base paths and unknown operations.
  { name: 'base_path stripped', config: { base_path: '/v1' }, req: { path: '/v1/orders', headers: TENANT }, expect: 'allow' },
  { name: 'base_path alone is the root', config: { base_path: '/v1' }, req: { path: '/v1' }, expect: 'OPENAPI_OPERATION_NOT_FOUND' },
  { name: 'outside the base path', config: { base_path: '/v1' }, req: { path: '/orders' }, expect: 'OPENAPI_OPERATION_NOT_FOUND', evidence: { base_path: '/v1', path: '/orders' } },
  { name: 'a prefix of a segment is not the base path', config: { base_path: '/v1' }, req: { path: '/v10/orders' }, expect: 'OPENAPI_OPERATION_NOT_FOUND' },
  { name: 'base path from servers[].url (variables at defaults)', config: { use_servers: true }, req: { path: '/v1/orders/9' }, expect: 'allow' },
  { name: 'unknown path allowed when configured', config: { unknown_operations: 'allow' }, req: { path: '/nope' }, expect: 'skip' },
  { name: 'unknown method allowed when configured', config: { unknown_operations: 'allow' }, req: { method: 'PUT', path: '/orders' }, expect: 'skip' },
  {
    name: 'max_errors bounds the list, error_count keeps the total',
    config: { max_errors: 1 },
    req: { path: '/orders', query: 'limit=0&status=lost' },
    expect: 'OPENAPI_PARAMS_INVALID',
    errors: ['/query/limit: must be >= 1'],
    evidence: { error_count: 3 },
  },
];

function outcome(d: Decision): string {
  return d.outcome === 'deny' ? d.code : d.outcome;
}

for (const version of VERSIONS) {
  void describe(`openapi-validate decide (OpenAPI ${version})`, () => {
    for (const c of CASES) {
      void test(c.name, async () => {
        const p = c.config === undefined ? (compiled.get(version) as CompiledPolicy) : compile(version, c.config);
        const { decision: d, async, bodyRead } = await run(p, c.req);
        assert.equal(outcome(d), c.expect, JSON.stringify(d));
        const ev = d.outcome === 'skip' ? undefined : d.evidence;
        if (c.errors !== undefined) assert.deepEqual(ev?.errors, c.errors);
        if (c.rules !== undefined) assert.deepEqual(ev?.rules, c.rules);
        for (const [k, v] of Object.entries(c.evidence ?? {})) assert.deepEqual(ev?.[k], v, `evidence.${k}`);
        if (c.headers !== undefined) {
          assert.equal(d.outcome, 'deny');
          assert.deepEqual(d.headers, c.headers ?? undefined);
        }
        if (c.bodyRead !== undefined) assert.equal(bodyRead, c.bodyRead, 'body read');
        // Only an operation whose JSON body must be read decides asynchronously.
        if (!bodyRead) assert.equal(async, false, 'decided synchronously');
        // Evidence never carries body values.
        assert.ok(!JSON.stringify(d).includes('secret-name'), 'a body value leaked into the decision');
      });
    }
  });
}

void describe('openapi-validate contract', () => {
  void test('statuses: 400 field errors, 404, 405, 415', () => {
    assert.deepEqual(
      (['OPENAPI_PARAMS_INVALID', 'OPENAPI_BODY_INVALID', 'OPENAPI_BODY_NOT_JSON', 'OPENAPI_OPERATION_NOT_FOUND', 'OPENAPI_METHOD_NOT_ALLOWED', 'OPENAPI_MEDIA_TYPE_UNSUPPORTED'] as const).map((c) => CATALOG[c].status),
      [400, 400, 400, 404, 405, 415],
    );
  });

  void test('the compiled policy declares needsBody', () => {
    const p = compiled.get('3.0') as CompiledPolicy;
    assert.deepEqual([p.id, p.type, p.mode, p.needsBody], ['orders-contract', 'openapi-validate', 'enforce', true]);
  });

  void test('a dry run without a body says what it could check; a live read failure propagates', async () => {
    const p = compiled.get('3.0') as CompiledPolicy;
    const facts = (headers: Record<string, string>): RequestFacts => ({
      method: 'POST', path: '/orders', rawQuery: '', host: 'h', headers: { ...headers, 'content-type': 'application/json', 'content-length': '10' },
      clientIp: '::1', clientIpSource: 'socket', params: {}, contentLength: 10, now: 0,
    });
    const gone = (): Promise<Buffer> => Promise.reject(new Error('no body recorded'));
    assert.equal(outcome(await p.decide(context({ facts: facts(TENANT), dryRun: true, body: gone }))), 'skip');
    assert.equal(outcome(await p.decide(context({ facts: facts({}), dryRun: true, body: gone }))), 'OPENAPI_PARAMS_INVALID');
    await assert.rejects(async () => p.decide(context({ facts: facts(TENANT), body: gone })), /no body recorded/);
  });

  void test('a JSON document and an absolute spec path', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pinpoint-openapi-'));
    try {
      const file = path.join(dir, 'orders.json');
      writeFileSync(file, JSON.stringify(parse(readFileSync(path.join(FIXTURES, 'orders-3.1.yaml'), 'utf8'))));
      const p = compile('3.1', { spec: file }, '/nonexistent');
      const d = p.decide(context({ facts: { method: 'GET', path: '/orders/0', rawQuery: '', host: 'h', headers: {}, clientIp: '::1', clientIpSource: 'socket', params: {}, contentLength: undefined, now: 0 } }));
      assert.equal(outcome(d as Decision), 'OPENAPI_PARAMS_INVALID');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

void describe('openapi-validate compile errors', () => {
  const MINIMAL = (extra: string): string => `openapi: 3.0.3\ninfo: { title: t, version: '1' }\n${extra}`;
  const BAD: readonly { name: string; doc?: string; config?: Partial<OpenApiValidateConfig>; path: string; message: RegExp }[] = [
    { name: 'file not found', config: { spec: 'missing.yaml' }, path: `${PATH}.spec`, message: /cannot read .*missing\.yaml: ENOENT/ },
    { name: 'not YAML', doc: 'openapi: [unclosed', path: `${PATH}.spec`, message: /is not valid YAML or JSON/ },
    { name: 'Swagger 2.0', doc: 'swagger: "2.0"\npaths: {}', path: `${PATH}.spec`, message: /is Swagger "2\.0"; convert it/ },
    { name: 'unsupported version', doc: 'openapi: 4.0.0\npaths: {}', path: `${PATH}.spec`, message: /openapi version "4\.0\.0" is not supported/ },
    { name: 'no paths', doc: MINIMAL(''), path: `${PATH}.spec`, message: /describes no paths/ },
    {
      name: 'external $ref',
      doc: MINIMAL("paths:\n  /a:\n    post:\n      requestBody:\n        content:\n          application/json:\n            schema: { $ref: 'schemas.yaml#/Order' }"),
      path: `${PATH}.spec`,
      message: /external \$ref \(schemas\.yaml#\/Order at #\/paths\/~1a\/post\/requestBody\/content\/application~1json\/schema\); bundle/,
    },
    {
      name: 'schema $ref to nothing',
      doc: MINIMAL("paths:\n  /a:\n    post:\n      requestBody:\n        content:\n          application/json:\n            schema: { $ref: '#/components/schemas/Nope' }"),
      path: `${PATH}.spec`,
      message: /at #\/paths\/~1a\/post\/requestBody: can't resolve reference/,
    },
    {
      name: 'parameter $ref to nothing',
      doc: MINIMAL("paths:\n  /a:\n    get:\n      parameters: [{ $ref: '#/components/parameters/Nope' }]"),
      path: `${PATH}.spec`,
      message: /at #\/paths\/~1a\/get\/parameters\/0: \$ref "#\/components\/parameters\/Nope" points to nothing/,
    },
    {
      name: 'invalid schema',
      doc: MINIMAL('paths:\n  /a:\n    get:\n      parameters: [{ name: n, in: query, schema: { type: integer, minimum: low } }]'),
      path: `${PATH}.spec`,
      message: /at #\/paths\/~1a\/get\/parameters\/0\/schema: invalid schema: \/minimum must be number/,
    },
    { name: 'parameter without schema', doc: MINIMAL('paths:\n  /a:\n    get:\n      parameters: [{ name: n, in: query }]'), path: `${PATH}.spec`, message: /parameter n has neither schema nor content/ },
    { name: 'bad path template', doc: MINIMAL('paths:\n  /a/{id:\n    get: {}'), path: `${PATH}.spec`, message: /unbalanced/ },
    { name: 'base_path with a trailing slash', config: { base_path: '/v1/' }, path: `${PATH}.base_path`, message: /starts with "\/" and does not end with one/ },
    { name: 'base_path without a leading slash', config: { base_path: 'v1' }, path: `${PATH}.base_path`, message: /starts with "\/"/ },
  ];
  for (const c of BAD) {
    void test(`rejects: ${c.name}`, () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'pinpoint-openapi-'));
      try {
        if (c.doc !== undefined) writeFileSync(path.join(dir, 'api.yaml'), c.doc);
        assert.throws(
          () => compile('3.0', { spec: 'api.yaml', ...c.config }, dir),
          (err: unknown) => {
            assert.ok(err instanceof ConfigError, String(err));
            assert.equal(err.issues[0]?.path, c.path);
            assert.match(err.issues[0]?.message ?? '', c.message);
            return true;
          },
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  void test('a relative spec resolves against the config folder (baseDir), not the working directory', () => {
    assert.throws(() => compile('3.0', {}, tmpdir()), (err: unknown) => err instanceof ConfigError && /cannot read/.test(err.message));
    assert.doesNotThrow(() => compile('3.0', {}, FIXTURES));
  });
});

void describe('a document pattern cannot be a ReDoS', () => {
  void test('a backtracking bomb in a document pattern is just a mismatch, at once', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pinpoint-openapi-re2-'));
    try {
      writeFileSync(
        path.join(dir, 'api.yaml'),
        "openapi: 3.0.3\ninfo: { title: t, version: '1' }\npaths:\n  /a:\n    get:\n      parameters: [{ name: q, in: query, required: true, schema: { type: string, pattern: '^(a|a)+$' } }]\n      responses: { '200': { description: ok } }\n",
      );
      const p = compile('3.0', { spec: 'api.yaml' }, dir);
      const t0 = performance.now();
      const bad = await run(p, { path: '/a', query: `q=${'a'.repeat(5000)}b` });
      assert.equal(outcome(bad.decision), 'OPENAPI_PARAMS_INVALID');
      assert.ok(performance.now() - t0 < 1000);
      assert.equal(outcome((await run(p, { path: '/a', query: 'q=aaaa' })).decision), 'allow');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
