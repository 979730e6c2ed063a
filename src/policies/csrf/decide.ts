/**
 * Pure decision for `csrf`. The cookie is parsed with the `cookie` package (jshttp, RFC 6265
 * §4.2.1 / §5.4 syntax), not by hand. Tokens are compared in constant time and never leave this
 * function: evidence holds names and lengths only.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { parseCookie } from 'cookie';
import type { Decision, DecisionContext, Evidence } from '../../pipeline/types.ts';
import { headerValue } from '../origin/origins.ts';

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
  if (!c.methods.has(method)) return { outcome: 'skip', rule: `${method} is not checked` };
  // Node joins repeated Cookie headers with "; " (RFC 9113 §8.2.3 for HTTP/2 does the same).
  const cookieHeader = headerValue(headers, 'cookie');
  // Browsers also attach cached HTTP Basic credentials to cross-site requests on their own, so a
  // Basic Authorization header is ambient authority just like a cookie.
  const ambientBasic = /^basic[ \t]/i.test(headerValue(headers, 'authorization') ?? '');
  if (c.onlyWithCookies && cookieHeader === undefined && !ambientBasic) return { outcome: 'skip', rule: 'no cookie or Basic credentials: not CSRF-prone' };

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
