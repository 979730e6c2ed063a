/**
 * The replay record of a call-log entry: the request as the policies saw it, minus its secrets,
 * so `pinpoint impact` can run it through another config (docs/call-log.md, "Replay records").
 *
 * Built once per request when the response closes (never on the way in), from what the exchange
 * already holds. The per-config part (which headers and query parameters carry credentials, which
 * claims policies read) is worked out once per compiled config and cached.
 *
 * What is never stored: the values of Authorization, Proxy-Authorization and Cookie, of the common
 * API-key headers, of every header and query parameter the config names as a credential location,
 * and of the CSRF token header. Each is replaced by a placeholder `[redacted#N …]` where N numbers
 * the distinct secret values of this request (equal values share N, so a double-submit CSRF check
 * still compares equal), and the annotations say what the gateway knew about the value:
 * `key=<id>` when it is a configured API key, `user=<name>` or `malformed=<reason>` for HTTP Basic.
 */
import type { CompiledConfig } from '../config/compile.ts';
import type { KeyIndex } from '../credentials/api-keys.ts';
import type { Digests } from '../credentials/digests.ts';
import { COMMON_KEY_QUERY, SECRET_HEADERS } from '../credentials/locations.ts';
import type { Config } from '../config/schema.ts';
import type { Identity } from '../pipeline/types.ts';
import { parseBasic } from '../policies/basic-auth/decide.ts';
import type { RecordedIdentity, ReplayRecord } from './types.ts';

/** Query parameters that carry keys whatever the config says (where api-key looks for misplaced keys). */
const SECRET_QUERY: ReadonlySet<string> = new Set(COMMON_KEY_QUERY);

/** Claims every token policy may read (RFC 7519 §4.1, RFC 7662 §2.2, RFC 8693 §4.2). */
const STANDARD_CLAIMS: readonly string[] = ['sub', 'iss', 'aud', 'exp', 'nbf', 'iat', 'jti', 'scope', 'scp', 'roles', 'client_id', 'azp'];

/**
 * Authentication schemes whose name is kept in front of a redacted Authorization value. Any other
 * first word could be a credential sent without a scheme, so it is replaced by {@link OTHER_SCHEME}.
 */
const KNOWN_SCHEMES: ReadonlySet<string> = new Set(
  ['Basic', 'Bearer', 'Digest', 'Negotiate', 'NTLM', 'DPoP', 'GNAP', 'HOBA', 'Mutual', 'OAuth', 'PrivateToken', 'Concealed', 'SCRAM-SHA-1', 'SCRAM-SHA-256', 'vapid', 'Token', 'ApiKey', 'AWS4-HMAC-SHA256', 'JWT'].map((s) => s.toLowerCase()),
);

/** Stands for an unregistered scheme word: still a scheme to the parsers, never the word itself. */
export const OTHER_SCHEME = 'Unregistered-Scheme';

const SCHEME = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]+([^ \t].*)$/;
const PLACEHOLDER = /^\[redacted#(\d+)((?: [a-z]+=[^ \]]*)*)\]$/;

/** A placeholder and what it says about the value it replaced. */
export interface Placeholder {
  readonly n: number;
  readonly key?: string;
  readonly user?: string;
  readonly malformed?: string;
}

export function formatPlaceholder(p: Placeholder): string {
  let s = `[redacted#${p.n}`;
  if (p.key !== undefined) s += ` key=${encodeURIComponent(p.key)}`;
  if (p.user !== undefined) s += ` user=${encodeURIComponent(p.user)}`;
  if (p.malformed !== undefined) s += ` malformed=${encodeURIComponent(p.malformed)}`;
  return `${s}]`;
}

/** The placeholder `value` is, or undefined when it is a value stored as sent. */
export function parsePlaceholder(value: string): Placeholder | undefined {
  const m = PLACEHOLDER.exec(value.trim());
  if (m === null) return undefined;
  const out: { n: number; key?: string; user?: string; malformed?: string } = { n: Number(m[1]) };
  for (const part of (m[2] ?? '').split(' ')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq);
    const v = decodeURIComponent(part.slice(eq + 1));
    if (name === 'key' || name === 'user' || name === 'malformed') out[name] = v;
  }
  return out;
}

