/**
 * Finds a repeated member name in a JSON text. JSON.parse keeps the last of `{"a":1,"a":2}`, other
 * parsers keep the first (RFC 8259 §4 leaves it open), so a gateway that checks one value may pass
 * the other to the upstream. I-JSON (RFC 7493 §2.3) forbids duplicates; policies that read bodies
 * refuse them. Call only on text JSON.parse accepted.
 *
 * @returns the JSON pointer of the first duplicate member, or undefined.
 */
export function duplicateMember(text: string): string | undefined {
  type Frame = { readonly kind: 'object'; readonly keys: Set<string>; key: string | undefined; readonly path: string } | { readonly kind: 'array'; index: number; readonly path: string };
  const stack: Frame[] = [];
  const escape = (k: string): string => k.replace(/~/g, '~0').replace(/\//g, '~1');
  const childPath = (): string => {
    const top = stack[stack.length - 1];
    if (top === undefined) return '';
    return top.kind === 'object' ? `${top.path}/${escape(top.key ?? '')}` : `${top.path}/${top.index}`;
  };
  let i = 0;
  let expectKey = false;
  while (i < text.length) {
    const ch = text[i] as string;
    if (ch === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        const top = stack[stack.length - 1];
        if (top?.kind === 'object') {
          if (top.keys.has(key)) return `${top.path}/${escape(key)}`;
          top.keys.add(key);
          top.key = key;
        }
        expectKey = false;
      }
      i = j + 1;
      continue;
    }
    if (ch === '{') {
      stack.push({ kind: 'object', keys: new Set(), key: undefined, path: childPath() });
      expectKey = true;
    } else if (ch === '[') {
      stack.push({ kind: 'array', index: 0, path: childPath() });
    } else if (ch === '}' || ch === ']') {
      stack.pop();
    } else if (ch === ',') {
      const top = stack[stack.length - 1];
      if (top?.kind === 'object') expectKey = true;
      else if (top?.kind === 'array') top.index++;
    }
    i++;
  }
  return undefined;
}
