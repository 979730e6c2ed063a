/**
 * Verification keys for `jwt`: static keys from config and keys from a JWKS, in one shape, each
 * bound to the algorithms its type can verify.
 *
 * Binding keys to algorithms is the defence against algorithm confusion (RFC 8725 §2.1, §3.1): a
 * token that says `alg: HS256` is only ever checked against HMAC secrets, never against an RSA
 * public key used as an HMAC secret. The token's `kid` is only a lookup key into this set (a Map);
 * it is never a path, URL or query.
 *
 * Keys are node:crypto KeyObjects, built synchronously (compile is synchronous); jose verifies with
 * them directly and caches the WebCrypto form per key.
 */
import { createPublicKey, createSecretKey, X509Certificate, type JsonWebKeyInput, type KeyObject } from 'node:crypto';

/** The JWS algorithms this gateway verifies (RFC 7518 §3.1, RFC 8037, RFC 9864). Never `none`. */
export const ALGORITHMS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;
export type Algorithm = (typeof ALGORITHMS)[number];

export function isAlgorithm(value: string): value is Algorithm {
  return (ALGORITHMS as readonly string[]).includes(value);
}

export interface VerificationKey {
  /** `kid`, or undefined for a key without one (tried when the token names no kid). */
  readonly kid: string | undefined;
  /** 'RSA', 'EC P-256', 'OKP Ed25519', 'oct' … for evidence. */
  readonly type: string;
  /** What this key may verify: its type's algorithms ∩ its own `alg` ∩ the policy allow-list. */
  readonly algorithms: ReadonlySet<Algorithm>;
  readonly key: KeyObject;
}

