/**
 * The replay record of a call-log entry: the request as the policies saw it, minus its secrets,
 * so `pinpoint impact` can run it through another config (docs/call-log.md, "Replay records").
 *
 * Built once per request when the response closes (never on the way in), from what the exchange
 * already holds. The per-config part (which headers and query parameters carry credentials, which
 * claims policies read) is worked out once per compiled config and cached.
 *
 * What is never stored: the values of Authorization, Proxy-Authorization and Cookie, of the common
 * API-key headers, of every header and query parameter the config names as a credential location
 * (query names compared case-insensitively), and of the CSRF token header; in any other header or
 * query parameter, a value that is a configured API key or looks like a credential (see
 * {@link Redactor.scan}). Each is replaced by a placeholder `[redacted#N …]` where N numbers the
 * distinct secret values of this request (equal values share N, so a double-submit CSRF check
 * still compares equal), and the annotations say what the gateway knew about the value:
 * `key=<id>` when it is a configured API key, `user=<name>` (only a configured Basic user name) or
 * `malformed=<reason>` for HTTP Basic.
 */
import type { CompiledConfig } from '../config/compile.ts';
import type { KeyIndex } from '../credentials/api-keys.ts';
import { BasicUserIndex } from '../credentials/basic-auth.ts';
import type { Digests } from '../credentials/digests.ts';
import { COMMON_KEY_QUERY, SECRET_HEADERS } from '../credentials/locations.ts';
import type { Config } from '../config/schema.ts';
import type { Identity } from '../pipeline/types.ts';
import { parseBasic } from '../policies/basic-auth/decide.ts';
import { entropyBits, findSensitive } from '../policies/ai-guardrails/mask.ts';
import type { RecordedIdentity, ReplayRecord } from './types.ts';

/** Query parameters that carry keys whatever the config says (where api-key looks for misplaced keys). */
const SECRET_QUERY: ReadonlySet<string> = new Set(COMMON_KEY_QUERY);

/**
 * Headers outside the secret list that are stored without being scanned for credentials: their
 * grammar is fixed (RFC 9110 content negotiation and framing, RFC 7239 / X-Forwarded-*, W3C Trace
 * Context) and leaves no room for a bearer secret, and they are on nearly every request, so
 * scanning them would be most of the scan's cost for nothing. traceparent is random by design and
 * would otherwise look like a token.
 */
const STRUCTURED_HEADERS: ReadonlySet<string> = new Set([
  'host',
  'content-length',
  'content-type',
  'content-encoding',
  'transfer-encoding',
  'accept',
  'accept-encoding',
  'accept-language',
  'connection',
  'keep-alive',
  'te',
  'expect',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'forwarded',
  'via',
  'traceparent',
  'cache-control',
  'pragma',
]);

/**
 * A name that says its value is secret: with such a name a random-looking value is a credential
 * even without a known shape (`private-token: 9f8e…`, `?signature=…`).
 */
const SECRETISH_NAME = /key|token|secret|passw|auth|session|signature|credential|jwt|bearer|csrf|xsrf/i;

/**
 * Shortest value looked up as a whole in the key index when it is outside the credential
 * locations. Shorter values are not worth a hash per request: a key that short is guessable anyway
 * (`pinpoint` keys are far longer), and the masking detectors need 16 characters of token to call
 * anything random either.
 */
const MIN_TOKEN = 16;


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
  /** The configured Basic user names: only these are kept in a redacted Basic credential. */
  readonly basicUsers: BasicUserIndex;
  /** request_id.header, lower-case: stored as sent, not scanned. */
  readonly requestIdHeader: string;
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
        // Lower-cased: query names are case-sensitive (RFC 3986 §6.2.2.1 leaves them to the
        // application, and URLSearchParams compares exactly), but redaction errs on the safe side:
        // `?apiKey=` next to a configured `apikey` is still the key, misspelt.
        else if (l.from === 'query') query.add(l.name.toLowerCase());
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
      // Built once per config (user names only are read from it). Entries the basic-auth policy
      // would refuse are left out here too, so their names are redacted.
      basicUsers: BasicUserIndex.build(cfg.source.consumers).index,
      // The request id (a UUID by default) is on every request through a proxy and is random by
      // design: scanning it would cost a SHA-256 lookup per request for a value that is an id.
      requestIdHeader: cfg.source.request_id.header.toLowerCase(),
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

