import { context, decideSync } from '../../pipeline/testing.ts';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyIndex } from '../../credentials/api-keys.ts';
import type { CompiledPolicy, Decision, Mode, RequestFacts } from '../../pipeline/types.ts';
import { requestSize } from './index.ts';

const CTX = { consumers: [], apiKeys: KeyIndex.build([], {}).index, env: {}, path: 'policies.body.config', baseDir: process.cwd() };

function compile(max: number, mode: Mode = 'enforce'): CompiledPolicy {
  return requestSize.compile({ max_bytes: max }, { id: 'body', mode }, CTX);
}

function decide(p: CompiledPolicy, contentLength: number | undefined): Decision {
  const facts: RequestFacts = {
    method: 'POST',
    path: '/upload',
    rawQuery: '',
    host: 'api.example.com',
    headers: contentLength === undefined ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(contentLength) },
    clientIp: '198.51.100.1',
    clientIpSource: 'socket',
    params: {},
    contentLength,
    now: 0,
  };
  return decideSync(p, context({ facts, routeId: 'upload' }));
}

const CASES: readonly { name: string; max: number; length: number | undefined; deny: boolean }[] = [
  { name: 'under the limit', max: 1024, length: 1023, deny: false },
  { name: 'equal to the limit', max: 1024, length: 1024, deny: false },
  { name: 'one byte over the limit', max: 1024, length: 1025, deny: true },
  { name: 'far over the limit', max: 1024, length: 10 * 1024 * 1024, deny: true },
  { name: 'empty body', max: 1024, length: 0, deny: false },
  { name: 'limit 0, empty body', max: 0, length: 0, deny: false },
  { name: 'limit 0, one byte', max: 0, length: 1, deny: true },
  { name: 'no Content-Length (chunked): allowed here, counted while streaming', max: 1024, length: undefined, deny: false },
  { name: 'no Content-Length with limit 0', max: 0, length: undefined, deny: false },
];

void describe('request-size decide', () => {
  for (const c of CASES) {
    void test(c.name, () => {
      const d = decide(compile(c.max), c.length);
      if (!c.deny) {
        assert.equal(d.outcome, 'allow', JSON.stringify(d));
        return;
      }
      assert.equal(d.outcome, 'deny', JSON.stringify(d));
      assert.equal(d.code, 'BODY_TOO_LARGE');
      assert.deepEqual(d.evidence, { limit_bytes: c.max, received_bytes: c.length });
    });
  }
});

void describe('request-size compile', () => {
  void test('bodyLimit is exposed for the streaming check', () => {
    for (const max of [0, 1, 65536]) assert.equal(compile(max).bodyLimit, max);
  });

  void test('id, type and mode carried through', () => {
    const p = compile(10, 'monitor');
    assert.deepEqual([p.id, p.type, p.mode], ['body', 'request-size', 'monitor']);
  });
});
