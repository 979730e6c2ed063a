/**
 * Decision for `basic-auth` (RFC 7617). Header parsing and the verdict are pure; the one expensive
 * step, the scrypt check, goes through the injected `verify` and is skipped for pairs verified
 * recently (see VerifiedCache in src/credentials/basic-auth.ts for the trade-off), and is admitted
 * through a per-process bound on concurrent and waiting checks (./admission.ts).
 *
 * Synchronous for everything that needs no scrypt (missing, malformed, wrong scheme, cache hit,
 * checks saturated); a promise only when a password must be checked.
 */
import type { BasicUser, BasicUserIndex, VerifiedCache } from '../../credentials/basic-auth.ts';
import type { PasswordHash } from '../../credentials/password.ts';
import type { Decision, DecisionContext, Identity, RequestFacts } from '../../pipeline/types.ts';
import type { AdmissionLimits, AdmissionRefused, PasswordCheckAdmission } from './admission.ts';

export interface BasicAuthCompiled {
  /** `Basic realm="…", charset="UTF-8"` (RFC 7617 §2, §2.1). */
  readonly challenge: string;
  readonly users: BasicUserIndex;
  readonly scopes: ReadonlySet<string>;
  readonly cache: VerifiedCache;
  /** The scrypt check (crypto.scrypt on the thread pool in production). */
  readonly verify: (password: string, hash: PasswordHash) => Promise<boolean>;
  /**
   * Checked for unknown users, so they cost as much as a wrong password (no timing oracle). It has
   * the most common scrypt parameters of the configured users (decoyHash in password.ts says why).
   */
  readonly decoy: PasswordHash;
  /** Bounds scrypt runs and waiters; shared by the whole process (see admission.ts). */
  readonly admission: PasswordCheckAdmission;
  /** This policy's checks.max_concurrent and checks.max_queued. */
  readonly limits: AdmissionLimits;
  /** Checks in progress by cache key: a burst of identical requests runs scrypt once. */
  readonly inflight: Map<string, Promise<boolean>>;
  /** Identity per user, built once per compile. */
  readonly identities: WeakMap<BasicUser, Identity>;
}

const EXPECTED = 'Authorization: Basic';

/**
 * Schemes from the IANA HTTP Authentication Scheme Registry plus a few common unregistered ones.
 * Only these names are echoed in evidence: an unknown first word might be a secret sent without a
 * scheme.
 */
const KNOWN_SCHEMES = new Map(
  ['Bearer', 'Digest', 'Negotiate', 'NTLM', 'DPoP', 'GNAP', 'HOBA', 'Mutual', 'OAuth', 'PrivateToken', 'Concealed', 'SCRAM-SHA-1', 'SCRAM-SHA-256', 'vapid', 'Token', 'ApiKey', 'AWS4-HMAC-SHA256', 'JWT'].map(
    (s) => [s.toLowerCase(), s],
  ),
);

/** RFC 9110 §11.4: credentials = auth-scheme [ 1*SP ( token68 / #auth-param ) ]. */
const CREDENTIALS = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?:[ \t]+(.*))?$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
// RFC 7617 §2 forbids control characters in the user-id and password.
const CONTROL = /[\u0000-\u001f\u007f]/;

const UTF8 = new TextDecoder('utf-8', { fatal: true });

function authorization(facts: RequestFacts): string | undefined {
  const v = facts.headers.authorization;
  const s = (Array.isArray(v) ? v[0] : v)?.trim();
  return s === undefined || s === '' ? undefined : s;
}

type Parsed =
  | { readonly kind: 'ok'; readonly username: string; readonly password: string }
  | { readonly kind: 'malformed'; readonly reason: string }
  | { readonly kind: 'scheme'; readonly scheme: string };

/** Reads `Basic <base64(user:password)>`. Never returns any part of the credentials in errors. */
export function parseBasic(header: string): Parsed {
  const m = CREDENTIALS.exec(header);
  const scheme = m?.[1];
  const rest = m?.[2]?.trim();
  if (m === null || scheme === undefined) return { kind: 'malformed', reason: 'no authentication scheme' };
  if (scheme.toLowerCase() !== 'basic') {
    // A lone word is most likely a bare credential, not a scheme: do not echo it.
    if (rest === undefined || rest === '') return { kind: 'malformed', reason: 'no authentication scheme' };
    return { kind: 'scheme', scheme: KNOWN_SCHEMES.get(scheme.toLowerCase()) ?? 'an unregistered' };
  }
  if (rest === undefined || rest === '') return { kind: 'malformed', reason: 'no credentials after Basic' };
  // RFC 7617 §2 / RFC 4648 §4: standard base64. Missing padding is tolerated; other characters are not.
  if (!BASE64.test(rest) || rest.length % 4 === 1) return { kind: 'malformed', reason: 'not base64' };
  let text: string;
  try {
    text = UTF8.decode(Buffer.from(rest, 'base64'));
  } catch {
    return { kind: 'malformed', reason: 'not UTF-8' };
  }
  const colon = text.indexOf(':');
  if (colon < 0) return { kind: 'malformed', reason: 'no colon between user name and password' };
  const username = text.slice(0, colon);
  const password = text.slice(colon + 1);
  if (username === '') return { kind: 'malformed', reason: 'empty user name' };
  if (CONTROL.test(text)) return { kind: 'malformed', reason: 'control characters' };
  return { kind: 'ok', username: username.normalize('NFC'), password };
}

function identityOf(c: BasicAuthCompiled, user: BasicUser): Identity {
  let id = c.identities.get(user);
  if (id === undefined) {
    id = Object.freeze({ consumer: user.consumer, credentialId: user.username, credentialType: 'basic-auth', scopes: c.scopes, groups: user.groups });
    c.identities.set(user, id);
  }
  return id;
}

