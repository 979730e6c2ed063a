/**
 * Media types (RFC 9110 §8.3.1) and the patterns a route accepts. Shared by `content-type` and
 * `openapi-validate` (whose requestBody `content` keys are media ranges).
 *
 * Type, subtype and parameter names are case-insensitive (RFC 9110 §8.3.1, §5.6.6); parameter
 * values are not, except `charset`, whose names are case-insensitive (RFC 9110 §8.3.2).
 */
import type { RequestFacts } from '../../pipeline/types.ts';

/** RFC 9110 §5.6.2 token. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export interface MediaType {
  /** Lower-cased type, e.g. `application`. */
  readonly type: string;
  /** Lower-cased subtype, e.g. `vnd.api+json`. */
  readonly subtype: string;
  /** `type/subtype`, lower-cased, without parameters (the Fetch standard's "essence"). */
  readonly essence: string;
  /** Parameters, names lower-cased, quoted values unquoted. */
  readonly params: ReadonlyMap<string, string>;
}

/** Parses a Content-Type value; undefined when it is not `type/subtype *( ; name=value )`. */
export function parseMediaType(value: string): MediaType | undefined {
  const semi = value.indexOf(';');
  const essence = (semi === -1 ? value : value.slice(0, semi)).trim();
  const slash = essence.indexOf('/');
  if (slash === -1) return undefined;
  const type = essence.slice(0, slash).toLowerCase();
  const subtype = essence.slice(slash + 1).toLowerCase();
  if (!TOKEN.test(type) || !TOKEN.test(subtype)) return undefined;
  const params = new Map<string, string>();
  if (semi !== -1) {
    const rest = parseParams(value.slice(semi));
    if (rest === undefined) return undefined;
    for (const [k, v] of rest) if (!params.has(k)) params.set(k, v);
  }
  return { type, subtype, essence: `${type}/${subtype}`, params };
}

/** `*( OWS ";" OWS [ name "=" ( token / quoted-string ) ] )` (RFC 9110 §5.6.6). */
function parseParams(s: string): [string, string][] | undefined {
  const out: [string, string][] = [];
  let i = 0;
  while (i < s.length) {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
    if (i >= s.length) break;
    if (s[i] !== ';') return undefined;
    i++;
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
    if (i >= s.length || s[i] === ';') continue; // empty parameter: allowed by the grammar
    const eq = s.indexOf('=', i);
    if (eq === -1) return undefined;
    const name = s.slice(i, eq).toLowerCase();
    if (!TOKEN.test(name)) return undefined;
    i = eq + 1;
    let val = '';
    if (s[i] === '"') {
      i++;
      while (i < s.length && s[i] !== '"') {
        if (s[i] === '\\' && i + 1 < s.length) i++;
        val += s[i];
        i++;
      }
      if (s[i] !== '"') return undefined;
      i++;
    } else {
      const start = i;
      while (i < s.length && s[i] !== ';' && s[i] !== ' ' && s[i] !== '\t') i++;
      val = s.slice(start, i);
      if (!TOKEN.test(val)) return undefined;
    }
    out.push([name, val]);
  }
  return out;
}

/**
 * A media-type pattern a route accepts: `type/subtype`, `type/*`, `*\/*`, or a structured syntax
 * suffix wildcard `type/*+suffix` (RFC 6839), e.g. `application/*+json` for `application/vnd.api+json`.
 */
export interface MediaPattern {
  /** As written in config (or in the OpenAPI `content` map). */
  readonly text: string;
  /** Lower-cased; `*` for any. */
  readonly type: string;
  /** Lower-cased; `*` for any. */
  readonly subtype: string;
  /** Lower-cased suffix without `+` when the pattern is `type/*+suffix`. */
  readonly suffix: string | undefined;
  /** Higher is more specific: exact 3, suffix 2, `type/*` 1, `*\/*` 0 (RFC 9110 §12.5.1 precedence). */
  readonly specificity: number;
}

/** Parses a pattern; a string is the reason it is not one. Parameters are reported, not dropped. */
export function parseMediaPattern(text: string): MediaPattern | string {
  const mt = parseMediaType(text);
  if (mt === undefined) return `"${text}" is not a media type (expected type/subtype, type/*, */* or type/*+suffix)`;
  if (mt.params.size > 0) return `"${text}" has parameters; patterns match type/subtype only (use charsets for a charset rule)`;
  if (mt.type === '*' && mt.subtype !== '*') return `"${text}": a wildcard type needs a wildcard subtype (*/*)`;
  if (mt.subtype === '*') return { text, type: mt.type, subtype: '*', suffix: undefined, specificity: mt.type === '*' ? 0 : 1 };
  if (mt.subtype.startsWith('*+')) {
    const suffix = mt.subtype.slice(2);
    if (suffix === '' || suffix.includes('*') || suffix.includes('+')) return `"${text}": the suffix after "*+" must be one name, e.g. application/*+json`;
    return { text, type: mt.type, subtype: mt.subtype, suffix, specificity: 2 };
  }
  if (mt.subtype.includes('*')) return `"${text}": "*" is allowed only as the whole subtype or as "*+suffix"`;
  return { text, type: mt.type, subtype: mt.subtype, suffix: undefined, specificity: 3 };
}

export function matchesPattern(p: MediaPattern, mt: MediaType): boolean {
  if (p.type !== '*' && p.type !== mt.type) return false;
  if (p.subtype === '*') return true;
  if (p.suffix !== undefined) {
    const plus = mt.subtype.lastIndexOf('+');
    return plus > 0 && mt.subtype.slice(plus + 1) === p.suffix;
  }
  return p.subtype === mt.subtype;
}

/** The most specific pattern that matches, or undefined. */
export function bestMatch<P extends MediaPattern>(patterns: readonly P[], mt: MediaType): P | undefined {
  let best: P | undefined;
  for (const p of patterns) if (matchesPattern(p, mt) && (best === undefined || p.specificity > best.specificity)) best = p;
  return best;
}

/** True for `application/json`, `*\/*+json` (RFC 6839 §3.1) — the bodies parsed as JSON. */
export function isJsonMediaType(mt: Pick<MediaType, 'type' | 'subtype'>): boolean {
  return (mt.type === 'application' && mt.subtype === 'json') || mt.subtype.endsWith('+json');
}

/**
 * Whether the request carries content (RFC 9112 §6.3): Transfer-Encoding means a body of unknown
 * length; otherwise Content-Length decides; neither means no body.
 */
export function hasBody(facts: RequestFacts): boolean {
  if (facts.headers['transfer-encoding'] !== undefined) return true;
  return facts.contentLength !== undefined && facts.contentLength > 0;
}

/** The first value of a header (Node joins most repeated headers; a few stay arrays). */
export function headerValue(facts: RequestFacts, name: string): string | undefined {
  const v = facts.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Cuts client-supplied text put into evidence, so a huge header does not bloat logs. */
export function clip(s: string, max = 100): string {
  return s.length <= max ? s : `${s.slice(0, max)}…`;
}
