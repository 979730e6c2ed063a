import { Type, type Static } from '@sinclair/typebox';

/** Same pattern as consumer ids and `consumers[].team` in src/config/schema.ts. */
const CONFIG_ID = '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$';

const Limit = Type.Object(
  {
    id: Type.String({
      pattern: '^[A-Za-z0-9._-]{1,64}$',
      description: 'Names the limit in denials (evidence limit_id), the trace and the RateLimit-Policy header. Unique within the policy. Required.',
    }),
    per: Type.Union([Type.Literal('consumer'), Type.Literal('team')], {
      default: 'consumer',
      description:
        'Whom the limit counts: consumer (each authenticated consumer has its own allowance) or team (all consumers with the same consumers[].team share one allowance). A team limit does not apply to a consumer without a team. Default: consumer.',
    }),
    rpm: Type.Optional(
      Type.Integer({
        minimum: 1,
        description:
          'AI requests per minute, enforced with GCRA (a whole minute\u2019s allowance may be spent at once, then it refills evenly at one request per 60/rpm s). Default: unset (no request limit).',
      }),
    ),
    tpm: Type.Optional(
      Type.Integer({
        minimum: 1,
        description:
          'Tokens (prompt + completion, as the provider reports them) per clock minute. Metered: a request is refused once the tokens of the current minute reach tpm; each response adds what it used. Default: unset (no token limit).',
      }),
    ),
    budget_usd_day: Type.Optional(
      Type.Number({
        exclusiveMinimum: 0,
        description:
          'Spend in USD per UTC day (00:00Z to 00:00Z), priced from ai.models prices. Metered: refused once the day\u2019s spend reaches it, until midnight UTC. Default: unset (no daily budget).',
      }),
    ),
    budget_usd_month: Type.Optional(
      Type.Number({
        exclusiveMinimum: 0,
        description:
          'Spend in USD per UTC calendar month (the 1st 00:00Z to the next 1st). Metered like budget_usd_day; refused until the month ends. Default: unset (no monthly budget).',
      }),
    ),
    consumers: Type.Optional(
      Type.Array(Type.String({ pattern: CONFIG_ID }), {
        uniqueItems: true,
        description:
          'Only these consumers (ids from consumers[]) are subject to the limit; each still has its own allowance. Only with per: consumer. Default: unset or empty, every consumer.',
      }),
    ),
    teams: Type.Optional(
      Type.Array(Type.String({ pattern: CONFIG_ID }), {
        uniqueItems: true,
        description:
          'Only callers in these teams (values of consumers[].team) are subject to the limit: with per: team each listed team has its own allowance; with per: consumer each consumer of those teams has its own. Not together with consumers. Default: unset or empty, every team.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description: 'One limit: an id, whom it counts (per), at least one of rpm, tpm, budget_usd_day and budget_usd_month, and optionally whom it targets.',
  },
);

/** `ai-limits` settings. */
export const AiLimitsSchema = Type.Object(
  {
    limits: Type.Array(Limit, {
      minItems: 1,
      description: 'The limits this policy enforces; a request must be within every limit that applies to its caller. Required.',
    }),
    headers: Type.Boolean({
      default: true,
      description:
        'Describe the tightest request and token limits in the client protocol\u2019s own rate-limit headers: x-ratelimit-* on OpenAI routes, anthropic-ratelimit-* on Anthropic routes, RateLimit-Policy / RateLimit (draft-ietf-httpapi-ratelimit-headers) elsewhere. Retry-After and retry-after-ms are always sent on a refusal. false hides capacity from clients. Default: true.',
    }),
    on_store_error: Type.Union([Type.Literal('allow'), Type.Literal('deny')], {
      default: 'allow',
      description:
        'When the counters cannot be reached (cluster primary not answering): allow fails open (requests pass unlimited, the trace says why); deny fails closed with AI_LIMITS_STORE_UNAVAILABLE (503). Default: allow.',
    }),
  },
  { additionalProperties: false },
);

export type AiLimitsConfig = Static<typeof AiLimitsSchema>;
export type AiLimitConfig = AiLimitsConfig['limits'][number];