/** The credential part of a (possibly redacted) Authorization value: the placeholder after the scheme. */
export function authorizationPlaceholder(value: string): { scheme: string | undefined; placeholder: Placeholder } | undefined {
  const v = value.trim();
  const m = SCHEME.exec(v);
  const ph = parsePlaceholder(m === null ? v : (m[2] ?? ''));
  return ph === undefined ? undefined : { scheme: m?.[1], placeholder: ph };
}

/** What a config says about secrets and claims, worked out once per compiled config. */
interface Plan {
  readonly enabled: boolean;
  readonly secretHeaders: ReadonlySet<string>;
  readonly secretQuery: ReadonlySet<string>;
  readonly claims: ReadonlySet<string>;
  readonly bodyBytes: number;
  readonly keys: KeyIndex;
}

const plans = new WeakMap<CompiledConfig, Plan>();

function strings(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  return Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : [];
}

function record(v: unknown): Readonly<Record<string, unknown>> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/** Header (lower-case) and query names where the config's policies read credentials. */
function credentialLocations(source: Config): { headers: Set<string>; query: Set<string> } {
  const headers = new Set(SECRET_HEADERS);
  const query = new Set(SECRET_QUERY);
  for (const inst of Object.values(source.policies)) {
    const c = record(inst.config);
    if (inst.type === 'api-key' || inst.type === 'jwt' || inst.type === 'oauth2-introspection') {
      for (const loc of Array.isArray(c.in) ? c.in : []) {
        const l = record(loc);
        if (typeof l.name !== 'string') continue;
        if (l.from === 'header') headers.add(l.name.toLowerCase());
        else if (l.from === 'query') query.add(l.name);
      }
    } else if (inst.type === 'csrf' && typeof c.header_name === 'string') {
      // The double-submit header repeats a cookie value: as secret as the cookie.
      headers.add(c.header_name.toLowerCase());
    }
  }
  return { headers, query };
}

/** Top-level claim names the config's policies read, plus the standard ones. */
export function claimsRead(source: Config): Set<string> {
  const out = new Set(STANDARD_CLAIMS);
  for (const inst of Object.values(source.policies)) {
    const c = record(inst.config);
    switch (inst.type) {
      case 'jwt':
        for (const n of [...strings(c.consumer_claim), ...strings(c.scope_claims), ...strings(c.role_claims), ...strings(c.required_claims)]) out.add(n);
        break;
      case 'oauth2-introspection':
        // role_claims are dotted paths (realm_access.roles): the top-level member is kept whole.
        for (const n of [...strings(c.consumer_claim), ...strings(c.scope_claim), ...strings(c.role_claims)]) out.add(n.split('.')[0] ?? n);
        break;
      case 'ownership':
        for (const n of strings(c.claim)) if (n !== 'consumer') out.add(n);
        break;
      case 'tenant':
        for (const n of strings(c.claim)) out.add(n);
        break;
    }
  }
  return out;
}

function planOf(cfg: CompiledConfig): Plan {
  let p = plans.get(cfg);
  if (p === undefined) {
    const cl = cfg.source.call_log;
    const where = credentialLocations(cfg.source);
    p = Object.freeze({
      enabled: cl.replay,
      secretHeaders: where.headers,
      secretQuery: where.query,
      claims: claimsRead(cfg.source),
      bodyBytes: cl.replay_body_bytes,
      keys: cfg.apiKeys,
    });
    plans.set(cfg, p);
  }
  return p;
}

