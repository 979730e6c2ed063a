/**
 * The checks every request goes through before its policies, in one place for live traffic
 * (src/server/gateway.ts) and dry runs (src/diagnose/diagnose.ts): dot-segment paths, repeated
 * single-value headers, then the route match. A denial carries the trace entry, the evidence and
 * the headers the answer needs, so both callers report exactly the same thing.
 */
import type { CompiledConfig, CompiledRoute } from '../config/compile.ts';
import type { Config } from '../config/schema.ts';
import type { Code } from '../errors/catalog.ts';
import type { Digests } from '../credentials/digests.ts';
import type { Evidence, RequestFacts, TraceEntry } from '../pipeline/types.ts';
import type { ClientAddress } from '../proxy/forwarded.ts';
import { duplicatedSingleton } from '../proxy/headers.ts';

/** `.` or `..` segments, plain or percent-encoded: "/public/../admin" matches /public/* here but an
 * upstream that normalises it may serve /admin. A segment also ends at a backslash, an encoded
 * slash or a `;` (servlet containers read "/x/..;/admin" as "/admin"), whatever request_paths
 * allows, so no setting lets a dot-segment through. */
const DOT_SEGMENT = /(?:^|\/|\\|%2f|%5c)(?:\.|%2e){1,2}(?:\/|\\|;|%2f|%5c|%3b|$)/i;

/**
 * The path forms a config's `request_paths` refuses, as one pattern (undefined: all allowed).
 * The same idea as Spring Security's StrictHttpFirewall and Envoy's
 * `path_with_escaped_slashes_action: REJECT_REQUEST`: a route is matched on the path as sent, and
 * a form an upstream reads as another path (RFC 3986 §2.2: %2F is data, not a delimiter, yet many
 * servers decode it) would let a request reach a route's upstream past another route's policies.
 */
export function pathFormPattern(p: Config['request_paths']): RegExp | undefined {
  const parts: string[] = [];
  if (!p.allow_encoded_slashes) parts.push('%2f', '%5c');
  if (!p.allow_backslashes) parts.push('\\\\');
  if (!p.allow_semicolons) parts.push(';', '%3b');
  if (!p.allow_empty_segments) parts.push('//');
  return parts.length === 0 ? undefined : new RegExp(parts.join('|'), 'i');
}

function pathFormReason(found: string): { reason: string; setting: string } {
  switch (found.toLowerCase()) {
    case '%2f':
    case '%5c':
      return { reason: `an encoded slash (${found})`, setting: 'request_paths.allow_encoded_slashes' };
    case '\\':
      return { reason: 'a backslash', setting: 'request_paths.allow_backslashes' };
    case '//':
      return { reason: 'an empty segment (//)', setting: 'request_paths.allow_empty_segments' };
    default:
      return { reason: `a path parameter (${found})`, setting: 'request_paths.allow_semicolons' };
  }
}

/**
 * Whether `path` holds a character either path check needs: `.` or `%` (DOT_SEGMENT), or `%`,
 * `\\`, `;` or `//` (pathFormPattern). Most paths hold none, and one pass over them is cheaper
 * than running the two expressions on every request. Keep it in step with both: a form added
 * there without its character here would never be checked (the REQUEST_PATH_* tests of each form
 * in test/e2e/request-forms.test.ts fail then).
 */
function mayBeUncanonical(path: string): boolean {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x2e || c === 0x25 || c === 0x5c || c === 0x3b || (c === 0x2f && path.charCodeAt(i + 1) === 0x2f)) return true;
  }
  return false;
}

export type Admission =
  | { readonly kind: 'route'; readonly route: CompiledRoute; readonly params: Record<string, string | undefined>; readonly trace: TraceEntry }
  | {
      readonly kind: 'deny';
      readonly code: Code;
      /** 'http' for request checks, 'router' for routing. */
      readonly policy: 'http' | 'router';
      readonly rule: string;
      readonly evidence: Evidence;
      readonly headers?: Readonly<Record<string, string>>;
      readonly trace: TraceEntry;
    };

