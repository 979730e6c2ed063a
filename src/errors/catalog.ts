/**
 * The request-time error catalog: one entry per reason the gateway answers a request itself.
 *
 * Rules (see docs/errors.md, which is generated from this file and checked by a test):
 * - Codes are stable and append-only: never renamed, never reused. A retired code stays here with
 *   `retired: true` so its number and meaning cannot come back with another sense.
 * - `status` follows RFC 9110: 401 when credentials are missing or not valid (with WWW-Authenticate),
 *   403 when the caller is known but not allowed, 404/405 for routing, 413, 415, 429, 5xx for
 *   upstream and gateway failures.
 * - `layer` is who produced the cause: the client's request, the gateway's policy, the upstream.
 * - `proxyStatus` is the RFC 9209 error type put in the `Proxy-Status` header.
 * - `remediation` is a template: `{name}` is filled from the decision's evidence, so the fix names
 *   the key, scope or limit involved. A placeholder missing from evidence is left as its name.
 *
 * Config-time problems are not here: they are `{ path, message }` issues (src/config/validate.ts,
 * src/config/compile.ts), reported before a config goes live.
 */

import type { CatalogEntry } from './entry.ts';
import { API_KEY_CODES } from '../policies/api-key/codes.ts';
import { IP_RULES_CODES } from '../policies/ip-rules/codes.ts';
import { JWT_CODES } from '../policies/jwt/codes.ts';
import { BASIC_AUTH_CODES } from '../policies/basic-auth/codes.ts';
import { INTROSPECTION_CODES } from '../policies/oauth2-introspection/codes.ts';
import { SUBSCRIPTION_CODES } from '../policies/subscription/codes.ts';
import { TENANT_CODES } from '../policies/tenant/codes.ts';
import { RBAC_CODES } from '../policies/rbac/codes.ts';
import { OWNERSHIP_CODES } from '../policies/ownership/codes.ts';
import { RATE_LIMIT_CODES } from '../policies/rate-limit/codes.ts';
import { CORS_CODES } from '../policies/cors/codes.ts';
import { CSRF_CODES } from '../policies/csrf/codes.ts';
import { ORIGIN_CODES } from '../policies/origin/codes.ts';
import { CONTENT_TYPE_CODES } from '../policies/content-type/codes.ts';
import { REQUIRED_HEADERS_CODES } from '../policies/required-headers/codes.ts';
import { OPENAPI_CODES } from '../policies/openapi-validate/codes.ts';
import { AI_LIMITS_CODES } from '../policies/ai-limits/codes.ts';
import { AI_GUARDRAILS_CODES } from '../policies/ai-guardrails/codes.ts';
import { AI_CODES } from '../ai/codes.ts';

export type { CatalogEntry, Layer, ProxyErrorType } from './entry.ts';

