/**
 * `jwt`: authenticates the caller by a signed JWT (RFC 7519) verified with jose against static
 * keys or a remote JWKS, with an algorithm allow-list, issuer, audience, time and required-claim
 * checks. Fails closed: every failure is a denial with its own code; a key server that cannot be
 * reached is a 503 attributed to the gateway, not a 401 blamed on the client.
 */
import type { KeyObject } from 'node:crypto';
import { ConfigError, type CompiledPolicy, type CompileContext, type ConfigIssue, type Mode, type PolicyModule } from '../../pipeline/types.ts';
import { VerifiedTokens } from './verified-cache.ts';
import { decideJwt, describeLocation, type JwtCompiled, type KeySource } from './decide.ts';
import { RemoteJwks, type JwksFetcher } from './jwks.ts';
import { ALGORITHMS, bindKey, isAlgorithm, KeySet, keyFromJwk, keyFromPem, secretKey, type Algorithm, type VerificationKey } from './keys.ts';
import { JwtSchema, type JwtConfig, type KeyConfig } from './schema.ts';

export interface JwtDeps {
  /** Replaces the undici JWKS fetch (the module uses the real one). */
  readonly fetcher?: JwksFetcher;
}

/** RFC 9110 §5.6.4 quoted-string. */
function quote(value: string): string {
  return `"${value.replace(/[\\"]/g, (ch) => `\\${ch}`)}"`;
}

function list(v: string | readonly string[] | undefined): readonly string[] | undefined {
  return v === undefined ? undefined : Object.freeze(typeof v === 'string' ? [v] : [...v]);
}

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]|localhost)$/i;

function staticKey(k: KeyConfig, path: string, allowed: ReadonlySet<Algorithm>, env: CompileContext['env'], issues: ConfigIssue[]): VerificationKey | undefined {
  const given = (['pem', 'jwk', 'secret_env'] as const).filter((f) => k[f] !== undefined);
  if (given.length !== 1) {
    issues.push({ path, message: `give exactly one of pem, jwk or secret_env (got ${given.length === 0 ? 'none' : given.join(' and ')})` });
    return undefined;
  }
  let key: KeyObject | string;
  let field: string = given[0] as string;
  let kid = k.kid;
  let alg: string | undefined = k.alg;
  if (k.pem !== undefined) key = keyFromPem(k.pem);
  else if (k.jwk !== undefined) {
    key = keyFromJwk(k.jwk);
    const jwkKid = typeof k.jwk.kid === 'string' ? k.jwk.kid : undefined;
    const jwkAlg = typeof k.jwk.alg === 'string' ? k.jwk.alg : undefined;
    if (kid !== undefined && jwkKid !== undefined && kid !== jwkKid) {
      issues.push({ path: `${path}.kid`, message: `kid "${kid}" differs from the JWK's kid "${jwkKid}"` });
      return undefined;
    }
    if (alg !== undefined && jwkAlg !== undefined && alg !== jwkAlg) {
      issues.push({ path: `${path}.alg`, message: `alg ${alg} differs from the JWK's alg ${jwkAlg}` });
      return undefined;
    }
    kid ??= jwkKid;
    alg ??= jwkAlg;
  } else {
    const name = k.secret_env as string;
    const value = env[name];
    if (value === undefined || value === '') {
      issues.push({ path: `${path}.secret_env`, message: `environment variable ${name} is not set` });
      return undefined;
    }
    const encoding = k.secret_encoding ?? 'utf8';
    const bytes = Buffer.from(value, encoding);
    if (encoding !== 'utf8' && bytes.toString(encoding).replace(/=+$/, '') !== value.replace(/=+$/, '')) {
      issues.push({ path: `${path}.secret_encoding`, message: `environment variable ${name} is not valid ${encoding}` });
      return undefined;
    }
    key = secretKey(bytes);
    field = 'secret_env';
  }
  if (typeof key === 'string') {
    issues.push({ path: `${path}.${field}`, message: key });
    return undefined;
  }
  const bound = bindKey(key, kid, alg, allowed);
  if (typeof bound === 'string') {
    issues.push({ path, message: bound });
    return undefined;
  }
  return bound;
}

