/** The scrypt password hashes behind basic-auth (src/credentials/password.ts). */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decoyHash, decoyParameters, hashPassword, hashPasswordCommand, parsePasswordHash, SCRYPT_DEFAULTS, verifyPassword, verifyPasswordAsync, type PasswordHash } from '../../credentials/password.ts';

const FORMAT = /^scrypt\$16384\$8\$1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/;

void describe('password hashes', () => {
  const stored = hashPassword('correct horse');

  void test('format: scrypt$N$r$p$<16-byte salt b64>$<32-byte hash b64> with the defaults', () => {
    assert.match(stored, FORMAT);
    const h = parsePasswordHash(stored);
    assert.ok(typeof h !== 'string');
    assert.deepEqual([h.N, h.r, h.p, h.salt.length, h.hash.length], [SCRYPT_DEFAULTS.N, SCRYPT_DEFAULTS.r, SCRYPT_DEFAULTS.p, 16, 32]);
  });

  void test('a fresh salt each time', () => {
    assert.notEqual(hashPassword('same'), hashPassword('same'));
  });

  void test('verify: sync and async agree', async () => {
    const h = parsePasswordHash(stored);
    assert.ok(typeof h !== 'string');
    const table: readonly [string, boolean][] = [
      ['correct horse', true],
      ['correct horse ', false],
      ['Correct horse', false],
      ['', false],
    ];
    for (const [pw, ok] of table) {
      assert.equal(verifyPassword(pw, stored), ok, pw);
      assert.equal(await verifyPasswordAsync(pw, h), ok, pw);
    }
  });

  void test('Unicode passwords compare after NFC (RFC 8265 §4.2)', () => {
    const h = hashPassword('caf\u00e9');
    assert.equal(verifyPassword('cafe\u0301', h), true);
  });

  void test('a malformed hash never verifies', () => {
    assert.equal(verifyPassword('x', 'scrypt$nope'), false);
    assert.equal(verifyPassword('x', 'sha256:abc'), false);
  });

  void test('an empty password is refused', () => {
    assert.throws(() => hashPassword(''), /empty/);
  });

  void test('hashPasswordCommand: what `pinpoint hash-password` prints', () => {
    const out = hashPasswordCommand('s3cret\n');
    assert.ok('hash' in out);
    assert.match(out.hash, FORMAT);
    assert.equal(verifyPassword('s3cret', out.hash), true, 'the trailing newline is not part of the password');
    assert.deepEqual(hashPasswordCommand('\n'), { error: 'no password given' });
    assert.deepEqual(hashPasswordCommand('a\nb'), { error: 'the password spans several lines' });
  });

  void test('parse errors name the problem', () => {
    const SALT = 'MDEyMzQ1Njc4OWFiY2RlZg==';
    const HASH = 'A'.repeat(43) + '=';
    const table: readonly [string, RegExp][] = [
      ['bcrypt$x', /scrypt\$N\$r\$p/],
      [`scrypt$16384$8$1$${SALT}`, /scrypt\$N\$r\$p/],
      [`scrypt$16000$8$1$${SALT}$${HASH}`, /power of two/],
      [`scrypt$1$8$1$${SALT}$${HASH}`, /power of two/],
      [`scrypt$016384$8$1$${SALT}$${HASH}`, /power of two/],
      [`scrypt$16384$0$1$${SALT}$${HASH}`, /r must/],
      [`scrypt$16384$8$17$${SALT}$${HASH}`, /p must/],
      [`scrypt$16384$8$1$c2FsdA==$${HASH}`, /salt/],
      [`scrypt$16384$8$1$${SALT}$AAAA`, /hash/],
      [`scrypt$16384$8$1$${SALT}$${HASH}junk!`, /hash/],
    ];
    for (const [text, re] of table) {
      const r = parsePasswordHash(text);
      assert.equal(typeof r, 'string', text);
      assert.match(r as string, re, text);
    }
  });

  void describe('decoy for unknown users', () => {
    /** A parsed hash with these parameters; salt and digest contents do not matter here. */
    const h = (N: number, r = 8, p = 1, keyBytes = 32): PasswordHash => ({ N, r, p, salt: Buffer.alloc(16), hash: Buffer.alloc(keyBytes) });
    const shape = (x: { N: number; r: number; p: number }) => [x.N, x.r, x.p];

    void test('takes the parameters of the configured hashes', () => {
      const d = decoyHash([h(32768, 8, 2), h(32768, 8, 2)]);
      assert.deepEqual([d.N, d.r, d.p, d.salt.length, d.hash.length], [32768, 8, 2, 16, 32]);
    });

    void test('the most common parameters win over costlier ones', () => {
      assert.deepEqual(shape(decoyParameters([h(1024), h(2 ** 20, 1), h(1024)])), [1024, 8, 1]);
    });

    void test('a tie goes to the costlier parameters, whatever the order', () => {
      assert.deepEqual(shape(decoyParameters([h(1024), h(16384)])), [16384, 8, 1]);
      assert.deepEqual(shape(decoyParameters([h(16384), h(1024)])), [16384, 8, 1]);
      assert.deepEqual(shape(decoyParameters([h(1024, 8, 4), h(2048, 8, 1)])), [1024, 8, 4]);
    });

    void test('the digest length follows the hashes too', () => {
      assert.equal(decoyParameters([h(1024, 8, 1, 64)]).keyBytes, 64);
    });

    void test('without hashes: the defaults', () => {
      const d = decoyHash();
      assert.deepEqual([d.N, d.r, d.p, d.salt.length, d.hash.length], [SCRYPT_DEFAULTS.N, SCRYPT_DEFAULTS.r, SCRYPT_DEFAULTS.p, SCRYPT_DEFAULTS.saltBytes, SCRYPT_DEFAULTS.keyBytes]);
    });

    void test('no password matches it, and each decoy has its own salt', async () => {
      const a = decoyHash([h(1024)]);
      const b = decoyHash([h(1024)]);
      assert.notDeepEqual(a.salt, b.salt);
      assert.equal(await verifyPasswordAsync('', a), false);
    });
  });
});
