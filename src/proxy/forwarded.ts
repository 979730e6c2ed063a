/**
 * Who is the client, and what the upstream is told about it.
 *
 * Client IP: the socket peer, unless the peer is a trusted proxy, in which case the
 * X-Forwarded-For (or RFC 7239 Forwarded) chain is walked from the right, skipping trusted hops;
 * the first untrusted hop is the client. Entries added by anyone else are spoofable and ignored.
 *
 * Upstream headers: X-Forwarded-For/-Proto/-Host, X-Real-IP and Forwarded are (re)written so the
 * upstream sees the real client (denial cause 25: forwarding headers lost). A chain from an
 * untrusted peer is replaced, not extended, so a client cannot plant addresses upstream.
 */
import { isIP } from 'node:net';
import { firstMatch, normaliseIp, type Cidr } from '../net/cidr.ts';

export interface ClientAddress {
  readonly ip: string;
  readonly source: 'socket' | 'x-forwarded-for' | 'forwarded';
  /** Whether the socket peer is a trusted proxy (its forwarding headers are believed). */
  readonly peerTrusted: boolean;
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}

/** Extracts `for=` node addresses from an RFC 7239 Forwarded header, in order. */
export function parseForwardedFor(value: string): string[] {
  const out: string[] = [];
  for (const element of value.split(',')) {
    for (const pair of element.split(';')) {
      const eq = pair.indexOf('=');
      if (eq === -1 || pair.slice(0, eq).trim().toLowerCase() !== 'for') continue;
      let v = pair.slice(eq + 1).trim();
      if (v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
      // "[2001:db8::1]:4711" or "192.0.2.43:47011" → address only (RFC 7239 §6).
      if (v.startsWith('[')) v = v.slice(1, v.indexOf(']'));
      else if (v.split(':').length === 2) v = v.slice(0, v.indexOf(':'));
      out.push(v);
    }
  }
  return out;
}

function walk(chain: readonly string[], trusted: readonly Cidr[]): string | undefined {
  for (let i = chain.length - 1; i >= 0; i--) {
    const ip = normaliseIp((chain[i] as string).trim());
    if (isIP(ip) === 0) return undefined; // garbage in the chain: stop believing it
    if (firstMatch(trusted, ip) === undefined) return ip;
  }
  // Every hop trusted: the leftmost is the origin.
  const first = chain[0]?.trim();
  return first !== undefined && isIP(normaliseIp(first)) !== 0 ? normaliseIp(first) : undefined;
}

/**
 * @param via the one header the trusted proxies write. Only that one is read: proxies append to
 *   their own header but pass the other through untouched, so reading both would let a client
 *   choose its address by sending the header the proxy does not manage.
 */
export function clientAddress(
  remote: string | undefined,
  headers: Readonly<Record<string, string | string[] | undefined>>,
  trusted: readonly Cidr[],
  via: 'x-forwarded-for' | 'forwarded' = 'x-forwarded-for',
): ClientAddress {
  const peer = normaliseIp(remote ?? '');
  if (trusted.length === 0 || firstMatch(trusted, peer) === undefined) return { ip: peer, source: 'socket', peerTrusted: false };
  if (via === 'forwarded') {
    const fwd = headerValue(headers.forwarded);
    const ip = fwd === undefined ? undefined : walk(parseForwardedFor(fwd), trusted);
    if (ip !== undefined) return { ip, source: 'forwarded', peerTrusted: true };
  } else {
    const xff = headerValue(headers['x-forwarded-for']);
    const ip = xff === undefined ? undefined : walk(xff.split(','), trusted);
    if (ip !== undefined) return { ip, source: 'x-forwarded-for', peerTrusted: true };
  }
  return { ip: peer, source: 'socket', peerTrusted: true };
}

function forwardedNode(ip: string): string {
  return isIP(ip) === 6 ? `"[${ip}]"` : ip;
}

/**
 * Appends the forwarding headers to `out` (a raw header list going upstream).
 * `proto` is the scheme the client used to reach us; `host` the Host it asked for.
 */
export function appendForwardingHeaders(
  out: string[],
  incoming: Readonly<Record<string, string | string[] | undefined>>,
  peer: string,
  client: ClientAddress,
  proto: string,
  host: string,
): void {
  const peerIp = normaliseIp(peer);
  const trusted = client.peerTrusted;
  const prevXff = trusted ? headerValue(incoming['x-forwarded-for']) : undefined;
  const prevProto = trusted ? headerValue(incoming['x-forwarded-proto']) : undefined;
  const prevHost = trusted ? headerValue(incoming['x-forwarded-host']) : undefined;
  const prevFwd = trusted ? headerValue(incoming.forwarded) : undefined;
  const element = `for=${forwardedNode(peerIp)};proto=${proto};host="${host.replace(/["\\]/g, '')}"`;
  out.push(
    'x-forwarded-for',
    prevXff !== undefined && prevXff !== '' ? `${prevXff}, ${peerIp}` : peerIp,
    'x-forwarded-proto',
    prevProto ?? proto,
    'x-forwarded-host',
    prevHost ?? host,
    'x-real-ip',
    client.ip,
    'forwarded',
    prevFwd !== undefined && prevFwd !== '' ? `${prevFwd}, ${element}` : element,
  );
}

/** The same headers as an object (lower-case keys), for callers that build objects. */
export function setForwardingHeaders(
  out: Record<string, string | string[]>,
  incoming: Readonly<Record<string, string | string[] | undefined>>,
  peer: string,
  client: ClientAddress,
  proto: string,
  host: string,
): void {
  const list: string[] = [];
  appendForwardingHeaders(list, incoming, peer, client, proto, host);
  for (let i = 0; i < list.length; i += 2) out[list[i] as string] = list[i + 1] as string;
}
