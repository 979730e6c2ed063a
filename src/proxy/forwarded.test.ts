import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCidr, type Cidr } from '../net/cidr.ts';
import { clientAddress, parseForwardedFor, setForwardingHeaders, type ClientAddress } from './forwarded.ts';

function cidrs(...list: string[]): Cidr[] {
  return list.map((t) => {
    const c = parseCidr(t);
    if (typeof c === 'string') throw new Error(c);
    return c;
  });
}

/** The load balancers in front of the gateway: 10.0.0.0/8 and fd00::/8. */
const TRUSTED = cidrs('10.0.0.0/8', 'fd00::/8');

type Headers = Record<string, string | string[] | undefined>;

interface Case {
  readonly name: string;
  readonly peer: string | undefined;
  readonly headers: Headers;
  readonly trusted?: readonly Cidr[];
  readonly via?: 'x-forwarded-for' | 'forwarded';
  readonly expect: ClientAddress;
}

const CASES: readonly Case[] = [
  // Untrusted peers: forwarding headers are ignored.
  {
    name: 'untrusted peer: X-Forwarded-For ignored',
    peer: '203.0.113.9',
    headers: { 'x-forwarded-for': '198.51.100.7' },
    expect: { ip: '203.0.113.9', source: 'socket', peerTrusted: false },
  },
  {
    name: 'untrusted peer: Forwarded ignored',
    peer: '203.0.113.9',
    headers: { forwarded: 'for=198.51.100.7' },
    expect: { ip: '203.0.113.9', source: 'socket', peerTrusted: false },
  },
  {
    name: 'no trusted proxies configured: even a private peer is the client',
    peer: '10.0.0.1',
    headers: { 'x-forwarded-for': '198.51.100.7' },
    trusted: [],
    expect: { ip: '10.0.0.1', source: 'socket', peerTrusted: false },
  },
  {
    name: 'IPv4-mapped socket address is normalised',
    peer: '::ffff:203.0.113.9',
    headers: {},
    expect: { ip: '203.0.113.9', source: 'socket', peerTrusted: false },
  },
  { name: 'no socket address', peer: undefined, headers: {}, expect: { ip: '', source: 'socket', peerTrusted: false } },

  // Trusted peers: X-Forwarded-For walked from the right.
  {
    name: 'trusted peer, one hop',
    peer: '10.0.0.1',
    headers: { 'x-forwarded-for': '198.51.100.7' },
    expect: { ip: '198.51.100.7', source: 'x-forwarded-for', peerTrusted: true },
  },
  {
    name: 'trusted peer (mapped IPv4) is recognised',
    peer: '::ffff:10.0.0.1',
    headers: { 'x-forwarded-for': '198.51.100.7' },
    expect: { ip: '198.51.100.7', source: 'x-forwarded-for', peerTrusted: true },
  },
  {
    name: 'trusted hops on the right are skipped',
    peer: '10.0.0.1',
    headers: { 'x-forwarded-for': '198.51.100.7, 10.0.0.2, 10.0.0.3' },
    expect: { ip: '198.51.100.7', source: 'x-forwarded-for', peerTrusted: true },
  },
  {
    name: 'addresses the client planted left of its own are ignored',
    peer: '10.0.0.1',
    headers: { 'x-forwarded-for': '1.1.1.1, 6.6.6.6, 198.51.100.7, 10.0.0.2' },
    expect: { ip: '198.51.100.7', source: 'x-forwarded-for', peerTrusted: true },
  },
  {
    name: 'several X-Forwarded-For lines are one list',
    peer: '10.0.0.1',
    headers: { 'x-forwarded-for': ['6.6.6.6', '198.51.100.7,10.0.0.2'] },
    expect: { ip: '198.51.100.7', source: 'x-forwarded-for', peerTrusted: true },
  },
  {
    name: 'IPv6 client in X-Forwarded-For',
    peer: 'fd00::1',
    headers: { 'x-forwarded-for': '2001:db8::7, fd00::2' },
    expect: { ip: '2001:db8::7', source: 'x-forwarded-for', peerTrusted: true },
  },
  {
    name: 'mapped IPv4 in X-Forwarded-For is normalised',
    peer: '10.0.0.1',
    headers: { 'x-forwarded-for': '::ffff:198.51.100.7' },
    expect: { ip: '198.51.100.7', source: 'x-forwarded-for', peerTrusted: true },
  },
  {
    name: 'all hops trusted: the leftmost is the origin',
    peer: '10.0.0.1',
    headers: { 'x-forwarded-for': '10.0.0.3, 10.0.0.2' },
    expect: { ip: '10.0.0.3', source: 'x-forwarded-for', peerTrusted: true },
  },
  {
    name: 'garbage in the chain: stop believing it, use the peer',
    peer: '10.0.0.1',
    headers: { 'x-forwarded-for': '198.51.100.7, not-an-ip, 10.0.0.2' },
    expect: { ip: '10.0.0.1', source: 'socket', peerTrusted: true },
  },
  {
    name: 'garbage left of the client does not matter',
    peer: '10.0.0.1',
    headers: { 'x-forwarded-for': 'garbage, 198.51.100.7, 10.0.0.2' },
    expect: { ip: '198.51.100.7', source: 'x-forwarded-for', peerTrusted: true },
  },
  {
    name: 'empty X-Forwarded-For: the peer',
    peer: '10.0.0.1',
    headers: { 'x-forwarded-for': '' },
    expect: { ip: '10.0.0.1', source: 'socket', peerTrusted: true },
  },
  {
    name: 'trusted peer without forwarding headers: the peer',
    peer: '10.0.0.1',
    headers: {},
    expect: { ip: '10.0.0.1', source: 'socket', peerTrusted: true },
  },

  // RFC 7239 Forwarded.
  {
    name: 'Forwarded for= plain IPv4',
    peer: '10.0.0.1',
    headers: { forwarded: 'for=198.51.100.7;proto=https' },
    expect: { ip: '198.51.100.7', source: 'forwarded', peerTrusted: true },
  },
  {
    name: 'Forwarded quoted IPv6 with port',
    peer: '10.0.0.1',
    headers: { forwarded: 'for="[2001:db8:cafe::17]:4711"' },
    expect: { ip: '2001:db8:cafe::17', source: 'forwarded', peerTrusted: true },
  },
  {
    name: 'Forwarded quoted IPv6 without port',
    peer: '10.0.0.1',
    headers: { forwarded: 'for="[2001:db8:cafe::17]"' },
    expect: { ip: '2001:db8:cafe::17', source: 'forwarded', peerTrusted: true },
  },
  {
    name: 'Forwarded quoted IPv4 with port',
    peer: '10.0.0.1',
    headers: { forwarded: 'for="192.0.2.43:47011"' },
    expect: { ip: '192.0.2.43', source: 'forwarded', peerTrusted: true },
  },
  {
    name: 'Forwarded chain walked from the right, case-insensitive parameter names',
    peer: '10.0.0.1',
    headers: { forwarded: 'for=6.6.6.6, For=198.51.100.7;proto=http, for="[fd00::9]:80";by=10.0.0.1' },
    expect: { ip: '198.51.100.7', source: 'forwarded', peerTrusted: true },
  },
  {
    name: 'only the configured header is read: a client-sent Forwarded is ignored when proxies write X-Forwarded-For',
    peer: '10.0.0.1',
    via: 'x-forwarded-for',
    headers: { forwarded: 'for=198.51.100.7', 'x-forwarded-for': '198.51.100.99' },
    expect: { ip: '198.51.100.99', source: 'x-forwarded-for', peerTrusted: true },
  },
  {
    name: 'obfuscated Forwarded node (RFC 7239 §6.3): no fall back to X-Forwarded-For, the peer',
    peer: '10.0.0.1',
    headers: { forwarded: 'for=_hidden', 'x-forwarded-for': '198.51.100.7' },
    expect: { ip: '10.0.0.1', source: 'socket', peerTrusted: true },
  },
  {
    name: 'Forwarded "unknown" and no X-Forwarded-For: the peer',
    peer: '10.0.0.1',
    headers: { forwarded: 'for=unknown' },
    expect: { ip: '10.0.0.1', source: 'socket', peerTrusted: true },
  },
];

