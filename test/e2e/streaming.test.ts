/**
 * E2E: bodies stream both ways intact, request-size is enforced on declared and streamed bodies,
 * and server-sent events are not buffered.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { assertProblem, baseConfig, send, sha256, startGateway, startUpstream, type Gateway, type Upstream } from '../helpers/harness.ts';

const MB = 1024 * 1024;

/** Upstream that hashes the request body as it streams in and answers with the hash. */
async function hashingUpstream(): Promise<Upstream> {
  return startUpstream(
    (req, res) => {
      const h = createHash('sha256');
      let n = 0;
      req.on('data', (c: Buffer) => {
        h.update(c);
        n += c.length;
      });
      req.on('end', () => {
        const text = JSON.stringify({ sha256: h.digest('hex'), bytes: n, te: req.headers['transfer-encoding'] ?? null, cl: req.headers['content-length'] ?? null });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      });
    },
    { raw: true },
  );
}

/** A Readable that yields `buf` in pieces (sent chunked by the client: no Content-Length). */
function chunked(buf: Buffer, piece = 64 * 1024): Readable {
  let off = 0;
  return new Readable({
    read() {
      if (off >= buf.length) {
        this.push(null);
        return;
      }
      this.push(buf.subarray(off, off + piece));
      off += piece;
    },
  });
}

