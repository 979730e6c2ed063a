/** Catalog codes of the `openapi-validate` policy (merged into the one catalog in src/errors/catalog.ts). */
import type { CatalogEntry } from '../../errors/entry.ts';

/**
 * A request that breaks the API description is the client's to fix, so schema failures are 400
 * with every failing field (never 403: nothing about the caller's rights is in question).
 */
export const OPENAPI_CODES = {
  OPENAPI_OPERATION_NOT_FOUND: {
    status: 404,
    title: 'The API description has no operation for this path',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'No path in the API description matches {path} (after removing base path {base_path}). Check the path, its letter case and trailing slash; nearest described paths: {nearest}.',
  },
  OPENAPI_METHOD_NOT_ALLOWED: {
    status: 405,
    title: 'The API description does not define this method for this path',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation: '{path_template} is described for {allow} only; send one of those methods (or add {method} to the API description).',
  },
  OPENAPI_PARAMS_INVALID: {
    status: 400,
    title: 'Request parameters do not match the API description',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_error',
    remediation: 'Fix these fields of {operation} to match the API description: {errors}.',
  },
  OPENAPI_BODY_INVALID: {
    status: 400,
    title: 'The request body does not match the API description',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_error',
    remediation: 'Fix these fields of the {operation} body to match the API description: {errors}.',
  },
  OPENAPI_BODY_NOT_JSON: {
    status: 400,
    title: 'The request body is not valid JSON',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_error',
    remediation: '{operation} takes a JSON body (sent as {content_type}), but it does not parse: {reason}. Send UTF-8 JSON, serialised by a JSON encoder.',
  },
  OPENAPI_MEDIA_TYPE_UNSUPPORTED: {
    status: 415,
    title: 'The API description does not accept this request body format',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation: '{operation} takes bodies as {accepted}; the request sent {sent}. Set Content-Type to one of those and encode the body to match.',
  },
} as const satisfies Record<string, CatalogEntry>;
