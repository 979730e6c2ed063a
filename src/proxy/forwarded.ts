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

/** The header trusted proxies write (trusted_proxy_header in config). */
export type ForwardingHeader = 'x-forwarded-for' | 'forwarded';

export interface ClientAddress {
  readonly ip: string;
  readonly source: 'socket' | 'x-forwarded-for' | 'forwarded';
  /** Whether the socket peer is a trusted proxy (its forwarding headers are believed). */
  readonly peerTrusted: boolean;
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}

/**
 * The address of one forwarding-header entry: quotes, IPv6 brackets and a port dropped.
 * "[2001:db8::1]:4711" and "192.0.2.43:47011" are RFC 7239 §6 node forms; some load balancers
 * write the same ip:port forms into X-Forwarded-For, whose entries are read the same way.
 */
function nodeAddress(raw: string): string {
  let v = raw.trim();
  if (v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
  if (v.startsWith('[')) {
    const end = v.indexOf(']');
    return end > 0 ? v.slice(1, end) : v;
  }
  if (v.split(':').length === 2) return v.slice(0, v.indexOf(':'));
  return v;
}

/** One RFC 7239 forwarded-element: its for, proto and host parameters (quotes removed). */
interface ForwardedElement {
  readonly for?: string;
  readonly proto?: string;
  readonly host?: string;
}

function parseForwarded(value: string): ForwardedElement[] {
  const out: ForwardedElement[] = [];
  for (const element of value.split(',')) {
    const e: { for?: string; proto?: string; host?: string } = {};
    for (const pair of element.split(';')) {
      const eq = pair.indexOf('=');
      if (eq === -1) continue;
      const name = pair.slice(0, eq).trim().toLowerCase();
      let v = pair.slice(eq + 1).trim();
      if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1);
      if (name === 'for') e.for = nodeAddress(v);
      else if (name === 'proto') e.proto = v;
      else if (name === 'host') e.host = v;
    }
    out.push(e);
  }
  return out;
}

/** Extracts `for=` node addresses from an RFC 7239 Forwarded header, in order. */
export function parseForwardedFor(value: string): string[] {
  return parseForwarded(value).flatMap((e) => (e.for !== undefined ? [e.for] : []));
}

function walk(chain: readonly string[], trusted: readonly Cidr[]): string | undefined {
  for (let i = chain.length - 1; i >= 0; i--) {
    const ip = normaliseIp(nodeAddress(chain[i] as string));
    // Garbage where a trusted proxy wrote the client ("unknown", an obfuscated node): stop
    // believing the chain. Only a trusted hop writes that position, so a client cannot put it there.
    if (isIP(ip) === 0) return undefined;
    if (firstMatch(trusted, ip) === undefined) return ip;
  }
  // Every hop trusted: the leftmost is the origin.
  const first = chain[0] === undefined ? undefined : normaliseIp(nodeAddress(chain[0]));
  return first !== undefined && isIP(first) !== 0 ? first : undefined;
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
  via: ForwardingHeader = 'x-forwarded-for',
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

/** `ip` as a Forwarded node (RFC 7239 §6): IPv6 bracketed and quoted. `ip` is a valid address, so a colon means IPv6. */
function forwardedNode(ip: string): string {
  return ip.includes(':') ? `"[${ip}]"` : ip;
}

/** A Forwarded host= value, quoted (RFC 7239 §4), with the characters a quoted-string escapes left out. */
function quotedHost(host: string): string {
  return `"${host.includes('"') || host.includes('\\') ? host.replace(/["\\]/g, '') : host}"`;
}

/** A URI scheme (RFC 3986 §3.1), the only form a proto= parameter or X-Forwarded-Proto may take here. */
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*$/;

/** What the trusted proxies before us said, from the header they manage. */
interface Prior {
  readonly xff: string | undefined;
  readonly proto: string | undefined;
  readonly host: string | undefined;
  readonly fwd: string | undefined;
}

/** A peer that is not a trusted proxy: nothing it sent about earlier hops is passed on. */
const NOTHING_BELIEVED: Prior = Object.freeze({ xff: undefined, proto: undefined, host: undefined, fwd: undefined });

/**
 * Only the header the trusted proxies manage (`via`) is believed; the other one came from the
 * client untouched (see clientAddress) and is rebuilt from the believed one, so a client cannot
 * plant addresses, a scheme or a host upstream through the header the proxy does not manage.
 * Entries that are not addresses are left out of a rebuilt chain.
 */
function believed(incoming: Readonly<Record<string, string | string[] | undefined>>, via: ForwardingHeader): Prior {
  const addresses = (list: readonly string[]): string[] => list.map((a) => normaliseIp(nodeAddress(a))).filter((a) => isIP(a) !== 0);
  if (via === 'x-forwarded-for') {
    const xff = headerValue(incoming['x-forwarded-for']);
    const chain = xff === undefined ? [] : addresses(xff.split(','));
    // Proxies in a row may each append ("https, http"): the first is the client's own scheme.
    const sent = headerValue(incoming['x-forwarded-proto'])?.split(',')[0]?.trim();
    const proto = sent !== undefined && SCHEME.test(sent) ? sent : undefined;
    const host = headerValue(incoming['x-forwarded-host']);
    // X-Forwarded-Proto/-Host describe the client's own request, which is the first element.
    const params = `${proto !== undefined ? `;proto=${proto}` : ''}${host !== undefined ? `;host=${quotedHost(host)}` : ''}`;
    return { xff, proto, host, fwd: chain.length > 0 ? chain.map((a, i) => `for=${forwardedNode(a)}${i === 0 ? params : ''}`).join(', ') : undefined };
  }
  const fwd = headerValue(incoming.forwarded);
  const elements = fwd === undefined ? [] : parseForwarded(fwd);
  const chain = addresses(elements.flatMap((e) => (e.for !== undefined ? [e.for] : [])));
  // The leftmost element that says is the client's own request to the first proxy.
  return {
    xff: chain.length > 0 ? chain.join(', ') : undefined,
    proto: elements.find((e) => e.proto !== undefined && SCHEME.test(e.proto))?.proto,
    host: elements.find((e) => e.host !== undefined)?.host,
    fwd,
  };
}

/**
 * Appends the forwarding headers to `out` (a raw header list going upstream).
 * `proto` is the scheme the client used to reach us; `host` the Host it asked for; `via` the header
 * the trusted proxies write (trusted_proxy_header).
 */
export function appendForwardingHeaders(
  out: string[],
  incoming: Readonly<Record<string, string | string[] | undefined>>,
  peer: string,
  client: ClientAddress,
  proto: string,
  host: string,
  via: ForwardingHeader = 'x-forwarded-for',
): void {
  const peerIp = normaliseIp(peer);
  const { xff: prevXff, proto: prevProto, host: prevHost, fwd: prevFwd } = client.peerTrusted ? believed(incoming, via) : NOTHING_BELIEVED;
  const element = `for=${forwardedNode(peerIp)};proto=${proto};host=${quotedHost(host)}`;
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
  via: ForwardingHeader = 'x-forwarded-for',
): void {
  const list: string[] = [];
  appendForwardingHeaders(list, incoming, peer, client, proto, host, via);
  for (let i = 0; i < list.length; i += 2) out[list[i] as string] = list[i + 1] as string;
}
