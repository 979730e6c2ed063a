/**
 * Password hashing for HTTP Basic credentials (RFC 7617): scrypt (RFC 7914) from node:crypto.
 *
 * Why a slow hash here when API keys use SHA-256 (src/credentials/api-keys.ts): passwords are
 * chosen by people and are guessable, so a leaked config must not let anyone test billions of
 * guesses per second. scrypt is memory-hard; with N=2^14, r=8, p=1 one guess costs ~16 MiB and
 * tens of milliseconds.
 *
 * The stored form is self-describing, so parameters can be raised later without breaking existing
 * hashes: `scrypt$N$r$p$<salt base64>$<hash base64>`.
 */
import { randomBytes, scrypt, scryptSync, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/** Parameters of new hashes (OWASP's scrypt baseline: N=2^14, r=8, p=1). */
export const SCRYPT_DEFAULTS = Object.freeze({ N: 16384, r: 8, p: 1, saltBytes: 16, keyBytes: 32 });

/** A parsed `scrypt$…` hash. */
export interface PasswordHash {
  readonly N: number;
  readonly r: number;
  readonly p: number;
  readonly salt: Buffer;
  readonly hash: Buffer;
}

/*
 * Bounds on parameters read from config. A hash string is config, not user input, but a typo such
 * as N=2^30 would make every login allocate gigabytes: refuse it at load instead.
 */
const MAX_N = 2 ** 20;
const MAX_R = 32;
const MAX_P = 16;
/** scrypt needs 128·N·r bytes; more than this is refused. */
const MAX_MEMORY = 256 * 1024 * 1024;

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function strictBase64(text: string): Buffer | undefined {
  if (!BASE64.test(text) || text.length % 4 === 1) return undefined;
  const buf = Buffer.from(text, 'base64');
  // Buffer.from ignores junk silently; a round trip proves every character was meaningful.
  if (buf.toString('base64').replace(/=+$/, '') !== text.replace(/=+$/, '')) return undefined;
  return buf;
}

function positiveInt(text: string | undefined): number | undefined {
  if (text === undefined || !/^[1-9][0-9]{0,9}$/.test(text)) return undefined;
  return Number(text);
}

/**
 * Parses the stored form. Returns the reason as a string when it is not a usable hash, so config
 * loading can report it under the field's path.
 */
export function parsePasswordHash(text: string): PasswordHash | string {
  const parts = text.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return 'expected scrypt$N$r$p$<salt base64>$<hash base64> (from `pinpoint hash-password`)';
  const N = positiveInt(parts[1]);
  const r = positiveInt(parts[2]);
  const p = positiveInt(parts[3]);
  if (N === undefined || N < 2 || (N & (N - 1)) !== 0 || N > MAX_N) return `N must be a power of two between 2 and ${MAX_N}`;
  if (r === undefined || r > MAX_R) return `r must be an integer between 1 and ${MAX_R}`;
  if (p === undefined || p > MAX_P) return `p must be an integer between 1 and ${MAX_P}`;
  if (128 * N * r > MAX_MEMORY) return `N and r need ${(128 * N * r) / 2 ** 20} MiB per check; at most ${MAX_MEMORY / 2 ** 20} MiB is allowed`;
  const salt = strictBase64(parts[4] ?? '');
  if (salt === undefined || salt.length < 8) return 'the salt is not base64 of at least 8 bytes';
  const hash = strictBase64(parts[5] ?? '');
  if (hash === undefined || hash.length < 16 || hash.length > 128) return 'the hash is not base64 of 16 to 128 bytes';
  return Object.freeze({ N, r, p, salt, hash });
}

function options(h: Pick<PasswordHash, 'N' | 'r' | 'p'>): ScryptOptions {
  // Node's default maxmem (32 MiB) is below what larger N·r need; allow what the parameters imply.
  return { N: h.N, r: h.r, p: h.p, maxmem: 256 * h.N * h.r };
}

/**
 * RFC 7617 §2.1 with charset="UTF-8": passwords are compared after Unicode Normalization Form C
 * (RFC 8265 §4.2 OpaqueString profile), so the same password typed on two systems that compose
 * accents differently still matches.
 */
function normalise(password: string): Buffer {
  return Buffer.from(password.normalize('NFC'), 'utf8');
}

/**
 * Hashes a password for config (`consumers[].credentials.basic_auth[].password_hash`). Synchronous
 * and slow by design: meant for the `pinpoint hash-password` command and tests, never the request
 * path.
 *
 * @example
 * hashPassword('correct horse battery staple')
 * // → 'scrypt$16384$8$1$q3V0…$Zk9x…'
 */
export function hashPassword(password: string): string {
  if (password === '') throw new Error('refusing to hash an empty password');
  const { N, r, p, saltBytes, keyBytes } = SCRYPT_DEFAULTS;
  const salt = randomBytes(saltBytes);
  const hash = scryptSync(normalise(password), salt, keyBytes, options({ N, r, p }));
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/**
 * What a `pinpoint hash-password` command prints: the hash, or a reason to refuse.
 *
 * @example
 * const out = hashPasswordCommand(await readStdin());
 * if ('error' in out) fail(out.error); else print(out.hash);
 */
export function hashPasswordCommand(password: string): { readonly hash: string } | { readonly error: string } {
  // A trailing newline from `echo pw | pinpoint hash-password` is not part of the password.
  const pw = password.replace(/\r?\n$/, '');
  if (pw === '') return { error: 'no password given' };
  if (pw.includes('\n')) return { error: 'the password spans several lines' };
  return { hash: hashPassword(pw) };
}

/**
 * Checks a password against a stored hash, synchronously (tools and tests). A malformed hash never
 * verifies. The comparison is constant-time (`timingSafeEqual`).
 */
export function verifyPassword(password: string, stored: string): boolean {
  const h = parsePasswordHash(stored);
  if (typeof h === 'string') return false;
  const got = scryptSync(normalise(password), h.salt, h.hash.length, options(h));
  return timingSafeEqual(got, h.hash);
}

/**
 * The request-path check: scrypt runs on libuv's thread pool (crypto.scrypt, never scryptSync), so
 * the event loop keeps serving other requests while one password is checked.
 */
export function verifyPasswordAsync(password: string, h: PasswordHash): Promise<boolean> {
  return new Promise((resolve, reject) => {
    scrypt(normalise(password), h.salt, h.hash.length, options(h), (err, got) => {
      if (err !== null) reject(err);
      else resolve(timingSafeEqual(got, h.hash));
    });
  });
}

/** The scrypt parameters of a hash: what its check costs, and so how long it takes. */
export type ScryptParameters = Pick<PasswordHash, 'N' | 'r' | 'p'> & { readonly saltBytes: number; readonly keyBytes: number };

function parametersOf(h: Pick<PasswordHash, 'N' | 'r' | 'p' | 'salt' | 'hash'>): ScryptParameters {
  return { N: h.N, r: h.r, p: h.p, saltBytes: h.salt.length, keyBytes: h.hash.length };
}

/** scrypt's work and memory grow with N·r·p (RFC 7914 §2); the rest only breaks ties. */
function costlier(a: ScryptParameters, b: ScryptParameters): number {
  return a.N * a.r * a.p - b.N * b.r * b.p || a.N - b.N || a.r - b.r || a.p - b.p || a.keyBytes - b.keyBytes || a.saltBytes - b.saltBytes;
}

/**
 * The parameters a decoy should have for these stored hashes: the most common ones, ties going to
 * the costlier. The defaults when there are none.
 *
 * Why the most common and not the maximum: a check takes as long as its parameters make it, so an
 * unknown user is indistinguishable by timing only from users whose hash has the decoy's
 * parameters, whichever are chosen. The most common parameters hide the most user names. The
 * maximum would hide only the users at the maximum, leave every cheaper user faster than an unknown
 * name (enumerable), and make each guessed user name cost the most expensive check there is — a
 * gift to the flood that admission.ts bounds. Ties go to the costlier so the choice is the same
 * whatever order consumers are listed in. Users with other parameters remain distinguishable;
 * rehashing them with `pinpoint hash-password` (the defaults) closes that.
 */
export function decoyParameters(hashes: Iterable<Pick<PasswordHash, 'N' | 'r' | 'p' | 'salt' | 'hash'>>): ScryptParameters {
  const counts = new Map<string, { params: ScryptParameters; n: number }>();
  for (const h of hashes) {
    const params = parametersOf(h);
    const k = `${params.N}/${params.r}/${params.p}/${params.saltBytes}/${params.keyBytes}`;
    const seen = counts.get(k);
    if (seen === undefined) counts.set(k, { params, n: 1 });
    else seen.n++;
  }
  let best: { params: ScryptParameters; n: number } | undefined;
  for (const e of counts.values()) {
    if (best === undefined || e.n > best.n || (e.n === best.n && costlier(e.params, best.params) > 0)) best = e;
  }
  const { N, r, p, saltBytes, keyBytes } = best?.params ?? SCRYPT_DEFAULTS;
  return Object.freeze({ N, r, p, saltBytes, keyBytes });
}

/**
 * A hash no password matches (random salt and digest), with the parameters `decoyParameters`
 * picks for the configured users' hashes (the defaults when none are given). Checking an unknown
 * user's password against it makes "unknown user" take as long as "wrong password", so response
 * times do not reveal which user names exist. Build it once per config, not per request.
 */
export function decoyHash(hashes: Iterable<Pick<PasswordHash, 'N' | 'r' | 'p' | 'salt' | 'hash'>> = []): PasswordHash {
  const { N, r, p, saltBytes, keyBytes } = decoyParameters(hashes);
  return Object.freeze({ N, r, p, salt: randomBytes(saltBytes), hash: randomBytes(keyBytes) });
}
