/**
 * The key index: every consumer's API keys, by SHA-256 of the key.
 *
 * Why SHA-256 and not a slow hash: API keys are long random strings (not passwords), so a fast
 * hash is not brute-forceable and lets a lookup cost ~1 µs per request. The lookup is by hash, so
 * its timing reveals at most something about a hash, never about a key; the final equality is
 * still checked with `timingSafeEqual`.
 */
import { timingSafeEqual } from 'node:crypto';
import type { ApiKeySpec, ConfigIssue, ConsumerSpec, Identity } from '../pipeline/types.ts';
import { sha256Hex, sha256HexOf, type Digests } from './digests.ts';

export interface KeyRecord {
  readonly id: string;
  readonly consumer: string;
  readonly hash: Buffer;
  readonly scopes: ReadonlySet<string>;
  /** ms since epoch, or null when the key never expires. */
  readonly expiresAt: number | null;
  readonly revoked: boolean;
  /** The identity this key establishes, built once (no allocation per request). */
  readonly identity: Identity;
}

export function sha256(value: string): Buffer {
  return Buffer.from(sha256Hex(value), 'hex');
}

/** The form stored in config: `sha256:<hex>`. */
export function hashKey(key: string): string {
  return `sha256:${sha256Hex(key)}`;
}

export class KeyIndex {
  readonly #byHash: Map<string, KeyRecord>;
  /** By key id, built on first use: only replays (`pinpoint impact`) look keys up by id. */
  #byId: Map<string, KeyRecord> | undefined;

  private constructor(byHash: Map<string, KeyRecord>) {
    this.#byHash = byHash;
  }

  /** The key with this id; undefined when none. */
  byId(id: string): KeyRecord | undefined {
    this.#byId ??= new Map([...this.records()].map((r) => [r.id, r]));
    return this.#byId.get(id);
  }

  /** Every key, in config order. */
  records(): IterableIterator<KeyRecord> {
    return this.#byHash.values();
  }

  /** The key whose SHA-256 is `digest`; undefined when none. Replays use it to follow a key across configs. */
  byDigest(digest: Buffer): KeyRecord | undefined {
    return this.#byHash.get(digest.toString('hex'));
  }

  /**
   * Looks a presented key up; undefined when unknown. `digests` is the request's memo (live
   * traffic), so the replay record naming the same value does not hash it again.
   */
  find(presented: string, digests?: Digests): KeyRecord | undefined {
    const hex = sha256HexOf(presented, digests);
    const rec = this.#byHash.get(hex);
    if (rec === undefined || !timingSafeEqual(rec.hash, Buffer.from(hex, 'hex'))) return undefined;
    return rec;
  }

  static build(
    consumers: readonly ConsumerSpec[],
    env: Readonly<Record<string, string | undefined>>,
  ): { index: KeyIndex; issues: ConfigIssue[] } {
    const byHash = new Map<string, KeyRecord>();
    const ids = new Map<string, string>();
    const issues: ConfigIssue[] = [];
    consumers.forEach((consumer, ci) => {
      (consumer.credentials?.api_keys ?? []).forEach((key: ApiKeySpec, ki) => {
        const path = `consumers[${ci}].credentials.api_keys[${ki}]`;
        const owner = ids.get(key.id);
        if (owner !== undefined) {
          issues.push({ path: `${path}.id`, message: `key id "${key.id}" is already used by consumer "${owner}"` });
          return;
        }
        ids.set(key.id, consumer.id);
        let hex: string | undefined;
        if (key.hash !== undefined && key.key_env !== undefined) {
          issues.push({ path, message: 'set either hash or key_env, not both' });
          return;
        } else if (key.hash !== undefined) {
          hex = key.hash.slice('sha256:'.length);
        } else if (key.key_env !== undefined) {
          const plain = env[key.key_env];
          if (plain === undefined || plain === '') {
            issues.push({ path: `${path}.key_env`, message: `environment variable ${key.key_env} is not set` });
            return;
          }
          hex = sha256Hex(plain);
        } else {
          issues.push({ path, message: 'a key needs hash (from `pinpoint hash-key`) or key_env' });
          return;
        }
        if (byHash.has(hex)) {
          issues.push({ path, message: `the same key is also configured as "${byHash.get(hex)?.id}"` });
          return;
        }
        let expiresAt: number | null = null;
        if (key.expires_at !== undefined) {
          expiresAt = Date.parse(key.expires_at);
          // RFC 3339 allows a leap second (":60") that Date cannot represent; a NaN here would mean
          // "never expires", so refuse it rather than fail open.
          if (Number.isNaN(expiresAt)) {
            issues.push({ path: `${path}.expires_at`, message: `"${key.expires_at}" is not a time this gateway can represent` });
            return;
          }
        }
        const scopes: ReadonlySet<string> = new Set(key.scopes ?? []);
        byHash.set(hex, {
          id: key.id,
          consumer: consumer.id,
          hash: Buffer.from(hex, 'hex'),
          scopes,
          expiresAt,
          revoked: key.revoked === true,
          identity: Object.freeze({ consumer: consumer.id, credentialId: key.id, credentialType: 'api-key', scopes, groups: new Set(consumer.groups ?? []) }),
        });
      });
    });
    return { index: new KeyIndex(byHash), issues };
  }
}
