/**
 * Decision for `jwt` (RFC 7519 / RFC 7515), in the order a verifier must follow (RFC 8725 §3):
 * read the token, check its structure, check `alg` against the allow-list BEFORE any key is
 * chosen, pick keys by kid and by what each key's type can verify, verify the signature (jose),
 * and only then trust and check the claims.
 *
 * Synchronous until a signature must be checked (jose's verify is promise-based) or the JWKS must
 * be fetched; missing, malformed and disallowed-algorithm tokens are answered without a promise.
 * Keys come through the injected {@link KeySource}: this file does no I/O of its own.
 */
import { compactVerify, errors } from 'jose';
import type { Decision, DecisionContext, Deny, Evidence, Identity } from '../../pipeline/types.ts';
import type { JwksLookup } from './jwks.ts';
import { isAlgorithm, type Algorithm, type VerificationKey } from './keys.ts';
import type { TokenLocation } from './schema.ts';
import { VerifiedTokens } from './verified-cache.ts';
import { describeLocation, firstCredential, headerValue } from '../../credentials/locations.ts';

export { describeLocation };

/** Where verification keys come from: static config keys or a remote JWKS cache. */
export interface KeySource {
  /** For evidence: 'static keys' or 'jwks <host>'. */
  readonly describe: string;
  lookup(kid: string | undefined, alg: Algorithm, now: number, dryRun: boolean): JwksLookup | Promise<JwksLookup>;
  /** Seconds an unknown-kid refetch is still held back (0 when it is not). */
  refetchHeldFor(now: number): number;
}

export interface JwtCompiled {
  readonly locations: readonly TokenLocation[];
  readonly accepted: string;
  readonly algorithms: readonly Algorithm[];
  readonly allowed: ReadonlySet<Algorithm>;
  readonly keys: KeySource;
  readonly issuers: readonly string[] | undefined;
  readonly audiences: readonly string[] | undefined;
  readonly skewSeconds: number;
  readonly requiredClaims: readonly string[];
  readonly consumerClaim: string;
  readonly scopeClaims: readonly string[];
  readonly roleClaims: readonly string[];
  /** Configured consumers' groups, by consumer id. */
  readonly groups: ReadonlyMap<string, ReadonlySet<string>>;
  /** The quoted realm, e.g. `"pinpoint"`. */
  readonly realm: string;
  /** Tokens whose signature already verified (see verified-cache.ts). */
  readonly verified: VerifiedTokens;
}

export type TokenCode =
  | 'JWT_MALFORMED'
  | 'JWT_ALG_NOT_ALLOWED'
  | 'JWT_KEY_UNKNOWN'
  | 'JWT_SIGNATURE_INVALID'
  | 'JWT_EXPIRED'
  | 'JWT_NOT_YET_VALID'
  | 'JWT_ISSUED_IN_FUTURE'
  | 'JWT_AUDIENCE_MISMATCH'
  | 'JWT_ISSUER_MISMATCH'
  | 'JWT_CLAIM_MISSING';

/**
 * RFC 6750 §3 error_description values: fixed text (the grammar forbids `"` and `\`), never built
 * from the token.
 */
export const DESCRIPTION: Readonly<Record<TokenCode, string>> = {
  JWT_MALFORMED: 'The token is malformed',
  JWT_ALG_NOT_ALLOWED: 'The token algorithm is not accepted',
  JWT_KEY_UNKNOWN: 'The token signing key is not known',
  JWT_SIGNATURE_INVALID: 'The token signature is invalid',
  JWT_EXPIRED: 'The token has expired',
  JWT_NOT_YET_VALID: 'The token is not valid yet',
  JWT_ISSUED_IN_FUTURE: 'The token was issued in the future',
  JWT_AUDIENCE_MISMATCH: 'The token is meant for another audience',
  JWT_ISSUER_MISMATCH: 'The token issuer is not trusted',
  JWT_CLAIM_MISSING: 'The token lacks a required claim',
};