function deny(code: Code, policy: 'http' | 'router', traceRule: string, rule: string, evidence: Evidence, headers?: Readonly<Record<string, string>>): Admission {
  return {
    kind: 'deny',
    code,
    policy,
    rule,
    evidence,
    ...(headers !== undefined ? { headers } : {}),
    trace: { policy, type: policy, outcome: 'deny', rule: traceRule, code, evidence, us: 0 },
  };
}

/** `rawHeaders` is the flat name/value list (IncomingMessage.rawHeaders), or undefined when the
 * request is described by a header map that cannot repeat a name. */
export function admit(cfg: CompiledConfig, method: string, path: string, host: string, rawHeaders: readonly string[] | undefined, transferEncoding?: string | readonly string[]): Admission {
  if (transferEncoding !== undefined) {
    // RFC 9112 §6.1: a server that does not understand a transfer coding answers 501. Node
    // parses a body as chunked when chunked is last; dropping the other codings would pass the
    // upstream a body it cannot read.
    const te = typeof transferEncoding === 'string' ? transferEncoding : transferEncoding.join(', ');
    if (te.trim().toLowerCase() !== 'chunked') {
      const evidence = { transfer_encoding: te.slice(0, 100) };
      const rule = `Transfer-Encoding ${evidence.transfer_encoding} is not chunked alone`;
      return deny('TRANSFER_CODING_UNSUPPORTED', 'http', rule, rule, evidence, { connection: 'close' });
    }
  }
  if (mayBeUncanonical(path)) {
    if (DOT_SEGMENT.test(path)) {
      return deny('REQUEST_PATH_INVALID', 'http', 'dot-segment in path', 'the path contains a dot-segment', { path: path.slice(0, 200) });
    }
    const form = cfg.pathForms === undefined ? null : cfg.pathForms.exec(path);
    if (form !== null) {
      const { reason, setting } = pathFormReason(form[0]);
      return deny('REQUEST_PATH_NOT_CANONICAL', 'http', `${reason} in path`, `the path contains ${reason}`, { path: path.slice(0, 200), reason, setting });
    }
  }
  const dup = rawHeaders === undefined ? undefined : duplicatedSingleton(rawHeaders);
  if (dup !== undefined) {
    return deny('REQUEST_HEADER_DUPLICATED', 'http', `${dup} sent more than once`, `${dup} sent more than once`, { header: dup });
  }
  const m = cfg.router.match(method, path, host);
  if (m.kind === 'none') {
    return deny('ROUTE_NOT_FOUND', 'router', 'no route matches', `no route for ${method} ${path}`, { method, path, host, nearest: m.nearest.length > 0 ? m.nearest : ['(none)'] });
  }
  if (m.kind === 'method') {
    const allow = m.allow.join(', ');
    return deny('METHOD_NOT_ALLOWED', 'router', `${method} not accepted`, `${path} accepts ${allow}`, { method, path, allow: m.allow }, { allow });
  }
  return { kind: 'route', route: m.value, params: m.params, trace: m.value.routerTrace.get(m.template) as TraceEntry };
}

/** The host name of a Host header, port removed, lower-cased ([::1]:8080 → [::1]). */
/**
 * The facts policies read, built one way for live traffic, `diagnose` and impact replays, so a
 * dry run sees what enforcement sees.
 */
export function requestFacts(
  req: { readonly method: string; readonly path: string; readonly query: string; readonly host: string; readonly headers: RequestFacts['headers'] },
  params: RequestFacts['params'],
  client: ClientAddress,
  contentLength: number | undefined,
  now: number,
  digests?: Digests,
): RequestFacts {
  return {
    method: req.method,
    path: req.path,
    rawQuery: req.query,
    host: req.host,
    headers: req.headers,
    clientIp: client.ip,
    clientIpSource: client.source,
    params,
    contentLength,
    now,
    digests,
  };
}

export function hostOnly(host: string | undefined): string {
  if (host === undefined) return '';
  const end = host.startsWith('[') ? host.indexOf(']') + 1 : host.indexOf(':');
  return (end > 0 ? host.slice(0, end) : host).toLowerCase();
}

/** A request target split into path and raw query (no '?'), as live traffic and dry runs read it. */
export function splitTarget(target: string): { path: string; query: string } {
  const q = target.indexOf('?');
  return q === -1 ? { path: target, query: '' } : { path: target.slice(0, q), query: target.slice(q + 1) };
}
