/**
 * Pure decision for `cors`, following the CORS protocol of the Fetch standard
 * (https://fetch.spec.whatwg.org/#http-cors-protocol; anchors below are on that page):
 *
 * - No `Origin`, or a page of the gateway's own host → not a CORS request. Nothing to grant, but
 *   the response still carries `Vary: Origin` (or, for a `*` policy, the static headers): see
 *   #cors-protocol-and-http-caches. That is why this is an allow with headers, not a skip.
 * - Preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`, #http-requests): answered
 *   by the gateway itself. Allowed → 204 with the Access-Control-Allow-* headers. Refused → a
 *   denial (403) with one code per missing allowance and NO Access-Control-Allow-* header: the
 *   browser turns any preflight without the allowance into a network error whatever its status
 *   (#cors-preflight-fetch), so the status is for the call log and `explain`, which
 *   name the origin, method or header names that were missing.
 * - Actual request from an allowed origin → allow, with Access-Control-Allow-Origin (and
 *   credentials / expose headers) added to whatever response follows, a gateway denial included,
 *   so page script can read a 401/403 problem body.
 * - Actual request from any other origin → allow WITHOUT the headers. CORS is enforced by the
 *   browser, which will hide the response from the page; refusing here would only break
 *   non-browser clients that happen to send Origin. The trace says the response is unreadable.
 */
import type { Decision, DecisionContext } from '../../pipeline/types.ts';
import { headerValue, type OriginMatcher } from '../origin/origins.ts';

export interface CorsCompiled {
  readonly origins: OriginMatcher;
  /** allow_methods exactly as configured (Fetch compares methods case-sensitively). */
  readonly methods: ReadonlySet<string>;
  readonly anyMethod: boolean;
  /** allow_headers lower-cased (header names compare case-insensitively). */
  readonly headers: ReadonlySet<string>;
  readonly anyHeader: boolean;
  /** Config texts, for evidence. */
  readonly allowedMethods: readonly string[];
  readonly allowedHeaders: readonly string[];
  /** Preflight response headers that do not depend on the request. */
  readonly preflightStatic: Readonly<Record<string, string>>;
  /** Actual-response headers that do not depend on the request. */
  readonly actualStatic: Readonly<Record<string, string>>;
  /**
   * Headers for responses that get no allowance (no Origin, same host, origin not allowed):
   * `Vary: Origin` when Access-Control-Allow-Origin depends on the request; for a `*` policy the
   * full static set, which #cors-protocol-and-http-caches asks to send on every response.
   */
  readonly noGrant: Readonly<Record<string, string>>;
}

/** CORS-safelisted methods (#cors-safelisted-method): a browser accepts them without Access-Control-Allow-Methods. */
const SAFELISTED_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST']);

const DEFAULT_PORT: Readonly<Record<string, string>> = { http: '80', https: '443' };

/**
 * Whether `origin` names the host the request was sent to. The scheme the client used is not
 * known here, so only host and port are compared; a false "same" only withholds CORS headers,
 * which can never grant a page more than the allow list does.
 */
export function sameHost(origin: string, hostHeader: string | undefined): boolean {
  if (hostHeader === undefined) return false;
  const i = origin.indexOf('://');
  if (i === -1) return false;
  const authority = origin.slice(i + 3).toLowerCase();
  const host = hostHeader.toLowerCase();
  if (authority === host) return true;
  const port = DEFAULT_PORT[origin.slice(0, i).toLowerCase()];
  return port !== undefined && host === `${authority}:${port}`;
}

/** `Access-Control-Request-Headers`: a comma-separated list of lower-case names (#http-requests). */
function requestedHeaders(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== '');
}

export function decideCors(c: CorsCompiled, ctx: DecisionContext): Decision {
  const { method, headers } = ctx.facts;
  const origin = headerValue(headers, 'origin');
  if (origin === undefined) return { outcome: 'allow', rule: 'no Origin: not a CORS request', responseHeaders: c.noGrant };

  const requestedMethod = method === 'OPTIONS' ? headerValue(headers, 'access-control-request-method') : undefined;
  const preflight = requestedMethod !== undefined;
  const hit = c.origins.match(origin);

  if (hit === undefined) {
    // A listed origin always gets its headers, so this only catches pages of the gateway's own host.
    if (sameHost(origin, headerValue(headers, 'host'))) return { outcome: 'allow', rule: 'same-origin request', evidence: { origin }, responseHeaders: c.noGrant };
    if (preflight) {
      return {
        outcome: 'deny',
        code: 'CORS_PREFLIGHT_ORIGIN_NOT_ALLOWED',
        rule: `preflight from ${origin}: origin not allowed`,
        evidence: { origin, method: requestedMethod, allowed_origins: c.origins.entries },
      };
    }
    return {
      outcome: 'allow',
      rule: 'origin not allowed: response will be unreadable in the browser',
      evidence: { origin, allowed_origins: c.origins.entries },
      // Vary: Origin only, so a cache does not hand this header-less response to an allowed
      // origin (#cors-protocol-and-http-caches). It grants nothing.
      responseHeaders: c.noGrant,
    };
  }

  // `*` is static (and only ever configured without credentials): no Vary needed.
  const allowOrigin: Record<string, string> = c.origins.any ? { 'access-control-allow-origin': '*' } : { 'access-control-allow-origin': origin, vary: 'Origin' };

  if (!preflight) {
    return {
      outcome: 'allow',
      rule: `origin ${hit}`,
      evidence: { origin },
      responseHeaders: { ...allowOrigin, ...c.actualStatic },
    };
  }

  // #cors-preflight-fetch: a method passes if listed, safelisted, or `*` was sent (never with credentials).
  if (!(c.methods.has(requestedMethod) || SAFELISTED_METHODS.has(requestedMethod) || c.anyMethod)) {
    return {
      outcome: 'deny',
      code: 'CORS_PREFLIGHT_METHOD_NOT_ALLOWED',
      rule: `preflight from ${origin}: method ${requestedMethod} not allowed`,
      evidence: { origin, method: requestedMethod, allowed_methods: c.allowedMethods },
    };
  }

  // #cors-preflight-fetch: each requested name must be listed; `*` covers every name but Authorization.
  const requested = requestedHeaders(headerValue(headers, 'access-control-request-headers'));
  const notAllowed = requested.filter((h) => !(c.headers.has(h) || (c.anyHeader && h !== 'authorization')));
  if (notAllowed.length > 0) {
    return {
      outcome: 'deny',
      code: 'CORS_PREFLIGHT_HEADERS_NOT_ALLOWED',
      rule: `preflight from ${origin}: headers ${notAllowed.join(', ')} not allowed`,
      evidence: { origin, method: requestedMethod, headers_not_allowed: notAllowed, allowed_headers: c.allowedHeaders },
    };
  }

  return {
    outcome: 'allow',
    rule: `preflight from ${hit}`,
    evidence: { origin, method: requestedMethod, request_headers: requested },
    respond: { status: 204, headers: { ...allowOrigin, ...c.preflightStatic } },
  };
}