function allow(c: BasicAuthCompiled, user: BasicUser, cached: boolean): Decision {
  return {
    outcome: 'allow',
    rule: `user ${user.username}${cached ? ' (verified recently)' : ''}`,
    evidence: { username: user.username, consumer: user.consumer, cached },
    identity: identityOf(c, user),
  };
}

function invalid(c: BasicAuthCompiled, username: string, reason: 'unknown_user' | 'wrong_password', consumer: string | null): Decision {
  return {
    outcome: 'deny',
    code: 'BASIC_AUTH_INVALID',
    // The same rule and client-facing evidence for both reasons: telling a client which user names
    // exist would undo the decoy hash that keeps the two cases equally slow. Operators see the
    // reason in the trace and call log (`internal`). The password never leaves this function.
    rule: `user name or password not accepted for ${username.slice(0, 128)}`,
    evidence: { username: username.slice(0, 128) },
    internal: { reason, consumer },
    headers: { 'www-authenticate': c.challenge },
  };
}

function busy(c: BasicAuthCompiled, refused: AdmissionRefused): Decision {
  return {
    outcome: 'deny',
    code: 'BASIC_AUTH_BUSY',
    // Nothing about the user: the refusal comes before any check, for known and unknown names
    // alike, so it cannot tell them apart. Load figures are for operators only.
    rule: 'password checks saturated: every slot is running and the wait queue is full',
    evidence: { retry_after_s: refused.retryAfterS },
    internal: { running: refused.running, queued: refused.queued, max_concurrent: c.limits.maxConcurrent, max_queued: c.limits.maxQueued },
    // RFC 9110 §10.2.3: how long the client should wait before retrying the 503.
    headers: { 'retry-after': String(refused.retryAfterS) },
  };
}

/**
 * Runs scrypt once for all concurrent identical requests, within the admission bounds. A request
 * joining a check already admitted takes no slot of its own; a refusal is returned synchronously
 * and is not remembered, so the next identical request asks for admission again.
 */
function check(c: BasicAuthCompiled, key: string, password: string, hash: PasswordHash): Promise<boolean> | AdmissionRefused {
  const pending = c.inflight.get(key);
  if (pending !== undefined) return pending;
  const admitted = c.admission.run(c.limits, () => c.verify(password, hash));
  if ('refused' in admitted) return admitted;
  const p = admitted.finally(() => c.inflight.delete(key));
  c.inflight.set(key, p);
  return p;
}

/**
 * A replayed request (`pinpoint impact`): the password was not recorded, the user name was. A user
 * missing from this config is refused as unknown; for a known user, whether the password was right
 * comes from what the gateway decided when it logged the request, and only while the user's hash
 * is unchanged (the replay context stops the replay otherwise).
 */
function replayed(c: BasicAuthCompiled, replay: NonNullable<DecisionContext['replay']>, recorded: { readonly username: string } | { readonly malformed: string }): Decision {
  if ('malformed' in recorded) {
    return {
      outcome: 'deny',
      code: 'BASIC_AUTH_MALFORMED',
      rule: `Basic credentials: ${recorded.malformed}`,
      evidence: { reason: recorded.malformed },
      headers: { 'www-authenticate': c.challenge },
    };
  }
  const user = c.users.find(recorded.username);
  if (user === undefined) return invalid(c, recorded.username, 'unknown_user', null);
  return replay.basicPasswordCorrect(user.username) ? allow(c, user, false) : invalid(c, user.username, 'wrong_password', user.consumer);
}

export function decideBasicAuth(c: BasicAuthCompiled, ctx: DecisionContext): Decision | Promise<Decision> {
  const header = authorization(ctx.facts);
  const challenge = { 'www-authenticate': c.challenge };
  if (header === undefined) {
    return { outcome: 'deny', code: 'BASIC_AUTH_MISSING', rule: 'no Authorization header', evidence: { expected: EXPECTED }, headers: challenge };
  }
  if (ctx.replay !== undefined) {
    const recorded = ctx.replay.basicCredentials(header);
    if (recorded !== undefined) return replayed(c, ctx.replay, recorded);
  }
  const parsed = parseBasic(header);
  if (parsed.kind === 'scheme') {
    return {
      outcome: 'deny',
      code: 'BASIC_AUTH_WRONG_SCHEME',
      rule: `Authorization uses ${parsed.scheme}, not Basic`,
      evidence: { found_scheme: parsed.scheme, expected: EXPECTED },
      headers: challenge,
    };
  }
  if (parsed.kind === 'malformed') {
    return { outcome: 'deny', code: 'BASIC_AUTH_MALFORMED', rule: `Basic credentials: ${parsed.reason}`, evidence: { reason: parsed.reason }, headers: challenge };
  }

  const { username, password } = parsed;
  const user = c.users.find(username);
  const now = ctx.facts.now;
  const key = c.cache.key(username, password);
  if (user !== undefined && c.cache.enabled) {
    const hit = c.cache.get(key, now);
    if (hit === user) return allow(c, user, true);
  }
  if (user === undefined) {
    // Same cost as a wrong password, so the response time does not say whether the user exists.
    const decoy = check(c, `decoy\u0000${key}`, password, c.decoy);
    if ('refused' in decoy) return busy(c, decoy);
    return decoy.then(() => invalid(c, username, 'unknown_user', null));
  }
  const checked = check(c, key, password, user.hash);
  if ('refused' in checked) return busy(c, checked);
  return checked.then((ok) => {
    if (!ok) return invalid(c, username, 'wrong_password', user.consumer);
    // A dry run (diagnose, trace) looks without changing state: it does not warm the cache.
    if (!ctx.dryRun) c.cache.set(key, user, now);
    return allow(c, user, false);
  });
}
