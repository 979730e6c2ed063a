/**
 * Provider keys at rest: AES-256-GCM (NIST SP 800-38D) with a 96-bit random IV and the 128-bit
 * tag, from node:crypto. The stored form is `pp1:` + base64(iv ‖ tag ‖ ciphertext); the `pp1`
 * prefix names the scheme so it can change without guessing. The key (32 bytes, base64 or hex)
 * comes from an environment variable or a file, never from the config itself.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const PREFIX = 'pp1:';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** Parses a 32-byte key written as 64 hex digits or as base64 (44 chars). */
export function parseSecretKey(text: string): Buffer {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, 'hex');
  const b = Buffer.from(t, 'base64');
  if (b.length === 32 && /^[A-Za-z0-9+/]+={0,2}$/.test(t)) return b;
  throw new Error('the secret key must be 32 bytes, written as 64 hex digits or base64 (`openssl rand -base64 32`)');
}

export function encryptSecret(plain: string, key: Buffer): string {
  const iv = randomBytes(IV_BYTES);
  const c = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
  return PREFIX + Buffer.concat([iv, c.getAuthTag(), body]).toString('base64');
}

/** @throws Error when the text is not ours or the key is wrong (GCM authentication fails). */
export function decryptSecret(stored: string, key: Buffer): string {
  if (!stored.startsWith(PREFIX)) throw new Error('not an encrypted secret (expected the pp1: prefix)');
  const raw = Buffer.from(stored.slice(PREFIX.length), 'base64');
  if (raw.length <= IV_BYTES + TAG_BYTES) throw new Error('encrypted secret is truncated');
  const d = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES));
  d.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
  try {
    return Buffer.concat([d.update(raw.subarray(IV_BYTES + TAG_BYTES)), d.final()]).toString('utf8');
  } catch {
    throw new Error('cannot decrypt: wrong secret key, or the value was altered');
  }
}
