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
    checks: Type.Object(
      {
        max_concurrent: Type.Integer({
          minimum: 1,
          maximum: 64,
          default: 2,
          description:
            'Password checks (scrypt, ~16 MiB each at the default cost) run at once in this process, on libuv’s thread pool (4 threads unless UV_THREADPOOL_SIZE is set). Keep it below the pool size so DNS lookups, file and zlib work still get threads during a flood of wrong passwords. Default 2.',
        }),
        max_queued: Type.Integer({
          minimum: 0,
          maximum: 10000,
          default: 64,
          description:
            'Password checks waiting for a slot. Beyond this a request is refused at once with BASIC_AUTH_BUSY (503, Retry-After) instead of waiting; 0 refuses as soon as every slot is busy. Pairs verified recently (cache) need no check and are never refused. Default 64.',
        }),
      },
      {
        additionalProperties: false,
        default: {},
        description:
          'Bounds on password checks per process: every wrong password and unknown user costs one scrypt run, so a flood of bogus logins must not queue without limit on the thread pool. The running and waiting checks are counted once for the whole process, across every basic-auth policy (one thread pool); each policy admits its requests against its own bounds.',
      },
    ),
  },
  { additionalProperties: false },
);

export type BasicAuthConfig = Static<typeof BasicAuthSchema>;
