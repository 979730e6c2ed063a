/**
 * SSRF guard for provider calls. A provider call carries the provider key, so a base_url (or a
 * DNS answer) pointing at an internal address would hand that key, and a request the gateway
 * makes, to an internal service. Addresses refused unless the provider sets
 * allow_private_network: loopback, RFC 1918 private, RFC 6598 shared, link-local (incl. the cloud
 * metadata address 169.254.169.254), RFC 4193 unique-local, unspecified, and IPv4-mapped forms.
 *
 * The check runs on the address actually connected to (undici `connect.lookup`), so a hostname
 * that resolves to 10.0.0.1 is refused as surely as the literal, and DNS rebinding between check
 * and connect is not possible.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import { firstMatch, parseCidr, type Cidr } from '../net/cidr.ts';

const BLOCKED: readonly Cidr[] = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '::/128',
  '::1/128',
  'fc00::/7',
  'fe80::/10',
  'fd00:ec2::254/128',
].map((c) => parseCidr(c) as Cidr);

/** Error code carried by a refused connection; the AI handler maps it to AI_PROVIDER_BLOCKED. */
export const SSRF_BLOCKED = 'PINPOINT_SSRF_BLOCKED';

export function isPrivateAddress(address: string): boolean {
  let a = address;
  // IPv4-mapped IPv6 (::ffff:10.0.0.1) is the IPv4 address as far as routing goes.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (mapped !== null) a = mapped[1] as string;
  if (isIP(a) === 0) return false;
  return firstMatch(BLOCKED, a) !== undefined;
}

export class BlockedAddressError extends Error {
  readonly code = SSRF_BLOCKED;
  readonly address: string;
  constructor(host: string, address: string) {
    super(`${host} resolves to ${address}, a private or metadata address`);
    this.name = 'BlockedAddressError';
    this.address = address;
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A `net.connect` lookup that refuses private answers. */
export function guardedLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err !== null) {
      callback(err, '');
      return;
    }
    const list: LookupAddress[] = addresses;
    const bad = list.find((x) => isPrivateAddress(x.address));
    if (bad !== undefined) {
      callback(new BlockedAddressError(hostname, bad.address), '');
      return;
    }
    if (options.all === true) callback(null, list);
    else {
      const first = list[0];
      if (first === undefined) {
        callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), '');
        return;
      }
      callback(null, first.address, first.family);
    }
  });
}
