/**
 * Pure decision for `api-key`: find the key where the route accepts it, or explain where it went.
 */
import type { Decision, DecisionContext, RequestFacts } from '../../pipeline/types.ts';
import type { KeyIndex } from '../../credentials/api-keys.ts';
import type { KeyLocation } from './schema.ts';
import { COMMON_KEY_QUERY, describeLocation, headerValue, readCredential, repeatedCredential } from '../../credentials/locations.ts';

export { describeLocation };

export interface ApiKeyCompiled {
  readonly locations: readonly KeyLocation[];
  readonly accepted: string;
  readonly requiredScopes: readonly string[];
  /** WWW-Authenticate value; `error` params (RFC 6750 §3) go into the Bearer challenge. */
  challenge(error?: string): string;
  readonly keys: KeyIndex;
}

/** Places people commonly put keys; searched only after the accepted places came up empty. */
const COMMON_HEADERS = ['x-api-key', 'api-key', 'apikey', 'x-api-token', 'x-auth-token', 'x-access-token', 'authorization'];

const BEARER = /^Bearer[ \t]+([^ \t].*)$/i;

const header = headerValue;

/** Where a key-like value was sent outside the accepted places, if anywhere. */
function findElsewhere(facts: RequestFacts, c: ApiKeyCompiled): { where: string; value: string } | undefined {
  const acceptedHeaders = new Set(c.locations.flatMap((l) => (l.from === 'header' ? [l.name.toLowerCase()] : [])));
  const acceptsBearer = c.locations.some((l) => l.from === 'bearer');
  for (const name of COMMON_HEADERS) {
    if (acceptedHeaders.has(name)) continue;
    const v = header(facts, name);
    if (v === undefined) continue;
    if (name === 'authorization') {
      const bearer = BEARER.exec(v)?.[1];
      if (bearer !== undefined && !acceptsBearer) return { where: 'Authorization: Bearer', value: bearer.trim() };
      if (bearer === undefined) {
        const scheme = /^([A-Za-z]+)[ \t]+(.+)$/.exec(v);
        if (scheme === null) return { where: 'Authorization header without the Bearer scheme', value: v.trim() };
        if (scheme[1]?.toLowerCase() !== 'basic') return { where: `Authorization: ${scheme[1]}`, value: (scheme[2] ?? '').trim() };
      }
      continue;
    }
    return { where: `header ${name}`, value: v };
  }
  const acceptedQuery = new Set(c.locations.flatMap((l) => (l.from === 'query' ? [l.name] : [])));
  if (facts.rawQuery !== '') {
    const q = new URLSearchParams(facts.rawQuery);
    for (const name of COMMON_KEY_QUERY) {
      if (acceptedQuery.has(name)) continue;
      const v = q.get(name);
      if (v !== null && v !== '') return { where: `query parameter ${name}`, value: v };
    }
  }
  return undefined;
}

/**
 * Looks a presented value up. In a replay (`pinpoint impact`) the value is a placeholder for a
 * key that was not recorded: the replay context says which key it was, and that key's record in
 * this config decides (removed, revoked, expired at the logged time, re-scoped). A function, not
 * a closure per request, so live traffic allocates nothing for it.
 */
function findKey(c: ApiKeyCompiled, ctx: DecisionContext, presented: string): ReturnType<KeyIndex['find']> {
  return ctx.replay === undefined ? c.keys.find(presented, ctx.facts.digests) : ctx.replay.apiKey(presented, c.keys);
}

export function decideApiKey(c: ApiKeyCompiled, ctx: DecisionContext): Decision {
  const facts = ctx.facts;
  let presented: string | undefined;
  let foundAt: KeyLocation | undefined;
  for (const loc of c.locations) {
    presented = readCredential(facts, loc);
    if (presented !== undefined) {
      foundAt = loc;
      break;
    }
  }

  if (presented === undefined || foundAt === undefined) {
    const elsewhere = findElsewhere(facts, c);
    const challenge = { 'www-authenticate': c.challenge() };
    if (elsewhere !== undefined) {
      const known = findKey(c, ctx, elsewhere.value);
      return {
        outcome: 'deny',
        code: 'AUTH_KEY_WRONG_PLACE',
        rule: `key found in ${elsewhere.where}`,
        evidence: {
          found_in: elsewhere.where,
          accepted: c.accepted,
          // Whether what was found is a real key helps tell "wrong place" from "wrong thing".
          found_key_id: known?.id ?? null,
        },
        headers: challenge,
      };
    }
    return { outcome: 'deny', code: 'AUTH_KEY_MISSING', rule: 'no key in any accepted place', evidence: { accepted: c.accepted }, headers: challenge };
  }

  const repeated = foundAt.from === 'query' ? repeatedCredential(facts, foundAt) : undefined;
  if (repeated !== undefined) return repeated;
  const where = describeLocation(foundAt);
  const key = findKey(c, ctx, presented);
  if (key === undefined) {
    return {
      outcome: 'deny',
      code: 'AUTH_KEY_INVALID',
      rule: 'key not known',
      evidence: { found_in: where, key_length: presented.length },
      headers: { 'www-authenticate': c.challenge('error="invalid_token"') },
    };
  }
  if (key.revoked) {
    return {
      outcome: 'deny',
      code: 'AUTH_KEY_REVOKED',
      rule: `key ${key.id} revoked`,
      evidence: { key_id: key.id, consumer: key.consumer },
      headers: { 'www-authenticate': c.challenge('error="invalid_token"') },
    };
  }
  if (key.expiresAt !== null && facts.now >= key.expiresAt) {
    return {
      outcome: 'deny',
      code: 'AUTH_KEY_EXPIRED',
      rule: `key ${key.id} expired`,
      evidence: {
        key_id: key.id,
        consumer: key.consumer,
        expired_at: new Date(key.expiresAt).toISOString(),
        expired_seconds_ago: Math.floor((facts.now - key.expiresAt) / 1000),
      },
      headers: { 'www-authenticate': c.challenge('error="invalid_token"') },
    };
  }
  const missing = c.requiredScopes.filter((s) => !key.scopes.has(s));
  if (missing.length > 0) {
    return {
      outcome: 'deny',
      code: 'AUTH_KEY_SCOPE_MISSING',
      rule: `key ${key.id} lacks ${missing.join(', ')}`,
      evidence: {
        key_id: key.id,
        consumer: key.consumer,
        missing_scopes: missing,
        required_scopes: c.requiredScopes,
        key_scopes: [...key.scopes],
      },
      headers: { 'www-authenticate': c.challenge(`error="insufficient_scope", scope="${c.requiredScopes.join(' ')}"`) },
      identity: key.identity,
    };
  }
  return { outcome: 'allow', rule: `key ${key.id}`, evidence: { key_id: key.id, consumer: key.consumer, found_in: where }, identity: key.identity };
}
