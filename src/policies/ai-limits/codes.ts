/** Catalog codes of the `ai-limits` policy (merged into the one catalog in src/errors/catalog.ts). */
import type { CatalogEntry } from '../../errors/entry.ts';

/**
 * All four limits answer 429 (RFC 6585 §4): the caller is allowed, just not this much. They differ
 * in `retryable`, the way OpenAI tells `rate_limit_error` (wait and retry) from
 * `insufficient_quota` (retrying will not help): a budget is spent until a calendar boundary hours
 * or weeks away, so those entries are not retryable and the gateway adds `x-should-retry: false`
 * (src/errors/problem.ts), which the OpenAI and Anthropic SDKs obey over any retry-after. The
 * budget codes contain BUDGET: the OpenAI envelope maps those to `insufficient_quota`
 * (src/errors/envelopes.ts).
 */
export const AI_LIMITS_CODES = {
  AI_RPM_EXCEEDED: {
    status: 429,
    title: 'Too many AI requests per minute',
    layer: 'gateway',
    retryable: true,
    proxyStatus: 'http_request_denied',
    remediation:
      'Limit {limit_id} allows {limit} AI requests per minute for {scope} {scope_id}; {used} were used and {remaining} remain. Wait {retry_after_s} s (Retry-After; the limit is full again at {reset_at}), then stay under the rate, or ask the gateway operator to raise rpm.',
  },
  AI_TPM_EXCEEDED: {
    status: 429,
    title: 'Too many AI tokens per minute',
    layer: 'gateway',
    retryable: true,
    proxyStatus: 'http_request_denied',
    remediation:
      'Limit {limit_id} allows {limit} tokens (prompt + completion) per minute for {scope} {scope_id}; {used} were used this minute and {remaining} remain. Wait {retry_after_s} s until the minute ends at {reset_at}, send shorter prompts or a lower max_tokens, or ask the gateway operator to raise tpm.',
  },
  AI_BUDGET_DAILY_EXHAUSTED: {
    status: 429,
    title: 'The daily AI budget is spent',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'Budget {limit_id} of {limit} USD per UTC day for {scope} {scope_id} is spent ({used} USD used, {remaining} USD left). Requests are refused until the budget resets at {reset_at}; retrying sooner fails the same way. Ask the gateway operator to raise budget_usd_day.',
  },
  AI_BUDGET_MONTHLY_EXHAUSTED: {
    status: 429,
    title: 'The monthly AI budget is spent',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'Budget {limit_id} of {limit} USD per UTC month for {scope} {scope_id} is spent ({used} USD used, {remaining} USD left). Requests are refused until the budget resets at {reset_at}; retrying sooner fails the same way. Ask the gateway operator to raise budget_usd_month.',
  },
  AI_LIMITS_STORE_UNAVAILABLE: {
    status: 503,
    title: 'The gateway could not reach its AI usage counters',
    layer: 'gateway',
    retryable: true,
    proxyStatus: 'proxy_internal_error',
    remediation:
      'A gateway fault, not the client\u2019s: the AI usage counters did not answer ({reason}). Retry shortly; operators: check the cluster primary, or set on_store_error: allow to fail open. Request id {request_id}.',
  },
} as const satisfies Record<string, CatalogEntry>;