/**
 * Whether `v` is one RFC 6750 b64token (ALPHA DIGIT - . _ ~ + / =): the form every API key, JWT and
 * generated token takes, and which text, URLs, lists and dates do not. One pass, no allocation.
 */
function isToken(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45 || c === 46 || c === 95 || c === 126 || c === 43 || c === 47 || c === 61)) return false;
  }
  return true;
}

/**
 * What any `secret` detector of the masking module needs somewhere in the text: its literal
 * prefixes (case-sensitive there too), `Bearer`, a URL's userinfo `@`, a PEM header, and a word
 * every secret-sounding name of its `name=value` detector contains (key, secret, token,
 * credential, pass; any case). Without one, the detectors cannot match, so the text is not given
 * to them: one pass instead of a dozen on the ordinary header (User-Agent, Referer, Origin).
 * Spelt without the `i` flag: the case-insensitive form of this alternation is six times slower
 * on a browser User-Agent (~500 ns against ~80 ns, Node 24).
 */
const DETECTOR_HINT =
  /eyJ|sk-|[sr]k_(?:live|test)_|A(?:KIA|SIA|BIA|CCA)|gh[pousr]_|github_pat_|glpat-|xox[abposr]-|xapp-|AIza|Bearer|@|-----BEGIN|[Kk][Ee][Yy]|[Ss][Ee][Cc][Rr][Ee][Tt]|[Tt][Oo][Kk][Ee][Nn]|[Cc][Rr][Ee][Dd][Ee][Nn][Tt][Ii][Aa][Ll]|[Pp][Aa][Ss][Ss]/;

/** Looks generated (the masking detector's rule for a value after a secret-sounding name). */
function looksRandom(v: string): boolean {
  return v.length >= MIN_TOKEN && /[A-Za-z]/.test(v) && /[0-9]/.test(v) && entropyBits(v) >= 3;
}

/** Numbers the distinct secret values of one request and remembers what each one was. */
class Redactor {
  readonly #keys: KeyIndex;
  readonly #digests: Digests | undefined;
  readonly #users: BasicUserIndex;
  #seen: Map<string, number> | undefined;
  #keyIds: Map<string, string | null> | undefined;

  constructor(keys: KeyIndex, digests: Digests | undefined, users: BasicUserIndex) {
    this.#keys = keys;
    this.#digests = digests;
    this.#users = users;
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

  /**
   * The id of the configured API key `value` is, or null: looked up once per distinct value, with
   * the request's digest memo, so a value a policy already hashed is not hashed again.
   */
  #keyId(value: string): string | null {
    this.#keyIds ??= new Map();
    let id = this.#keyIds.get(value);
    if (id === undefined) {
      id = this.#keys.find(value, this.#digests)?.id ?? null;
      this.#keyIds.set(value, id);
    }
    return id;
  }

