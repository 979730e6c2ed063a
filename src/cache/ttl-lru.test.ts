import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TtlLru } from './ttl-lru.ts';

void test('TtlLru: expiry, disabled, peek without touching order', () => {
  const c = new TtlLru<string>(2);
  c.set('a', 'A', 100, 0);
  c.set('b', 'B', 100, 0);
  assert.equal(c.get('a', 50, false), 'A');
  c.set('c', 'C', 100, 0);
  assert.equal(c.get('a', 50), undefined, 'a was only peeked, so it was the oldest');
  assert.equal(c.get('b', 100), undefined, 'expired at exactly expiresAt');
  assert.equal(c.size, 1);
  const off = new TtlLru<string>(0);
  off.set('a', 'A', 100, 0);
  assert.equal(off.size, 0);
  c.set('x', 'X', 10, 10);
  assert.equal(c.get('x', 0), undefined, 'already expired entries are not stored');
});

void test('TtlLru: a touched entry outlives older ones; entries without expiry; delete; clone', () => {
  const c = new TtlLru<number>(2);
  c.set('a', 1, Infinity, 0);
  c.set('b', 2, Infinity, 0);
  assert.equal(c.get('a', Number.MAX_SAFE_INTEGER), 1, 'Infinity never expires');
  c.set('c', 3, Infinity, 0);
  assert.equal(c.get('b', 0), undefined, 'b, not the touched a, was evicted');
  const copy = c.clone();
  c.delete('a');
  assert.equal(c.get('a', 0), undefined);
  assert.equal(copy.get('a', 0), 1, 'the clone keeps its own entries');
  copy.set('d', 4, Infinity, 0);
  assert.equal(copy.size, 2, 'and the same bound');
});
