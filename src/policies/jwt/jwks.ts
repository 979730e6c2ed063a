/**
 * A remote JWKS (RFC 7517 §5), cached, with refresh on an unknown `kid` bounded by a minimum
 * interval.
 *
 * Why not jose's createRemoteJWKSet: it reads the wall clock itself (decisions here take the
 * request's `now`), has no "answer from cache only" mode for dry runs, and folds "this kid has no
 * key of a type that can verify this alg" into "no matching key". The cache is small enough to own;
 * jose still does every signature check.
 *
 * Rules:
 * - Keys are fetched on first use, then kept for `cacheMs`; a stale set is refreshed on the next
 *   request and, if that refresh fails, the stale keys keep working (an outage of the key server
 *   does not log everyone out).
 * - An unknown kid triggers a refetch (the issuer may have rotated keys), but at most once per
 *   `minRefreshMs`: tokens with made-up kids cannot turn the gateway into a flood of requests to
 *   the key server. The same interval spaces retries after a failed fetch.
 * - Concurrent requests share one fetch.
 * - Unreachable (network error, timeout, non-200, not a JWKS) is reported as such, with the host
 *   and an error code, never the response body: it is not the client's fault.
 */
import { request } from 'undici';
import { bindKey, KeySet, keyFromJwk, type Algorithm, type KeyLookup, type VerificationKey } from './keys.ts';

/** Fetches and parses the JWKS document; rejects with a {@link JwksError}. */
export type JwksFetcher = (url: URL, timeoutMs: number) => Promise<unknown>;

/** A fetch failure with a short, non-secret code (ECONNREFUSED, TIMEOUT, HTTP_500, INVALID_JSON…). */
export class JwksError extends Error {
  readonly code: string;
  constructor(code: string) {
    super(`JWKS fetch failed: ${code}`);
    this.name = 'JwksError';
    this.code = code;
  }
}

/** A JWKS larger than this is refused: real ones hold a handful of keys (a few KiB). */
const MAX_JWKS_BYTES = 512 * 1024;

function errorCode(err: unknown): string {
  if (err instanceof JwksError) return err.code;
  if (err instanceof Error) {
    if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'TIMEOUT';
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z0-9_]{1,40}$/.test(code)) return code;
    const cause = (err as { cause?: unknown }).cause;
    if (cause !== undefined && cause !== err) return errorCode(cause);
  }
  return 'FETCH_FAILED';
}

/** The default fetcher: undici, GET, no redirects, a timeout on the whole exchange, a size cap. */
export const fetchJwks: JwksFetcher = async (url, timeoutMs) => {
  try {
    const res = await request(url, {
      method: 'GET',
      headers: { accept: 'application/jwk-set+json, application/json' },
      signal: AbortSignal.timeout(timeoutMs),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new JwksError(`HTTP_${res.statusCode}`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > MAX_JWKS_BYTES) {
        res.body.destroy();
        throw new JwksError('TOO_LARGE');
      }
      chunks.push(chunk as Buffer);
    }
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    } catch {
      throw new JwksError('INVALID_JSON');
    }
  } catch (err) {
    throw new JwksError(errorCode(err));
  }
};

/** Turns a JWKS document into keys; unusable keys are skipped with their reason. */
export function parseJwks(doc: unknown, allowed: ReadonlySet<Algorithm>): { set: KeySet; skipped: { kid: string | null; reason: string }[] } {
  const keys = (doc as { keys?: unknown } | null)?.keys;
  if (typeof doc !== 'object' || doc === null || !Array.isArray(keys)) throw new JwksError('INVALID_JWKS');
  const usable: VerificationKey[] = [];
  const skipped: { kid: string | null; reason: string }[] = [];
  for (const jwk of keys as unknown[]) {
    if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) {
      skipped.push({ kid: null, reason: 'not a JWK object' });
      continue;
    }
    const j = jwk as Record<string, unknown>;
    const kid = typeof j.kid === 'string' ? j.kid : undefined;
    const key = keyFromJwk(j);
    const bound = typeof key === 'string' ? key : bindKey(key, kid, typeof j.alg === 'string' ? j.alg : undefined, allowed);
    if (typeof bound === 'string') skipped.push({ kid: kid ?? null, reason: bound });
    else usable.push(bound);
  }
  return { set: new KeySet(usable), skipped };
}

export type JwksLookup =
  | KeyLookup
  | { readonly kind: 'unreachable'; readonly host: string; readonly error: string; readonly retryAfterSeconds: number }
  /** Dry run: answering would need a fetch. */
  | { readonly kind: 'not_cached' };

