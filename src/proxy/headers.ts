/**
 * Header lists for the proxy path, built from raw (flat name/value) arrays so that nothing is parsed
 * into objects and serialised again. Hop-by-hop fields (RFC 9110 §7.6.1) — Connection, the fields
 * it lists, and the classic set — apply to one connection only and are never forwarded.
 */
import { HeaderNames } from './header-names.ts';

const HOP = new HeaderNames([
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

/** The fields a Connection header lists (RFC 9110 §7.6.1), `close` and `keep-alive` aside; undefined when none. */
function connectionTokens(value: string | undefined): HeaderNames | undefined {
  // The usual values name no field: spare them the split.
  if (value === undefined || value === 'keep-alive' || value === 'close' || value === 'Keep-Alive' || value === 'Close') return undefined;
  const out: string[] = [];
  for (const t of value.split(',')) {
    const n = t.trim().toLowerCase();
    if (n !== '' && n !== 'close' && n !== 'keep-alive') out.push(n);
  }
  return out.length === 0 ? undefined : new HeaderNames(out);
}

/**
 * End-to-end fields of a raw header list (`[name, value, name, value, …]`, as
 * `IncomingMessage.rawHeaders`), leaving out hop-by-hop fields and the lower-case names in `skip`.
 */
export function endToEndRaw(raw: readonly string[], connection: string | undefined, skip?: HeaderNames): string[] {
  const listed = connectionTokens(connection);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (HOP.has(name) || listed?.has(name) === true || skip?.has(name) === true) continue;
    out.push(name, raw[i + 1] as string);
  }
  return out;
}

/** Same for a response's raw headers as undici hands them over (Buffers), in one pass. */
export function endToEndResponse(raw: readonly (Buffer | string)[]): string[] {
  const out: string[] = [];
  let listed: HeaderNames | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1');
    const hop = HOP.find(name);
    if (hop !== undefined) {
      if (hop === 'connection') listed = connectionTokens(raw[i + 1]!.toString('latin1'));
      continue;
    }
    out.push(name, raw[i + 1]!.toString('latin1'));
  }
  if (listed === undefined) return out;
  // Rare: the upstream named extra hop-by-hop fields in Connection; drop them too.
  const kept: string[] = [];
  for (let i = 0; i < out.length; i += 2) if (!listed.has(out[i]!)) kept.push(out[i]!, out[i + 1]!);
  return kept;
}

/** Copies end-to-end headers of a header object (lower-case keys), for tests and tools. */
export function endToEnd(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  skip?: ReadonlySet<string>,
): Record<string, string | string[]> {
  const c = headers.connection;
  const listed = connectionTokens(Array.isArray(c) ? c.join(',') : c);
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined || HOP.has(name)) continue;
    if (listed?.has(name) === true || skip?.has(name) === true) continue;
    out[name] = v;
  }
  return out;
}

/**
 * Fields that must appear once and that the gateway decides on. Node keeps only the first copy of
 * these in `req.headers` (what policies read) while the raw list sent upstream would carry every
 * copy: a second Authorization could then reach an upstream that reads the last one unchecked.
 * Such a request is refused (RFC 9110 §5.3: a field not defined as a list must not be repeated).
 */
const SINGLETONS = new HeaderNames(['authorization', 'proxy-authorization', 'content-type', 'content-length', 'host', 'referer', 'origin']);

/** The first singleton field that appears more than once (lower-case), or undefined. */
export function duplicatedSingleton(raw: readonly string[]): string | undefined {
  let seen = 0; // one bit per position in SINGLETONS.names
  for (let i = 0; i < raw.length; i += 2) {
    const at = SINGLETONS.index(raw[i] as string);
    if (at === -1) continue;
    if ((seen & (1 << at)) !== 0) return SINGLETONS.names[at];
    seen |= 1 << at;
  }
  return undefined;
}
