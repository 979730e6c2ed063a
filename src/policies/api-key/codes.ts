/** Catalog codes of the `api-key` policy (merged into the one catalog in src/errors/catalog.ts). */
import type { CatalogEntry } from '../../errors/entry.ts';

export const API_KEY_CODES = {
  AUTH_KEY_MISSING: {
    status: 401,
    title: 'No API key was sent',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation: 'Send an API key in {accepted}.',
  },
  AUTH_KEY_WRONG_PLACE: {
    status: 401,
    title: 'An API key was sent, but not where this route accepts it',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation: 'Move the key from {found_in} to {accepted}.',
  },
  AUTH_KEY_INVALID: {
    status: 401,
    title: 'The API key is not known',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'Check the key for typos and that it belongs to this environment; ask the API owner for a valid key.',
  },
  AUTH_KEY_EXPIRED: {
    status: 401,
    title: 'The API key has expired',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation: 'Key {key_id} expired at {expired_at}; use a current key or have its expiry extended.',
  },
  AUTH_KEY_REVOKED: {
    status: 401,
    title: 'The API key has been revoked',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation: 'Key {key_id} was revoked; stop using it and obtain a new key.',
  },
  AUTH_KEY_SCOPE_MISSING: {
    status: 403,
    title: 'The API key lacks a scope this route requires',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'Key {key_id} lacks scope {missing_scopes}; grant it to the key, or use a key that has it.',
  },
} as const satisfies Record<string, CatalogEntry>;
