import { Type, type Static } from '@sinclair/typebox';

/** `basic-auth` settings. Users themselves live on consumers (consumers[].credentials.basic_auth). */
export const BasicAuthSchema = Type.Object(
  {
    realm: Type.String({
      default: 'pinpoint',
      description: 'realm of the `WWW-Authenticate: Basic` challenge (RFC 7617 §2); browsers show it in their login prompt.',
    }),
    scopes: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description:
        'Scopes granted to every caller this policy authenticates (Basic credentials carry none of their own). Default none: policies that require scopes then refuse these callers (fails closed).',
    }),
    cache: Type.Object(
      {
        max_entries: Type.Integer({
          minimum: 0,
          maximum: 100000,
          default: 1000,
          description: 'Most recently verified (user, password) pairs remembered, least recently used evicted first. 0 disables the cache: every request pays a full scrypt check.',
        }),
        ttl_seconds: Type.Integer({
          minimum: 0,
          maximum: 3600,
          default: 60,
          description: 'How long a verified pair is accepted again without scrypt. Only successes are cached, so a wrong password is never accepted from cache; 0 disables the cache.',
        }),
      },
      {
        additionalProperties: false,
        default: {},
        description: 'Verification cache: scrypt is slow on purpose (tens of ms), and clients resend the same credentials on every request.',
      },
    ),
  },
  { additionalProperties: false },
);

export type BasicAuthConfig = Static<typeof BasicAuthSchema>;