/** What the record is built from: all of it is already on the exchange when the response closes. */
export interface ReplaySource {
  readonly config: CompiledConfig;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The raw query string without '?'. */
  readonly query: string;
  readonly peer: string | undefined;
  /** Where the client IP came from, as the gateway decided it when the request arrived. */
  readonly ipSource: 'socket' | 'x-forwarded-for' | 'forwarded';
  readonly identity: Identity | undefined;
  /** The body, when a policy buffered it. */
  readonly body: Buffer | undefined;
  /** The request's credential digests (live traffic): a value a policy already hashed is not hashed again. */
  readonly digests?: Digests | undefined;
}

/** Numbers the distinct secret values of one request and remembers what each one was. */
class Redactor {
  readonly #keys: KeyIndex;
  readonly #digests: Digests | undefined;
  #seen: Map<string, number> | undefined;
  #keyIds: Map<string, string | null> | undefined;

  constructor(keys: KeyIndex, digests: Digests | undefined) {
    this.#keys = keys;
    this.#digests = digests;
  }

  /** Records what a value is known to be, so it is not hashed again (see buildReplayRecord). */
  know(value: string, keyId: string): void {
    (this.#keyIds ??= new Map()).set(value, keyId);
  }

  #n(value: string): number {
    this.#seen ??= new Map();
    let n = this.#seen.get(value);
    if (n === undefined) {
      n = this.#seen.size + 1;
      this.#seen.set(value, n);
    }
    return n;
  }

