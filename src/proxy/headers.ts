/**
 * Header lists for the proxy path, built from raw (flat name/value) arrays so that nothing is parsed
 * into objects and serialised again. Hop-by-hop fields (RFC 9110 §7.6.1) — Connection, the fields
 * it lists, and the classic set — apply to one connection only and are never forwarded.
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

/** Lengths of the hop-by-hop names: most headers are ruled out without lower-casing them. */
const HOP_LENGTHS = new Set([...HOP_BY_HOP].map((h) => h.length));

const lengthCache = new WeakMap<ReadonlySet<string>, ReadonlySet<number>>();
function lengthsOf(names: ReadonlySet<string>): ReadonlySet<number> {
  let l = lengthCache.get(names);
  if (l === undefined) {
    l = new Set([...names].map((n) => n.length));
    lengthCache.set(names, l);
  }
  return l;
}

function connectionTokens(value: string | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  let out: Set<string> | undefined;
  for (const t of value.split(',')) {
    const n = t.trim().toLowerCase();
    if (n === '' || n === 'close' || n === 'keep-alive') continue;
    (out ??= new Set()).add(n);
  }
  return out;
}

/**
 * End-to-end fields of a raw header list (`[name, value, name, value, …]`, as
 * `IncomingMessage.rawHeaders`), leaving out hop-by-hop fields and the lower-case names in `skip`.
 */
export function endToEndRaw(raw: readonly string[], connection: string | undefined, skip?: ReadonlySet<string>): string[] {
  const listed = connectionTokens(connection);
  const skipLengths = skip === undefined ? undefined : lengthsOf(skip);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (listed !== undefined || HOP_LENGTHS.has(name.length) || (skipLengths !== undefined && skipLengths.has(name.length))) {
      const lower = name.toLowerCase();
      if (HOP_BY_HOP.has(lower) || listed?.has(lower) === true || skip?.has(lower) === true) continue;
    }
    out.push(name, raw[i + 1] as string);
  }
  return out;
}

/** Same for a response's raw headers as undici hands them over (Buffers), in one pass. */
export function endToEndResponse(raw: readonly (Buffer | string)[]): string[] {
  const out: string[] = [];
  let listed: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1');
    if (HOP_LENGTHS.has(name.length)) {
      const lower = name.toLowerCase();
      if (HOP_BY_HOP.has(lower)) {
        if (lower === 'connection') listed = connectionTokens(raw[i + 1]!.toString('latin1'));
        continue;
      }
    }
    out.push(name, raw[i + 1]!.toString('latin1'));
  }
  if (listed === undefined) return out;
  // Rare: the upstream named extra hop-by-hop fields in Connection; drop them too.
  const kept: string[] = [];
  for (let i = 0; i < out.length; i += 2) if (!listed.has(out[i]!.toLowerCase())) kept.push(out[i]!, out[i + 1]!);
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
    if (v === undefined || HOP_BY_HOP.has(name)) continue;
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
const SINGLETONS = new Set(['authorization', 'proxy-authorization', 'content-type', 'content-length', 'host', 'referer', 'origin']);
const SINGLETON_LENGTHS = new Set([...SINGLETONS].map((h) => h.length));

/** The first singleton field that appears more than once, or undefined. */
export function duplicatedSingleton(raw: readonly string[]): string | undefined {
  let seen: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (!SINGLETON_LENGTHS.has(name.length)) continue;
    const lower = name.toLowerCase();
    if (!SINGLETONS.has(lower)) continue;
    if (seen?.has(lower) === true) return lower;
    (seen ??= new Set()).add(lower);
  }
  return undefined;
}