void describe('clientAddress', () => {
  for (const c of CASES) {
    void test(c.name, () => {
      const via = c.via ?? (c.headers.forwarded !== undefined ? 'forwarded' : 'x-forwarded-for');
      assert.deepEqual(clientAddress(c.peer, c.headers, c.trusted ?? TRUSTED, via), c.expect);
    });
  }
});

void describe('parseForwardedFor', () => {
  const TABLE: readonly [string, string[]][] = [
    ['for=192.0.2.60;proto=http;by=203.0.113.43', ['192.0.2.60']],
    ['for=192.0.2.43, for=198.51.100.17', ['192.0.2.43', '198.51.100.17']],
    ['for="[2001:db8:cafe::17]:4711"', ['2001:db8:cafe::17']],
    ['for="_gazonk"', ['_gazonk']],
    ['proto=https;host=example.com', []],
    ['FOR = 192.0.2.1', ['192.0.2.1']],
  ];
  for (const [input, out] of TABLE) {
    void test(input, () => assert.deepEqual(parseForwardedFor(input), out));
  }
});

void describe('setForwardingHeaders', () => {
  const SPOOFED: Headers = {
    'x-forwarded-for': '6.6.6.6',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'evil.example',
    forwarded: 'for=6.6.6.6',
  };

  void test('untrusted peer: its chain is replaced, not extended', () => {
    const out: Record<string, string | string[]> = {};
    const client = clientAddress('203.0.113.9', SPOOFED, TRUSTED);
    setForwardingHeaders(out, SPOOFED, '203.0.113.9', client, 'http', 'api.example.com');
    assert.deepEqual(out, {
      'x-forwarded-for': '203.0.113.9',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'api.example.com',
      'x-real-ip': '203.0.113.9',
      forwarded: 'for=203.0.113.9;proto=http;host="api.example.com"',
    });
  });

  void test('trusted peer: its chain is extended with the peer', () => {
    const incoming: Headers = {
      'x-forwarded-for': '198.51.100.7, 10.0.0.2',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'shop.example.com',
      forwarded: 'for=198.51.100.7;proto=https',
    };
    const out: Record<string, string | string[]> = {};
    const client = clientAddress('10.0.0.1', incoming, TRUSTED);
    setForwardingHeaders(out, incoming, '10.0.0.1', client, 'http', 'internal.example');
    assert.deepEqual(out, {
      'x-forwarded-for': '198.51.100.7, 10.0.0.2, 10.0.0.1',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'shop.example.com',
      'x-real-ip': '198.51.100.7',
      // X-Forwarded-For is the managed header: Forwarded is rebuilt from its chain, and the
      // client's own Forwarded (which the proxy passed through untouched) is not believed.
      forwarded: 'for=198.51.100.7;proto=https;host="shop.example.com", for=10.0.0.2, for=10.0.0.1;proto=http;host="internal.example"',
    });
  });

  void test('trusted peer writing Forwarded: X-Forwarded-* are rebuilt from it, the client\'s own are dropped', () => {
    const incoming: Headers = {
      forwarded: 'for=198.51.100.7;proto=https;host=api.example.com',
      'x-forwarded-for': '203.0.113.5',
      'x-forwarded-proto': 'gopher',
      'x-forwarded-host': 'evil.example',
    };
    const out: Record<string, string | string[]> = {};
    const client = clientAddress('10.0.0.1', incoming, TRUSTED, 'forwarded');
    assert.equal(client.ip, '198.51.100.7');
    setForwardingHeaders(out, incoming, '10.0.0.1', client, 'http', 'internal.example', 'forwarded');
    assert.deepEqual(out, {
      'x-forwarded-for': '198.51.100.7, 10.0.0.1',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'api.example.com',
      'x-real-ip': '198.51.100.7',
      forwarded: 'for=198.51.100.7;proto=https;host=api.example.com, for=10.0.0.1;proto=http;host="internal.example"',
    });
  });

  void test('X-Forwarded-Proto from proxies in a row: the client\'s scheme, the first; a non-scheme is not passed on', () => {
    const client = clientAddress('10.0.0.1', { 'x-forwarded-for': '198.51.100.7' }, TRUSTED);
    const out: Record<string, string | string[]> = {};
    setForwardingHeaders(out, { 'x-forwarded-for': '198.51.100.7', 'x-forwarded-proto': 'https, http' }, '10.0.0.1', client, 'http', 'h.example');
    assert.equal(out['x-forwarded-proto'], 'https');
    assert.equal(out.forwarded, 'for=198.51.100.7;proto=https, for=10.0.0.1;proto=http;host="h.example"');
    setForwardingHeaders(out, { 'x-forwarded-for': '198.51.100.7', 'x-forwarded-proto': 'ht tp;x=1' }, '10.0.0.1', client, 'http', 'h.example');
    assert.equal(out['x-forwarded-proto'], 'http');
    assert.equal(out.forwarded, 'for=198.51.100.7, for=10.0.0.1;proto=http;host="h.example"');
  });

  void test('X-Forwarded-For entries with a port name the address, not the proxy', () => {
    for (const [entry, ip] of [
      ['203.0.113.5:4444', '203.0.113.5'],
      ['[2001:db8::5]:443', '2001:db8::5'],
      ['"[2001:db8::6]"', '2001:db8::6'],
    ] as const) {
      const client = clientAddress('10.0.0.1', { 'x-forwarded-for': entry }, TRUSTED);
      assert.deepEqual(client, { ip, source: 'x-forwarded-for', peerTrusted: true }, entry);
    }
  });

  void test('trusted peer without headers: a fresh chain', () => {
    const out: Record<string, string | string[]> = {};
    const client = clientAddress('10.0.0.1', {}, TRUSTED);
    setForwardingHeaders(out, {}, '10.0.0.1', client, 'https', 'api.example.com');
    assert.equal(out['x-forwarded-for'], '10.0.0.1');
    assert.equal(out['x-forwarded-proto'], 'https');
    assert.equal(out['x-real-ip'], '10.0.0.1');
    assert.equal(out.forwarded, 'for=10.0.0.1;proto=https;host="api.example.com"');
  });

  void test('IPv6 peer: Forwarded node quoted and bracketed (RFC 7239 §6)', () => {
    const out: Record<string, string | string[]> = {};
    const client = clientAddress('2001:db8::5', {}, TRUSTED);
    setForwardingHeaders(out, {}, '2001:db8::5', client, 'http', 'api.example.com');
    assert.equal(out.forwarded, 'for="[2001:db8::5]";proto=http;host="api.example.com"');
    assert.equal(out['x-forwarded-for'], '2001:db8::5');
    assert.equal(out['x-real-ip'], '2001:db8::5');
  });

  void test('mapped IPv4 peer: written as IPv4', () => {
    const out: Record<string, string | string[]> = {};
    const client = clientAddress('::ffff:203.0.113.9', {}, TRUSTED);
    setForwardingHeaders(out, {}, '::ffff:203.0.113.9', client, 'http', 'h');
    assert.equal(out['x-forwarded-for'], '203.0.113.9');
    assert.equal(out.forwarded, 'for=203.0.113.9;proto=http;host="h"');
  });

  void test('host with quote or backslash cannot break out of the quoted-string', () => {
    const out: Record<string, string | string[]> = {};
    const client = clientAddress('203.0.113.9', {}, TRUSTED);
    setForwardingHeaders(out, {}, '203.0.113.9', client, 'http', 'a"b\\c');
    assert.equal(out.forwarded, 'for=203.0.113.9;proto=http;host="abc"');
  });

  void test('X-Real-IP is the decided client, not the peer', () => {
    const incoming: Headers = { 'x-forwarded-for': '198.51.100.7' };
    const out: Record<string, string | string[]> = {};
    setForwardingHeaders(out, incoming, '10.0.0.1', clientAddress('10.0.0.1', incoming, TRUSTED), 'http', 'h');
    assert.equal(out['x-real-ip'], '198.51.100.7');
  });
});
