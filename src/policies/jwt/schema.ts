import { Type, type Static } from '@sinclair/typebox';
import { ALGORITHMS } from './keys.ts';

const AlgOf = (description: string) => Type.Union(
  ALGORITHMS.map((a) => Type.Literal(a)),
  { description },
);
const Alg = AlgOf('A JWS algorithm (RFC 7518 §3.1, RFC 8037). `none` is not one: unsigned tokens are never accepted (RFC 8725 §3.1).');

const StringOrList = (description: string) =>
  Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], { description });

const Key = Type.Object(
  {
    kid: Type.Optional(
      Type.String({ minLength: 1, description: 'Key id matched against the token header `kid`. A token naming another kid is refused (JWT_KEY_UNKNOWN); a token without kid is tried against every key able to verify its alg.' }),
    ),
    alg: Type.Optional(AlgOf('Restrict this key to one algorithm (RFC 8725 §3.1). Default: every allowed algorithm its key type can verify.')),
    pem: Type.Optional(
      Type.String({ minLength: 1, description: 'Public key in PEM: SPKI ("BEGIN PUBLIC KEY"), PKCS#1 ("BEGIN RSA PUBLIC KEY") or an X.509 certificate. Private keys are refused.' }),
    ),
    jwk: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: 'Public key as a JWK (RFC 7517). Symmetric ("oct") and private JWKs are refused: secrets go in secret_env.',
      }),
    ),
    secret_env: Type.Optional(
      Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'Environment variable holding an HMAC secret (HS256/384/512), at least 32 bytes. Secrets are never written in config.' }),
    ),
    secret_encoding: Type.Optional(
      Type.Union([Type.Literal('utf8'), Type.Literal('base64'), Type.Literal('base64url')], {
        default: 'utf8',
        description: 'How the secret_env value is encoded: utf8 (its bytes as they are), base64 or base64url.',
      }),
    ),
  },
  { additionalProperties: false, description: 'One verification key: exactly one of pem, jwk or secret_env.' },
);

const Location = Type.Union(
  [
    Type.Object({ from: Type.Literal('bearer', { description: 'Authorization: Bearer <token> (RFC 6750 §2.1).' }) }, { additionalProperties: false }),
    Type.Object(
      { from: Type.Literal('header', { description: 'A request header carrying the bare token.' }), name: Type.String({ minLength: 1, description: 'Header name.' }) },
      { additionalProperties: false },
    ),
    Type.Object(
      { from: Type.Literal('cookie', { description: 'A cookie carrying the bare token.' }), name: Type.String({ minLength: 1, description: 'Cookie name.' }) },
      { additionalProperties: false },
    ),
  ],
  { description: 'One place a token is read from.' },
);

/** `jwt` settings. */
export const JwtSchema = Type.Object(
  {
    algorithms: Type.Array(Alg, {
      minItems: 1,
      description:
        'Allow-list of signature algorithms. Required, no default: the accepted algorithms are a security decision (RFC 8725 §3.1). A token with any other alg, or `none`, is refused (JWT_ALG_NOT_ALLOWED).',
    }),
    keys: Type.Array(Key, {
      default: [],
      description: 'Static verification keys. Use either keys or jwks_url.',
    }),
    jwks_url: Type.Optional(
      Type.String({
        pattern: '^https?://',
        description: "URL of the issuer's JWKS (RFC 7517 §5). https is required except for loopback hosts. Use either keys or jwks_url.",
      }),
    ),
    jwks: Type.Object(
      {
        cache_seconds: Type.Integer({ minimum: 1, maximum: 86400, default: 600, description: 'How long fetched keys are used before they are refreshed. A failed refresh keeps the old keys.' }),
        min_refresh_seconds: Type.Integer({
          minimum: 1,
          maximum: 3600,
          default: 30,
          description: 'Least time between two fetches. A token with an unknown kid triggers a refetch at most this often, so made-up kids cannot flood the key server; failed fetches are retried no sooner either.',
        }),
        timeout_ms: Type.Integer({ minimum: 100, maximum: 60000, default: 5000, description: 'Time allowed for one JWKS fetch (connect, headers and body).' }),
      },
      { additionalProperties: false, default: {}, description: 'Remote JWKS caching (used with jwks_url).' },
    ),
    issuer: Type.Optional(
      StringOrList('Accepted `iss` values (RFC 7519 §4.1.1). Unset: not checked, which fails open (tokens from any issuer the keys verify are accepted).'),
    ),
    audience: Type.Optional(
      StringOrList(
        'Accepted `aud` values (RFC 7519 §4.1.3): the token must name at least one. Unset: not checked, which fails open (a token minted for another API with the same issuer is accepted; RFC 8725 §3.9).',
      ),
    ),
    clock_skew_seconds: Type.Integer({
      minimum: 0,
      maximum: 300,
      default: 30,
      description: 'Leeway for exp, nbf and iat between the issuer\u2019s clock and the gateway\u2019s (RFC 7519 §4.1.4).',
    }),
    verified_cache_seconds: Type.Integer({
      minimum: 0,
      maximum: 3600,
      default: 60,
      description:
        'How long a token whose signature verified is remembered (by its SHA-256), so repeat requests skip the signature check; claims are still checked every time. A key removed from the JWKS keeps accepting already-seen tokens for at most this long. 0 disables.',
    }),
    required_claims: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'Claims that must be present (e.g. exp, jti). A missing one is refused (JWT_CLAIM_MISSING). Default none: fails open for tokens without exp; add exp to refuse never-expiring tokens.',
    }),
    in: Type.Array(Location, {
      minItems: 1,
      default: [{ from: 'bearer' }],
      description: 'Where the token is read, tried in order. Default: Authorization: Bearer.',
    }),
    consumer_claim: Type.String({
      minLength: 1,
      default: 'sub',
      description: 'Claim naming the caller (identity.consumer). A token without it is refused (fails closed). When a configured consumer has that id, its groups are attached.',
    }),
    scope_claims: Type.Array(Type.String({ minLength: 1 }), {
      default: ['scope', 'scp'],
      description: 'Claims read into identity.scopes: a space-separated string (RFC 8693 §4.2) or an array of strings.',
    }),
    role_claims: Type.Array(Type.String({ minLength: 1 }), {
      default: ['roles'],
      description: 'Claims read into identity.roles: a space-separated string or an array of strings.',
    }),
    realm: Type.String({ default: 'pinpoint', description: 'realm of the WWW-Authenticate: Bearer challenge (RFC 6750 §3).' }),
  },
  { additionalProperties: false },
);

export type JwtConfig = Static<typeof JwtSchema>;
export type TokenLocation = JwtConfig['in'][number];
export type KeyConfig = JwtConfig['keys'][number];
