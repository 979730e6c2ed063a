/**
 * The four request-shape policies together through the real evaluator (src/pipeline/run.ts), in
 * the order proposed for src/pipeline/order.ts: content-type → required-headers →
 * openapi-validate → request-transform. Checks which policy answers, that the body is read only
 * when a JSON operation needs it, that monitor mode lets the request on, and that the trace
 * carries no injected credential.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { KeyIndex } from '../../credentials/api-keys.ts';
import type { PlannedPolicy } from '../../pipeline/plan.ts';
import { evaluate, type Verdict } from '../../pipeline/run.ts';
import type { CompiledPolicy, Mode, RequestFacts } from '../../pipeline/types.ts';
import { contentType } from '../content-type/index.ts';
import { requestTransform } from '../request-transform/index.ts';
import { requiredHeaders } from '../required-headers/index.ts';
import { openapiValidate } from './index.ts';

const SECRET = 'upstream-secret-9f8e7d6c';

function ctx(id: string): Parameters<typeof contentType.compile>[2] {
  return { consumers: [], apiKeys: KeyIndex.build([], {}).index, env: { ORDERS_TOKEN: SECRET }, path: `policies.${id}.config`, baseDir: path.join(import.meta.dirname, 'fixtures') };
}

function policies(openapiMode: Mode = 'enforce'): PlannedPolicy[] {
  const list: CompiledPolicy[] = [
    contentType.compile({ allow: ['application/json', 'application/*+json', 'multipart/form-data'], methods: ['POST', 'PUT', 'PATCH'], require_body_type: true, charsets: [] }, { id: 'json-only', mode: 'enforce' }, ctx('json-only')),
    requiredHeaders.compile({ headers: [{ name: 'x-tenant', status: 400, secret: false }] }, { id: 'tenant', mode: 'enforce' }, ctx('tenant')),
    openapiValidate.compile({ spec: 'orders-3.1.yaml', base_path: '', use_servers: false, unknown_operations: 'deny', max_errors: 20 }, { id: 'contract', mode: openapiMode }, ctx('contract')),
    requestTransform.compile(
      { set_headers: { authorization: 'Bearer ${env:ORDERS_TOKEN}' }, remove_headers: ['x-api-key'], rename_headers: [], set_query: {}, remove_query: [] },
      { id: 'upstream-credential', mode: 'enforce' },
      ctx('upstream-credential'),
    ),
  ];
  return list.map((policy, position) => ({ policy, position, attachedTo: 'route' }));
}

async function send(plan: readonly PlannedPolicy[], method: string, p: string, headers: Record<string, string>, body?: string): Promise<{ v: Verdict; bodyRead: boolean }> {
  const buf = body === undefined ? undefined : Buffer.from(body);
  const facts: RequestFacts = {
    method,
    path: p,
    rawQuery: '',
    host: 'api.example.com',
    headers: buf === undefined ? headers : { ...headers, 'content-length': String(buf.length) },
    clientIp: '198.51.100.1',
    clientIpSource: 'socket',
    params: {},
    contentLength: buf?.length,
    now: 0,
  };
  let bodyRead = false;
  const v = await evaluate(plan, facts, 'orders', { get: () => undefined }, [], {
    body: () => {
      bodyRead = true;
      return Promise.resolve(buf ?? Buffer.alloc(0));
    },
  });
  return { v, bodyRead };
}

const ORDER = JSON.stringify({ customer: 'c', items: [{ sku: 'ABC-1', quantity: 1 }] });
const JSON_HEADERS = { 'content-type': 'application/json', 'x-tenant': 'acme', 'x-api-key': 'pp_client_key' };

void describe('request-shape policies in the pipeline', () => {
  const plan = policies();

  void test('a form body is refused by content-type, before the body is read', async () => {
    const { v, bodyRead } = await send(plan, 'POST', '/orders', { 'content-type': 'application/x-www-form-urlencoded', 'x-tenant': 'acme' }, 'customer=c');
    assert.deepEqual([v.deny?.code, v.denyPolicy?.id, bodyRead], ['CONTENT_TYPE_NOT_ACCEPTED', 'json-only', false]);
  });

  void test('a missing required header is refused before the schema is checked', async () => {
    const { v, bodyRead } = await send(plan, 'POST', '/orders', { 'content-type': 'application/json' }, ORDER);
    assert.deepEqual([v.deny?.code, v.denyPolicy?.id, bodyRead], ['REQUIRED_HEADER_MISSING', 'tenant', false]);
  });

  void test('a body breaking the schema: 400 from openapi-validate, with pointers', async () => {
    const { v, bodyRead } = await send(plan, 'POST', '/orders', JSON_HEADERS, JSON.stringify({ customer: 'c', items: [{ sku: 'ABC-1', quantity: 0 }] }));
    assert.deepEqual([v.deny?.code, v.denyPolicy?.id, bodyRead], ['OPENAPI_BODY_INVALID', 'contract', true]);
    assert.deepEqual(v.deny?.evidence.errors, ['/body/items/0/quantity: must be >= 1']);
    assert.deepEqual(v.transforms, [], 'no transform from policies that did not run');
  });

  void test('a valid request: every policy allows, the transform is handed on, the trace names no value', async () => {
    const { v, bodyRead } = await send(plan, 'POST', '/orders', JSON_HEADERS, ORDER);
    assert.equal(v.allowed, true);
    assert.equal(bodyRead, true);
    assert.deepEqual(v.trace.map((t) => [t.policy, t.outcome]), [['json-only', 'allow'], ['tenant', 'allow'], ['contract', 'allow'], ['upstream-credential', 'allow']]);
    assert.deepEqual(v.transforms, [{ setHeaders: { authorization: `Bearer ${SECRET}` }, removeHeaders: ['x-api-key'] }]);
    const trace = JSON.stringify(v.trace);
    assert.ok(!trace.includes(SECRET) && !trace.includes('pp_client_key'), trace);
  });

  void test('a request without a body stays synchronous', () => {
    const facts: RequestFacts = { method: 'GET', path: '/orders/7', rawQuery: '', host: 'h', headers: { 'x-tenant': 'acme' }, clientIp: '::1', clientIpSource: 'socket', params: {}, contentLength: undefined, now: 0 };
    const v = evaluate(plan, facts, 'orders', { get: () => undefined });
    assert.equal(typeof (v as { then?: unknown }).then, 'undefined');
    assert.equal((v as Verdict).allowed, true);
  });

  void test('openapi-validate in monitor mode: traced as monitor, request goes on with its transform', async () => {
    const { v } = await send(policies('monitor'), 'POST', '/orders', JSON_HEADERS, '{"customer":');
    assert.equal(v.allowed, true);
    assert.deepEqual(v.monitorDenied, ['contract']);
    assert.equal(v.trace.find((t) => t.policy === 'contract')?.code, 'OPENAPI_BODY_NOT_JSON');
    assert.equal(v.transforms.length, 1);
  });
});