  /** A value that may be an API key: looked up in the key index once per distinct value. */
  key(value: string): string {
    this.#keyIds ??= new Map();
    let id = this.#keyIds.get(value);
    if (id === undefined) {
      id = this.#keys.find(value, this.#digests)?.id ?? null;
      this.#keyIds.set(value, id);
    }
    return formatPlaceholder(id === null ? { n: this.#n(value) } : { n: this.#n(value), key: id });
  }

  plain(value: string): string {
    return formatPlaceholder({ n: this.#n(value) });
  }

  authorization(raw: string): string {
    const v = raw.trim();
    const m = SCHEME.exec(v);
    if (m === null) return this.plain(v);
    const scheme = m[1] as string;
    const secret = (m[2] as string).trim();
    const lower = scheme.toLowerCase();
    if (!KNOWN_SCHEMES.has(lower)) return `${OTHER_SCHEME} ${this.plain(secret)}`;
    if (lower === 'bearer') return `${scheme} ${this.key(secret)}`;
    if (lower === 'basic') {
      // Only the user name is kept (it is in traces and credential ids anyway), never the password.
      const parsed = parseBasic(v);
      const n = this.#n(secret);
      return `${scheme} ${formatPlaceholder(parsed.kind === 'ok' ? { n, user: parsed.username } : { n, malformed: parsed.kind === 'malformed' ? parsed.reason : 'scheme' })}`;
    }
    return `${scheme} ${this.plain(secret)}`;
  }

  cookie(raw: string): string {
    // Names stay (policies check which cookies were sent), values go. Values are numbered as the
    // `cookie` package reads them (quotes stripped, percent-decoded), so a header repeating a
    // cookie value still compares equal after redaction.
    const out: string[] = [];
    for (const pair of raw.split(';')) {
      const eq = pair.indexOf('=');
      if (eq < 0) {
        if (pair.trim() !== '') out.push(this.plain(pair.trim()));
        continue;
      }
      let value = pair.slice(eq + 1).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      if (value.includes('%')) {
        try {
          value = decodeURIComponent(value);
        } catch {
          // Kept as sent, as the cookie package does with a bad escape.
        }
      }
      out.push(`${pair.slice(0, eq).trim()}=${this.plain(value)}`);
    }
    return out.join('; ');
  }
}

function queryDecode(s: string): string {
  const plus = s.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(plus);
  } catch {
    return plus;
  }
}

function redactQuery(query: string, names: ReadonlySet<string>, r: Redactor): string {
  let changed = false;
  const parts = query.split('&');
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as string;
    const eq = part.indexOf('=');
    const name = queryDecode(eq < 0 ? part : part.slice(0, eq));
    if (!names.has(name) || eq < 0) continue;
    const value = queryDecode(part.slice(eq + 1));
    if (value === '') continue;
    parts[i] = `${part.slice(0, eq)}=${encodeURIComponent(r.key(value))}`;
    changed = true;
  }
  return changed ? parts.join('&') : query;
}

/**
 * The one distinct value that could be an API key (a secret header other than Cookie, a Bearer
 * token, a secret query parameter), or undefined when there are none or several.
 */
function singleCandidate(h: ReplaySource['headers'], query: string, plan: Plan): string | undefined {
  let found: string | undefined;
  const see = (v: string): boolean => {
    if (found !== undefined && found !== v) return false;
    found = v;
    return true;
  };
  for (const name in h) {
    if (!plan.secretHeaders.has(name) || name === 'cookie' || name === 'proxy-authorization') continue;
    const raw = h[name];
    if (raw === undefined) continue;
    const v = (Array.isArray(raw) ? raw.join(', ') : raw).trim();
    if (name === 'authorization') {
      const m = SCHEME.exec(v);
      if (m !== null && m[1]?.toLowerCase() === 'bearer' && !see((m[2] as string).trim())) return undefined;
      continue;
    }
    if (!see(v)) return undefined;
  }
  if (query !== '') {
    for (const part of query.split('&')) {
      const eq = part.indexOf('=');
      if (eq < 0 || !plan.secretQuery.has(queryDecode(part.slice(0, eq)))) continue;
      const v = queryDecode(part.slice(eq + 1));
      if (v !== '' && !see(v)) return undefined;
    }
  }
  return found;
}

function identityOf(id: Identity | undefined): RecordedIdentity | null {
  return id === undefined ? null : { consumer: id.consumer, credentialType: id.credentialType, credentialId: id.credentialId };
}

/** The replay record of a request, or null when the config turns records off. */
export function buildReplayRecord(src: ReplaySource): ReplayRecord | null {
  const plan = planOf(src.config);
  if (!plan.enabled) return null;
  const r = new Redactor(plan.keys, src.digests);
  const h = src.headers;
  const id = src.identity;
  if (id?.credentialType === 'api-key') {
    // The api-key policy found this key in one of the places looked at below. When the request
    // carries a single candidate value, it is that key: naming it needs no second SHA-256 (the
    // lookup is most of this function's cost).
    const only = singleCandidate(h, src.query, plan);
    if (only !== undefined) r.know(only, id.credentialId);
  }
  const headers: Record<string, string | readonly string[]> = {};
  for (const name in h) {
    const v = h[name];
    if (v === undefined) continue;
    if (!plan.secretHeaders.has(name)) {
      headers[name] = v;
      continue;
    }
    // Node joins repeats of these into one string; only set-cookie-like fields stay arrays.
    const one = Array.isArray(v) ? v.join(', ') : v;
    headers[name] = name === 'authorization' || name === 'proxy-authorization' ? r.authorization(one) : name === 'cookie' ? r.cookie(one) : r.key(one.trim());
  }
  const query = src.query === '' || plan.secretQuery.size === 0 ? src.query : redactQuery(src.query, plan.secretQuery, r);
  const peer = src.peer ?? '';
  const ipSource = src.ipSource;

  let claims: Record<string, unknown> | null = null;
  let otherClaims: string[] | undefined;
  const verified = src.identity?.claims;
  if (verified !== undefined) {
    claims = {};
    for (const name of Object.keys(verified)) {
      if (plan.claims.has(name)) claims[name] = verified[name];
      else (otherClaims ??= []).push(name);
    }
  }
  const body = plan.bodyBytes > 0 && src.body !== undefined ? { base64: src.body.subarray(0, plan.bodyBytes).toString('base64'), bytes: src.body.length } : undefined;
  return {
    v: 1,
    query,
    peer,
    ipSource,
    headers,
    identity: identityOf(src.identity),
    claims,
    ...(otherClaims !== undefined ? { otherClaims } : {}),
    ...(body !== undefined ? { body } : {}),
  };
}
