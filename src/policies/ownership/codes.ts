/** Catalog codes of the `ownership` policy (merged into the one catalog in src/errors/catalog.ts). */
import type { CatalogEntry } from '../../errors/entry.ts';

export const OWNERSHIP_CODES = {
  AUTH_OWNERSHIP_UNAUTHENTICATED: {
    status: 401,
    title: 'Authentication is required before resource ownership can be checked',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'Route {route} checks who owns the resource, so the caller must be identified first: send the credentials the route accepts. Operator: if no authentication policy runs on this route before ownership, or one lets anonymous callers through, attach one.',
  },
  OWNERSHIP_NOT_OWNER: {
    status: 403,
    title: 'The caller does not own the resource it acts on',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'The request\u2019s {resource} is {resource_value}, but the caller\u2019s {claim} is {caller_value}; act on a resource the caller owns, or use a credential with an override permission (configured: {override_permissions}).',
  },
  OWNERSHIP_CLAIM_MISSING: {
    status: 403,
    title: 'The caller\u2019s credential does not carry the claim ownership is checked against',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'The {credential_type} credential of {consumer} has no {claim} claim (claims present: {claims_present}); use a credential that carries it, or set the ownership claim to one the credential has (consumer is always available).',
  },
  OWNERSHIP_RESOURCE_ID_MISSING: {
    status: 400,
    title: 'The request does not name the owner of the resource it acts on',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_error',
    remediation: 'Send {resource} ({problem}): this route checks it against the caller.',
  },
  OWNERSHIP_RESOURCE_ID_AMBIGUOUS: {
    status: 400,
    title: 'The request names the owner of the resource more than once',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_error',
    remediation: 'Send {resource} exactly once (it was sent {count} times): the gateway and the upstream could otherwise read different values.',
  },
  OWNERSHIP_BODY_NOT_JSON: {
    status: 400,
    title: 'The request body is not JSON, so resource ownership cannot be read from it',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_error',
    remediation: 'This route reads {resource} from a JSON body, but the body (content-type {content_type}) is not valid JSON; send JSON.',
  },
  OWNERSHIP_PATH_PARAM_MISSING: {
    status: 500,
    title: 'The ownership policy names a path parameter the route does not have',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'proxy_internal_error',
    remediation:
      'Gateway configuration fault, not the client\u2019s: route {route} matched {path} without a path parameter named {name} (parameters: {params}). Operator: make resource.name match the route\u2019s path template, or set missing: skip for paths without it.',
  },
} as const satisfies Record<string, CatalogEntry>;
