/**
 * The one ordered pipeline. Each policy type has exactly one position, and the reason for it.
 * Policies attached globally, to a route or to a consumer all run in this order; a consumer's own
 * policies are known only once authentication has identified the consumer, so those whose
 * position is earlier than authentication run right after it (see src/pipeline/plan.ts).
 */
export interface Stage {
  readonly type: string;
  readonly reason: string;
  /** True for policies that establish who the caller is. */
  readonly authenticates?: true;
}

export const PIPELINE_ORDER: readonly Stage[] = [
  { type: 'ip-rules', reason: 'Cheapest reject: needs only the client address, before any header or body is parsed.' },
  {
    type: 'request-size',
    reason: 'Refuses an oversized declared body before authentication spends CPU on it, and before any body is read.',
  },
  {
    type: 'api-key',
    reason: 'Authentication: establishes the consumer and its scopes, which consumer-attached policies depend on.',
    authenticates: true,
  },
];

export const ORDER_INDEX: ReadonlyMap<string, number> = new Map(PIPELINE_ORDER.map((s, i) => [s.type, i]));