/** compile with injectable dependencies; the module's compile uses the real JWKS fetch. */
export function compileJwt(config: JwtConfig, meta: { readonly id: string; readonly mode: Mode }, ctx: CompileContext, deps: JwtDeps = {}): CompiledPolicy {
  const p = ctx.path;
  const issues: ConfigIssue[] = [];

  const allowed = new Set<Algorithm>();
  if (config.algorithms.length === 0) issues.push({ path: `${p}.algorithms`, message: 'list at least one algorithm: there is no default' });
  (config.algorithms as readonly string[]).forEach((a, i) => {
    if (a.toLowerCase() === 'none') issues.push({ path: `${p}.algorithms[${i}]`, message: '"none" would accept unsigned tokens and is never allowed (RFC 8725 §3.1)' });
    else if (!isAlgorithm(a)) issues.push({ path: `${p}.algorithms[${i}]`, message: `"${a}" is not a supported algorithm (${ALGORITHMS.join(', ')})` });
    else allowed.add(a);
  });

  // With a broken allow-list, check keys against every algorithm so only their own problems show.
  const bindAgainst: ReadonlySet<Algorithm> = issues.length > 0 ? new Set(ALGORITHMS) : allowed;

  const hasKeys = config.keys.length > 0;
  const hasJwks = config.jwks_url !== undefined;
  if (hasKeys && hasJwks) issues.push({ path: p, message: 'set either keys or jwks_url, not both' });
  if (!hasKeys && !hasJwks) issues.push({ path: p, message: 'set keys or jwks_url: without keys no token can be verified' });

  let source: KeySource | undefined;
  if (hasKeys) {
    const before = issues.length;
    const keys: VerificationKey[] = [];
    const kids = new Map<string, number>();
    config.keys.forEach((k, i) => {
      const bound = staticKey(k, `${p}.keys[${i}]`, bindAgainst, ctx.env, issues);
      if (bound === undefined) return;
      if (bound.kid !== undefined) {
        const first = kids.get(bound.kid);
        if (first !== undefined) {
          issues.push({ path: `${p}.keys[${i}].kid`, message: `kid "${bound.kid}" is already used by keys[${first}]` });
          return;
        }
        kids.set(bound.kid, i);
      }
      keys.push(bound);
    });
    // An allowed algorithm no key can verify only widens what an attacker may try: say so.
    if (issues.length === before) {
      (config.algorithms as readonly string[]).forEach((a, i) => {
        if (isAlgorithm(a) && !keys.some((k) => k.algorithms.has(a))) {
          issues.push({ path: `${p}.algorithms[${i}]`, message: `no key in keys can verify ${a}: remove it, or add a key of a matching type` });
        }
      });
    }
    const set = new KeySet(keys);
    source = Object.freeze({ describe: 'static keys', lookup: (kid: string | undefined, alg: Algorithm) => set.lookup(kid, alg), refetchHeldFor: () => 0 });
  } else if (config.jwks_url !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(config.jwks_url);
    } catch {
      issues.push({ path: `${p}.jwks_url`, message: `"${config.jwks_url}" is not a URL` });
    }
    if (url !== undefined) {
      if (url.protocol !== 'https:' && url.protocol !== 'http:') issues.push({ path: `${p}.jwks_url`, message: 'use an https URL' });
      // Keys fetched in clear text can be swapped by anyone on the path, who could then mint tokens.
      else if (url.protocol === 'http:' && !LOOPBACK.test(url.hostname)) issues.push({ path: `${p}.jwks_url`, message: 'use https: keys fetched over plain http can be replaced in transit (http is allowed for loopback hosts only)' });
      else if (url.username !== '' || url.password !== '') issues.push({ path: `${p}.jwks_url`, message: 'credentials do not belong in the URL' });
      else {
        const jwks = new RemoteJwks(url, {
          cacheMs: config.jwks.cache_seconds * 1000,
          minRefreshMs: config.jwks.min_refresh_seconds * 1000,
          timeoutMs: config.jwks.timeout_ms,
          allowed,
          ...(deps.fetcher !== undefined ? { fetcher: deps.fetcher } : {}),
        });
        source = Object.freeze({
          describe: `jwks ${url.host}`,
          lookup: jwks.lookup.bind(jwks),
          refetchHeldFor: jwks.refetchHeldFor.bind(jwks),
        });
      }
    }
  }

  if (/[\u0000-\u001f\u007f]/.test(config.realm)) issues.push({ path: `${p}.realm`, message: 'the realm must not contain control characters' });
  if (issues.length > 0 || source === undefined) throw new ConfigError(issues.length > 0 ? issues : [{ path: p, message: 'no key source' }]);

  const groups = new Map<string, ReadonlySet<string>>();
  for (const consumer of ctx.consumers) groups.set(consumer.id, new Set(consumer.groups ?? []));

  const compiled: JwtCompiled = Object.freeze({
    locations: Object.freeze([...config.in]),
    accepted: config.in.map(describeLocation).join(' or '),
    algorithms: Object.freeze([...allowed]),
    allowed,
    keys: source,
    issuers: list(config.issuer),
    audiences: list(config.audience),
    skewSeconds: config.clock_skew_seconds,
    requiredClaims: Object.freeze([...config.required_claims]),
    consumerClaim: config.consumer_claim,
    scopeClaims: Object.freeze([...config.scope_claims]),
    roleClaims: Object.freeze([...config.role_claims]),
    groups,
    realm: quote(config.realm),
    verified: new VerifiedTokens(config.verified_cache_seconds * 1000),
  });
  return { id: meta.id, type: 'jwt', mode: meta.mode, decide: (dctx) => decideJwt(compiled, dctx) };
}

export const jwt: PolicyModule<typeof JwtSchema> = {
  type: 'jwt',
  summary: 'Signed JWT (RFC 7519) verified with static keys or a cached remote JWKS; algorithm allow-list, iss, aud, exp/nbf/iat, required claims.',
  schema: JwtSchema,
  compile: (config, meta, ctx) => compileJwt(config, meta, ctx),
};
