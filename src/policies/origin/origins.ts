/**
 * Origin lists shared by `origin` and `cors`: exact origins (`https://app.example.com`) and two
 * kinds of pattern, compiled once per config load into a set lookup plus a few anchored regexes.
 *
 * What a browser sends in `Origin` is the ASCII serialization of an origin (HTML
 * #ascii-serialisation-of-an-origin, Fetch #origin-header): `scheme "://" host [":" port]`, lower-case host (IDNA: punycode), no default port, no
 * path, no trailing slash, or the literal `null` for opaque origins. Config entries are normalised
 * to that form so that `https://App.Example.com:443/` still matches; anything that could never
 * equal a serialized origin (a path, a query, a missing scheme) is a config error naming the entry,
 * because it would silently never match.
 *
 * Patterns:
 * - `https://*.example.com` — exactly one DNS label in place of `*` (like route hosts in
 *   src/routing/router.ts): it matches `https://a.example.com`, not `https://example.com` nor
 *   `https://a.b.example.com`. One label keeps a pattern from reaching further than its author meant.
 * - `http://localhost:*` — any port, including none (the scheme's default).
 * - `*` (only where the caller allows it: `cors` without credentials) — every origin.
 */
import type { ConfigIssue } from '../../pipeline/types.ts';

export interface OriginMatcher {
  /** True when the list is `*`: every origin, including `null`. */
  readonly any: boolean;
  /** The config entry that admits `origin`, or undefined. `origin` is a raw Origin header value. */
  match(origin: string): string | undefined;
  /** The entries as configured, for evidence. */
  readonly entries: readonly string[];
}

export interface OriginListOptions {
  /** Whether `*` is accepted (cors without credentials); otherwise it is a config error. */
  readonly allowStar: boolean;
  /** What `*` is refused for, when it is refused (completes the error message). */
  readonly starRefusal?: string;
}

/** Default ports of the special schemes (WHATWG URL #default-port): the serialized origin omits them. */
const DEFAULT_PORT: Readonly<Record<string, string>> = { http: '80', https: '443', ws: '80', wss: '443', ftp: '21' };

const SCHEME = /^[a-z][a-z0-9+.-]*$/;

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Result of parsing one entry: an exact serialized origin, or a regex. */
type Parsed = { readonly exact: string } | { readonly pattern: RegExp } | { readonly error: string };

