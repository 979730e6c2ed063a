/**
 * Tokens whose signature was already verified, so a client that sends the same token on every
 * request pays the signature check (an async WebCrypto call, tens of µs) once per token, not once
 * per request. Claims (exp, nbf, iss, aud…) are still checked on every request against the clock.
 *
 * Keyed by SHA-256 of the token, never the token. Bounded in size (oldest out first) and in time:
 * an entry lives at most `ttlMs`, so a key removed from the JWKS stops accepting its tokens within
 * that time. `ttlMs` 0 disables the cache.
 */
import { hash } from 'node:crypto';
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
  readonly #max: number;
  readonly #entries = new Map<string, { readonly token: VerifiedToken; readonly until: number }>();

  constructor(ttlMs: number, max = 10_000) {
    this.#ttlMs = ttlMs;
    this.#max = max;
  }

  get enabled(): boolean {
    return this.#ttlMs > 0;
  }

  static keyOf(token: string): string {
    return hash('sha256', token, 'base64');
  }

  get(key: string, now: number): VerifiedToken | undefined {
    const e = this.#entries.get(key);
    if (e === undefined) return undefined;
    if (e.until <= now) {
      this.#entries.delete(key);
      return undefined;
    }
    return e.token;
  }

  set(key: string, token: VerifiedToken, now: number): void {
    if (this.#ttlMs <= 0) return;
    if (this.#entries.size >= this.#max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    this.#entries.set(key, { token, until: now + this.#ttlMs });
  }
}
