/**
 * The one ordered pipeline. Each policy type has exactly one position, and the reason for it.
 * Policies attached globally, to a route or to a consumer all run in this order; a consumer's own
 * policies are known only once authentication has identified the consumer, so those whose
 * position is earlier than authentication run right after it (see src/pipeline/plan.ts).
 *
 * A test keeps this list and the registry (src/policies/index.ts) in step.
 */
export interface Stage {
  readonly type: string;
  readonly reason: string;
  /** True for policies that establish who the caller is. */
  readonly authenticates?: true;
}

const ALL_STAGES: readonly Stage[] = Object.freeze([
  { type: 'ip-rules', reason: 'Cheapest reject: needs only the client address, before any header or body is parsed.' },
  {
    type: 'cors',
    reason:
      'Preflights carry no credentials, so they are answered before authentication; an allowed origin gets its CORS headers on every later response, denials included, so the browser can read why.',
  },
  { type: 'origin', reason: 'Cross-site check on Origin/Referer: headers only, before any work is spent on the caller.' },
  { type: 'csrf', reason: 'A forged cross-site request is refused before its ambient credentials (cookies) are looked at.' },
  {
    type: 'request-size',
    reason: 'Refuses an oversized declared body before authentication spends CPU on it, and before any body is read.',
  },
  {
    type: 'api-key',
    reason: 'Authentication: establishes the consumer and its scopes, which consumer-attached policies depend on.',
    authenticates: true,
  },
  { type: 'jwt', reason: 'Authentication by signed token: a local signature check, remote only to refresh keys.', authenticates: true },
  { type: 'basic-auth', reason: 'Authentication by password: after the token checks because its hash is slow by design (scrypt).', authenticates: true },
  {
    type: 'oauth2-introspection',
    reason: 'Authentication by remote token introspection (RFC 7662): last among authenticators because it is the only one that calls out.',
    authenticates: true,
  },
  {
    type: 'subscription',
    reason:
      'API access by subscription: needs the consumer identified above; first of the authorization checks because without an active subscription to the API no permission or tenant matters, so the caller hears "subscribe" or "wait for approval", not a missing permission it could never use.',
  },
  {
    type: 'tenant',
    reason:
      'Tenant isolation: after subscription (access to the API as a whole is the broader answer) and before rbac, because a permission held in the caller’s own tenant says nothing about another tenant’s data; a caller in the wrong tenant hears that, not a missing permission.',
  },
  {
    type: 'rbac',
    reason: 'Authorization by permission per method: needs the identity set above; before rate limits so a forbidden call spends no quota.',
  },
  { type: 'ownership', reason: 'Resource ownership: after rbac (a missing permission is the broader answer); reads the body only for a body rule.' },
  {
    type: 'rate-limit',
    reason: 'Counts authenticated, authorized calls by consumer; before the body checks so an over-limit caller costs no parsing.',
  },
  {
    type: 'ai-limits',
    reason: 'AI requests, tokens and spend per consumer and team: after the request-rate limits, so a caller over its plain rate spends no token budget check.',
  },
  { type: 'content-type', reason: 'A header check (415) before anything parses the body.' },
  { type: 'required-headers', reason: 'Header presence and shape, still before the body is read.' },
  { type: 'openapi-validate', reason: 'Reads and validates the body against the API document: the most expensive check, so the last one.' },
  {
    type: 'ai-guardrails',
    reason: 'Reads the prompt itself (injection patterns, denied topics, token ceiling, secret masking): after the cheaper body schema check, and before the transform so it sees what the client sent.',
  },
  {
    type: 'request-transform',
    reason: 'Changes what goes upstream only after every decision, e.g. strips the credential the authenticators needed.',
  },
]);


export const PIPELINE_ORDER: readonly Stage[] = ALL_STAGES;

export const ORDER_INDEX: ReadonlyMap<string, number> = new Map(PIPELINE_ORDER.map((s, i) => [s.type, i]));
