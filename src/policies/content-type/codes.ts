/** Catalog codes of the `content-type` policy (merged into the one catalog in src/errors/catalog.ts). */
import type { CatalogEntry } from '../../errors/entry.ts';

/** All 415 Unsupported Media Type (RFC 9110 §15.5.16): the content is in a format the route does not take. */
export const CONTENT_TYPE_CODES = {
  CONTENT_TYPE_MISSING: {
    status: 415,
    title: 'The request has a body but no Content-Type',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation: 'Send a Content-Type header naming the body’s format; {method} on this route accepts {accepted}.',
  },
  CONTENT_TYPE_NOT_ACCEPTED: {
    status: 415,
    title: 'The request body’s Content-Type is not accepted by this route',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'The body was sent as {sent}; send it as one of {accepted} (for JSON: serialise the body as JSON and set Content-Type: application/json, not a form encoding).',
  },
  CONTENT_TYPE_CHARSET_NOT_ACCEPTED: {
    status: 415,
    title: 'The request body’s charset is not accepted by this route',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation: 'The body was declared as charset={sent_charset}; encode it as one of {accepted_charsets} and say so in Content-Type, or drop the charset parameter.',
  },
} as const satisfies Record<string, CatalogEntry>;
