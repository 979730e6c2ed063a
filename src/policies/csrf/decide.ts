/**
 * Pure decision for `csrf`. The cookie is parsed with the `cookie` package (jshttp, RFC 6265
 * §4.2.1 / §5.4 syntax), not by hand. Tokens are compared in constant time and never leave this
 * function: evidence holds names and lengths only.
 *
 * WebSocket handshakes are checked whatever their method (cross-site WebSocket hijacking: a GET
 * that a cross-site page can send with the user's cookies, with no CORS check, and then use). A
 * browser cannot add a header to a handshake (the WebSocket API takes no headers), so neither mode
 * can ever pass a browser's: for a handshake that carries ambient credentials, the proof is its
 * Origin instead, which the browser always sends (RFC 6455 §4.1 item 8) and page script cannot
 * set. It must be on the request's own host; the policy has no origin list, and a page on another
 * host that must connect needs an `origin` policy instead of this one on that route. A handshake
 * without Origin is not a browser's: the mode's own check applies, which such a client can meet.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { parseCookie } from 'cookie';
import type { Decision, DecisionContext, Evidence } from '../../pipeline/types.ts';
import { headerValue, isWebSocketHandshake } from '../origin/origins.ts';

export interface CsrfCompiled {
  readonly mode: 'double-submit' | 'header';
  readonly cookieName: string;
  /** Lower-cased header that carries the token (double-submit). */
  readonly headerName: string;
  /** Lower-cased header that must be present (header mode). */
  readonly requiredHeader: string;
  readonly methods: ReadonlySet<string>;
  readonly onlyWithCookies: boolean;
}

/** Cookie names listed in evidence, at most; names are not secrets, values are never listed. */
const MAX_COOKIE_NAMES = 20;

/**
 * Constant-time equality that also hides the length: both sides are hashed to 32 bytes first,
 * since timingSafeEqual itself requires equal lengths.
 */
export function tokensEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

export function decideCsrf(c: CsrfCompiled, ctx: DecisionContext): Decision {
  const { method, headers } = ctx.facts;
  const handshake = isWebSocketHandshake(headers);
  if (!c.methods.has(method) && !handshake) return { outcome: 'skip', rule: `${method} is not checked` };
  // Node joins repeated Cookie headers with "; " (RFC 9113 §8.2.3 for HTTP/2 does the same).
  const cookieHeader = headerValue(headers, 'cookie');
  // Browsers also attach cached HTTP Basic credentials to cross-site requests on their own, so a
  // Basic Authorization header is ambient authority just like a cookie.
  const ambientBasic = /^basic[ \t]/i.test(headerValue(headers, 'authorization') ?? '');
  if (c.onlyWithCookies && cookieHeader === undefined && !ambientBasic) return { outcome: 'skip', rule: 'no cookie or Basic credentials: not CSRF-prone' };
  if (handshake) {
    const origin = headerValue(headers, 'origin');
    if (origin !== undefined) return decideHandshake(method, origin, ctx.facts.host);
  }

  if (c.mode === 'header') {
    if (headerValue(headers, c.requiredHeader) !== undefined) return { outcome: 'allow', rule: `header ${c.requiredHeader} present` };
    return {
      outcome: 'deny',
      code: 'CSRF_HEADER_MISSING',
      rule: `no ${c.requiredHeader} header`,
      evidence: { method, header_name: c.requiredHeader, cookie_present: cookieHeader !== undefined },
    };
  }

  // The first cookie of a name wins (the `cookie` package keeps the first; browsers list the most
  // specific path first, RFC 6265 §5.4). Values are percent-decoded, as page script reading
  // document.cookie with a standard helper would send them.
  const cookies = cookieHeader === undefined ? {} : parseCookie(cookieHeader);
  const cookieToken = cookies[c.cookieName];
  const headerToken = headerValue(headers, c.headerName);
  const names: Evidence = { method, cookie_name: c.cookieName, header_name: c.headerName };

  if (cookieToken === undefined || cookieToken === '') {
    const sent = Object.keys(cookies);
    return {
      outcome: 'deny',
      code: 'CSRF_COOKIE_MISSING',
      rule: `no ${c.cookieName} cookie`,
      evidence: {
        ...names,
        cookie_names: sent.length === 0 ? ['(none)'] : sent.slice(0, MAX_COOKIE_NAMES),
        header_present: headerToken !== undefined,
      },
    };
  }
  if (headerToken === undefined) {
    return { outcome: 'deny', code: 'CSRF_TOKEN_MISSING', rule: `no ${c.headerName} header`, evidence: names };
  }
  if (!tokensEqual(headerToken, cookieToken)) {
    return {
      outcome: 'deny',
      code: 'CSRF_TOKEN_MISMATCH',
      rule: `${c.headerName} does not match cookie ${c.cookieName}`,
      evidence: { ...names, header_length: headerToken.length, cookie_length: cookieToken.length },
    };
  }
  return { outcome: 'allow', rule: `${c.headerName} matches cookie ${c.cookieName}`, evidence: { cookie_name: c.cookieName, header_name: c.headerName } };
}

/** The host of an Origin value, or undefined for an opaque ("null") or malformed one. */
function originHost(origin: string): string | undefined {
  try {
    return new URL(origin).hostname;
  } catch {
    return undefined;
  }
}

/**
 * A browser's WebSocket handshake carrying ambient credentials: its Origin must be on the
 * request's own host. Scheme and port are not compared: the cookies a handshake carries are
 * shared by every scheme and port of a host (RFC 6265 §8.5), and the gateway may sit behind a
 * TLS terminator, so it does not know the scheme the page saw.
 */
function decideHandshake(method: string, origin: string, host: string): Decision {
  const why = `${method} with Upgrade: websocket: a browser cannot add the token to a handshake, so its Origin must be on this host`;
  if (host !== '' && originHost(origin) === host) return { outcome: 'allow', rule: `${why}; origin ${origin} is`, evidence: { origin, source: 'origin' } };
  return {
    outcome: 'deny',
    code: 'CSRF_HANDSHAKE_CROSS_SITE',
    rule: `${why}; origin ${origin} is not`,
    evidence: { method, origin, host: host === '' ? '(no Host header)' : host },
  };
}
