/** Catalog codes of the `origin` policy (merged into the one catalog in src/errors/catalog.ts). */
import type { CatalogEntry } from '../../errors/entry.ts';

export const ORIGIN_CODES = {
  ORIGIN_NOT_ALLOWED: {
    status: 403,
    title: 'The request comes from a page whose origin is not allowed',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      '{method} from origin {origin} is refused: it is not in allowed_origins ({allowed_origins}). If that page is yours, add its origin; otherwise this is a cross-site request the policy is meant to stop.',
  },
  ORIGIN_REFERER_NOT_ALLOWED: {
    status: 403,
    title: 'The request has no Origin, and its Referer is from an origin that is not allowed',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      '{method} had no Origin header and its Referer is from {referer_origin}, which is not in allowed_origins ({allowed_origins}); send it from an allowed page, or add that origin.',
  },
  ORIGIN_MISSING: {
    status: 403,
    title: 'The request has neither an Origin nor a usable Referer',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'Browsers send Origin on {method}; a request without it (and without a usable Referer) is usually a non-browser client. Send an Origin header from an allowed origin, or set allow_missing: true on this policy if server-to-server callers are expected.',
  },
} as const satisfies Record<string, CatalogEntry>;
