/** Catalog codes of the `basic-auth` policy (merged into the one catalog in src/errors/catalog.ts). */
import type { CatalogEntry } from '../../errors/entry.ts';

export const BASIC_AUTH_CODES = {
  BASIC_AUTH_MISSING: {
    status: 401,
    title: 'No Basic credentials were sent',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation: 'Send {expected} with base64 of "user:password" in UTF-8 (RFC 7617).',
  },
  BASIC_AUTH_MALFORMED: {
    status: 401,
    title: 'The Basic credentials could not be read',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'The Authorization header was not usable ({reason}); send "Basic " followed by base64 of "user:password" in UTF-8, with a colon after the user name and no control characters.',
  },
  BASIC_AUTH_WRONG_SCHEME: {
    status: 401,
    title: 'Credentials were sent with another authentication scheme than Basic',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation: 'This route expects {expected}, but the Authorization header uses the {found_scheme} scheme; send a user name and password with Basic instead.',
  },
  BASIC_AUTH_INVALID: {
    status: 401,
    title: 'The user name or password is not correct',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    // One public code, rule and evidence for "unknown user" and "wrong password" so the answer does
    // not reveal which user names exist; the trace and call log keep which one it was.
    remediation: 'Check the user name {username} and the password; ask the API owner to reset the password if it is lost.',
  },
  BASIC_AUTH_BUSY: {
    // RFC 9110 §15.6.4: 503 with Retry-After (§10.2.3) for a temporary overload. The credentials
    // were not checked, so this says nothing about them (nor whether the user name exists).
    status: 503,
    title: 'Password checks are saturated',
    layer: 'gateway',
    retryable: true,
    proxyStatus: 'destination_unavailable',
    remediation:
      'Retry after {retry_after_s} seconds (Retry-After): the gateway is already checking as many passwords as it allows and its wait queue is full, so these credentials were not checked. Operators: a flood of wrong passwords is the usual cause; see checks.max_concurrent and checks.max_queued of the basic-auth policy.',
  },
} as const satisfies Record<string, CatalogEntry>;
