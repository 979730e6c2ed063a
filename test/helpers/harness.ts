/**
 * End-to-end harness: real upstream servers and a real gateway (App) on 127.0.0.1 ephemeral ports,
 * a precise HTTP client (node:http, one connection per request) and call-log access.
 *
 * Everything started here is closed by the returned `close()`; tests register it with `after`/`t.after`.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest, createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { parse, stringify } from 'yaml';
import { App } from '../../src/server/app.ts';
import { SqliteCallLogStore } from '../../src/calllog/sqlite.ts';
import type { CallLogEntry, CallLogQuery } from '../../src/calllog/types.ts';

// ---------------------------------------------------------------------------------------------
// Upstreams

export interface SeenRequest {
  readonly method: string;
  /** Path and query exactly as received (req.url). */
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  /** Filled when the body has been read completely (empty until then, or if it never completes). */
  body: Buffer;
  /** Whether the body arrived completely. */
  complete: boolean;
}

/** What it returns is ignored, except that a rejected promise answers 599. */
export type UpstreamHandler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => unknown;

export interface UpstreamOptions {
  /**
   * Call the handler as soon as the request head arrives, without reading the body first
   * (the handler owns the body stream; `body` is passed empty).
   */
  readonly raw?: boolean;
}

export interface Upstream {
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  /** Every request seen, in arrival order (pushed when the head arrives). */
  readonly requests: SeenRequest[];
  close(): Promise<void>;
}

/** Default handler: 200 with a JSON echo of what the upstream received. */
export const echo: UpstreamHandler = (req, res, body) => {
  const text = JSON.stringify({ method: req.method, path: req.url, headers: req.headers, bodyLength: body.length });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
};

export async function startUpstream(handler: UpstreamHandler = echo, opts: UpstreamOptions = {}): Promise<Upstream> {
  const requests: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const seen: SeenRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.alloc(0), complete: false };
    requests.push(seen);
    const run = (body: Buffer): void => {
      Promise.resolve(handler(req, res, body)).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(599);
        res.end(String(err));
      });
    };
    if (opts.raw === true) {
      req.once('end', () => (seen.complete = true));
      run(Buffer.alloc(0));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => undefined);
    req.on('end', () => {
      seen.body = Buffer.concat(chunks);
      seen.complete = true;
      run(seen.body);
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    requests,
    close: () => closeServer(server, sockets),
  };
}

export async function closeServer(server: Server, sockets?: Set<Socket>): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  if (sockets !== undefined) for (const s of sockets) s.destroy();
  await closed;
}

/**
 * A port on 127.0.0.1 that nobody listens on (bound, then released). It is taken below the
 * kernel's ephemeral range (net.ipv4.ip_local_port_range, 32768–60999 by default), where every
 * test server binds (port 0): a released ephemeral port can be handed to the next server another
 * test starts, which then answers where a refused connection was expected.
 */
export async function freeClosedPort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    const s = createServer();
    const bound = await new Promise<boolean>((resolve) => {
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (!bound) continue;
    await new Promise<void>((resolve) => s.close(() => resolve()));
    return port;
  }
  throw new Error('no closed port found in 20000–29999 on 127.0.0.1');
}

// ---------------------------------------------------------------------------------------------
// Gateway

export interface GatewayOptions {
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Run the admin listener (on an ephemeral port: read `app.adminPort`). */
  readonly admin?: boolean;
  readonly shutdownGraceMs?: number;
}

export interface Gateway {
  readonly app: App;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  readonly configFile: string;
  readonly dbFile: string;
  /** Flushes the writer and polls the call log until an entry for `requestId` is there. */
  logEntry(requestId: string, timeoutMs?: number): Promise<CallLogEntry>;
  /** Flushes the writer (if the app still runs) and queries the call log. */
  queryLog(q: CallLogQuery): CallLogEntry[];
  /** Closes the gateway (app.close()) but keeps the temp dir, so the call log can still be read. */
  closeApp(): Promise<void>;
  /** Polls until `queryLog(q)` returns at least `n` entries. */
  waitForLog(q: CallLogQuery, n: number, timeoutMs?: number): Promise<CallLogEntry[]>;
  close(): Promise<void>;
}

export type ConfigInput = string | Record<string, unknown>;

/**
 * Writes the config (object or YAML text) to a fresh temp dir and starts the gateway on
 * 127.0.0.1:0. listen, admin and call_log.path are set for the test: admin off unless asked,
 * the call log inside the temp dir.
 */
