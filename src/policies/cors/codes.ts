/**
 * Catalog codes of the `cors` policy (merged into the one catalog in src/errors/catalog.ts).
 *
 * These answer rejected preflights only. A browser never shows a preflight's status or body to the
 * page (Fetch standard, #cors-preflight-fetch: without the allowance it is a network error, whatever
 * the status), so the 403 and its code are for the call log, `trace` and `explain`: they name the
 * exact allowance that was missing. Actual cross-origin requests from an origin that is not
 * allowed are never denied (the browser enforces CORS; the gateway only withholds the headers).
 */
import type { CatalogEntry } from '../../errors/entry.ts';

export const CORS_CODES = {
  CORS_PREFLIGHT_ORIGIN_NOT_ALLOWED: {
    status: 403,
    title: 'CORS preflight from an origin that is not allowed',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'Origin {origin} is not in allow_origins ({allowed_origins}); add it (exact, or a pattern such as https://*.example.com) or call from an allowed origin. The browser only shows the page a CORS error.',
  },
  CORS_PREFLIGHT_METHOD_NOT_ALLOWED: {
    status: 403,
    title: 'CORS preflight for a method that is not allowed',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'Method {method} (requested by {origin}) is not in allow_methods ({allowed_methods}); add it, or use an allowed method. Methods compare case-sensitively: fetch() upper-cases only DELETE, GET, HEAD, OPTIONS, POST and PUT.',
  },
  CORS_PREFLIGHT_HEADERS_NOT_ALLOWED: {
    status: 403,
    title: 'CORS preflight for request headers that are not allowed',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'Request headers {headers_not_allowed} (requested by {origin}) are not in allow_headers ({allowed_headers}); add them, or stop sending them from the page. "*" never covers Authorization.',
  },
} as const satisfies Record<string, CatalogEntry>;
