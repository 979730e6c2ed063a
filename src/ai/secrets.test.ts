import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { decryptSecret, encryptSecret, parseSecretKey } from './secrets.ts';

void test('a provider key survives encryption with the same secret key, and the stored form hides it', () => {
  const key = randomBytes(32);
  const stored = encryptSecret('sk-live-abc123', key);
  assert.match(stored, /^pp1:[A-Za-z0-9+/=]+$/);
  assert.ok(!stored.includes('sk-live'));
  assert.equal(decryptSecret(stored, key), 'sk-live-abc123');
  // A random IV: the same key encrypts differently each time.
  assert.notEqual(encryptSecret('sk-live-abc123', key), stored);
});

void test('a wrong secret key or an altered value is refused, never decrypted to garbage', () => {
  const key = randomBytes(32);
  const stored = encryptSecret('sk-live-abc123', key);
  assert.throws(() => decryptSecret(stored, randomBytes(32)), /cannot decrypt/);
  const raw = Buffer.from(stored.slice(4), 'base64');
  raw[raw.length - 1] = (raw[raw.length - 1] as number) ^ 1;
  assert.throws(() => decryptSecret(`pp1:${raw.toString('base64')}`, key), /cannot decrypt/);
  assert.throws(() => decryptSecret('sk-plain', key), /pp1/);
});

void test('secret keys are accepted as 64 hex digits or base64 of 32 bytes, nothing shorter', () => {
  const k = randomBytes(32);
  assert.deepEqual(parseSecretKey(k.toString('hex')), k);
  assert.deepEqual(parseSecretKey(`${k.toString('base64')}\n`), k);
  assert.throws(() => parseSecretKey(randomBytes(16).toString('base64')), /32 bytes/);
});