  /** A value that may be an API key: looked up in the key index once per distinct value. */
  key(value: string): string {
    const id = this.#keyId(value);
    return formatPlaceholder(id === null ? { n: this.#n(value) } : { n: this.#n(value), key: id });
  }

  plain(value: string): string {
    return formatPlaceholder({ n: this.#n(value) });
  }

  /**
   * A value outside the credential locations (any other header, any other query parameter): kept
   * as sent unless it is a configured API key (the whole value), random-looking under a name that
   * says secret (`name` matches SECRETISH_NAME; tested only for such a value), or holds something the masking detectors call a credential (vendor
   * key shapes, JWTs, Bearer tokens, URL passwords, `token=…` pairs; src/policies/ai-guardrails/
   * mask.ts, the detectors the call log already masks provider errors with). A whole value is one
   * placeholder; a credential inside a longer value (a Referer's query) is replaced in place, so
   * the rest stays readable.
   */
  scan(value: string, name: string): string {
    const t = value.trim();
    if (t.length >= MIN_TOKEN && isToken(t)) {
      const id = this.#keyId(t);
      if (id !== null) return formatPlaceholder({ n: this.#n(t), key: id });
      if (SECRETISH_NAME.test(name) && looksRandom(t)) return this.plain(t);
    }
    if (value.length < 8 || !DETECTOR_HINT.test(value)) return value;
    const spans = findSensitive(value, ['secret']);
    if (spans.length === 0) return value;
    let out = '';
    let at = 0;
    for (const s of spans) {
      out += value.slice(at, s.start) + this.key(value.slice(s.start, s.end));
      at = s.end;
    }
    return out + value.slice(at);
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
    if (lower === 'basic') return `${scheme} ${this.#basic(v, secret)}`;
    return `${scheme} ${this.plain(secret)}`;
  }

  /**
   * The placeholder of a Basic credential. The user name is kept only when it is a configured
   * Basic user (then it is in traces and credential ids anyway); anything else may be a secret
   * itself: clients that put the API key in the user name (Stripe's scheme, `sk_…:`) send it here,
   * so an unknown name is looked up as a key and named by key id when it is one, never kept.
   */
  #basic(v: string, secret: string): string {
    const n = this.#n(secret);
    const parsed = parseBasic(v);
    if (parsed.kind !== 'ok') return formatPlaceholder({ n, malformed: parsed.kind === 'malformed' ? parsed.reason : 'scheme' });
    if (this.#users.find(parsed.username) !== undefined) return formatPlaceholder({ n, user: parsed.username });
    const id = this.#keyId(parsed.username);
    return formatPlaceholder(id === null ? { n } : { n, key: id });
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
  if (!s.includes('%') && !s.includes('+')) return s;
  const plus = s.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(plus);
  } catch {
    return plus;
  }
}

/**
 * The query with secret parameters (`names`, lower-case; compared case-insensitively) replaced by
 * placeholders, and every other parameter's value scanned as any header's is. Parameters left
 * alone stay byte for byte.
 */
function redactQuery(query: string, names: ReadonlySet<string>, r: Redactor): string {
  let changed = false;
  const parts = query.split('&');
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as string;
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const raw = part.slice(eq + 1);
    if (raw === '') continue;
    const name = queryDecode(part.slice(0, eq));
    let out: string;
    if (names.has(name.toLowerCase())) out = r.key(queryDecode(raw));
    else {
      const value = queryDecode(raw);
      out = r.scan(value, name);
      if (out === value) continue;
    }
    parts[i] = `${part.slice(0, eq)}=${encodeURIComponent(out)}`;
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
      if (eq < 0 || !plan.secretQuery.has(queryDecode(part.slice(0, eq)).toLowerCase())) continue;
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
  const r = new Redactor(plan.keys, src.digests, plan.basicUsers);
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
      headers[name] = STRUCTURED_HEADERS.has(name) || name === plan.requestIdHeader ? v : typeof v === 'string' ? r.scan(v, name) : v.map((one) => r.scan(one, name));
      continue;
    }
    // Node joins repeats of these into one string; only set-cookie-like fields stay arrays.
    const one = Array.isArray(v) ? v.join(', ') : v;
    headers[name] = name === 'authorization' || name === 'proxy-authorization' ? r.authorization(one) : name === 'cookie' ? r.cookie(one) : r.key(one.trim());
  }
  const query = src.query === '' ? src.query : redactQuery(src.query, plan.secretQuery, r);
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