/** Codes the gateway core produces: routing, body limits, HTTP framing, upstreams, itself. */
const CORE_CODES = {
  ROUTE_NOT_FOUND: {
    status: 404,
    title: 'No route matches this request',
    layer: 'client',
    retryable: false,
    proxyStatus: 'destination_not_found',
    remediation:
      'Check the URL: path, letter case and trailing slash must match a configured route. Nearest routes: {nearest}.',
  },
  METHOD_NOT_ALLOWED: {
    status: 405,
    title: 'The route does not accept this method',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation: 'Send one of the methods this path accepts: {allow}.',
  },
  BODY_TOO_LARGE: {
    status: 413,
    title: 'The request body is larger than this route accepts',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_body_size_exceeded',
    remediation: 'Send at most {limit_bytes} bytes (received {received_bytes}).',
  },
  REQUEST_MALFORMED: {
    status: 400,
    title: 'The request is not valid HTTP',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_error',
    remediation: 'Fix the request framing or headers: {reason}.',
  },
  REQUEST_HEADERS_TOO_LARGE: {
    status: 431,
    title: 'The request headers are too large',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_error',
    remediation: 'Send smaller headers (large cookies are the usual cause); the limit is Node’s header size limit.',
  },
  REQUEST_TIMEOUT: {
    status: 408,
    title: 'The request was not received in time',
    layer: 'client',
    retryable: true,
    proxyStatus: 'http_request_error',
    remediation: 'Send the whole request (headers and body) within the gateway’s request timeout.',
  },
  REQUEST_PATH_INVALID: {
    status: 400,
    title: 'The request path contains dot-segments',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_error',
    remediation: 'Send the path without "." or ".." segments (RFC 3986 §5.2.4 removes them before a request is sent): {path}.',
  },
  REQUEST_HEADER_DUPLICATED: {
    status: 400,
    title: 'A header that must appear once was sent more than once',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_error',
    remediation: 'Send the {header} header once; two copies could be read differently by the gateway and the upstream.',
  },
  UPSTREAM_CONNECT_REFUSED: {
    status: 502,
    title: 'The upstream refused the connection',
    layer: 'upstream',
    retryable: true,
    proxyStatus: 'connection_refused',
    remediation: 'Upstream {upstream} target {target} is not listening; start it or fix its address.',
  },
  UPSTREAM_CONNECT_TIMEOUT: {
    status: 504,
    title: 'Connecting to the upstream timed out',
    layer: 'upstream',
    retryable: true,
    proxyStatus: 'connection_timeout',
    remediation:
      'Upstream {upstream} target {target} did not accept a connection within {timeout_ms} ms; check the network path and the target.',
  },
  UPSTREAM_RESET: {
    status: 502,
    title: 'The upstream closed the connection before answering',
    layer: 'upstream',
    retryable: true,
    proxyStatus: 'connection_terminated',
    remediation: 'Upstream {upstream} target {target} dropped the connection; check its logs for crashes or limits.',
  },
  UPSTREAM_RESPONSE_TIMEOUT: {
    status: 504,
    title: 'The upstream did not answer in time',
    layer: 'upstream',
    retryable: true,
    proxyStatus: 'http_response_timeout',
    remediation:
      'Upstream {upstream} target {target} sent no response within {timeout_ms} ms; make it faster or raise timeouts.response_ms.',
  },
  UPSTREAM_DNS_FAILED: {
    status: 502,
    title: 'The upstream host name could not be resolved',
    layer: 'upstream',
    retryable: true,
    proxyStatus: 'dns_error',
    remediation: 'Host of upstream {upstream} target {target} does not resolve; fix the target URL or DNS.',
  },
  UPSTREAM_PROTOCOL_ERROR: {
    status: 502,
    title: 'The upstream sent an invalid HTTP response',
    layer: 'upstream',
    retryable: false,
    proxyStatus: 'http_protocol_error',
    remediation: 'Upstream {upstream} target {target} answered with malformed HTTP: {reason}.',
  },
  UPSTREAM_NO_HEALTHY_TARGET: {
    status: 503,
    title: 'No healthy upstream target is available',
    layer: 'upstream',
    retryable: true,
    proxyStatus: 'destination_unavailable',
    remediation:
      'Every target of upstream {upstream} failed recently and is resting until {retry_at}; fix the targets or add healthy ones.',
  },
  GATEWAY_INTERNAL_ERROR: {
    status: 500,
    title: 'The gateway failed while handling the request',
    layer: 'gateway',
    retryable: true,
    proxyStatus: 'proxy_internal_error',
    remediation: 'This is a gateway fault, not the client’s; report request id {request_id} to the operator.',
  },
  GATEWAY_SHUTTING_DOWN: {
    status: 503,
    title: 'The gateway is shutting down',
    layer: 'gateway',
    retryable: true,
    proxyStatus: 'destination_unavailable',
    remediation: 'Retry the request; another gateway instance will take it.',
  },
  CLIENT_CLOSED_REQUEST: {
    status: 499,
    title: 'The client closed the connection before the response was sent',
    layer: 'client',
    retryable: true,
    proxyStatus: 'connection_terminated',
    remediation: 'Nothing was denied: the client went away. Raise the client timeout if it gave up too early.',
  },
  REQUEST_PATH_NOT_CANONICAL: {
    status: 400,
    title: 'The request path has a form the gateway and the upstream could read differently',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_error',
    remediation:
      'Send the path in plain form: {reason}. Routes are matched on the path as sent, and an upstream that decodes %2F, treats \\ as /, drops ;parameters or merges // could serve another route ({path}).',
  },
  TRANSFER_CODING_UNSUPPORTED: {
    status: 501,
    title: 'The request uses a transfer coding the gateway does not implement',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_error',
    remediation: 'Send the body with Transfer-Encoding: chunked only, or with a Content-Length (received Transfer-Encoding: {transfer_encoding}; RFC 9112 §6.1).',
  },
  UPGRADE_NOT_SUPPORTED: {
    status: 400,
    title: 'This route does not take protocol upgrades',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation: 'Send the request without Upgrade ({upgrade}): only routes with an upstream tunnel WebSocket; route {route} is a {kind} route.',
  },
  AUTH_CREDENTIAL_REPEATED: {
    status: 400,
    title: 'A credential was sent more than once',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_error',
    remediation: 'Send {location} once: with two values, the gateway could check one and the upstream read the other.',
  },
} as const satisfies Record<string, CatalogEntry>;

