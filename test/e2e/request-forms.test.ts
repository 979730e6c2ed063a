/**
 * Request forms that the gateway and an upstream could read differently, and the framing cases
 * around them, over real sockets: non-canonical paths (request_paths), absolute-form and asterisk
 * targets (RFC 9112 §3.2), transfer codings (§6.1), Expect: 100-continue with a policy that reads
 * the body (RFC 9110 §10.1.1), a caller's own request-size limit on a buffered chunked body,
 * credentials sent twice, and Connection: close while draining. Each test asserts the status,
 * the code and what the upstream saw.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { startGateway, startUpstream, send, type Gateway, type Upstream } from '../helpers/harness.ts';

const KEY = 'pp_forms_0123456789abcdef';
const sha = (key: string): string => `sha256:${createHash('sha256').update(key).digest('hex')}`;

let up: Upstream;
let gw: Gateway;

function config(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    version: 1,
    errors: { mode: 'detailed' },
    upstreams: { u: { targets: [{ url: up.url }] } },
    policies: {
      key: { type: 'api-key', config: { in: [{ from: 'header', name: 'x-api-key' }, { from: 'query', name: 'key' }] } },
      own: { type: 'ownership', config: { resource: { from: 'body', name: '/owner' }, claim: 'consumer' } },
      small: { type: 'request-size', config: { max_bytes: 100 } },
    },
    consumers: [{ id: 'alice', policies: ['small'], credentials: { api_keys: [{ id: 'k1', hash: sha(KEY) }] } }],
    routes: [
      { id: 'admin', paths: ['/admin/*'], upstream: 'u', policies: ['key'] },
      { id: 'owned', paths: ['/owned/*'], upstream: 'u', policies: ['key', 'own'] },
      { id: 'site', paths: ['/*'], upstream: 'u' },
    ],
    ...extra,
  };
}

before(async () => {
  up = await startUpstream();
  gw = await startGateway(config());
});

after(async () => {
  await gw.close();
  await up.close();
});

/**
 * Sends raw bytes on one connection and resolves with everything the gateway wrote back. The
 * requests say Connection: close, so the gateway ends the connection; the client does not
 * half-close first (the server would then drop a response still on its way from the upstream).
 */
function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(bytes));
    let out = '';
    s.on('data', (c: Buffer) => (out += c.toString('latin1')));
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });
}

const codeOf = (out: string): string | undefined => /x-pinpoint-code: ([A-Z_]+)/i.exec(out)?.[1];
const statusOf = (out: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1]);

