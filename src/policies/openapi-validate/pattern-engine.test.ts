import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { engineFor, patternEngine } from './pattern-engine.ts';

void describe('OpenAPI pattern engine', () => {
  void test('anchored patterns that can match an input only one way run on V8', () => {
    for (const p of ['^x*$', '^ord_[0-9]{4,}$', '^[A-Z]{3}-[0-9]+$', '^[a-z0-9-]{3,32}$', '^\\p{L}+$']) {
      assert.equal(engineFor(p, true), 'v8', p);
    }
  });

  void test('ambiguous or nested patterns, and unanchored ones that would backtrack, run on RE2', () => {
    for (const p of ['^(a|a)+$', '(a+)+$', '^\\d*\\d*$', '^([a-b]*)([a-c]*)$', '\\d+x']) {
      assert.equal(engineFor(p, true), 're2', p);
    }
  });

  void test('an unanchored literal search is linear, so it runs on V8', () => {
    assert.equal(engineFor('ab', true), 'v8');
  });

  void test('a pattern the analyser cannot read goes to RE2, which decides whether it compiles', () => {
    // (?P<name>…) is RE2 syntax, not ECMA-262.
    assert.equal(engineFor('^(?P<id>[0-9]+)$', true), 're2');
    assert.equal(patternEngine('^(?P<id>[0-9]+)$', 'u').test('42'), true);
  });

  void test('both engines search unanchored, as JSON Schema patterns do', () => {
    const native = patternEngine('^[0-9]+$', 'u');
    const re2 = patternEngine('(a|a)+c', 'u');
    assert.ok(native instanceof RegExp);
    assert.ok(!(re2 instanceof RegExp));
    assert.equal(native.test('123'), true);
    assert.equal(native.test('12a'), false);
    assert.equal(re2.test('xaaacx'), true);
    assert.equal(re2.test('xaaa'), false);
  });

  void test('a bomb on RE2 answers a long hostile value at once', () => {
    const bomb = patternEngine('^(a|a)+$', 'u');
    const t0 = performance.now();
    assert.equal(bomb.test(`${'a'.repeat(50_000)}b`), false);
    assert.ok(performance.now() - t0 < 1000);
  });
});