/**
 * The one catalog. Policy folders keep their own codes (src/policies/<type>/codes.ts) next to the
 * code that emits them; they are merged here. A spread would let one section silently replace
 * another's code, so the merge refuses duplicates at load.
 */
const SECTIONS = [CORE_CODES, API_KEY_CODES, IP_RULES_CODES, JWT_CODES, BASIC_AUTH_CODES, INTROSPECTION_CODES, SUBSCRIPTION_CODES, TENANT_CODES, RBAC_CODES, OWNERSHIP_CODES, RATE_LIMIT_CODES, CORS_CODES, CSRF_CODES, ORIGIN_CODES, CONTENT_TYPE_CODES, REQUIRED_HEADERS_CODES, OPENAPI_CODES, AI_LIMITS_CODES, AI_GUARDRAILS_CODES, AI_CODES] as const;

export const CATALOG = {
  ...CORE_CODES,
  ...API_KEY_CODES,
  ...IP_RULES_CODES,
  ...JWT_CODES,
  ...BASIC_AUTH_CODES,
  ...INTROSPECTION_CODES,
  ...SUBSCRIPTION_CODES,
  ...TENANT_CODES,
  ...RBAC_CODES,
  ...OWNERSHIP_CODES,
  ...RATE_LIMIT_CODES,
  ...CORS_CODES,
  ...CSRF_CODES,
  ...ORIGIN_CODES,
  ...CONTENT_TYPE_CODES,
  ...REQUIRED_HEADERS_CODES,
  ...OPENAPI_CODES,
  ...AI_LIMITS_CODES,
  ...AI_GUARDRAILS_CODES,
  ...AI_CODES,
} as const satisfies Record<string, CatalogEntry>;

{
  const seen = new Set<string>();
  for (const section of SECTIONS) {
    for (const code of Object.keys(section)) {
      if (seen.has(code)) throw new Error(`catalog: code ${code} is defined twice`);
      seen.add(code);
    }
  }
}

export type Code = keyof typeof CATALOG;

export const CODES = Object.keys(CATALOG) as Code[];

export function isCode(value: string): value is Code {
  return Object.hasOwn(CATALOG, value);
}

/** Fills `{name}` placeholders from evidence; arrays are joined, missing names are kept visible. */
export function renderTemplate(template: string, values: Readonly<Record<string, unknown>>): string {
  return template.replace(/\{([a-z_]+)\}/g, (whole, name: string) => {
    const v = Object.hasOwn(values, name) ? values[name] : undefined;
    if (v === undefined || v === null) return whole;
    if (Array.isArray(v)) return v.map(String).join(', ');
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
    return JSON.stringify(v);
  });
}

/** The anchor of a code in docs/errors.md (GitHub-style heading slug). */
export function docsAnchor(code: Code): string {
  return code.toLowerCase();
}
