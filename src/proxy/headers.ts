/**
 * Hop-by-hop header handling (RFC 9110 §7.6.1): Connection and the fields it lists, plus the
 * classic hop-by-hop set, apply to one connection only and are never forwarded.
 */

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

function connectionTokens(v: string | string[] | undefined): Set<string> | undefined {
  if (v === undefined) return undefined;
  const s = Array.isArray(v) ? v.join(',') : v;
  const out = new Set<string>();
  for (const t of s.split(',')) {
    const n = t.trim().toLowerCase();
    if (n !== '' && n !== 'close' && n !== 'keep-alive') out.add(n);
  }
  return out.size > 0 ? out : undefined;
}

/** Copies end-to-end headers; `skip` names extra fields to leave out (lower-case). */
export function endToEnd(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  skip?: ReadonlySet<string>,
): Record<string, string | string[]> {
  const listed = connectionTokens(headers.connection);
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined || HOP_BY_HOP.has(name)) continue;
    if (listed?.has(name) === true || skip?.has(name) === true) continue;
    out[name] = v;
  }
  return out;
}