void describe('request paths', () => {
  void test('forms an upstream could read as another route are refused with the setting that allows them', async () => {
    const cases: [string, string, string][] = [
      ['/x/..%2fadmin/users', 'REQUEST_PATH_INVALID', ''],
      ['/x/..;/admin/users', 'REQUEST_PATH_INVALID', ''],
      ['/x\\..\\admin/users', 'REQUEST_PATH_INVALID', ''],
      ['/admin%2fusers', 'REQUEST_PATH_NOT_CANONICAL', 'request_paths.allow_encoded_slashes'],
      ['/x/a%5Cb', 'REQUEST_PATH_NOT_CANONICAL', 'request_paths.allow_encoded_slashes'],
      ['/x\\admin', 'REQUEST_PATH_NOT_CANONICAL', 'request_paths.allow_backslashes'],
      ['/admin;x/users', 'REQUEST_PATH_NOT_CANONICAL', 'request_paths.allow_semicolons'],
      ['/x%3Bjsessionid=1', 'REQUEST_PATH_NOT_CANONICAL', 'request_paths.allow_semicolons'],
      ['//admin/users', 'REQUEST_PATH_NOT_CANONICAL', 'request_paths.allow_empty_segments'],
    ];
    const seen = up.requests.length;
    for (const [path, code, setting] of cases) {
      const out = await raw(gw.port, `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
      assert.equal(statusOf(out), 400, path);
      assert.equal(codeOf(out), code, path);
      if (setting !== '') assert.match(out, new RegExp(`"setting":"${setting.replace(/\./g, '\\.')}"`), path);
    }
    assert.equal(up.requests.length, seen, 'nothing reached the upstream');
    // A plain path with dots inside a segment, and a query with ; and %2F, still pass.
    const ok = await send(`${gw.url}/x/a..b/c?q=a%2Fb;c`);
    assert.equal(ok.status, 200);
  });

  void test('each request_paths setting lets its form through, and only that form', async () => {
    const g = await startGateway(config({ request_paths: { allow_encoded_slashes: true, allow_semicolons: true } }));
    try {
      assert.equal((await send(`${g.url}/x/group%2Fproject`)).status, 200);
      assert.equal((await send(`${g.url}/x;v=1/y`)).status, 200);
      assert.equal(codeOf(await raw(g.port, 'GET //x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')), 'REQUEST_PATH_NOT_CANONICAL');
      // No setting lets a dot-segment through, however it ends.
      assert.equal(codeOf(await raw(g.port, 'GET /x/..%2fadmin HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')), 'REQUEST_PATH_INVALID');
      assert.equal(codeOf(await raw(g.port, 'GET /x/..;/admin HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')), 'REQUEST_PATH_INVALID');
    } finally {
      await g.close();
    }
  });
});

void describe('request targets and framing', () => {
  void test('absolute-form: routed by the target authority, forwarded in origin-form (RFC 9112 §3.2.2)', async () => {
    const seen = up.requests.length;
    const out = await raw(gw.port, 'GET http://api.example/x/y?z=1 HTTP/1.1\r\nHost: ignored.example\r\nConnection: close\r\n\r\n');
    assert.equal(statusOf(out), 200);
    const r = up.requests[seen];
    assert.equal(r?.path, '/x/y?z=1');
    assert.equal(r?.headers['x-forwarded-host'], 'api.example');
    // The absolute-form path goes through the same route match and path checks.
    const denied = await raw(gw.port, 'GET http://api.example/admin/users HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    assert.equal(codeOf(denied), 'AUTH_KEY_MISSING');
    assert.equal(codeOf(await raw(gw.port, 'GET http://api.example//admin HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')), 'REQUEST_PATH_NOT_CANONICAL');
    assert.equal(codeOf(await raw(gw.port, 'GET http://u:p@api.example/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')), 'REQUEST_MALFORMED');
    assert.equal(up.requests.length, seen + 1);
  });

  void test('OPTIONS * is answered by the gateway; * with another method is malformed', async () => {
    const seen = up.requests.length;
    const opt = await raw(gw.port, 'OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    assert.equal(statusOf(opt), 200);
    assert.match(opt, /x-request-id: /i);
    const get = await raw(gw.port, 'GET * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    assert.equal(statusOf(get), 400);
    assert.equal(codeOf(get), 'REQUEST_MALFORMED');
    assert.equal(up.requests.length, seen);
  });

  void test('a transfer coding other than chunked alone is 501 TRANSFER_CODING_UNSUPPORTED', async () => {
    const seen = up.requests.length;
    const out = await raw(gw.port, 'POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
    assert.equal(statusOf(out), 501);
    assert.equal(codeOf(out), 'TRANSFER_CODING_UNSUPPORTED');
    assert.equal(up.requests.length, seen);
    const ok = await raw(gw.port, 'POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
    assert.equal(statusOf(ok), 200);
  });

  void test('Expect: 100-continue on a route whose policy reads the body: 100 comes, then the answer', async () => {
    const body = JSON.stringify({ owner: 'alice' });
    const out = await new Promise<string>((resolve, reject) => {
      const s = connect(gw.port, '127.0.0.1', () =>
        s.write(`POST /owned/x HTTP/1.1\r\nHost: a\r\nx-api-key: ${KEY}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`),
      );
      let got = '';
      let sent = false;
      s.on('data', (c: Buffer) => {
        got += c.toString('latin1');
        // A strict client sends the body only after the 100.
        if (!sent && got.startsWith('HTTP/1.1 100 Continue\r\n\r\n')) {
          sent = true;
          s.write(body);
        }
      });
      s.on('end', () => resolve(got));
      s.on('error', reject);
      setTimeout(() => {
        s.destroy();
        resolve(got);
      }, 3000).unref();
    });
    assert.match(out, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    assert.equal(out.match(/100 Continue/g)?.length, 1, 'one 100 Continue');
  });

  void test("a caller's own request-size limit holds for a chunked body a policy buffered", async () => {
    const seen = up.requests.length;
    const big = JSON.stringify({ owner: 'alice', pad: 'x'.repeat(2000) });
    const r = await send(`${gw.url}/owned/x`, { method: 'POST', headers: { 'x-api-key': KEY, 'content-type': 'application/json' }, body: Readable.from([Buffer.from(big)]) });
    assert.equal(r.status, 413);
    assert.equal(r.headers['x-pinpoint-code'], 'BODY_TOO_LARGE');
    assert.equal(r.headers['x-pinpoint-policy'], 'small');
    assert.equal(up.requests.length, seen);
    const small = await send(`${gw.url}/owned/x`, { method: 'POST', headers: { 'x-api-key': KEY, 'content-type': 'application/json' }, body: Readable.from([Buffer.from('{"owner":"alice"}')]) });
    assert.equal(small.status, 200);
  });

  void test('a credential sent twice in the query is refused, once it passes', async () => {
    const seen = up.requests.length;
    const r = await send(`${gw.url}/admin/x?key=${KEY}&key=attacker`);
    assert.equal(r.status, 400);
    assert.equal(r.headers['x-pinpoint-code'], 'AUTH_CREDENTIAL_REPEATED');
    assert.equal(r.headers['x-pinpoint-policy'], 'key');
    assert.equal(up.requests.length, seen);
    assert.equal((await send(`${gw.url}/admin/x?key=${KEY}`)).status, 200);
  });
});

void describe('draining', () => {
  void test('while shutting down, a response in flight says Connection: close and its idle connection is closed', async () => {
    const slow = await startUpstream((_req, res) => {
      setTimeout(() => {
        res.writeHead(200, { 'content-length': '2' });
        res.end('ok');
      }, 300);
    });
    const g = await startGateway(
      { version: 1, upstreams: { u: { targets: [{ url: slow.url }] } }, routes: [{ id: 'r', paths: ['/*'], upstream: 'u' }] },
      { shutdownGraceMs: 5000 },
    );
    try {
      const t0 = Date.now();
      const s = connect(g.port, '127.0.0.1');
      await new Promise((r) => s.once('connect', r));
      let got = '';
      s.on('data', (c: Buffer) => (got += c.toString('latin1')));
      const ended = new Promise((r) => s.once('close', r));
      s.write('GET /x HTTP/1.1\r\nHost: a\r\n\r\n'); // keep-alive by default
      await new Promise((r) => setTimeout(r, 100));
      const closing = g.closeApp();
      await ended;
      await closing;
      assert.match(got, /^HTTP\/1\.1 200 /);
      assert.match(got, /connection: close/i);
      assert.ok(Date.now() - t0 < 3000, 'the connection did not wait for the grace period');
    } finally {
      await g.close();
      await slow.close();
    }
  });

  void test('while shutting down, a denial the gateway makes itself also says Connection: close', async () => {
    // The upstream never answers: the gateway's own 504 comes after the drain began.
    const mute = await startUpstream(() => undefined);
    const g = await startGateway(
      { version: 1, upstreams: { u: { targets: [{ url: mute.url }], timeouts: { response_ms: 400 }, retries: { attempts: 0 } } }, routes: [{ id: 'r', paths: ['/*'], upstream: 'u' }] },
      { shutdownGraceMs: 5000 },
    );
    try {
      const s = connect(g.port, '127.0.0.1');
      await new Promise((r) => s.once('connect', r));
      let got = '';
      s.on('data', (c: Buffer) => (got += c.toString('latin1')));
      const ended = new Promise((r) => s.once('close', r));
      s.write('GET /x HTTP/1.1\r\nHost: a\r\n\r\n');
      await new Promise((r) => setTimeout(r, 100));
      const closing = g.closeApp();
      await ended;
      await closing;
      assert.match(got, /^HTTP\/1\.1 504 /);
      assert.match(got, /x-pinpoint-code: UPSTREAM_RESPONSE_TIMEOUT/i);
      assert.match(got, /connection: close/i);
    } finally {
      await g.close();
      await mute.close();
    }
  });
});

void describe('reload', () => {
  void test('a retry after a reload goes to the config in force and to a target not tried yet', async () => {
    const hits: string[] = [];
    const a = await startUpstream((_req, res) => {
      hits.push('a');
      setTimeout(() => {
        res.writeHead(503, { 'content-length': '4' });
        res.end('busy');
      }, 400);
    });
    const b = await startUpstream((_req, res) => {
      hits.push('b');
      res.writeHead(200, { 'content-length': '6' });
      res.end('from b');
    });
    const cfg = (responseMs: number): Record<string, unknown> => ({
      version: 1,
      // round_robin starts at the first target: the first attempt is a's.
      upstreams: { u: { targets: [{ url: a.url }, { url: b.url }], timeouts: { response_ms: responseMs }, retries: { attempts: 1 } } },
      routes: [{ id: 'r', paths: ['/*'], upstream: 'u' }],
    });
    const g = await startGateway(cfg(10_000));
    try {
      const pending = send(`${g.url}/x`);
      await new Promise((r) => setTimeout(r, 150));
      // A changed pool option retires both pools of the previous config.
      writeFileSync(g.configFile, JSON.stringify(cfg(9_000)));
      assert.equal(g.app.reload().applied, true);
      const r = await pending;
      assert.equal(r.status, 200);
      assert.equal(r.text, 'from b');
      assert.deepEqual(hits, ['a', 'b']);
    } finally {
      await g.close();
      await a.close();
      await b.close();
    }
  });
});

void describe('upstream error bodies in the call log', () => {
  void test('credentials the request carried, echoed by the upstream, are not stored', async () => {
    const token = 'tok_0123456789abcdefghij';
    const echoing = await startUpstream((req, res) => {
      const text = `invalid key ${String(req.headers['x-api-key'])} and token ${String(req.headers.authorization)}`;
      res.writeHead(401, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
    const g = await startGateway({ version: 1, upstreams: { u: { targets: [{ url: echoing.url }] } }, routes: [{ id: 'r', paths: ['/*'], upstream: 'u' }] });
    try {
      const r = await send(`${g.url}/x`, { headers: { 'x-api-key': KEY, authorization: `Bearer ${token}` } });
      assert.equal(r.status, 401);
      assert.equal(r.headers['x-pinpoint-layer'], 'upstream');
      assert.ok(r.text.includes(KEY), 'the client gets the upstream body unchanged');
      const e = await g.logEntry(String(r.headers['x-request-id']));
      assert.equal(e.layer, 'upstream');
      assert.ok(e.upstreamBody !== null && e.upstreamBody.startsWith('invalid key '), String(e.upstreamBody));
      assert.ok(!e.upstreamBody.includes(KEY) && !e.upstreamBody.includes(token), e.upstreamBody);
    } finally {
      await g.close();
      await echoing.close();
    }
  });
});
