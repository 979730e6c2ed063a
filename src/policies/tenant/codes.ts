/** Catalog codes of the `tenant` policy (merged into the one catalog in src/errors/catalog.ts). */
import type { CatalogEntry } from '../../errors/entry.ts';

export const TENANT_CODES = {
  AUTH_TENANT_UNAUTHENTICATED: {
    status: 401,
    title: 'Authentication is required before the tenant can be checked',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'Route {route} checks the tenant a request names against the caller\u2019s team, so the caller must be identified first: send the credentials the route accepts. Operator: if no authentication policy runs on this route before tenant, or one lets anonymous callers through, attach one.',
  },
  TENANT_MISMATCH: {
    status: 403,
    title: 'The request names a tenant the caller does not belong to',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'The request names tenant {requested_tenant} in {tenant}, but {consumer} belongs to {caller_tenant} (from {caller_tenant_source}); act in the caller\u2019s own tenant, or use a credential of a member of {requested_tenant}.',
  },
  TENANT_UNKNOWN: {
    status: 403,
    title: 'The caller belongs to no known tenant',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'No team is known for {consumer} (looked in: {looked_in}), so tenant {requested_tenant} cannot be checked against it. Operator: give the consumer a team (consumers[].team), or issue it a credential that carries the tenant claim.',
  },
  TENANT_MISSING: {
    status: 400,
    title: 'The request does not name the tenant it acts in',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_error',
    remediation: 'Send {tenant} ({problem}): this route acts within one tenant and checks it against the caller\u2019s team.',
  },
  TENANT_AMBIGUOUS: {
    status: 400,
    title: 'The request names its tenant more than once',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_error',
    remediation: 'Send {tenant} exactly once (it was sent {count} times): the gateway and the upstream could otherwise read different tenants.',
  },
  TENANT_ROUTE_PARAM_MISSING: {
    status: 500,
    title: 'The tenant policy names a path parameter the route does not have',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'proxy_internal_error',
    remediation:
      'Gateway configuration fault, not the client\u2019s: route {route} matched {path} without a path parameter named {name} (parameters: {params}). Operator: make tenant.name match the route\u2019s path template, or attach the policy only to routes that have it.',
  },
} as const satisfies Record<string, CatalogEntry>;
