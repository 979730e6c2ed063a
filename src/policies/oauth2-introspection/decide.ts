/**
 * Decision for `oauth2-introspection` (RFC 7662): read the access token, answer from the cache
 * when it can (synchronously: no promise on a cache hit), otherwise ask the authorization server
 * through the injected {@link Introspector} and cache what it said.
 *
 * The cache, the in-flight map and the introspector are the only state; the clock is
 * `facts.now`, so tests drive time explicitly.
 */
import { sha256HexOf } from '../../credentials/digests.ts';
import type { Decision, DecisionContext, Identity, RequestFacts } from '../../pipeline/types.ts';
import type { TtlLru } from '../../cache/ttl-lru.ts';
import type { IntrospectionFailure, IntrospectionResult, Introspector } from './client.ts';
import type { TokenLocation } from './schema.ts';
import { describeLocation, firstCredential, headerValue } from '../../credentials/locations.ts';

export { describeLocation };

/** What an introspection answer means for this policy; cached per token hash. */
export type Known =
  | { readonly kind: 'active'; readonly identity: Identity }
  | { readonly kind: 'inactive' }
  | { readonly kind: 'expired'; readonly expiredAt: number }
  | { readonly kind: 'no_consumer'; readonly members: readonly string[] };

export interface IntrospectionCompiled {
  readonly locations: readonly TokenLocation[];
  /** Human list of the accepted places, for evidence. */
  readonly accepted: string;
  readonly realm: string;
  /** host[:port] of the endpoint: evidence names it, never the full URL (it may carry a query). */
  readonly endpointHost: string;
  readonly positiveTtlMs: number;
  readonly negativeTtlMs: number;
  readonly consumerClaim: string;
  readonly scopeClaim: string;
  /** role_claims, each split on '.'. */
  readonly roleClaims: readonly (readonly string[])[];
  /** Consumer groups from config, by consumer id (Identity.groups). */
  readonly groups: ReadonlyMap<string, ReadonlySet<string>>;
  readonly cache: TtlLru<Known>;
  /** One introspection call per token at a time: concurrent requests with it share the answer. */
  readonly inflight: Map<string, Promise<Known | IntrospectionFailure>>;
  readonly introspector: Introspector;
}

const EMPTY: ReadonlySet<string> = Object.freeze(new Set<string>());

const header = headerValue;

