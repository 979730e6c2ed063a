/**
 * The per-request record: what was decided and by whom, filled in as the request goes through the
 * gateway and turned into one call-log entry and the metrics when the response closes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { buildReplayRecord } from '../calllog/replay-record.ts';
import { Digests } from '../credentials/digests.ts';
import type { CallLogEntry } from '../calllog/types.ts';
import type { CompiledConfig, CompiledRoute } from '../config/compile.ts';
import { CATALOG, type Code, type Layer } from '../errors/catalog.ts';
import { sendProblem } from '../errors/problem.ts';
import { BodyTooLargeError } from '../proxy/body-limit.ts';
import type { ClientAddress } from '../proxy/forwarded.ts';
import type { Evidence, Identity, TraceEntry } from '../pipeline/types.ts';

export class Exchange {
  readonly ts = Date.now();
  readonly t0 = performance.now();
  readonly requestId: string;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly config: CompiledConfig;
  readonly clientIp: string;
  readonly path: string;
  route: CompiledRoute | undefined;
  identity: Identity | undefined;
  trace: TraceEntry[] = [];
  code: Code | null = null;
  layer: Layer | null = null;
  policy: string | null = null;
  upstreamTarget: string | null = null;
  attempts = 0;
  upstreamBody: string | null = null;
  monitorDenied = false;
  /** What an AI exchange used (provider, model, tokens, cost), filled by the AI gateway; null otherwise. */
  ai: CallLogEntry['ai'] = null;
  bytesIn = 0;
  /** Body bytes relayed from the upstream (local replies count their Content-Length instead). */
  bytesOut = 0;
  /** Set once a protocol upgrade (WebSocket) was tunnelled: the status is 101. */
  upgraded = false;
  /** The upstream exchange in flight, if any; aborted when the client goes away. */
  upstream: Dispatcher.DispatchController | undefined = undefined;
  /** Release callbacks from policies (concurrency slots), run once when the exchange ends. */
  releases: readonly (() => void)[] = [];
  /** Response headers policies added (CORS, RateLimit), sent on every response incl. denials. */
  extraHeaders: Readonly<Record<string, string>> | undefined = undefined;
  /** The request body when a policy needed it buffered. */
  bufferedBody: Buffer | undefined = undefined;
  /** Credential digests the policies computed, reused by the replay record (no second hash). */
  readonly digests = new Digests();
  #bodyPromise: Promise<Buffer> | undefined;
  #continued = false;
  /** Set once the exchange has been recorded (its response closed). */
  recorded = false;
  /** Final status, set by settle(). */
  status = 0;
  /** Status of a response written as raw bytes to a socket (upgrade failures), which res does not see. */
  rawStatus: number | undefined = undefined;
  latencyMs = 0;

  /**
   * The connection, kept for the replay record's peer address: Node may have detached it from
   * `req` by the time the response closes. A reference, read only when the entry is built.
   */
  readonly #socket: { readonly remoteAddress?: string | undefined };

  /** The raw query string ('' when none), split once from the target in prepare(). */
  readonly query: string;

  readonly clientIpSource: ClientAddress['source'];

  constructor(req: IncomingMessage, res: ServerResponse, config: CompiledConfig, requestId: string, client: ClientAddress, path: string, query: string) {
    this.clientIpSource = client.source;
    this.#socket = req.socket;
    this.query = query;
    this.req = req;
    this.res = res;
    this.config = config;
    this.requestId = requestId;
    this.clientIp = client.ip;
    this.path = path;
  }

  /**
   * Sends `100 Continue` once, if the client asked for it (RFC 9110 §10.1.1). The server's
   * checkContinue handler leaves this to the gateway, so the client only sends its body once every
   * policy that can refuse on headers alone has allowed it.
   */
  sendContinue(): void {
    if (this.#continued || this.res.headersSent) return;
    const expect = this.req.headers.expect;
    if (typeof expect !== 'string' || expect.toLowerCase() !== '100-continue') return;
    this.#continued = true;
    this.res.writeContinue();
  }

  /** Buffers the request body once (for policies that read it), failing past `limit` bytes. */
  readBody(limit: number): Promise<Buffer> {
    // A policy reading the body runs after the header-only ones; a client waiting for 100
    // Continue would otherwise never send what it reads.
    this.sendContinue();
    this.#bodyPromise ??= new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const req = this.req;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > limit) {
          req.pause();
          reject(new BodyTooLargeError(limit, size));
          return;
        }
        chunks.push(c);
      });
      req.once('end', () => {
        this.bufferedBody = Buffer.concat(chunks, size);
        resolve(this.bufferedBody);
      });
      req.once('error', reject);
    });
    return this.#bodyPromise;
  }

  /** Detailed errors: the consumer's setting wins, then the route's, then the global one. */
  detailed(): boolean {
    const c = this.identity !== undefined ? this.config.consumerErrors.get(this.identity.consumer) : undefined;
    return (c ?? this.route?.errors ?? this.config.source.errors.mode) === 'detailed';
  }

  /** Answers with a problem response and records who decided it. */
  reply(code: Code, policy: string, opts: { evidence?: Evidence; rule?: string; headers?: Readonly<Record<string, string>> } = {}): void {
    this.code = code;
    this.layer = CATALOG[code].layer;
    this.policy = policy;
    if (this.res.headersSent) {
      // Too late for a status: the only honest signal left is to cut the response short.
      this.res.destroy();
      return;
    }
    // A small unread body is cheaper to drain than a new connection; a large or chunked one is not.
    const h = this.req.headers;
    const bigBody = h['transfer-encoding'] !== undefined || Number(h['content-length'] ?? 0) > 65_536;
    if (bigBody && !this.req.complete) this.res.setHeader('connection', 'close');
    this.bytesOut = sendProblem(
      this.res,
      {
        code,
        policy,
        requestId: this.requestId,
        requestIdHeader: this.config.source.request_id.header,
        detailed: this.detailed(),
        typeBase: this.config.source.errors.type_base,
        ...(this.route !== undefined ? { envelope: this.route.envelope } : {}),
        ...(opts.evidence !== undefined ? { evidence: opts.evidence } : {}),
        ...(opts.rule !== undefined ? { rule: opts.rule } : {}),
        ...(opts.headers !== undefined || this.extraHeaders !== undefined ? { headers: { ...this.extraHeaders, ...opts.headers } } : {}),
      },
      this.req.method ?? 'GET',
    );
  }

  /** Fixes the final status, code and layer once the response closed. */
  settle(): void {
    const res = this.res;
    this.latencyMs = Math.round((performance.now() - this.t0) * 1000) / 1000;
    this.status = res.statusCode;
    if (this.upgraded) {
      this.status = 101;
    } else if (this.rawStatus !== undefined) {
      this.status = this.rawStatus;
    } else if (!res.writableFinished && !res.headersSent) {
      // The client left before any response: record it as such, never as a 200.
      this.status = CATALOG.CLIENT_CLOSED_REQUEST.status;
      this.code ??= 'CLIENT_CLOSED_REQUEST';
      this.layer ??= 'client';
    }
  }

  /**
   * Built once the response closed, from what the exchange holds: nothing is copied or redacted
   * while the request is in flight. A failure costs the record, never the entry.
   */
  #replayRecord(): CallLogEntry['replay'] {
    try {
      return buildReplayRecord({
        config: this.config,
        headers: this.req.headers,
        query: this.query,
        peer: this.#socket.remoteAddress,
        ipSource: this.clientIpSource,
        identity: this.identity,
        body: this.bufferedBody,
        digests: this.digests,
      });
    } catch {
      return null;
    }
  }

  toEntry(): CallLogEntry {
    const ua = this.req.headers['user-agent'];
    return {
      ts: this.ts,
      requestId: this.requestId,
      clientIp: this.clientIp,
      consumer: this.identity?.consumer ?? null,
      credentialId: this.identity?.credentialId ?? null,
      route: this.route?.id ?? null,
      method: this.req.method ?? '',
      host: this.req.headers.host ?? '',
      path: this.path,
      status: this.status,
      code: this.code,
      layer: this.layer,
      policy: this.policy,
      latencyMs: this.latencyMs,
      upstreamTarget: this.upstreamTarget,
      attempts: this.attempts,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut > 0 ? this.bytesOut : Number(this.res.getHeader('content-length') ?? 0),
      userAgent: typeof ua === 'string' ? ua : null,
      trace: this.trace,
      upstreamBody: this.upstreamBody,
      monitorDenied: this.monitorDenied,
      replay: this.#replayRecord(),
      ai: this.ai,
    };
  }
}
