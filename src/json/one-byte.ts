/**
 * One-byte copies of a parsed document's strings.
 *
 * V8 keeps the text of a file with any character above U+00FF (a `≥` or `—` in a YAML comment, a
 * name in another script) as a two-byte string, and a substring of 13 or more characters as a
 * slice of it: two-byte as well, whatever its characters, and holding the whole file text alive.
 * Ids, types and rules from config go into every trace and call-log row, and one two-byte string
 * turns `JSON.stringify` of the whole trace into two-byte output, which SQLite then converts from
 * UTF-16 (seen in profiles of the benchmark's chain, whose config carried one `≥` in a comment:
 * V8's `ChangeEncoding` on every logged request). So documents are normalised once, when they load.
 *
 * Object keys cannot be fixed this way: a key is looked up in V8's string table, which already
 * holds the parser's two-byte copy. Config maps whose keys become ids (policies, upstreams, AI
 * providers and models) are read with {@link idEntries}, which copies each key as it leaves the map.
 */

const LATIN1 = /^[\u0000-\u00ff]*$/;

/** A one-byte copy of `s` when every character fits in Latin-1, else `s` itself. */
export function oneByte(s: string): string {
  return LATIN1.test(s) ? Buffer.from(s, 'latin1').toString('latin1') : s;
}

/**
 * `value` with every string value in it (not object keys) replaced, in place, by its
 * {@link oneByte} copy. Shared and cyclic references (YAML aliases) are visited once.
 */
export function oneByteStrings<T>(value: T): T {
  return visit(value, new Set()) as T;
}

function visit(v: unknown, seen: Set<object>): unknown {
  if (typeof v === 'string') return oneByte(v);
  if (v === null || typeof v !== 'object' || seen.has(v)) return v;
  seen.add(v);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = visit(v[i], seen);
    return v;
  }
  const proto = Object.getPrototypeOf(v) as unknown;
  if (proto !== Object.prototype && proto !== null) return v;
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) o[k] = visit(o[k], seen);
  return v;
}

/** `Object.entries(o)` with every key a {@link oneByte} copy: for config maps whose keys are ids. */
export function idEntries<V>(o: Readonly<Record<string, V>>): [string, V][] {
  return Object.entries(o).map(([k, v]) => [oneByte(k), v]);
}
