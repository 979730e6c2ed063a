/** Catalog codes of the `oauth2-introspection` policy (merged into the one catalog in src/errors/catalog.ts). */
import type { CatalogEntry } from '../../errors/entry.ts';

export const INTROSPECTION_CODES = {
  AUTH_INTROSPECTION_TOKEN_MISSING: {
    status: 401,
    title: 'No access token was sent',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation: 'Send an OAuth 2.0 access token in {accepted}.',
  },
  AUTH_INTROSPECTION_TOKEN_INACTIVE: {
    status: 401,
    title: 'The authorization server reports the access token as inactive',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'The authorization server at {endpoint_host} says token {token_ref} is not active (expired, revoked, or not issued by it); obtain a new access token.',
  },
  AUTH_INTROSPECTION_TOKEN_EXPIRED: {
    status: 401,
    title: 'The access token has expired',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'Token {token_ref} expired at {expired_at} (the introspection answer still said active: check the clocks of the gateway and the authorization server); obtain a new access token.',
  },
  AUTH_INTROSPECTION_NO_CONSUMER: {
    status: 401,
    title: 'The active access token does not name a consumer',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'The introspection answer for token {token_ref} has no {consumer_claim} member (it has: {members}); use a token issued to a user, or set consumer_claim to a member the server returns (e.g. client_id).',
  },
  INTROSPECTION_UNAVAILABLE: {
    status: 503,
    title: 'The token introspection endpoint could not be used',
    layer: 'gateway',
    retryable: true,
    proxyStatus: 'proxy_internal_error',
    remediation:
      'Not the client\u2019s fault: the gateway could not check the token because introspection at {endpoint_host} failed ({failure}); retry later. Operator: check that the endpoint is up and reachable from the gateway; a 401 or 403 status means it refuses the gateway\u2019s client_id / client secret.',
  },
} as const satisfies Record<string, CatalogEntry>;
