/**
 * Regression tests from the security review: request smuggling-style ambiguities and protocol
 * details the gateway must get right. Each asserts the code and what the upstream saw.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startGateway, startUpstream, send, type Gateway, type Upstream } from '../helpers/harness.ts';

let up: Upstream;
let gw: Gateway;

before(async () => {
  up = await startUpstream();
  gw = await startGateway({
    version: 1,
    errors: { mode: 'detailed' },
    upstreams: { u: { targets: [{ url: up.url }] } },
    policies: {
      web: { type: 'cors', config: { allow_origins: ['https://app.example.com'], allow_methods: ['GET', 'POST', 'PUT'] } },
    },
    routes: [
      { id: 'public', paths: ['/public/*'], upstream: 'u' },
      { id: 'app', paths: ['/app/*'], methods: ['PUT'], upstream: 'u', policies: ['web'] },
    ],
  });
});

after(async () => {
  await gw.close();
  await up.close();
});

/** Sends raw bytes on one connection and resolves with everything the gateway wrote back. */
function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.end(bytes));
    let out = '';
    s.on('data', (c: Buffer) => (out += c.toString('latin1')));
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });
}

void describe('hardening', () => {
  void test('REQUEST_PATH_INVALID: dot-segments, plain or percent-encoded, never reach the upstream', async () => {
    const before = up.requests.length;
    for (const path of ['/public/../admin/secret', '/public/%2e%2e/admin/secret', '/public/./x', '/public/%2E/x']) {
      const out = await raw(gw.port, `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
      assert.match(out, /^HTTP\/1\.1 400 /, path);
      assert.match(out, /x-pinpoint-code: REQUEST_PATH_INVALID/i, path);
    }
    assert.equal(up.requests.length, before);
    const ok = await send(`${gw.url}/public/a..b/c`);
    assert.equal(ok.status, 200);
  });

  void test('REQUEST_HEADER_DUPLICATED: two Authorization headers are refused, not forwarded', async () => {
    const before = up.requests.length;
    const out = await raw(gw.port, 'GET /public/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\nConnection: close\r\n\r\n');
    assert.match(out, /^HTTP\/1\.1 400 /);
    assert.match(out, /x-pinpoint-code: REQUEST_HEADER_DUPLICATED/i);
    assert.equal(up.requests.length, before);
  });

  void test('an h2c upgrade is served as plain HTTP/1.1 and does not count against the target', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await send(`${gw.url}/public/x`, { headers: { connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAARAAAAAAAIAAAAA' } });
      assert.equal(r.status, 200);
    }
    const seen = up.requests.at(-1);
    assert.equal(seen?.headers.upgrade, undefined, 'the hop-by-hop Upgrade is not forwarded');
  });

  void test('a CORS preflight 204 carries no Content-Length (RFC 9110 §8.6)', async () => {
    const r = await send(`${gw.url}/app/x`, { method: 'OPTIONS', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'PUT' } });
    assert.equal(r.status, 204);
    assert.equal(r.headers['content-length'], undefined);
    assert.equal(r.headers['access-control-allow-origin'], 'https://app.example.com');
  });

  void test('client-planted X-Forwarded-Port / -Prefix do not reach the upstream', async () => {
    await send(`${gw.url}/public/fwd`, { headers: { 'x-forwarded-port': '1', 'x-forwarded-prefix': '/evil' } });
    const seen = up.requests.at(-1);
    assert.equal(seen?.headers['x-forwarded-port'], undefined);
    assert.equal(seen?.headers['x-forwarded-prefix'], undefined);
  });

  void test('a client-chosen request id is replaced unless the peer is a trusted proxy', async () => {
    const r = await send(`${gw.url}/public/id`, { headers: { 'x-request-id': 'victim-123' } });
    assert.notEqual(r.headers['x-request-id'], 'victim-123');
    assert.match(String(r.headers['x-request-id']), /^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    const behind = await startGateway({
      version: 1,
      trusted_proxies: ['127.0.0.1/32'],
      upstreams: { u: { targets: [{ url: up.url }] } },
      routes: [{ id: 'all', paths: ['/*'], upstream: 'u' }],
    });
    try {
      const kept = await send(`${behind.url}/x`, { headers: { 'x-request-id': 'lb-chosen-7' } });
      assert.equal(kept.headers['x-request-id'], 'lb-chosen-7');
    } finally {
      await behind.close();
    }
  });

  void test('malformed HTTP gets a pinpointed 400 with a request id', async () => {
    const out = await raw(gw.port, 'GET /public/x HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n');
    assert.match(out, /^HTTP\/1\.1 400 /);
    assert.match(out, /x-pinpoint-code: REQUEST_MALFORMED/i);
    assert.match(out, /x-request-id: [0-9a-f-]{36}/i);
  });
});