const SCHEME = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]+[^ \t]/;
const B64URL = /^[A-Za-z0-9_-]*$/;
const UTF8 = new TextDecoder('utf-8', { fatal: true });
/** Attacker-chosen header values are clipped before they go into evidence. */
const clip = (s: string, n = 128): string => (s.length > n ? `${s.slice(0, n)}…` : s);

const header = headerValue;

function challenge(c: JwtCompiled, code?: TokenCode): Readonly<Record<string, string>> {
  // RFC 6750 §3.1: a request without credentials gets no error code in the challenge.
  const value = code === undefined ? `Bearer realm=${c.realm}` : `Bearer realm=${c.realm}, error="invalid_token", error_description="${DESCRIPTION[code]}"`;
  return { 'www-authenticate': value };
}

function deny(c: JwtCompiled, code: TokenCode, rule: string, evidence: Evidence): Deny {
  return { outcome: 'deny', code, rule, evidence, headers: challenge(c, code) };
}

/** A NumericDate (RFC 7519 §2) as an ISO time for evidence; null when not representable. */
function iso(seconds: number): string | null {
  const d = new Date(seconds * 1000);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

function words(v: unknown): string[] {
  if (typeof v === 'string') return v.split(/\s+/).filter((s) => s !== '');
  if (Array.isArray(v)) return v.filter((s): s is string => typeof s === 'string' && s !== '');
  return [];
}

interface Parsed {
  readonly alg: Algorithm;
  readonly kid: string | undefined;
}

/** Structure and header checks, before any key is touched. Returns a denial or the parsed header. */
function parse(c: JwtCompiled, token: string): Parsed | Deny {
  const malformed = (reason: string, extra: Evidence = {}): Deny => deny(c, 'JWT_MALFORMED', `token malformed: ${reason}`, { reason, ...extra });
  const parts = token.split('.');
  // RFC 7516 §7.1: five parts is an encrypted JWT; only signed ones (JWS) are verified here.
  if (parts.length === 5) return malformed('encrypted token (JWE) is not supported', { parts: 5 });
  if (parts.length !== 3) return malformed('not three dot-separated parts', { parts: parts.length });
  const [h, p, s] = parts as [string, string, string];
  if (h === '' || p === '') return malformed('empty header or payload', { parts: 3 });
  if (!B64URL.test(h) || !B64URL.test(p) || !B64URL.test(s)) return malformed('a part is not base64url', { parts: 3 });
  let hdr: unknown;
  try {
    hdr = JSON.parse(UTF8.decode(Buffer.from(h, 'base64url')));
  } catch {
    return malformed('header is not JSON');
  }
  if (typeof hdr !== 'object' || hdr === null || Array.isArray(hdr)) return malformed('header is not a JSON object');
  const { alg, kid, crit } = hdr as Record<string, unknown>;
  if (typeof alg !== 'string' || alg === '') return malformed('header has no alg');
  // RFC 7515 §4.1.11: extensions listed in crit must be understood; this verifier knows none.
  if (crit !== undefined) return malformed('header lists crit extensions, none of which is supported');
  if (kid !== undefined && typeof kid !== 'string') return malformed('kid is not a string');
  const expected = c.algorithms as readonly string[];
  // RFC 7518 §3.6 / RFC 8725 §3.1: an unsigned token is refused whatever the allow-list says.
  if (alg.toLowerCase() === 'none') {
    return deny(c, 'JWT_ALG_NOT_ALLOWED', 'unsigned token (alg none)', { alg: 'none', expected, reason: 'unsigned token (alg none) is never accepted' });
  }
  if (!isAlgorithm(alg) || !c.allowed.has(alg)) {
    return deny(c, 'JWT_ALG_NOT_ALLOWED', `alg ${clip(alg, 32)} not allowed`, { alg: clip(alg, 32), expected, reason: 'not in the allow-list' });
  }
  return { alg, kid };
}

function isDeny(v: Parsed | Deny): v is Deny {
  return (v as Deny).outcome === 'deny';
}

export function decideJwt(c: JwtCompiled, ctx: DecisionContext): Decision | Promise<Decision> {
  const facts = ctx.facts;
  const token = firstCredential(facts, c.locations);
  if (typeof token === 'object') return token; // sent twice
  if (token === undefined) {
    const auth = header(facts, 'authorization');
    const scheme = auth === undefined ? undefined : SCHEME.exec(auth)?.[1];
    return {
      outcome: 'deny',
      code: 'JWT_MISSING',
      rule: 'no token in any accepted place',
      // Only the scheme name of another credential is named, never the credential.
      evidence: { accepted: c.accepted, found_scheme: scheme === undefined || /^bearer$/i.test(scheme) ? null : clip(scheme, 32) },
      headers: challenge(c),
    };
  }
  if (ctx.replay !== undefined) return replayed(c, ctx, ctx.replay);
  let cacheKey: string | undefined;
  if (c.verified.enabled) {
    cacheKey = VerifiedTokens.keyOf(token, facts.digests);
    const hit = c.verified.get(cacheKey, facts.now);
    if (hit !== undefined) {
      // Same token bytes: same header, signature and claims. Only time moves, so the earlier
      // allow stands while now is inside [nbf/iat − skew, exp + skew); outside it, check again.
      const now = facts.now / 1000;
      if (now >= hit.validFrom && now < hit.validUntil) return hit.allow;
      return claims(c, ctx, hit.payload, hit.alg as Algorithm, hit.kid);
    }
  }
  const parsed = parse(c, token);
  if (isDeny(parsed)) return parsed;
  const { alg, kid } = parsed;
  if (cacheKey !== undefined) {
    const key = cacheKey;
    const remember = (d: Decision): Decision => {
      if (d.outcome === 'allow' && d.identity?.claims !== undefined) {
        const payload = d.identity.claims;
        const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
        const exp = num(payload.exp);
        const from = Math.max(num(payload.nbf) ?? -Infinity, num(payload.iat) ?? -Infinity) - c.skewSeconds;
        c.verified.set(
          key,
          { payload, alg, kid: kid === undefined ? null : clip(kid), allow: d, validFrom: from, validUntil: exp === undefined ? Infinity : exp + c.skewSeconds },
          facts.now,
        );
      }
      return d;
    };
    const found = c.keys.lookup(kid, alg, facts.now, ctx.dryRun);
    const out = found instanceof Promise ? found.then((r) => withKeys(c, ctx, token, parsed, r)) : withKeys(c, ctx, token, parsed, found);
    return out instanceof Promise ? out.then(remember) : remember(out);
  }
  const found = c.keys.lookup(kid, alg, facts.now, ctx.dryRun);
  if (found instanceof Promise) return found.then((r) => withKeys(c, ctx, token, parsed, r));
  return withKeys(c, ctx, token, parsed, found);
}

/**
 * A replayed request (`pinpoint impact`): the token itself was not recorded, the claims the gateway
 * verified were. The algorithm allow-list and every claim check run again under this config; the
 * signature cannot, so the replay context stops the replay when this policy verifies with other
 * keys than the policy that accepted the token.
 */
function replayed(c: JwtCompiled, ctx: DecisionContext, replay: NonNullable<DecisionContext['replay']>): Decision {
  const t = replay.verifiedToken('jwt');
  if (t.alg === null || !isAlgorithm(t.alg) || !c.allowed.has(t.alg)) {
    const alg = clip(t.alg ?? '(unknown)', 32);
    return deny(c, 'JWT_ALG_NOT_ALLOWED', `alg ${alg} not allowed`, { alg, expected: c.algorithms, reason: 'not in the allow-list' });
  }
  return claims(c, ctx, { ...t.claims }, t.alg, t.kid === null ? null : clip(t.kid));
}

function withKeys(c: JwtCompiled, ctx: DecisionContext, token: string, { alg, kid }: Parsed, found: JwksLookup): Decision | Promise<Decision> {
  const kidEv = kid === undefined ? null : clip(kid);
  switch (found.kind) {
    case 'not_cached':
      return { outcome: 'skip', rule: 'key not cached (dry run)' };
    case 'unreachable':
      return {
        outcome: 'deny',
        code: 'JWT_JWKS_UNREACHABLE',
        rule: `JWKS at ${found.host} unreachable (${found.error})`,
        evidence: { jwks_host: found.host, error: found.error, retry_after_seconds: found.retryAfterSeconds, kid: kidEv },
        // RFC 9110 §10.2.3: when the next fetch attempt will be made.
        headers: { 'retry-after': String(found.retryAfterSeconds) },
      };
    case 'unknown_kid':
      return deny(c, 'JWT_KEY_UNKNOWN', kid === undefined ? 'no key to verify a token without kid' : `no key with kid ${clip(kid)}`, {
        kid: kidEv,
        alg,
        key_source: c.keys.describe,
        refetch_held_seconds: c.keys.refetchHeldFor(ctx.facts.now),
      });
    case 'incompatible':
      // Algorithm confusion (RFC 8725 §2.1): e.g. HS256 presented for an RSA key's kid.
      return deny(c, 'JWT_ALG_NOT_ALLOWED', `alg ${alg} cannot be verified by ${found.keyTypes.join('/')} key ${kidEv ?? '(any)'}`, {
        alg,
        expected: found.algorithms,
        kid: kidEv,
        key_type: found.keyTypes,
        reason: 'the key cannot verify this algorithm',
      });
    case 'keys':
      return verify(c, ctx, token, alg, kid, found.keys);
  }
}

async function verify(c: JwtCompiled, ctx: DecisionContext, token: string, alg: Algorithm, kid: string | undefined, keys: readonly VerificationKey[]): Promise<Decision> {
  let payloadBytes: Uint8Array | undefined;
  let used: VerificationKey | undefined;
  for (const k of keys) {
    try {
      // jose checks the alg against this key-specific list once more, then the signature.
      const r = await compactVerify(token, k.key, { algorithms: [alg] });
      payloadBytes = r.payload;
      used = k;
      break;
    } catch (err) {
      if (err instanceof errors.JWSSignatureVerificationFailed) continue;
      if (err instanceof errors.JOSEError) return deny(c, 'JWT_MALFORMED', `token malformed: ${err.code}`, { reason: `invalid JWS (${err.code})` });
      throw err;
    }
  }
  const kidEv = kid === undefined ? null : clip(kid);
  if (payloadBytes === undefined || used === undefined) {
    return deny(c, 'JWT_SIGNATURE_INVALID', `signature does not verify (kid ${kidEv ?? 'none'})`, { kid: kidEv, alg, keys_tried: keys.length });
  }
  let payload: unknown;
  try {
    payload = JSON.parse(UTF8.decode(payloadBytes));
  } catch {
    return deny(c, 'JWT_MALFORMED', 'token malformed: payload is not JSON', { reason: 'payload is not JSON' });
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    return deny(c, 'JWT_MALFORMED', 'token malformed: payload is not a JSON object', { reason: 'payload is not a JSON object' });
  }
  return claims(c, ctx, payload as Record<string, unknown>, alg, kidEv);
}

/** Claim checks on a verified payload (RFC 7519 §4.1), with `clock_skew_seconds` of leeway. */
function claims(c: JwtCompiled, ctx: DecisionContext, payload: Record<string, unknown>, alg: Algorithm, kid: string | null): Decision {
  const { exp, nbf, iat, iss, aud, jti } = payload;
  for (const [name, v] of [['exp', exp], ['nbf', nbf], ['iat', iat]] as const) {
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v))) {
      return deny(c, 'JWT_MALFORMED', `token malformed: ${name} is not a NumericDate`, { reason: `${name} is not a NumericDate (RFC 7519 §2)`, kid });
    }
  }
  const now = ctx.facts.now / 1000;
  const skew = c.skewSeconds;
  const sub = typeof payload.sub === 'string' ? clip(payload.sub) : null;

  // Issuer and audience first: a token from the wrong place is wrong whatever its times say.
  if (c.issuers !== undefined && (typeof iss !== 'string' || !c.issuers.includes(iss))) {
    const got = typeof iss === 'string' ? clip(iss) : '(none)';
    return deny(c, 'JWT_ISSUER_MISMATCH', `iss ${got} not trusted`, { expected: c.issuers, got, kid, sub });
  }
  if (c.audiences !== undefined) {
    const auds = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];
    if (!auds.some((a) => c.audiences?.includes(a))) {
      const got = auds.length > 0 ? auds.slice(0, 10).map((a) => clip(a)) : ['(none)'];
      return deny(c, 'JWT_AUDIENCE_MISMATCH', `aud ${got.join(', ')} not accepted`, { expected: c.audiences, got, kid, sub });
    }
  }
  // RFC 7519 §4.1.4: the token must not be accepted on or after exp.
  if (typeof exp === 'number' && now >= exp + skew) {
    return deny(c, 'JWT_EXPIRED', `expired ${Math.floor(now - exp)} s ago`, {
      exp: iso(exp),
      expired_seconds_ago: Math.floor(now - exp),
      clock_skew_seconds: skew,
      kid,
      sub,
    });
  }
  // RFC 7519 §4.1.5: not before nbf.
  if (typeof nbf === 'number' && nbf > now + skew) {
    return deny(c, 'JWT_NOT_YET_VALID', `valid in ${Math.ceil(nbf - now)} s`, {
      nbf: iso(nbf),
      valid_in_seconds: Math.ceil(nbf - now),
      clock_skew_seconds: skew,
      kid,
      sub,
    });
  }
  // RFC 7519 §4.1.6 defines iat; one beyond the skew means the issuer's clock (or the token) is wrong.
  if (typeof iat === 'number' && iat > now + skew) {
    return deny(c, 'JWT_ISSUED_IN_FUTURE', `issued ${Math.ceil(iat - now)} s in the future`, {
      iat: iso(iat),
      seconds_ahead: Math.ceil(iat - now),
      clock_skew_seconds: skew,
      kid,
      sub,
    });
  }
  const missing = c.requiredClaims.filter((name) => !Object.hasOwn(payload, name) || payload[name] === null);
  if (missing.length > 0) {
    return deny(c, 'JWT_CLAIM_MISSING', `missing ${missing.join(', ')}`, { missing_claims: missing, required_claims: c.requiredClaims, kid, sub });
  }
  const who = payload[c.consumerClaim];
  const consumer = typeof who === 'string' && who !== '' ? who : typeof who === 'number' && Number.isFinite(who) ? String(who) : undefined;
  if (consumer === undefined) {
    return deny(c, 'JWT_CLAIM_MISSING', `no ${c.consumerClaim} claim naming the caller`, {
      missing_claims: [c.consumerClaim],
      required_claims: [c.consumerClaim],
      reason: 'consumer_claim',
      kid,
      sub,
    });
  }

  const scopes = new Set(c.scopeClaims.flatMap((name) => words(payload[name])));
  const roles = new Set(c.roleClaims.flatMap((name) => words(payload[name])));
  const groups = c.groups.get(consumer);
  const credentialId = typeof jti === 'string' && jti !== '' ? clip(jti) : kid !== null ? `kid:${kid}` : `jwt:${alg}`;
  const identity: Identity = {
    consumer,
    credentialId,
    credentialType: 'jwt',
    scopes,
    roles,
    claims: Object.freeze({ ...payload }),
    ...(groups !== undefined ? { groups } : {}),
  };
  return {
    outcome: 'allow',
    rule: `token for ${clip(consumer)}${kid !== null ? ` (kid ${kid})` : ''}`,
    evidence: {
      consumer: clip(consumer),
      kid,
      alg,
      iss: typeof iss === 'string' ? clip(iss) : null,
      jti: typeof jti === 'string' ? clip(jti) : null,
      exp: typeof exp === 'number' ? iso(exp) : null,
      known_consumer: groups !== undefined,
    },
    identity,
  };
}