export interface RemoteJwksOptions {
  readonly cacheMs: number;
  readonly minRefreshMs: number;
  readonly timeoutMs: number;
  readonly allowed: ReadonlySet<Algorithm>;
  readonly fetcher?: JwksFetcher;
}

const NOT_CACHED: JwksLookup = Object.freeze({ kind: 'not_cached' });

export class RemoteJwks {
  readonly url: URL;
  readonly #opts: RemoteJwksOptions;
  readonly #fetcher: JwksFetcher;
  #set: KeySet | undefined;
  #fetchedAt = -Infinity;
  #lastAttempt: number | undefined;
  #lastError: string | undefined;
  #inflight: Promise<void> | undefined;
  /** Fetch attempts so far (for metrics and tests). */
  attempts = 0;
  /** Keys of the last good fetch that could not be used, and why (for diagnosis). */
  skipped: readonly { kid: string | null; reason: string }[] = [];

  constructor(url: URL, opts: RemoteJwksOptions) {
    this.url = url;
    this.#opts = opts;
    this.#fetcher = opts.fetcher ?? fetchJwks;
  }

  #canAttempt(now: number): boolean {
    return this.#lastAttempt === undefined || now - this.#lastAttempt >= this.#opts.minRefreshMs;
  }

  #unreachable(now: number): JwksLookup {
    const wait = this.#lastAttempt === undefined ? 0 : this.#lastAttempt + this.#opts.minRefreshMs - now;
    return { kind: 'unreachable', host: this.url.host, error: this.#lastError ?? 'FETCH_FAILED', retryAfterSeconds: Math.max(1, Math.ceil(wait / 1000)) };
  }

  #refresh(now: number): Promise<void> {
    if (this.#inflight !== undefined) return this.#inflight;
    this.#lastAttempt = now;
    this.attempts++;
    const p = this.#fetcher(this.url, this.#opts.timeoutMs)
      .then((doc) => {
        const { set, skipped } = parseJwks(doc, this.#opts.allowed);
        this.#set = set;
        this.skipped = skipped;
        this.#fetchedAt = now;
        this.#lastError = undefined;
      })
      .catch((err: unknown) => {
        this.#lastError = errorCode(err);
      })
      .finally(() => {
        this.#inflight = undefined;
      });
    this.#inflight = p;
    return p;
  }

  /** After a fetch attempt: a kid still unknown while the key server is failing is the server's fault, not the token's. */
  #afterRefresh(kid: string | undefined, alg: Algorithm, now: number): JwksLookup {
    const set = this.#set;
    if (set === undefined) return this.#unreachable(now);
    const r = set.lookup(kid, alg);
    if (r.kind === 'unknown_kid' && this.#lastError !== undefined) return this.#unreachable(now);
    return r;
  }

  /**
   * Keys for (kid, alg). Synchronous when the cache can answer; a promise when a fetch is needed.
   * In a dry run nothing is fetched: what the cache cannot answer is `not_cached`.
   */
  lookup(kid: string | undefined, alg: Algorithm, now: number, dryRun: boolean): JwksLookup | Promise<JwksLookup> {
    const set = this.#set;
    if (dryRun) {
      if (set === undefined) return NOT_CACHED;
      const r = set.lookup(kid, alg);
      // A live request would refetch here; a dry run cannot know what that fetch would bring.
      if (r.kind === 'unknown_kid' && this.#canAttempt(now)) return NOT_CACHED;
      if (r.kind === 'unknown_kid' && this.#lastError !== undefined) return this.#unreachable(now);
      return r;
    }
    // A fetch in progress may bring exactly the key this token needs: wait for it.
    if (this.#inflight !== undefined) return this.#inflight.then(() => this.#afterRefresh(kid, alg, now));
    const fresh = set !== undefined && now - this.#fetchedAt < this.#opts.cacheMs;
    if (!fresh && this.#canAttempt(now)) return this.#refresh(now).then(() => this.#afterRefresh(kid, alg, now));
    if (set === undefined) return this.#unreachable(now);
    const r = set.lookup(kid, alg);
    if (r.kind === 'unknown_kid') {
      if (this.#canAttempt(now)) return this.#refresh(now).then(() => this.#afterRefresh(kid, alg, now));
      // The last fetch failed: the kid may well be a new key we could not get.
      if (this.#lastError !== undefined) return this.#unreachable(now);
    }
    return r;
  }

  /** Whether a refetch for an unknown kid is currently held back, and for how many seconds. */
  refetchHeldFor(now: number): number {
    if (this.#canAttempt(now) || this.#lastAttempt === undefined) return 0;
    return Math.ceil((this.#lastAttempt + this.#opts.minRefreshMs - now) / 1000);
  }
}
