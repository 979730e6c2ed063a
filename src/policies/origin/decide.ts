/**
 * Pure decision for `origin`: is the page that sent this state-changing request one of ours?
 * The Origin header is set by the browser and cannot be forged by page script (Fetch
 * #forbidden-request-header), so a cross-site form or fetch carries the attacker's origin.
 *
 * A WebSocket handshake is checked whatever its method and whatever `methods` lists: it is a GET,
 * but a cross-site page can open one with the user's cookies and no CORS check, then read and
 * send on the socket (cross-site WebSocket hijacking; RFC 6455 §10.2 leaves the Origin check to
 * the server). Browsers always send Origin on it, so checking it refuses no normal navigation.
 */
import type { Decision, DecisionContext } from '../../pipeline/types.ts';
import { headerValue, isWebSocketHandshake, type OriginMatcher } from './origins.ts';

export interface OriginCompiled {
  readonly allowed: OriginMatcher;
  readonly methods: ReadonlySet<string>;
  readonly refererFallback: boolean;
  readonly allowMissing: boolean;
}

/**
 * The origin of a Referer value, or undefined when it has none a page could have (an invalid URL,
 * about:blank, data:): such a Referer tells nothing about who sent the request. Only the origin is
 * ever kept: the path and query of a Referer can carry tokens.
 */
export function refererOrigin(referer: string): string | undefined {
  let url: URL;
  try {
    url = new URL(referer);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  return url.origin;
}

export function decideOrigin(c: OriginCompiled, ctx: DecisionContext): Decision {
  const { method, headers } = ctx.facts;
  // Said in every rule of a handshake whose method is not listed, so that a trace shows why a GET
  // was checked at all.
  let why = '';
  if (!c.methods.has(method)) {
    if (!isWebSocketHandshake(headers)) return { outcome: 'skip', rule: `${method} is not checked` };
    why = ` (${method} with Upgrade: websocket: handshakes are always checked)`;
  }
  const allowedOrigins = c.allowed.entries;

  const origin = headerValue(headers, 'origin');
  if (origin !== undefined) {
    // "null" (opaque origin) is never in the compiled list, so it lands on ORIGIN_NOT_ALLOWED.
    const hit = c.allowed.match(origin);
    if (hit !== undefined) return { outcome: 'allow', rule: `origin ${hit}${why}`, evidence: { origin, source: 'origin' } };
    return {
      outcome: 'deny',
      code: 'ORIGIN_NOT_ALLOWED',
      rule: `origin ${origin} not allowed${why}`,
      evidence: { method, origin, allowed_origins: allowedOrigins },
    };
  }

  const referer = headerValue(headers, 'referer');
  const fromReferer = c.refererFallback && referer !== undefined ? refererOrigin(referer) : undefined;
  if (fromReferer !== undefined) {
    const hit = c.allowed.match(fromReferer);
    if (hit !== undefined) return { outcome: 'allow', rule: `referer origin ${hit}${why}`, evidence: { referer_origin: fromReferer, source: 'referer' } };
    return {
      outcome: 'deny',
      code: 'ORIGIN_REFERER_NOT_ALLOWED',
      rule: `no Origin; referer origin ${fromReferer} not allowed${why}`,
      evidence: { method, referer_origin: fromReferer, allowed_origins: allowedOrigins },
    };
  }

  if (c.allowMissing) return { outcome: 'allow', rule: `no Origin or usable Referer; allow_missing${why}`, evidence: { source: 'none' } };
  return {
    outcome: 'deny',
    code: 'ORIGIN_MISSING',
    rule: `no Origin and no usable Referer${why}`,
    evidence: {
      method,
      // Tells "no Referer at all" (Referrer-Policy: no-referrer, non-browser client) from "a
      // Referer we could not use" or "fallback switched off", without echoing the Referer itself.
      referer: referer === undefined ? 'absent' : c.refererFallback ? 'unusable' : 'ignored (allow_referer_fallback: false)',
    },
  };
}
