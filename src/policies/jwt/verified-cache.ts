/**
 * Tokens whose signature was already verified, so a client that sends the same token on every
 * request pays the signature check (an async WebCrypto call, tens of µs) once per token, not once
 * per request. Claims (exp, nbf, iss, aud…) are still checked on every request against the clock.
 *
 * Keyed by SHA-256 of the token, never the token. Bounded in size (oldest out first) and in time:
 * an entry lives at most `ttlMs`, so a key removed from the JWKS stops accepting its tokens within
 * that time. `ttlMs` 0 disables the cache.
 */
import { sha256HexOf, type Digests } from '../../credentials/digests.ts';
import { TtlLru } from '../../cache/ttl-lru.ts';
import type { Allow } from '../../pipeline/types.ts';

export interface VerifiedToken {
  readonly payload: Readonly<Record<string, unknown>>;
  readonly alg: string;
  readonly kid: string | null;
  /** The allow decision the claims produced, reused while `now` stays inside the token's window. */
  readonly allow: Allow;
  /** Seconds since the epoch: the decision holds for validFrom <= now < validUntil (skew included). */
  readonly validFrom: number;
  readonly validUntil: number;
}

export class VerifiedTokens {
  readonly #ttlMs: number;
  /** Read without touching: the oldest verified token goes first, whether or not it is in use. */
  readonly #entries: TtlLru<VerifiedToken>;

  constructor(ttlMs: number, max = 10_000) {
    this.#ttlMs = ttlMs;
    this.#entries = new TtlLru(max);
  }

  get enabled(): boolean {
    return this.#ttlMs > 0;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** SHA-256 hex of the token, from the request's memo when it has one (src/credentials/digests.ts). */
  static keyOf(token: string, digests?: Digests): string {
    return sha256HexOf(token, digests);
  }

  get(key: string, now: number): VerifiedToken | undefined {
    return this.#entries.get(key, now, false);
  }

  set(key: string, token: VerifiedToken, now: number): void {
    if (this.#ttlMs > 0) this.#entries.set(key, token, now + this.#ttlMs, now);
  }
}
