/** Catalog codes of the `required-headers` policy (merged into the one catalog in src/errors/catalog.ts). */
import type { CatalogEntry } from '../../errors/entry.ts';

/**
 * A catalog code has one status, and a rule chooses 400 or 403 (RFC 9110 §15.5.1 / §15.5.4), so
 * each cause has a 400 code and a `_FORBIDDEN` 403 twin. A 400 rule describes the request format
 * (layer client: the caller's request is wrong); a 403 rule is an access condition the gateway
 * enforces (layer gateway).
 */
export const REQUIRED_HEADERS_CODES = {
  REQUIRED_HEADER_MISSING: {
    status: 400,
    title: 'A required request header is missing',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation: 'Send header {header} ({rule}). Failing headers: {failing_headers}.',
  },
  REQUIRED_HEADER_MALFORMED: {
    status: 400,
    title: 'A required request header has a value this route does not accept',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation: 'Header {header} must satisfy {rule}. Failing headers: {failing_headers}.',
  },
  REQUIRED_HEADER_MISSING_FORBIDDEN: {
    status: 403,
    title: 'A header this route requires for access is missing',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation: 'Send header {header} ({rule}); this route admits only callers that do. Failing headers: {failing_headers}.',
  },
  REQUIRED_HEADER_MALFORMED_FORBIDDEN: {
    status: 403,
    title: 'A header this route requires for access has a value that is not allowed',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation: 'Header {header} must satisfy {rule}; this route admits only callers whose value does. Failing headers: {failing_headers}.',
  },
} as const satisfies Record<string, CatalogEntry>;
