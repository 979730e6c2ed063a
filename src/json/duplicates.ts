/**
 * Finds a repeated member name in a JSON text. JSON.parse keeps the last of `{"a":1,"a":2}`, other
 * parsers keep the first (RFC 8259 §4 leaves it open), so a gateway that checks one value may pass
 * the other to the upstream. I-JSON (RFC 7493 §2.3) forbids duplicates; policies that read bodies
 * refuse them. Call only on text JSON.parse accepted.
 *
 * It runs on every JSON body a validating policy reads, so it is written for speed: strings are
 * skipped with indexOf (native) rather than a character loop, a key is decoded with JSON.parse only
 * when it holds an escape, and the JSON pointer is built only when a duplicate is found.
 *
 * @returns the JSON pointer of the first duplicate member, or undefined.
 */

/** An open object (keys set) or array (keys undefined), with its current member name or index. */
interface Frame {
  readonly parent: Frame | undefined;
  readonly keys: Set<string> | undefined;
  key: string;
  index: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;

const escape = (k: string): string => k.replace(/~/g, '~0').replace(/\//g, '~1');

/** The index of the quote closing the string that opens at `open`. */
function closingQuote(text: string, open: number): number {
  let j = text.indexOf('"', open + 1);
  for (;;) {
    // A quote preceded by an odd run of backslashes is escaped.
    let b = j - 1;
    while (text.charCodeAt(b) === BACKSLASH) b--;
    if ((j - 1 - b) % 2 === 0) return j;
    j = text.indexOf('"', j + 1);
  }
}

function pointer(frame: Frame, last: string): string {
  const segments = [escape(last)];
  for (let f = frame.parent; f !== undefined; f = f.parent) segments.push(f.keys === undefined ? String(f.index) : escape(f.key));
  return `/${segments.reverse().join('/')}`;
}

export function duplicateMember(text: string): string | undefined {
  let top: Frame | undefined;
  let expectKey = false;
  const n = text.length;
  let i = 0;
  while (i < n) {
    const ch = text.charCodeAt(i);
    if (ch === QUOTE) {
      const j = closingQuote(text, i);
      if (expectKey && top?.keys !== undefined) {
        const raw = text.slice(i + 1, j);
        const key = raw.includes('\\') ? (JSON.parse(text.slice(i, j + 1)) as string) : raw;
        if (top.keys.has(key)) return pointer(top, key);
        top.keys.add(key);
        top.key = key;
        expectKey = false;
      }
      i = j + 1;
      continue;
    }
    if (ch === OPEN_OBJECT) {
      top = { parent: top, keys: new Set(), key: '', index: 0 };
      expectKey = true;
    } else if (ch === OPEN_ARRAY) {
      top = { parent: top, keys: undefined, key: '', index: 0 };
    } else if (ch === CLOSE_OBJECT || ch === CLOSE_ARRAY) {
      top = top?.parent;
    } else if (ch === COMMA && top !== undefined) {
      if (top.keys !== undefined) expectKey = true;
      else top.index++;
    }
    i++;
  }
  return undefined;
}
