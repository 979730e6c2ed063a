/**
 * A fixed set of header field names, matched case-insensitively without lower-casing the name.
 * Field names are case-insensitive (RFC 9110 §5.1) and arrive in whatever case the peer wrote, and
 * the proxy path checks every name of every request and response against a few such sets
 * (hop-by-hop fields, single-value fields, the fields the gateway rewrites): `toLowerCase()` per
 * check made a string per name, and a `Set` of them per request. Here names are bucketed by length,
 * so most are ruled out by length alone, and the rest are compared character by character.
 */
export class HeaderNames {
  /** The names, lower-case, in the order given (index() answers positions in this list). */
  readonly names: readonly string[];
  /** Positions in `names` by name length. */
  readonly #byLength: (number[] | undefined)[] = [];

  constructor(names: Iterable<string>) {
    const list: string[] = [];
    for (const n of names) {
      const lower = n.toLowerCase();
      if (!list.includes(lower)) list.push(lower);
    }
    this.names = list;
    list.forEach((n, i) => (this.#byLength[n.length] ??= []).push(i));
  }

  /** The position of `name` (any case) in `names`, or -1. */
  index(name: string): number {
    const bucket = this.#byLength[name.length];
    if (bucket === undefined) return -1;
    for (const i of bucket) if (sameIgnoringCase(name, this.names[i] as string)) return i;
    return -1;
  }

  /** The set's lower-case spelling of `name`, or undefined when it is not in the set. */
  find(name: string): string | undefined {
    const i = this.index(name);
    return i === -1 ? undefined : this.names[i];
  }

  has(name: string): boolean {
    return this.index(name) !== -1;
  }
}

/** Whether `name` begins with `lowerPrefix` (lower-case) in any case, as RFC 9110 §5.1 compares field names. */
export function startsWithIgnoringCase(name: string, lowerPrefix: string): boolean {
  return name.length >= lowerPrefix.length && sameIgnoringCase(name, lowerPrefix);
}

/**
 * Whether `name` is `lower` in any case, over `lower`'s length; `lower` is lower-case and no longer than `name`. Only ASCII
 * letters fold (RFC 9110 §5.1 compares field names case-insensitively, and a field name is a token
 * of ASCII characters, §5.6.2), so a character equals its counterpart or is its upper-case letter.
 */
function sameIgnoringCase(name: string, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    const c = name.charCodeAt(i);
    const l = lower.charCodeAt(i);
    if (c !== l && (c !== l - 0x20 || l < 0x61 || l > 0x7a)) return false;
  }
  return true;
}