export async function startGateway(config: ConfigInput, opts: GatewayOptions = {}): Promise<Gateway> {
  const dir = mkdtempSync(path.join(tmpdir(), 'pinpoint-e2e-'));
  const configFile = path.join(dir, 'pinpoint.yaml');
  const dbFile = path.join(dir, 'calls.db');
  const cfg = (typeof config === 'string' ? parse(config) : structuredClone(config)) as Record<string, unknown>;
  cfg.listen = { host: '127.0.0.1', port: 0 };
  cfg.admin = opts.admin === true ? { ...(cfg.admin as object | undefined), enabled: true, host: '127.0.0.1', port: 0 } : { enabled: false };
  cfg.call_log = { ...(cfg.call_log as object | undefined), path: dbFile };
  writeFileSync(configFile, stringify(cfg));

  let app: App;
  try {
    app = await App.start({
      configFile,
      port: 0,
      host: '127.0.0.1',
      logger: pino({ level: 'silent' }),
      watch: false,
      env: opts.env ?? {},
      ...(opts.shutdownGraceMs !== undefined ? { shutdownGraceMs: opts.shutdownGraceMs } : {}),
    });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
    throw err;
  }
  let store: SqliteCallLogStore | undefined;
  let appClosed = false;
  const queryLog = (q: CallLogQuery): CallLogEntry[] => {
    if (!appClosed) app.writer?.flush();
    store ??= new SqliteCallLogStore(dbFile);
    return store.query(q);
  };
  const waitForLog = async (q: CallLogQuery, n: number, timeoutMs = 5000): Promise<CallLogEntry[]> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const rows = queryLog({ limit: 1000, ...q });
      if (rows.length >= n || Date.now() > deadline) return rows;
      await sleep(10);
    }
  };
  const port = app.port;
  return {
    app,
    url: `http://127.0.0.1:${port}`,
    port,
    dir,
    configFile,
    dbFile,
    queryLog,
    waitForLog,
    async logEntry(requestId, timeoutMs = 5000) {
      const rows = await waitForLog({ requestId }, 1, timeoutMs);
      assert.equal(rows.length, 1, `call log entry for request ${requestId}`);
      return rows[0] as CallLogEntry;
    },
    async closeApp() {
      await app.close();
      appClosed = true;
    },
    async close() {
      await app.close();
      appClosed = true;
      store?.close();
      store = undefined;
      rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Client

export interface SendOptions {
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string | string[]>>;
  /** A Buffer/string is sent with Content-Length; a Readable is sent chunked (no Content-Length). */
  readonly body?: Buffer | string | Readable;
  readonly timeoutMs?: number;
  /** Called for each response body chunk as it arrives. */
  readonly onChunk?: (chunk: Buffer) => void;
}

export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  readonly text: string;
  /** Body parsed as JSON (throws if it is not). */
  json<T = Record<string, unknown>>(): T;
}

/**
 * One request on its own connection (no pooling), resolved when the whole response has arrived.
 * Errors writing the request body after the response started (the gateway answered early and
 * closed) are ignored: the response is what the test looks at.
 */
export function send(url: string, opts: SendOptions = {}): Promise<Reply> {
  return new Promise<Reply>((resolve, reject) => {
    const u = new URL(url);
    const headers: Record<string, string | string[] | number> = { ...opts.headers };
    const body = opts.body;
    if ((typeof body === 'string' || Buffer.isBuffer(body)) && !hasHeader(headers, 'content-length')) {
      headers['content-length'] = Buffer.byteLength(body);
    }
    let responded = false;
    const req = httpRequest(
      { host: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, method: opts.method ?? 'GET', headers, agent: false },
      (res) => {
        responded = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          opts.onChunk?.(c);
        });
        res.on('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
        res.on('end', () => {
          clearTimeout(timer);
          const buf = Buffer.concat(chunks);
          const text = buf.toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: buf,
            text,
            json: <T>() => JSON.parse(text) as T,
          });
          req.destroy();
        });
      },
    );
    const timer = setTimeout(() => req.destroy(new Error(`request to ${url} timed out after ${opts.timeoutMs ?? 10_000} ms`)), opts.timeoutMs ?? 10_000);
    req.on('error', (err) => {
      if (responded) return;
      clearTimeout(timer);
      reject(err);
    });
    req.on('close', () => {
      if (!responded) clearTimeout(timer);
    });
    if (body === undefined) req.end();
    else if (typeof body === 'string' || Buffer.isBuffer(body)) req.end(body);
    else {
      body.on('error', (err) => req.destroy(err));
      body.pipe(req);
    }
  });
}