/** The scheme of an Authorization header that did not carry an accepted token: a hint, never the credential. */
function authorizationScheme(facts: RequestFacts): string | null {
  const auth = header(facts, 'authorization');
  if (auth === undefined) return null;
  const m = /^([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)[ \t]/.exec(auth);
  return m?.[1] ?? '(no scheme)';
}

/** Short, non-secret reference to a token: a prefix of its SHA-256, for correlating log lines. */
function tokenRef(hashHex: string): string {
  return `sha256:${hashHex.slice(0, 12)}`;
}

/** Members that carry credentials are never copied into Identity.claims (they end up in logs and traces). */
function isTokenLike(name: string): boolean {
  if (name === 'token_type') return false;
  return /(^|_)(token|secret|password|assertion)$/i.test(name) || /^(token|access_token|refresh_token|id_token)$/i.test(name);
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

function path(body: Readonly<Record<string, unknown>>, segments: readonly string[]): unknown {
  let cur: unknown = body;
  for (const s of segments) {
    if (typeof cur !== 'object' || cur === null || Array.isArray(cur) || !Object.hasOwn(cur, s)) return undefined;
    cur = (cur as Record<string, unknown>)[s];
  }
  return cur;
}

/** RFC 6749 §3.3 / RFC 7662 §2.2: a space-delimited string; arrays of strings are accepted too. */
function words(v: unknown): string[] {
  if (typeof v === 'string') return v.split(' ').filter((s) => s !== '');
  if (Array.isArray(v)) return v.filter((s): s is string => typeof s === 'string' && s !== '');
  return [];
}

/**
 * Turns an answer into what it means, and how long that may be reused. Positive answers live
 * until min(exp, now + cache_ttl); negative ones briefly (RFC 7662 §4: a cache is a trade of
 * revocation latency against load, so active answers never outlive the token itself).
 */
export function interpret(
  c: IntrospectionCompiled,
  body: Readonly<Record<string, unknown>> & { readonly active: boolean },
  token: string,
  hashHex: string,
  now: number,
): { known: Known; expiresAt: number } {
  const negative = now + c.negativeTtlMs;
  if (!body.active) return { known: { kind: 'inactive' }, expiresAt: negative };
  const expSec = typeof body.exp === 'number' && Number.isFinite(body.exp) ? body.exp : undefined;
  const expMs = expSec === undefined ? undefined : expSec * 1000;
  if (expMs !== undefined && expMs <= now) return { known: { kind: 'expired', expiredAt: expMs }, expiresAt: negative };
  const positive = Math.min(expMs ?? Infinity, now + c.positiveTtlMs);

  const rawConsumer = body[c.consumerClaim];
  const consumer = typeof rawConsumer === 'string' ? rawConsumer : typeof rawConsumer === 'number' ? String(rawConsumer) : '';
  if (consumer === '') {
    return { known: { kind: 'no_consumer', members: Object.keys(body).filter((k) => !isTokenLike(k)).sort() }, expiresAt: positive };
  }

  const claims: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) {
    // Some servers echo credentials back; drop them by name and by value.
    if (isTokenLike(k) || v === token) continue;
    claims[k] = v;
  }
  const roles = new Set<string>();
  for (const segs of c.roleClaims) for (const r of words(path(body, segs))) roles.add(r);
  const jti = typeof body.jti === 'string' && body.jti !== '' ? body.jti : undefined;
  const identity: Identity = Object.freeze({
    consumer,
    credentialId: jti ?? tokenRef(hashHex),
    credentialType: 'oauth2-introspection',
    scopes: Object.freeze(new Set(words(body[c.scopeClaim]))),
    roles: Object.freeze(roles),
    claims: deepFreeze(claims),
    groups: c.groups.get(consumer) ?? EMPTY,
  });
  return { known: { kind: 'active', identity }, expiresAt: positive };
}

function challenge(c: IntrospectionCompiled, error?: string): Record<string, string> {
  // RFC 6750 §3: no error attribute when the request carried no token; invalid_token otherwise.
  return { 'www-authenticate': `Bearer realm="${c.realm}"${error !== undefined ? `, error="${error}"` : ''}` };
}

function fromKnown(c: IntrospectionCompiled, k: Known, hashHex: string, cached: boolean): Decision {
  const ref = tokenRef(hashHex);
  switch (k.kind) {
    case 'active':
      return {
        outcome: 'allow',
        rule: `token active for ${k.identity.consumer}`,
        evidence: { consumer: k.identity.consumer, credential_id: k.identity.credentialId, cached },
        identity: k.identity,
      };
    case 'inactive':
      return {
        outcome: 'deny',
        code: 'AUTH_INTROSPECTION_TOKEN_INACTIVE',
        rule: 'introspection: active false',
        evidence: { token_ref: ref, endpoint_host: c.endpointHost, cached },
        headers: challenge(c, 'invalid_token'),
      };
    case 'expired':
      return {
        outcome: 'deny',
        code: 'AUTH_INTROSPECTION_TOKEN_EXPIRED',
        rule: 'introspection: active but exp has passed',
        evidence: { token_ref: ref, expired_at: new Date(k.expiredAt).toISOString(), endpoint_host: c.endpointHost, cached },
        headers: challenge(c, 'invalid_token'),
      };
    case 'no_consumer':
      return {
        outcome: 'deny',
        code: 'AUTH_INTROSPECTION_NO_CONSUMER',
        rule: `introspection: no ${c.consumerClaim} member`,
        evidence: { token_ref: ref, consumer_claim: c.consumerClaim, members: k.members, cached },
        headers: challenge(c, 'invalid_token'),
      };
  }
}

function unavailable(c: IntrospectionCompiled, f: IntrospectionFailure): Decision {
  return {
    outcome: 'deny',
    code: 'INTROSPECTION_UNAVAILABLE',
    rule: `introspection failed: ${f.failure}`,
    evidence: { endpoint_host: c.endpointHost, failure: f.failure, status: f.status, error_code: f.errorCode },
    // RFC 9110 §10.2.3 on a 503: failures are never cached, so the very next request asks again.
    headers: { 'retry-after': '1' },
  };
}

function ask(c: IntrospectionCompiled, token: string, hashHex: string, now: number): Promise<Known | IntrospectionFailure> {
  const pending = c.inflight.get(hashHex);
  if (pending !== undefined) return pending;
  const p = c.introspector
    .introspect(token)
    .then((r: IntrospectionResult): Known | IntrospectionFailure => {
      // Failures are not cached: the next request tries again (they are the endpoint's fault, not the token's).
      if (!r.ok) return r;
      const { known, expiresAt } = interpret(c, r.body, token, hashHex, now);
      c.cache.set(hashHex, known, expiresAt, now);
      return known;
    })
    .finally(() => c.inflight.delete(hashHex));
  c.inflight.set(hashHex, p);
  return p;
}

/** Never equal to a claim value: the recorded claims hold no token to drop. */
const NO_TOKEN = '\u0000';

/**
 * A replayed request (`pinpoint impact`): the token was not recorded, what the authorization
 * server said about it was (the non-secret members). They are interpreted again under this
 * config (consumer_claim, scope_claim, role_claims, exp at the logged time); the server is not
 * asked, and the replay context stops the replay when this policy asks another endpoint.
 */
function replayed(c: IntrospectionCompiled, ctx: DecisionContext, replay: NonNullable<DecisionContext['replay']>): Decision {
  const t = replay.verifiedToken('oauth2-introspection');
  // The token reference (sha256:<prefix>) the logged identity carried, so credential ids match.
  const ref = replay.identity?.credentialId ?? '';
  const hashHex = ref.startsWith('sha256:') ? ref.slice('sha256:'.length) : '';
  const { known } = interpret(c, { ...t.claims, active: true }, NO_TOKEN, hashHex, ctx.facts.now);
  return fromKnown(c, known, hashHex, false);
}

export function decideIntrospection(c: IntrospectionCompiled, ctx: DecisionContext): Decision | Promise<Decision> {
  const facts = ctx.facts;
  const token = firstCredential(facts, c.locations);
  if (typeof token === 'object') return token; // sent twice
  if (token === undefined) {
    return {
      outcome: 'deny',
      code: 'AUTH_INTROSPECTION_TOKEN_MISSING',
      rule: 'no token in any accepted place',
      evidence: { accepted: c.accepted, authorization_scheme: authorizationScheme(facts) },
      headers: challenge(c),
    };
  }
  if (ctx.replay !== undefined) return replayed(c, ctx, ctx.replay);
  const hashHex = sha256HexOf(token, facts.digests);
  // A dry run (diagnose / trace) must not change what live traffic sees: peek without touching LRU order.
  const hit = c.cache.get(hashHex, facts.now, !ctx.dryRun);
  if (hit !== undefined) return fromKnown(c, hit, hashHex, true);
  if (ctx.dryRun) return { outcome: 'skip', rule: 'not cached (dry run)' };
  return ask(c, token, hashHex, facts.now).then((r) => ('ok' in r ? unavailable(c, r) : fromKnown(c, r, hashHex, false)));
}
