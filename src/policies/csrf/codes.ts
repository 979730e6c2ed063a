/**
 * Catalog codes of the `csrf` policy (merged into the one catalog in src/errors/catalog.ts).
 * Evidence never carries a token: only names, lengths and whether something was present.
 */
import type { CatalogEntry } from '../../errors/entry.ts';

export const CSRF_CODES = {
  CSRF_COOKIE_MISSING: {
    status: 403,
    title: 'The CSRF cookie was not sent',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'This cookie-carrying {method} has no {cookie_name} cookie (cookies sent: {cookie_names}). Load the page that sets it again (the session may have ended), and check the cookie\'s Domain, Path and SameSite attributes.',
  },
  CSRF_TOKEN_MISSING: {
    status: 403,
    title: 'The CSRF token header was not sent',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation: 'Send the value of the {cookie_name} cookie in the {header_name} header on {method} requests.',
  },
  CSRF_TOKEN_MISMATCH: {
    status: 403,
    title: 'The CSRF token header does not match the CSRF cookie',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'The {header_name} header (length {header_length}) differs from the {cookie_name} cookie (length {cookie_length}); send the cookie\'s current value. A page open since before the cookie was renewed holds a stale token: reload it.',
  },
  CSRF_HEADER_MISSING: {
    status: 403,
    title: 'The header that proves a same-site request was not sent',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'Send the {header_name} header (any non-empty value) on {method} requests. A cross-site form cannot send it, which is what makes it a CSRF defence.',
  },
  CSRF_HANDSHAKE_CROSS_SITE: {
    status: 403,
    title: 'A WebSocket handshake with credentials came from a page on another host',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'Open the WebSocket from a page on {host} (its Origin was {origin}): a handshake cannot carry a CSRF token, so only its Origin shows it is same-site. For pages on other hosts, put an origin policy listing them on this route.',
  },
} as const satisfies Record<string, CatalogEntry>;
