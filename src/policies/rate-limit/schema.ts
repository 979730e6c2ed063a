import { Type, type Static } from '@sinclair/typebox';

/** Same pattern as Duration in src/config/schema.ts (copied: that file is not ours to edit). */
const Duration = (description: string, def?: string): ReturnType<typeof Type.String> =>
  Type.String({ pattern: '^[0-9]+(ms|s|m|h|d)$', ...(def !== undefined ? { default: def } : {}), description });

/** A header name is an RFC 9110 §5.1 token. */
const KEY_PATTERN = "^(consumer|credential|ip|route|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$";

const KeyPart = Type.String({
  pattern: KEY_PATTERN,
  description:
    'What the limit counts by: consumer (the authenticated consumer id), credential (the id of the key or token used, never the secret), ip (the client IP after trusted_proxies), route (the matched route id), or header:<name> (that request header\u2019s value; only meaningful when a trusted proxy sets it, since clients can send any value). Without an identity, consumer and credential count by client IP instead (evidence says "ip (no consumer)"); a missing header does the same.',
});

const Rate = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, description: 'Requests allowed per window, sustained (the q of RateLimit-Policy).' }),
    window: Duration('The window, a whole number of seconds such as 1s, 1m or 1h (the w of RateLimit-Policy, which has no sub-second precision).'),
    burst: Type.Optional(
      Type.Integer({
        minimum: 1,
        description:
          'Most requests that may arrive back-to-back after a quiet period (the bucket depth). Default: limit, so a whole window\u2019s allowance may be spent at once; 1 spaces requests evenly at window/limit. In any span of one window at most limit + burst - 1 requests pass.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'A rate, enforced with GCRA (the generic cell rate algorithm, ATM Forum TM 4.0 §4.4.2): one request costs window/limit of time; a caller may run ahead of that schedule by (burst - 1) requests. No fixed-window edge where twice the limit gets through.',
  },
);

const Quota = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, description: 'Requests allowed per period.' }),
    period: Type.Union([Type.Literal('day'), Type.Literal('month')], {
      description: 'Calendar window in UTC: day (00:00Z to 00:00Z) or month (1st 00:00Z to next 1st). The count resets at the boundary.',
    }),
  },
  { additionalProperties: false, description: 'A counted quota over a fixed calendar window (UTC).' },
);

const Limit = Type.Object(
  {
    id: Type.String({
      pattern: '^[A-Za-z0-9._-]{1,64}$',
      description: 'Names the limit in denials (evidence limit_id) and in the RateLimit-Policy / RateLimit headers. Unique within the policy.',
    }),
    by: Type.Array(KeyPart, {
      minItems: 1,
      uniqueItems: true,
      default: ['consumer'],
      description: 'The key the limit counts by; several parts combine (e.g. [consumer, route] counts each consumer on each route separately). Default: [consumer].',
    }),
    rate: Type.Optional(Rate),
    quota: Type.Optional(Quota),
    concurrency: Type.Optional(
      Type.Integer({ minimum: 1, description: 'Most requests in flight at once per key; a slot is given back when the exchange ends (response sent or client gone).' }),
    ),
  },
  { additionalProperties: false, description: 'One limit: an id, a key (by), and exactly one of rate, quota or concurrency.' },
);

/** `rate-limit` settings. */
export const RateLimitSchema = Type.Object(
  {
    limits: Type.Array(Limit, {
      minItems: 1,
      description: 'The limits this policy enforces; a request must satisfy all of them, and is counted by all of them only when it does.',
    }),
    headers: Type.Boolean({
      default: true,
      description:
        'Send RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers-11) on allowed and refused responses. Retry-After is always sent on a refusal. false hides capacity from clients (draft §8.2).',
    }),
    concurrency_retry_after: Duration('Retry-After sent when a concurrency limit refuses: slots free when other requests end, which no clock predicts. Default 1s.', '1s'),
    on_store_error: Type.Union([Type.Literal('allow'), Type.Literal('deny')], {
      default: 'allow',
      description:
        'When the counters cannot be reached (cluster primary not answering): allow fails open (requests pass unlimited, the trace says why); deny fails closed with RATE_LIMIT_STORE_UNAVAILABLE (503). Default allow.',
    }),
  },
  { additionalProperties: false },
);

export type RateLimitConfig = Static<typeof RateLimitSchema>;
export type LimitConfig = RateLimitConfig['limits'][number];
