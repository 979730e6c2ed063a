/**
 * HTTP Basic users (RFC 7617): every consumer's `credentials.basic_auth` entries, indexed by user
 * name once per config load, and a small cache of recent successful verifications.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { TtlLru } from '../cache/ttl-lru.ts';
import type { ConfigIssue, ConsumerSpec } from '../pipeline/types.ts';
import { parsePasswordHash, type PasswordHash } from './password.ts';

export interface BasicUser {
  readonly username: string;
  readonly consumer: string;
  readonly groups: ReadonlySet<string>;
  readonly hash: PasswordHash;
}

export class BasicUserIndex {
  readonly #byName: ReadonlyMap<string, BasicUser>;

  private constructor(byName: ReadonlyMap<string, BasicUser>) {
    this.#byName = byName;
  }

  get size(): number {
    return this.#byName.size;
  }

  /** The user, by exact (NFC-normalised) user name; undefined when unknown. */
  find(username: string): BasicUser | undefined {
    return this.#byName.get(username.normalize('NFC'));
  }

  /**
   * Indexes every consumer's Basic users. Issues name the exact config path
   * (`consumers[i].credentials.basic_auth[j].username`).
   */
  static build(consumers: readonly ConsumerSpec[]): { index: BasicUserIndex; issues: ConfigIssue[] } {
    const byName = new Map<string, BasicUser>();
    const where = new Map<string, string>();
    const issues: ConfigIssue[] = [];
    consumers.forEach((consumer, ci) => {
      const groups: ReadonlySet<string> = new Set(consumer.groups ?? []);
      (consumer.credentials?.basic_auth ?? []).forEach((spec, ui) => {
        const path = `consumers[${ci}].credentials.basic_auth[${ui}]`;
        const name = spec.username.normalize('NFC');
        // RFC 7617 §2: the user-id cannot contain a colon (the first colon ends it), nor controls.
        if (name === '' || name.includes(':') || /[\u0000-\u001f\u007f]/.test(name)) {
          issues.push({ path: `${path}.username`, message: `user name "${spec.username}" is empty or contains a colon or control character (RFC 7617 §2)` });
          return;
        }
        const first = where.get(name);
        if (first !== undefined) {
          issues.push({ path: `${path}.username`, message: `user name "${name}" is already used at ${first}` });
          return;
        }
        const hash = parsePasswordHash(spec.password_hash);
        if (typeof hash === 'string') {
          issues.push({ path: `${path}.password_hash`, message: hash });
          return;
        }
        where.set(name, `${path}.username (consumer "${consumer.id}")`);
        byName.set(name, Object.freeze({ username: name, consumer: consumer.id, groups, hash }));
      });
    });
    return { index: new BasicUserIndex(byName), issues };
  }
}

/**
 * Recently verified (user name, password) pairs → the user they verified as, bounded and expiring.
 *
 * The trade-off: scrypt costs tens of milliseconds of CPU per check on purpose, and a client sends
 * the same Basic credentials on every request. Without a cache a busy client would pin the thread
 * pool. With it, a password that was correct within the last `ttlMs` is accepted again without
 * scrypt. The cost: (1) a password changed or a user removed by a config reload is unaffected
 * (each compile builds a new cache), but within one config a correct password is remembered for
 * up to `ttlMs`; (2) the process holds a fast digest of each cached pair. The digest is an HMAC
 * under a random key made per cache, never written anywhere, so a leaked digest alone cannot be
 * brute-forced offline the way a plain SHA-256 could. Only successes are cached: a wrong guess
 * always pays full scrypt, so the cache never speeds up guessing.
 */
export class VerifiedCache {
  readonly #max: number;
  readonly #ttlMs: number;
  readonly #secret = randomBytes(32);
  /** Least recently used out first: a hit makes the pair young again. */
  readonly #entries: TtlLru<BasicUser>;

  constructor(max: number, ttlMs: number) {
    this.#max = max;
    this.#ttlMs = ttlMs;
    this.#entries = new TtlLru(max);
  }

  get enabled(): boolean {
    return this.#max > 0 && this.#ttlMs > 0;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The cache key of a pair. RFC 7617 user-ids have no colon, so "user:password" is unambiguous. */
  key(username: string, password: string): string {
    return createHmac('sha256', this.#secret).update(`${username}:${password}`, 'utf8').digest('base64');
  }

  get(key: string, now: number): BasicUser | undefined {
    return this.#entries.get(key, now);
  }

  set(key: string, user: BasicUser, now: number): void {
    if (this.enabled) this.#entries.set(key, user, now + this.#ttlMs, now);
  }
}
