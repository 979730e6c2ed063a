/** Catalog codes of the `rbac` policy (merged into the one catalog in src/errors/catalog.ts). */
import type { CatalogEntry } from '../../errors/entry.ts';

export const RBAC_CODES = {
  AUTH_RBAC_UNAUTHENTICATED: {
    status: 401,
    title: 'Authentication is required before permissions can be checked',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'Route {route} checks permissions ({required_permissions}), so the caller must be identified first: send the credentials the route accepts. Operator: if no authentication policy runs on this route before rbac, or one lets anonymous callers through, attach one.',
  },
  RBAC_PERMISSION_MISSING: {
    status: 403,
    title: 'The caller lacks the permission this method requires',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      '{consumer} lacks {missing_permissions} for {method} on route {route}; grant it (a token scope, a role in rbac roles, or an entry in rbac grants), or call with a credential that has it.',
  },
  RBAC_METHOD_NOT_COVERED: {
    status: 403,
    title: 'No permission rule covers this method',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation: 'No rbac rule on route {route} covers {method} (rules cover: {covered_methods}); add a rule for it, or set unmatched: allow.',
  },
} as const satisfies Record<string, CatalogEntry>;
