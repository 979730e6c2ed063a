/**
 * CIDR parsing and matching on Node's `net.BlockList` (IPv4 and IPv6, no hand-written bit math).
 * IPv4-mapped IPv6 addresses (::ffff:192.0.2.1, how a dual-stack socket reports IPv4 clients)
 * are normalised to IPv4 so that an IPv4 rule matches them.
 */
import { BlockList, isIP } from 'node:net';

export interface Cidr {
  /** As written in config, for traces and denials. */
  readonly text: string;
  readonly list: BlockList;
}

/** Parses `10.0.0.0/8`, `2001:db8::/32` or a single address; returns an error message or the rule. */
export function parseCidr(text: string): Cidr | string {
  const slash = text.indexOf('/');
  const addr = slash === -1 ? text : text.slice(0, slash);
  const family = isIP(addr);
  if (family === 0) return `"${text}" is not an IP address or CIDR`;
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) return `"${text}" has an invalid prefix length (0-${max})`;
    prefix = Number(p);
  }
  const list = new BlockList();
  list.addSubnet(addr, prefix, family === 4 ? 'ipv4' : 'ipv6');
  return { text, list };
}

export function normaliseIp(ip: string): string {
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}

export function ipFamily(ip: string): 'ipv4' | 'ipv6' | undefined {
  const f = isIP(ip);
  return f === 4 ? 'ipv4' : f === 6 ? 'ipv6' : undefined;
}

/** The first rule containing `ip`, or undefined. `ip` must already be normalised. */
export function firstMatch(rules: readonly Cidr[], ip: string): Cidr | undefined {
  const family = ipFamily(ip);
  if (family === undefined) return undefined;
  for (const r of rules) if (r.list.check(ip, family)) return r;
  return undefined;
}

/**
 * The /64 network of an IPv6 address (`2001:db8:1:2::/64`), the address itself for IPv4. One
 * subscriber usually holds a whole /64 (RFC 6177), so per-address counting of IPv6 clients would
 * let one host rotate through 2^64 addresses.
 */
export function ipBucket(ip: string): string {
  if (isIP(ip) !== 6) return ip;
  const [head = '', tail] = ip.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  // An embedded IPv4 tail (::ffff:1.2.3.4) takes two groups; it never reaches the first four.
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => (g === '' ? '0' : g.toLowerCase().replace(/^0+(?=.)/, '')))
    .join(':')}::/64`;
}