const RSA_ALGS: readonly Algorithm[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
const EC_ALGS: Readonly<Record<string, { crv: string; alg: Algorithm }>> = {
  prime256v1: { crv: 'P-256', alg: 'ES256' },
  secp384r1: { crv: 'P-384', alg: 'ES384' },
  secp521r1: { crv: 'P-521', alg: 'ES512' },
};
/** RFC 7518 §3.2: an HMAC key must be at least as long as the hash output. */
const HMAC_MIN_BYTES: Readonly<Record<string, number>> = { HS256: 32, HS384: 48, HS512: 64 };

/** The algorithms a key's type can verify, or a reason it cannot be used. */
export function typeAlgorithms(key: KeyObject): { type: string; algorithms: readonly Algorithm[] } | string {
  if (key.type === 'secret') {
    const len = key.symmetricKeySize ?? 0;
    const algs = (['HS256', 'HS384', 'HS512'] as const).filter((a) => len >= (HMAC_MIN_BYTES[a] ?? Infinity));
    if (algs.length === 0) return `an HMAC secret of ${len} bytes is too short: HS256 needs at least 32 bytes (RFC 7518 §3.2)`;
    return { type: 'oct', algorithms: algs };
  }
  if (key.type !== 'public') return 'a private key does not belong in config: give the public key';
  // A plain string: node adds key types over time, and every one not listed here is refused.
  const kind: string = key.asymmetricKeyType ?? '';
  switch (kind) {
    case 'rsa':
    case 'rsa-pss': {
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
      // jose (and RFC 7518 §3.3) require 2048-bit moduli or larger.
      if (bits < 2048) return `an RSA key of ${bits} bits is too small: at least 2048 bits are required (RFC 7518 §3.3)`;
      // An RSA-PSS key (id-RSASSA-PSS) may only make PSS signatures.
      return kind === 'rsa' ? { type: 'RSA', algorithms: RSA_ALGS } : { type: 'RSA-PSS', algorithms: ['PS256', 'PS384', 'PS512'] };
    }
    case 'ec': {
      const curve = EC_ALGS[key.asymmetricKeyDetails?.namedCurve ?? ''];
      if (curve === undefined) return `EC curve ${key.asymmetricKeyDetails?.namedCurve ?? '?'} is not supported (P-256, P-384, P-521)`;
      return { type: `EC ${curve.crv}`, algorithms: [curve.alg] };
    }
    case 'ed25519':
      return { type: 'OKP Ed25519', algorithms: ['EdDSA', 'Ed25519'] };
    default:
      return `key type ${kind === '' ? '?' : kind} is not supported`;
  }
}

/**
 * Binds a key to the algorithms it may verify. `alg` (the key's own, from config or its JWK)
 * narrows it to one (RFC 8725 §3.1: one key, one algorithm). Returns a reason when no allowed
 * algorithm is left.
 */
export function bindKey(key: KeyObject, kid: string | undefined, alg: string | undefined, allowed: ReadonlySet<Algorithm>): VerificationKey | string {
  const t = typeAlgorithms(key);
  if (typeof t === 'string') return t;
  let algs = t.algorithms;
  if (alg !== undefined) {
    if (!isAlgorithm(alg) || !algs.includes(alg)) return `alg ${alg} cannot be used with a ${t.type} key (it can verify ${algs.join(', ')})`;
    algs = [alg];
  }
  const usable = algs.filter((a) => allowed.has(a));
  if (usable.length === 0) return `a ${t.type} key verifies ${algs.join(', ')}, none of which is in algorithms`;
  return Object.freeze({ kid, type: t.type, algorithms: new Set(usable), key });
}

/** A public key from PEM: SPKI (`PUBLIC KEY`), PKCS#1 (`RSA PUBLIC KEY`) or an X.509 certificate. */
export function keyFromPem(pem: string): KeyObject | string {
  if (/PRIVATE KEY-----/.test(pem)) return 'this is a private key: config takes the public key only (a private key here would be a leaked secret)';
  try {
    if (/-----BEGIN CERTIFICATE-----/.test(pem)) return new X509Certificate(pem).publicKey;
    return createPublicKey(pem);
  } catch (err) {
    return `not a usable PEM public key or certificate (${(err as Error).message})`;
  }
}

/** A public key from a JWK (RFC 7517). Secrets and private keys are refused: they must not sit in config or a JWKS. */
export function keyFromJwk(jwk: Readonly<Record<string, unknown>>): KeyObject | string {
  if (jwk.kty === 'oct') return 'a symmetric (oct) JWK is a secret: put it in an environment variable and use secret_env';
  if (jwk.d !== undefined || jwk.p !== undefined) return 'this JWK holds a private key: give the public key only';
  if (jwk.use !== undefined && jwk.use !== 'sig') return `use is ${JSON.stringify(jwk.use)}, not "sig"`;
  if (Array.isArray(jwk.key_ops) && !jwk.key_ops.includes('verify')) return 'key_ops does not include "verify"';
  try {
    const input: JsonWebKeyInput = { key: jwk, format: 'jwk' };
    return createPublicKey(input);
  } catch (err) {
    return `not a usable public JWK (${(err as Error).message})`;
  }
}

export function secretKey(bytes: Buffer): KeyObject {
  return createSecretKey(bytes);
}

/** What the key set says about a token's (kid, alg). */
export type KeyLookup =
  /** Keys to try, all able to verify `alg`. */
  | { readonly kind: 'keys'; readonly keys: readonly VerificationKey[] }
  /** No key has this kid. */
  | { readonly kind: 'unknown_kid' }
  /** The kid (or, without kid, every key) exists but cannot verify `alg`: algorithm confusion or a wrong alg. */
  | { readonly kind: 'incompatible'; readonly keyTypes: readonly string[]; readonly algorithms: readonly Algorithm[] };

/** An immutable set of verification keys, indexed by kid. */
export class KeySet {
  readonly #byKid: ReadonlyMap<string, readonly VerificationKey[]>;
  readonly #all: readonly VerificationKey[];

  constructor(keys: readonly VerificationKey[]) {
    const byKid = new Map<string, VerificationKey[]>();
    for (const k of keys) {
      if (k.kid === undefined) continue;
      const list = byKid.get(k.kid);
      if (list === undefined) byKid.set(k.kid, [k]);
      else list.push(k);
    }
    this.#byKid = byKid;
    this.#all = Object.freeze([...keys]);
  }

  get size(): number {
    return this.#all.length;
  }

  hasKid(kid: string): boolean {
    return this.#byKid.has(kid);
  }

  /**
   * With a kid: only keys carrying exactly that kid. Without one: every key (RFC 7515 §4.1.4
   * makes kid optional), still filtered by algorithm.
   */
  lookup(kid: string | undefined, alg: Algorithm): KeyLookup {
    const named = kid === undefined ? this.#all : this.#byKid.get(kid);
    if (named === undefined || named.length === 0) return { kind: 'unknown_kid' };
    const keys = named.filter((k) => k.algorithms.has(alg));
    if (keys.length > 0) return { kind: 'keys', keys };
    const algorithms = [...new Set(named.flatMap((k) => [...k.algorithms]))];
    return { kind: 'incompatible', keyTypes: [...new Set(named.map((k) => k.type))], algorithms };
  }
}
