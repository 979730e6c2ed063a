import { Type, type Static } from '@sinclair/typebox';

const Location = Type.Union(
  [
    Type.Object(
      { from: Type.Literal('bearer', { description: 'The Authorization header, Bearer scheme.' }) },
      { additionalProperties: false, description: 'Authorization: Bearer <token> (RFC 6750 §2.1). The recommended place.' },
    ),
    Type.Object(
      {
        from: Type.Literal('header', { description: 'A request header.' }),
        name: Type.String({ minLength: 1, description: 'Header name, e.g. x-access-token.' }),
      },
      { additionalProperties: false },
    ),
    Type.Object(
      {
        from: Type.Literal('query', { description: 'A query parameter (RFC 6750 §2.3).' }),
        name: Type.String({
          minLength: 1,
          description: 'Query parameter, e.g. access_token. Tokens in URLs end up in logs and browser history (RFC 6750 §5.3); prefer a header.',
        }),
      },
      { additionalProperties: false },
    ),
  ],
  { description: 'One place an access token is accepted.' },
);

/**
 * `oauth2-introspection` settings (RFC 7662). The gateway asks the authorization server whether a
 * presented access token is active, and caches the answer.
 */
export const IntrospectionSchema = Type.Object(
  {
    endpoint: Type.String({
      pattern: '^https?://',
      description:
        'URL of the token introspection endpoint (RFC 7662 §2). Must be https (RFC 7662 §4), except on a loopback host or with allow_plain_http.',
    }),
    allow_plain_http: Type.Boolean({
      default: false,
      description:
        'Allow an http:// endpoint on a non-loopback host. Tokens and the gateway\u2019s client secret then cross the network in clear text; default false fails closed (config rejected).',
    }),
    client_id: Type.String({
      minLength: 1,
      description: 'Client id the gateway authenticates with at the introspection endpoint (HTTP Basic, RFC 7662 §2.1 / RFC 6749 §2.3.1).',
    }),
    client_secret_env: Type.String({
      minLength: 1,
      description: 'Name of the environment variable holding the client secret. The secret is never written in config; a missing variable rejects the config.',
    }),
    in: Type.Array(Location, {
      minItems: 1,
      default: [{ from: 'bearer' }],
      description: 'Where the access token is accepted, tried in order. Default: Authorization: Bearer only.',
    }),
    timeout_ms: Type.Integer({
      minimum: 1,
      maximum: 60000,
      default: 2000,
      description:
        'Longest wait for the introspection answer (connect, headers and body). Past it the request is refused with INTROSPECTION_UNAVAILABLE (503): fails closed.',
    }),
    cache_ttl_seconds: Type.Integer({
      minimum: 0,
      maximum: 86400,
      default: 60,
      description:
        'Longest time an active answer is reused without asking again; never past the token\u2019s exp. 0 asks on every request. A revoked token stays accepted for up to this long.',
    }),
    negative_cache_ttl_seconds: Type.Integer({
      minimum: 0,
      maximum: 300,
      default: 5,
      description:
        'How long an inactive answer is reused, so a client retrying a dead token does not flood the authorization server. Endpoint failures are never cached.',
    }),
    cache_max_entries: Type.Integer({
      minimum: 0,
      maximum: 1000000,
      default: 10000,
      description: 'Most tokens cached (least recently used evicted first). The cache is keyed by SHA-256 of the token; tokens are never stored. 0 disables caching.',
    }),
    consumer_claim: Type.String({
      minLength: 1,
      default: 'sub',
      description:
        'Introspection member naming the consumer: sub (the resource owner), client_id (the OAuth client, e.g. for client_credentials tokens) or another member. An active token without it is refused (AUTH_INTROSPECTION_NO_CONSUMER).',
    }),
    scope_claim: Type.String({
      minLength: 1,
      default: 'scope',
      description: 'Member holding the space-separated scopes (RFC 7662 §2.2). An array of strings is accepted too.',
    }),
    role_claims: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description:
        'Members holding roles, as dotted paths (e.g. roles, realm_access.roles). Each may be an array of strings or a space-separated string. Default none: the identity has no roles.',
    }),
    realm: Type.String({ default: 'pinpoint', description: 'realm of the WWW-Authenticate Bearer challenge (RFC 6750 §3).' }),
  },
  { additionalProperties: false },
);

export type IntrospectionConfig = Static<typeof IntrospectionSchema>;
export type TokenLocation = IntrospectionConfig['in'][number];