/** Parses one configured origin or pattern; exported for the tests. */
export function parseOriginEntry(text: string): Parsed {
  const raw = text.trim();
  if (raw === 'null') {
    // Opaque origins (sandboxed iframes, data: and file: documents, cross-origin redirects) all
    // serialize as "null": any site can produce one, so allowing it allows everyone.
    return { error: '"null" is the origin of sandboxed iframes, data: and file: documents; any site can send it, so it cannot be allowed' };
  }
  const sep = raw.indexOf('://');
  if (sep === -1) return { error: `"${text}" has no scheme: an origin is written like https://${raw.replace(/\/+$/, '')}` };
  const scheme = raw.slice(0, sep).toLowerCase();
  if (!SCHEME.test(scheme)) return { error: `"${text}" has an invalid scheme "${raw.slice(0, sep)}"` };
  let rest = raw.slice(sep + 3);
  // A single trailing slash is a common slip ("https://app.example.com/"); browsers never send it,
  // so it is dropped rather than left to never match.
  if (rest.endsWith('/')) rest = rest.slice(0, -1);
  if (/[/?#]/.test(rest)) return { error: `"${text}" has a path, query or fragment; an origin is only scheme://host[:port]` };
  if (rest.includes('@')) return { error: `"${text}" has user info; an origin is only scheme://host[:port]` };

  let port: string | undefined;
  const portMatch = /:(\d+|\*)$/.exec(rest);
  // "[::1]" ends with "]" and has no port; "[::1]:8080" ends with a port after the bracket.
  if (portMatch !== null && (!rest.startsWith('[') || rest.lastIndexOf(']') < portMatch.index)) {
    port = portMatch[1];
    rest = rest.slice(0, portMatch.index);
  }
  const wildHost = rest.startsWith('*.');
  const host = wildHost ? rest.slice(2) : rest;
  if (host.includes('*')) return { error: `"${text}": "*" is only allowed as the whole first label (https://*.example.com) or as the port (http://localhost:*)` };
  if (host === '') return { error: `"${text}" has no host` };
  if (port !== undefined && port !== '*' && (Number(port) > 65535 || port.length > 5)) return { error: `"${text}" has an invalid port ${port}` };

  // Let the WHATWG URL parser validate and normalise the host (case, IDNA → punycode, IPv6).
  // A wildcard host is checked as "x.<suffix>" and the "x" is taken off again.
  let hostname: string;
  try {
    const probe = new URL(`${scheme}://${wildHost ? `x.${host}` : host}`);
    hostname = probe.hostname.toLowerCase();
    if (hostname === '' || probe.pathname.length > 1) return { error: `"${text}" is not a valid origin` };
  } catch {
    return { error: `"${text}" is not a valid origin` };
  }
  if (wildHost) hostname = hostname.slice(2);

  const explicitPort = port === undefined || port === '*' || port === DEFAULT_PORT[scheme] ? '' : `:${String(Number(port))}`;
  if (!wildHost && port !== '*') return { exact: `${scheme}://${hostname}${explicitPort}` };
  const hostRe = wildHost ? `[a-z0-9_-]+\\.${escapeRegex(hostname)}` : escapeRegex(hostname);
  const portRe = port === '*' ? '(?::\\d{1,5})?' : escapeRegex(explicitPort);
  return { pattern: new RegExp(`^${escapeRegex(scheme)}://${hostRe}${portRe}$`) };
}

/**
 * Compiles a configured origin list; pushes one issue per bad entry at `${path}[i]`.
 * @example compileOrigins(['https://app.example.com', 'https://*.example.com'], 'policies.o.config.allowed_origins', issues, { allowStar: false })
 */
export function compileOrigins(list: readonly string[], path: string, issues: ConfigIssue[], opts: OriginListOptions): OriginMatcher {
  const exact = new Map<string, string>();
  const patterns: { re: RegExp; text: string }[] = [];
  let any = false;
  list.forEach((text, i) => {
    if (text.trim() === '*') {
      if (opts.allowStar) any = true;
      else issues.push({ path: `${path}[${i}]`, message: `"*" is not allowed here: ${opts.starRefusal ?? 'list the origins, or use patterns such as https://*.example.com'}` });
      return;
    }
    const p = parseOriginEntry(text);
    if ('error' in p) issues.push({ path: `${path}[${i}]`, message: p.error });
    else if ('exact' in p) {
      if (!exact.has(p.exact)) exact.set(p.exact, text);
    } else patterns.push({ re: p.pattern, text });
  });
  const entries = Object.freeze([...list]);
  return Object.freeze({
    any,
    entries,
    match(origin: string): string | undefined {
      if (any) return '*';
      // Browsers already send the lower-case serialization; other clients may not.
      const o = origin.toLowerCase();
      const hit = exact.get(o);
      if (hit !== undefined) return hit;
      for (const p of patterns) if (p.re.test(o)) return p.text;
      return undefined;
    },
  });
}

/** A header's single value; a repeated header (array) yields its first value, '' counts as absent. */
export function headerValue(headers: Readonly<Record<string, string | string[] | undefined>>, name: string): string | undefined {
  const v = headers[name];
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined || s === '' ? undefined : s;
}

/**
 * Whether the request is a WebSocket opening handshake (RFC 6455 §4.1: a GET with
 * `Upgrade: websocket`). Browsers open WebSockets cross-site with the site's cookies and no CORS
 * check, so a handshake is a state-changing request whatever its method (cross-site WebSocket
 * hijacking); they always send Origin on it (RFC 6455 §4.1 item 8, §10.2). Page script cannot
 * set Upgrade (Fetch #forbidden-request-header), so another Upgrade value (h2c from curl) is
 * never a browser's and is left alone. Upgrade lists protocols as name[/version] (RFC 9110 §7.8).
 */
export function isWebSocketHandshake(headers: Readonly<Record<string, string | string[] | undefined>>): boolean {
  const upgrade = headerValue(headers, 'upgrade');
  if (upgrade === undefined) return false;
  for (const p of upgrade.split(',')) {
    const name = p.trim();
    const slash = name.indexOf('/');
    if ((slash === -1 ? name : name.slice(0, slash)).toLowerCase() === 'websocket') return true;
  }
  return false;
}
