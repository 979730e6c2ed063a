import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { serialize } from 'node:v8';
import { parseDocument } from 'yaml';
import { idEntries, oneByte, oneByteStrings } from './one-byte.ts';

/** The V8 serializer tags a one-byte string '"' (0x22) and a two-byte one 'c' (0x63). */
function isTwoByte(s: string): boolean {
  return serialize(s)[2] === 0x63;
}

void describe('oneByteStrings', () => {
  const text = '# a comment with ≥ makes the whole text two-byte\npolicies:\n  orders-openapi-check:\n    type: openapi-validate\n    rule: "x ≥ 1"\n    list: [route-orders-write]\n';
  type Doc = { policies: Record<string, { type: string; rule: string; list: string[] }> };
  const load = (): Doc => parseDocument(text).toJS() as Doc;

  void test('YAML parsed from a text with a non-Latin-1 character holds two-byte values (the problem)', () => {
    const entry = load().policies['orders-openapi-check'];
    assert.ok(entry !== undefined);
    // 16 and 18 characters: long enough for V8 to slice them out of the two-byte text.
    assert.equal(isTwoByte(entry.type), true);
    assert.equal(isTwoByte(entry.list[0] ?? ''), true);
  });

  void test('after normalising, Latin-1 values are one-byte and equal; the others are unchanged', () => {
    const before = load();
    const after = oneByteStrings(load());
    assert.deepEqual(after, before);
    const entry = after.policies['orders-openapi-check'];
    assert.ok(entry !== undefined);
    assert.equal(isTwoByte(entry.type), false);
    assert.equal(isTwoByte(entry.list[0] ?? ''), false);
    assert.equal(entry.rule, 'x ≥ 1');
    assert.equal(isTwoByte(entry.rule), true, 'a string that needs two bytes keeps them');
  });

  void test('oneByte: a one-byte copy of a two-byte string with Latin-1 characters only', () => {
    // A slice of 13+ characters of a two-byte string is two-byte itself, as a parser's key can be.
    const sliced = '≥orders-openapi-check'.slice(1);
    assert.equal(isTwoByte(sliced), true);
    assert.equal(isTwoByte(oneByte(sliced)), false);
    assert.equal(oneByte(sliced), 'orders-openapi-check');
    assert.equal(oneByte('é'), 'é');
    assert.equal(oneByte('x ≥ 1'), 'x ≥ 1');
    assert.deepEqual(idEntries({ [sliced]: 1 }).map(([k]) => isTwoByte(k)), [false]);
  });

  void test('shared and cyclic references are visited once; class instances pass untouched', () => {
    const shared = { a: 'x' };
    const cyclic: { self?: unknown; list: unknown[] } = { list: [] };
    cyclic.self = cyclic;
    cyclic.list.push(cyclic);
    const date = new Date(0);
    const out = oneByteStrings({ one: shared, two: shared, cyclic, date });
    assert.equal(out.one, out.two);
    assert.equal(out.cyclic.self, out.cyclic);
    assert.equal(out.date, date);
  });
});

void describe('config loading keeps ids one-byte', () => {
  void test('every policy id of the benchmark chain config (a ≥ in its comments) is one-byte', async () => {
    const { loadConfigFile } = await import('../config/load.ts');
    const file = new URL('../../bench/configs/chain.yaml', import.meta.url).pathname;
    // The premise: without a non-Latin-1 character in the file this test would prove nothing.
    assert.match(readFileSync(file, 'utf8'), /[^\u0000-\u00ff]/);
    const r = loadConfigFile(file, { BENCH_JWT_SECRET: Buffer.alloc(32, 7).toString('base64url') });
    assert.ok(r.ok, JSON.stringify(r.ok ? null : r.issues));
    assert.ok(r.compiled.policies.size >= 6);
    for (const p of r.compiled.policies.values()) assert.equal(isTwoByte(p.id), false, p.id);
  });
});