function hasHeader(h: Readonly<Record<string, unknown>>, name: string): boolean {
  return Object.keys(h).some((k) => k.toLowerCase() === name);
}

export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

// ---------------------------------------------------------------------------------------------
// Assertions on the gateway's own responses

/** RFC 9209 error type expected in Proxy-Status, per code (written independently of the catalog). */
export const EXPECTED_PROXY_ERROR: Readonly<Record<string, string>> = {
  ROUTE_NOT_FOUND: 'destination_not_found',
  METHOD_NOT_ALLOWED: 'http_request_denied',
  AUTH_KEY_MISSING: 'http_request_denied',
  AUTH_KEY_WRONG_PLACE: 'http_request_denied',
  AUTH_KEY_INVALID: 'http_request_denied',
  AUTH_KEY_SCOPE_MISSING: 'http_request_denied',
  IP_DENIED: 'http_request_denied',
  IP_NOT_ALLOWED: 'http_request_denied',
  BODY_TOO_LARGE: 'http_request_body_size_exceeded',
  UPSTREAM_CONNECT_REFUSED: 'connection_refused',
  UPSTREAM_CONNECT_TIMEOUT: 'connection_timeout',
  UPSTREAM_RESET: 'connection_terminated',
  UPSTREAM_RESPONSE_TIMEOUT: 'http_response_timeout',
  UPSTREAM_NO_HEALTHY_TARGET: 'destination_unavailable',
  GATEWAY_SHUTTING_DOWN: 'destination_unavailable',
};

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  layer: string;
  policy: string;
  request_id: string;
  retryable: boolean;
  detail?: string;
  remediation?: string;
  evidence?: Record<string, unknown>;
}

/**
 * Checks the envelope of a response the gateway made itself and returns its body:
 * status, problem+json, members, x-request-id = request_id, Proxy-Status, x-should-retry.
 */
export function assertProblem(r: Reply, want: { status: number; code: string; layer: string; policy: string }): Problem {
  assert.equal(r.status, want.status, `status (body: ${r.text})`);
  assert.match(String(r.headers['content-type']), /^application\/problem\+json\b/);
  const p = r.json<Problem>();
  assert.equal(p.status, want.status);
  assert.equal(p.code, want.code);
  assert.equal(p.layer, want.layer);
  assert.equal(p.policy, want.policy);
  assert.equal(p.type, `urn:pinpoint:error:${want.code.toLowerCase()}`);
  assert.equal(typeof p.title, 'string');
  assert.ok(p.title.length > 0);
  assert.equal(typeof p.request_id, 'string');
  assert.ok(p.request_id.length > 0);
  assert.equal(r.headers['x-request-id'], p.request_id, 'x-request-id header equals body.request_id');
  assert.equal(r.headers['x-pinpoint-code'], want.code);
  assert.equal(r.headers['x-pinpoint-layer'], want.layer);
  const ps = String(r.headers['proxy-status'] ?? '');
  const type = EXPECTED_PROXY_ERROR[want.code];
  if (type !== undefined) assert.match(ps, new RegExp(`error=${type}(;|$)`), `proxy-status ${ps}`);
  assert.ok(ps.includes(`details="${want.code}"`), `proxy-status ${ps} names the code`);
  if (want.status < 500) {
    // Permanent denials say so; retrying the same request cannot help.
    assert.equal(p.retryable, false);
    assert.equal(r.headers['x-should-retry'], 'false');
  } else {
    assert.notEqual(r.headers['x-should-retry'], 'false');
  }
  return p;
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Minimal config with one upstream group `svc` and one catch-all route `r` (no policies). */
export function baseConfig(targets: readonly string[], extra: { upstream?: Record<string, unknown>; route?: Record<string, unknown>; top?: Record<string, unknown> } = {}): Record<string, unknown> {
  return {
    version: 1,
    errors: { mode: 'detailed' },
    upstreams: { svc: { targets: targets.map((url) => ({ url })), ...extra.upstream } },
    routes: [{ id: 'r', paths: ['/*'], upstream: 'svc', ...extra.route }],
    ...extra.top,
  };
}
