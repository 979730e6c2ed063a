/**
 * SHA-256 (lowercase hex) of the values one request presents as credentials, each computed once.
 *
 * Why: the api-key policy, the jwt policy's verified-token cache, the introspection cache and the
 * call log's replay record each need the digest of the same header value. Each hashed it on its
 * own, so a request carrying a key and a bearer token through the full chain paid four one-shot
 * SHA-256 calls, the token (hundreds of bytes) twice (bench/instructions.ts; docs/benchmarks.md).
 *
 * Lives with the request's facts and holds the values no longer than the request does. Values are
 * compared with `===`: both sides are what this same request sent, so the comparison's timing
 * tells nothing about a stored secret (the key index still ends with `timingSafeEqual`).
 */
import { hash } from 'node:crypto';

export class Digests {
  // Requests present one or two credentials: two parallel arrays beat a Map at that size.
  #values: string[] | undefined;
  #hexes: string[] | undefined;

  /** How many values this memo hashed: each distinct value once. */
  get hashed(): number {
    return this.#values?.length ?? 0;
  }

  /** SHA-256 of `value` as lowercase hex, hashed on first use in this request. */
  of(value: string): string {
    const values = (this.#values ??= []);
    const hexes = (this.#hexes ??= []);
    for (let i = 0; i < values.length; i++) if (values[i] === value) return hexes[i] as string;
    const hex = sha256Hex(value);
    values.push(value);
    hexes.push(hex);
    return hex;
  }
}

/**
 * SHA-256 as lowercase hex. One-shot crypto.hash with its default hex output: on Node 24 the
 * 'buffer' output form costs ~1.5 µs a call against ~0.24 µs for hex (measured with 10^6 calls;
 * docs/benchmarks.md), so the hot path hashes to hex and builds a Buffer only where a
 * constant-time comparison needs one.
 */
export function sha256Hex(value: string): string {
  return hash('sha256', value);
}

/** The digest from the request's memo when there is one (live traffic), else hashed now (tests, tools). */
export function sha256HexOf(value: string, digests: Digests | undefined): string {
  return digests === undefined ? sha256Hex(value) : digests.of(value);
}
