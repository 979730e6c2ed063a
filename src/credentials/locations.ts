/**
 * Where a credential can travel in a request, read the same way by every authentication policy
 * (api-key, jwt, oauth2-introspection): a header, the Authorization Bearer scheme (RFC 6750 §2.1),
 * a query parameter (RFC 6750 §2.3 — discouraged: URLs end up in logs), or a cookie (RFC 6265).
 */
import { parseCookie } from 'cookie';
import type { Deny, RequestFacts } from '../pipeline/types.ts';

export type CredentialLocation =
  | { readonly from: 'header'; readonly name: string }
  | { readonly from: 'bearer' }
  | { readonly from: 'query'; readonly name: string }
  | { readonly from: 'cookie'; readonly name: string };

/**
 * Headers that carry credentials whatever the config says (the standard ones and the common API-key
 * headers): never a counter key, never logged, never in evidence. One list for rate-limit keys and
 * the call log's replay record.
 */
export const SECRET_HEADERS: ReadonlySet<string> = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'x-api-key',
  'api-key',
  'apikey',
  'x-api-token',
  'x-auth-token',
  'x-access-token',
  'x-csrf-token',
]);

/** Query parameters people commonly put keys in: api-key looks there for misplaced keys, the call log never stores them. */
export const COMMON_KEY_QUERY: readonly string[] = ['api_key', 'apikey', 'api-key', 'key', 'token', 'access_token'];

const BEARER = /^Bearer[ \t]+([^ \t].*)$/i;

/** A header's first value, trimmed; undefined when absent or empty. `name` is lower-case. */
export function headerValue(facts: RequestFacts, name: string): string | undefined {
  const v = facts.headers[name];
  const s = (Array.isArray(v) ? v[0] : v)?.trim();
  return s === undefined || s === '' ? undefined : s;
}

/** The token of `Authorization: Bearer <token>`, or undefined. */
export function bearerToken(facts: RequestFacts): string | undefined {
  const auth = headerValue(facts, 'authorization');
  return auth === undefined ? undefined : BEARER.exec(auth)?.[1]?.trim();
}

export function queryValue(facts: RequestFacts, name: string): string | undefined {
  if (facts.rawQuery === '') return undefined;
  const v = new URLSearchParams(facts.rawQuery).get(name);
  return v === null || v === '' ? undefined : v;
}

export function cookieValue(facts: RequestFacts, name: string): string | undefined {
  const raw = facts.headers.cookie;
  const all = Array.isArray(raw) ? raw.join('; ') : raw;
  if (all === undefined) return undefined;
  const v = parseCookie(all)[name];
  return v === undefined || v === '' ? undefined : v;
}

export function readCredential(facts: RequestFacts, loc: CredentialLocation): string | undefined {
  switch (loc.from) {
    case 'header':
      return headerValue(facts, loc.name.toLowerCase());
    case 'bearer':
      return bearerToken(facts);
    case 'query':
      return queryValue(facts, loc.name);
    case 'cookie':
      return cookieValue(facts, loc.name);
  }
}

/** How a location is named in denials and remediation ("header x-api-key or Authorization: Bearer"). */
export function describeLocation(loc: CredentialLocation): string {
  switch (loc.from) {
    case 'header':
      return `header ${loc.name}`;
    case 'bearer':
      return 'Authorization: Bearer';
    case 'query':
      return `query parameter ${loc.name}`;
    case 'cookie':
      return `cookie ${loc.name}`;
  }
}

/**
 * A credential sent twice in a query or cookie string: the gateway reads the first value
 * (URLSearchParams.get, the cookie package), but an upstream that trusts the gateway may read the
 * last one (Django's parse_cookie, PHP's $_GET, many others do), and would then act on a value no
 * policy checked. Headers need no such check: Node joins a repeated header into one value, which
 * is then not a valid credential, and Authorization may appear once (src/routing/admit.ts).
 * Only called for the location a credential was found in, so other requests pay nothing.
 */
export function repeatedCredential(facts: RequestFacts, loc: CredentialLocation): Deny | undefined {
  let n = 0;
  if (loc.from === 'query') n = new URLSearchParams(facts.rawQuery).getAll(loc.name).length;
  else if (loc.from === 'cookie') {
    const raw = facts.headers.cookie;
    for (const pair of (Array.isArray(raw) ? raw.join('; ') : (raw ?? '')).split(';')) {
      const eq = pair.indexOf('=');
      if (eq > 0 && pair.slice(0, eq).trim() === loc.name) n++;
    }
  }
  if (n < 2) return undefined;
  const location = describeLocation(loc);
  return { outcome: 'deny', code: 'AUTH_CREDENTIAL_REPEATED', rule: `${location} sent ${n} times`, evidence: { location, count: n } };
}

/**
 * The first credential found in `locations`, in order: its value, or a denial when it was sent
 * twice where it was found ({@link repeatedCredential}); undefined when there is none.
 */
export function firstCredential(facts: RequestFacts, locations: readonly CredentialLocation[]): string | Deny | undefined {
  for (const loc of locations) {
    const value = readCredential(facts, loc);
    if (value === undefined) continue;
    return loc.from === 'query' || loc.from === 'cookie' ? (repeatedCredential(facts, loc) ?? value) : value;
  }
  return undefined;
}
