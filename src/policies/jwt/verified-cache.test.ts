import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Allow } from '../../pipeline/types.ts';
import { VerifiedTokens, type VerifiedToken } from './verified-cache.ts';

const ALLOW = { outcome: 'allow', rule: 'token valid' } as unknown as Allow;
function token(sub: string): VerifiedToken {
  return { payload: { sub }, alg: 'HS256', kid: null, allow: ALLOW, validFrom: 0, validUntil: 2e9 };
}

void describe('VerifiedTokens', () => {
  void test('keyed by a SHA-256 of the token, never the token', () => {
    const key = VerifiedTokens.keyOf('eyJ.secret.part');
    assert.equal(key.includes('secret'), false);
    assert.equal(key, VerifiedTokens.keyOf('eyJ.secret.part'));
    assert.notEqual(key, VerifiedTokens.keyOf('eyJ.secret.parT'));
  });

  void test('an entry lives ttlMs from when it was verified', () => {
    const c = new VerifiedTokens(1000);
    c.set('a', token('a'), 5000);
    assert.equal(c.get('a', 5999)?.payload['sub'], 'a');
    assert.equal(c.get('a', 6000), undefined);
    assert.equal(c.size, 0, 'an expired entry is dropped when read');
  });

  void test('bounded: the oldest verified token goes first, even if it was just read', () => {
    const c = new VerifiedTokens(60_000, 2);
    c.set('a', token('a'), 0);
    c.set('b', token('b'), 1);
    assert.ok(c.get('a', 2)); // a read does not make it young: the hot path reads without touching
    c.set('c', token('c'), 3);
    assert.equal(c.size, 2);
    assert.equal(c.get('a', 4), undefined);
    assert.ok(c.get('b', 4));
    assert.ok(c.get('c', 4));
    c.set('b', token('b2'), 5); // storing a present key again evicts nothing
    assert.equal(c.size, 2);
    assert.equal(c.get('b', 6)?.payload['sub'], 'b2');
  });

  void test('ttlMs 0 disables the cache', () => {
    const c = new VerifiedTokens(0);
    assert.equal(c.enabled, false);
    c.set('a', token('a'), 0);
    assert.equal(c.get('a', 0), undefined);
    assert.equal(c.size, 0);
  });
});
