/** Catalog codes of the `rate-limit` policy (merged into the one catalog in src/errors/catalog.ts). */
import type { CatalogEntry } from '../../errors/entry.ts';

export const RATE_LIMIT_CODES = {
  // 429 Too Many Requests (RFC 6585 §4), never 403: the caller is allowed, just not this often.
  RATE_LIMIT_EXCEEDED: {
    status: 429,
    title: 'Too many requests for this rate limit',
    layer: 'gateway',
    retryable: true,
    proxyStatus: 'http_request_denied',
    remediation:
      'Limit {limit_id} allows {limit} requests per {window} (bursts of up to {burst}) for {key}, counted by {counted_by}. Wait {retry_after_s} s (Retry-After), then stay under the rate, or ask the API owner to raise the limit.',
  },
  RATE_LIMIT_QUOTA_EXCEEDED: {
    status: 429,
    title: 'The quota for this period is used up',
    layer: 'gateway',
    retryable: true,
    proxyStatus: 'http_request_denied',
    remediation:
      'Quota {limit_id} of {limit} requests per {window} (UTC) for {key}, counted by {counted_by}, is used up until {reset_at}. Wait for the reset, or ask the API owner for a larger quota.',
  },
  // 429 rather than 503: the limit is on this caller's own parallelism (per key), so the cause is
  // the client's traffic, not the service being unavailable (RFC 9110 §15.6.4). A 503 would make
  // clients and intermediaries treat the upstream as unhealthy and fail over or open breakers.
  RATE_LIMIT_CONCURRENCY_EXCEEDED: {
    status: 429,
    title: 'Too many requests in flight at once',
    layer: 'gateway',
    retryable: true,
    proxyStatus: 'http_request_denied',
    remediation:
      'Limit {limit_id} allows {limit} requests in flight at once for {key}, counted by {counted_by}, and {in_flight} are running. Wait for one to finish before sending another, or ask the API owner to raise the limit.',
  },
  RATE_LIMIT_STORE_UNAVAILABLE: {
    status: 503,
    title: 'The gateway could not reach its rate-limit counters',
    layer: 'gateway',
    retryable: true,
    proxyStatus: 'proxy_internal_error',
    remediation:
      'A gateway fault, not the client\u2019s: the rate-limit counters did not answer ({reason}). Retry shortly; operators: check the cluster primary, or set on_store_error: allow to fail open. Request id {request_id}.',
  },
} as const satisfies Record<string, CatalogEntry>;
