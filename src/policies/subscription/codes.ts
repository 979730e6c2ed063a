/** Catalog codes of the `subscription` policy (merged into the one catalog in src/errors/catalog.ts). */
import type { CatalogEntry } from '../../errors/entry.ts';

export const SUBSCRIPTION_CODES = {
  AUTH_SUBSCRIPTION_UNAUTHENTICATED: {
    status: 401,
    title: 'Authentication is required before the API subscription can be checked',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'Route {route} belongs to API {api}, which callers must be subscribed to, so the caller must be identified first: send the credentials the route accepts. Operator: if no authentication policy runs on this route before subscription, or one lets anonymous callers through, attach one.',
  },
  SUBSCRIPTION_MISSING: {
    status: 403,
    title: 'The caller is not subscribed to this API',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      '{consumer} has no subscription to API {api}; subscribe to it and call again once the API owner has approved it (status active). If {consumer} subscribed to another API or version instead, evidence.subscribed_apis lists them.',
  },
  SUBSCRIPTION_PENDING: {
    status: 403,
    title: 'The caller\u2019s subscription to this API is waiting for approval',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'The subscription of {consumer} to API {api} has not been approved yet; wait until the API owner approves it (status active), then send the same request again: nothing in the request needs to change.',
  },
  SUBSCRIPTION_REJECTED: {
    status: 403,
    title: 'The caller\u2019s subscription to this API was rejected',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'The API owner rejected the subscription of {consumer} to API {api}; calls fail until a subscription is approved: ask the owner why, or apply again.',
  },
  SUBSCRIPTION_EXPIRED: {
    status: 403,
    title: 'The caller\u2019s subscription to this API has expired',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation: 'The subscription of {consumer} to API {api} expired ({expired}); renew it, then call again.',
  },
  SUBSCRIPTION_SUSPENDED: {
    status: 403,
    title: 'The caller\u2019s subscription to this API is suspended',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'The API owner suspended the subscription of {consumer} to API {api}; calls fail until it is reinstated (status active): contact the API owner.',
  },
} as const satisfies Record<string, CatalogEntry>;
