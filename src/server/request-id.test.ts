import assert from 'node:assert/strict';
import { test } from 'node:test';
import { requestIdFor, uuidv7 } from './request-id.ts';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

void test('uuidv7 has the RFC 9562 version and variant bits and encodes the time', () => {
  const now = Date.UTC(2026, 10, 22, 3, 0, 0);
  const id = uuidv7(now);
  assert.match(id, V7);
  assert.equal(parseInt(id.slice(0, 8) + id.slice(9, 13), 16), now);
});

void test('uuidv7 ids are unique and sort by time', () => {
  const ids = Array.from({ length: 2000 }, (_, i) => uuidv7(1_700_000_000_000 + i));
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual([...ids].sort(), ids);
  for (const id of ids) assert.match(id, V7);
});

void test('a valid incoming id is kept when trusted; otherwise a new one is made', () => {
  assert.equal(requestIdFor('abc-123', true), 'abc-123');
  assert.match(requestIdFor('abc-123', false), V7);
  assert.match(requestIdFor('has space', true), V7);
  assert.match(requestIdFor('x'.repeat(201), true), V7);
  assert.match(requestIdFor(['a', 'b'], true), V7);
  assert.match(requestIdFor(undefined, true), V7);
});