void describe('large bodies', () => {
  let up: Upstream;
  let download: Upstream;
  let big: Buffer;
  let gw: Gateway;
  before(async () => {
    big = randomBytes(5 * MB);
    up = await hashingUpstream();
    download = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': big.length });
      // Written in pieces so the gateway really streams rather than relaying one buffer.
      let off = 0;
      const next = (): void => {
        while (off < big.length) {
          const part = big.subarray(off, off + 256 * 1024);
          off += part.length;
          if (!res.write(part)) {
            res.once('drain', next);
            return;
          }
        }
        res.end();
      };
      next();
    });
    gw = await startGateway({
      version: 1,
      upstreams: { up: { targets: [{ url: up.url }] }, down: { targets: [{ url: download.url }] } },
      policies: { roomy: { type: 'request-size', config: { max_bytes: 8 * MB } } },
      routes: [
        { id: 'upload', paths: ['/upload'], methods: ['POST'], upstream: 'up' },
        { id: 'upload-limited', paths: ['/upload-limited'], methods: ['POST'], upstream: 'up', policies: ['roomy'] },
        { id: 'download', paths: ['/download'], methods: ['GET'], upstream: 'down' },
      ],
    });
  });
  after(async () => {
    await gw.close();
    await up.close();
    await download.close();
  });

  void test('a 5 MB POST body (Content-Length) arrives upstream intact', async () => {
    const r = await send(`${gw.url}/upload`, { method: 'POST', body: big, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(r.status, 200, r.text);
    const got = r.json<{ sha256: string; bytes: number; cl: string }>();
    assert.equal(got.bytes, big.length);
    assert.equal(got.sha256, sha256(big));
    const e = await gw.logEntry(String(r.headers['x-request-id']));
    assert.equal(e.bytesIn, big.length);
  });

  void test('a 5 MB chunked POST body arrives intact through a request-size limit above it', async () => {
    const r = await send(`${gw.url}/upload-limited`, { method: 'POST', body: chunked(big), headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(r.status, 200, r.text);
    const got = r.json<{ sha256: string; bytes: number; te: string | null }>();
    assert.equal(got.bytes, big.length);
    assert.equal(got.sha256, sha256(big));
  });

  void test('a 5 MB response streams back intact', async () => {
    let chunks = 0;
    const r = await send(`${gw.url}/download`, { onChunk: () => chunks++ });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-length'], String(big.length));
    assert.equal(r.body.length, big.length);
    assert.equal(sha256(r.body), sha256(big));
    assert.ok(chunks > 1, 'arrived in several chunks');
  });
});

void describe('request-size over real sockets', () => {
  let up: Upstream;
  let gw: Gateway;
  before(async () => {
    up = await hashingUpstream();
    gw = await startGateway(
      baseConfig([up.url], {
        top: { policies: { 'upload-limit': { type: 'request-size', config: { max_bytes: 1000 } } } },
        route: { policies: ['upload-limit'] },
      }),
    );
  });
  after(async () => {
    await gw.close();
    await up.close();
  });

  void test('a chunked upload over max_bytes: 413 BODY_TOO_LARGE from the request-size policy', async () => {
    const r = await send(`${gw.url}/up`, { method: 'POST', body: chunked(Buffer.alloc(3000, 7), 500) });
    const p = assertProblem(r, { status: 413, code: 'BODY_TOO_LARGE', layer: 'gateway', policy: 'upload-limit' });
    assert.equal(p.evidence?.limit_bytes, 1000);
    assert.ok(Number(p.evidence?.received_bytes) > 1000);
    assert.equal(r.headers.connection, 'close');
    const e = await gw.logEntry(p.request_id);
    assert.equal(e.status, 413);
    assert.equal(e.code, 'BODY_TOO_LARGE');
    assert.equal(e.policy, 'upload-limit');
    // No upstream got a complete body.
    assert.ok(up.requests.every((x) => !x.complete), 'the upstream never received the whole body');
  });

  void test('a large chunked upload (2 MB) over max_bytes is cut short with 413', async () => {
    const r = await send(`${gw.url}/up`, { method: 'POST', body: chunked(Buffer.alloc(2 * MB, 3)) });
    const p = assertProblem(r, { status: 413, code: 'BODY_TOO_LARGE', layer: 'gateway', policy: 'upload-limit' });
    assert.equal(p.evidence?.limit_bytes, 1000);
  });

  void test('a chunked upload within max_bytes passes', async () => {
    const body = Buffer.alloc(900, 1);
    const r = await send(`${gw.url}/up`, { method: 'POST', body: chunked(body, 300) });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json<{ sha256: string }>().sha256, sha256(body));
  });

  void test('Content-Length over max_bytes: 413 before the upstream is called', async () => {
    const before = up.requests.length;
    const r = await send(`${gw.url}/up`, { method: 'POST', body: Buffer.alloc(5000, 2) });
    const p = assertProblem(r, { status: 413, code: 'BODY_TOO_LARGE', layer: 'gateway', policy: 'upload-limit' });
    assert.equal(p.evidence?.limit_bytes, 1000);
    assert.equal(p.evidence?.received_bytes, 5000);
    assert.equal(up.requests.length, before, 'the upstream saw no request');
    const e = await gw.logEntry(p.request_id);
    assert.equal(e.attempts, 0);
    assert.equal(e.upstreamTarget, null);
  });
});

void describe('server-sent events', () => {
  void test('each event reaches the client as soon as the upstream writes it', async (t) => {
    let secondWrittenAt = 0;
    const up = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('data: 1\n\n');
      setTimeout(() => {
        secondWrittenAt = performance.now();
        res.end('data: 2\n\n');
      }, 300);
    });
    const gw = await startGateway(baseConfig([up.url]));
    t.after(async () => {
      await gw.close();
      await up.close();
    });
    let firstAt = 0;
    let seen = '';
    const r = await send(`${gw.url}/events`, {
      onChunk: (c) => {
        seen += c.toString('utf8');
        if (firstAt === 0 && seen.includes('data: 1\n\n')) firstAt = performance.now();
      },
    });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/event-stream');
    assert.equal(r.text, 'data: 1\n\ndata: 2\n\n');
    assert.ok(firstAt > 0 && secondWrittenAt > 0);
    assert.ok(firstAt < secondWrittenAt, `first event at ${firstAt.toFixed(1)}, second written at ${secondWrittenAt.toFixed(1)}`);
  });
});
