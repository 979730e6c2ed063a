/**
 * Protocol upgrades (WebSocket, RFC 6455 §4): the upgrade request goes through the same route
 * match and policies as any request; a denial is answered in the same envelope. An allowed
 * upgrade is sent to one target with undici's `dispatch()` and its `upgrade` option (no retries:
 * the handshake is not replayable once the upstream accepted it).
 *
 * Until the upstream answers 101, the client socket stays attached to a ServerResponse, so every
 * answer that is not a tunnel (a denial, an upstream failure, the upstream's own 4xx) goes
 * through the normal response path: the envelope, Proxy-Status, the call log. Only a 101 detaches
 * the socket and splices it to the upstream socket.
 */
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Target, UpstreamGroup } from '../proxy/upstreams.ts';
import {
  BodyCapture,
  noHealthyTarget,
  onLateResponse,
  prepare,
  requestIdOf,
  sendInternalError,
  upstreamFailure,
  upstreamHeaders,
  upstreamPath,
  upstreamResponseHead,
  type GatewayDeps,
  type Prepared,
} from './gateway.ts';

/**
 * Client bytes read before the 101 are kept, to be sent up once the tunnel exists. RFC 6455 §4.1
 * has the client wait for the server's handshake before sending frames, so this is a margin for
 * lax clients, not a buffer that fills in normal use; past it the socket is paused.
 */
const MAX_EARLY_BYTES = 65_536;

export function createUpgradeHandler(deps: GatewayDeps, proto = 'http'): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    const rt = deps.current();
    let requestId = '';
    let res: ServerResponse | undefined;
    const internal = (err: unknown): void => {
      // A bug, not a denial: answered in the envelope when the response has not started, as
      // gateway.ts does; the process never sees it as an uncaught exception.
      deps.onInternalError(err, requestId);
      if (res === undefined || res.headersSent || res.socket !== socket) {
        socket.destroy();
        return;
      }
      sendInternalError(rt, requestId, req, res);
    };
    try {
      socket.on('error', () => socket.destroy());
      requestId = requestIdOf(rt, req);
      res = new ServerResponse(req);
      // Any answer other than 101 ends the connection (below, on 'finish'): say so (RFC 9112 §9.6).
      res.shouldKeepAlive = false;
      res.assignSocket(socket as never);
      // As Node's own server does for Connection: close: once the answer is flushed, the socket
      // goes, without waiting for the client to close its side (the socket is half-open capable).
      res.once('finish', () => socket.end(() => socket.destroy()));
      const early = watchClient(socket, res);
      const prepared = prepare(deps, rt, requestId, req, res);
      if (prepared instanceof Promise) {
        prepared
          .then((p) => {
            if (p !== undefined) tunnel(deps, proto, p, socket, head, early);
          })
          .catch(internal);
      } else if (prepared !== undefined) tunnel(deps, proto, prepared, socket, head, early);
    } catch (err) {
      internal(err);
    }
  };
}

/** What the client sent before the 101, and how to stop collecting it. */
interface EarlyBytes {
  readonly chunks: Buffer[];
  stop(): void;
}

/**
 * Reads the client socket while the handshake is pending. Node hands the socket over paused
 * (readableFlowing null), and a paused socket never reports the client's FIN: without reading,
 * a client that leaves mid-handshake goes unnoticed and the upstream handshake (and its socket)
 * lives on. The bytes read are kept for the upstream.
 */
function watchClient(socket: Duplex, res: ServerResponse): EarlyBytes {
  const chunks: Buffer[] = [];
  let size = 0;
  const onData = (c: Buffer): void => {
    chunks.push(c);
    size += c.length;
    if (size > MAX_EARLY_BYTES) socket.pause();
  };
  // The http server lets sockets half-close (allowHalfOpen). A client that ended its side before
  // any answer started has left (it could not use a tunnel whose sending half is closed): close,
  // which records the exchange and aborts the upstream handshake. Once an answer is being written,
  // it is finished first ('finish' ends our side too).
  const onEnd = (): void => {
    if (!res.headersSent) socket.destroy();
  };
  socket.on('data', onData);
  socket.once('end', onEnd);
  return {
    chunks,
    stop() {
      socket.off('data', onData);
      socket.off('end', onEnd);
    },
  };
}

function tunnel(deps: GatewayDeps, proto: string, p: Prepared, socket: Duplex, head: Buffer, early: EarlyBytes): void {
  const { x, route } = p;
  if (route.kind !== 'proxy') {
    // AI and prompt routes answer requests themselves; they have no upstream to tunnel to.
    const evidence = { upgrade: String(x.req.headers.upgrade ?? ''), route: route.id, kind: route.kind };
    const rule = `${route.kind} routes do not tunnel upgrades`;
    x.trace.push({ policy: 'gateway', type: 'upgrade', outcome: 'deny', rule, code: 'UPGRADE_NOT_SUPPORTED', evidence, us: 0 });
    x.reply('UPGRADE_NOT_SUPPORTED', 'gateway', { evidence, rule });
    return;
  }
  const group = p.rt.upstreams.groups.get(route.upstreamId) as UpstreamGroup;
  const now = Date.now();
  const { target, retryAt } = group.pick(now);
  if (target === undefined) {
    noHealthyTarget(x, group.id, retryAt, now);
    return;
  }
  x.attempts = 1;
  x.upstreamTarget = target.url;
  const req = x.req;
  target.pool.dispatch(
    {
      path: upstreamPath(route, target, x.path, p.query),
      method: req.method ?? 'GET',
      headers: upstreamHeaders(p, target, proto),
      upgrade: typeof req.headers.upgrade === 'string' ? req.headers.upgrade : 'websocket',
    },
    new Handshake(deps, p, group, target, socket, head, early),
  );
}

/**
 * The upstream handshake as an undici dispatch handler (the new-style API, like Attempt in
 * gateway.ts). A 101 becomes a tunnel; any other answer is the upstream's and is passed through
 * unchanged, counting as a success of the target (it answered: a 403 to a handshake is a refusal,
 * not a fault). Only errors (connect, reset, timeout) count toward the target's health.
 */
class Handshake implements Dispatcher.DispatchHandler {
  readonly #deps: GatewayDeps;
  readonly #p: Prepared;
  readonly #group: UpstreamGroup;
  readonly #target: Target;
  readonly #socket: Duplex;
  readonly #head: Buffer;
  readonly #early: EarlyBytes;
  /** timeouts.response_ms on a native timer: undici's headersTimeout (kept as a backstop) is coarse. */
  #late: NodeJS.Timeout | undefined;
  #captured: BodyCapture | undefined;

  constructor(deps: GatewayDeps, p: Prepared, group: UpstreamGroup, target: Target, socket: Duplex, head: Buffer, early: EarlyBytes) {
    this.#deps = deps;
    this.#p = p;
    this.#group = group;
    this.#target = target;
    this.#socket = socket;
    this.#head = head;
    this.#early = early;
  }

  /** The client left: the exchange is recorded (or about to be) as CLIENT_CLOSED_REQUEST. */
  get #clientGone(): boolean {
    return this.#p.x.recorded || this.#socket.destroyed;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    if (this.#clientGone) {
      controller.abort(new Error('client closed the connection'));
      return;
    }
    // Set so that record() (on the client socket's close) aborts the handshake and its socket.
    this.#p.x.upstream = controller;
    clearTimeout(this.#late);
    this.#late = setTimeout(onLateResponse, this.#group.config.timeouts.response_ms, controller);
    this.#late.unref();
  }

  onRequestUpgrade(controller: Dispatcher.DispatchController, _statusCode: number, _headers: unknown, up: Duplex): void {
    clearTimeout(this.#late);
    const { x, rt } = this.#p;
    x.upstream = undefined;
    const socket = this.#socket;
    this.#group.success(this.#target);
    if (this.#clientGone) {
      up.destroy();
      return;
    }
    const res = x.res;
    try {
      let head101 = 'HTTP/1.1 101 Switching Protocols\r\n';
      const raw = (controller.rawHeaders ?? []) as (Buffer | string)[];
      for (let i = 0; i + 1 < raw.length; i += 2) head101 += `${raw[i]!.toString()}: ${raw[i + 1]!.toString()}\r\n`;
      head101 += `${rt.compiled.source.request_id.header}: ${x.requestId}\r\n\r\n`;
      // From here the socket carries the new protocol: the ServerResponse lets go of it, and the
      // exchange is recorded when the tunnel closes.
      res.detachSocket(socket as never);
      res.removeAllListeners('finish');
      this.#early.stop();
      x.upgraded = true;
      socket.write(head101);
      if (this.#head.length > 0) up.write(this.#head);
      for (const c of this.#early.chunks) up.write(c);
      let closed = false;
      const close = (): void => {
        if (closed) return;
        closed = true;
        up.destroy();
        socket.destroy();
        res.emit('close');
      };
      up.on('error', close).on('close', close);
      socket.on('close', close);
      up.pipe(socket);
      socket.pipe(up);
    } catch (err) {
      this.#deps.onInternalError(err, x.requestId);
      up.destroy();
      socket.destroy();
      if (res.socket !== socket) res.emit('close');
    }
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number): void {
    if (statusCode < 200) return; // 1xx informational: the final answer follows
    clearTimeout(this.#late);
    const { x, rt } = this.#p;
    this.#group.success(this.#target);
    if (this.#clientGone) return;
    const logBytes = rt.compiled.source.call_log.upstream_body_bytes;
    if (statusCode >= 400 && logBytes > 0) this.#captured = new BodyCapture(logBytes);
    // No tunnel follows: the connection closes after this answer (res.shouldKeepAlive is false).
    x.res.writeHead(statusCode, upstreamResponseHead(x, this.#p.route, controller.rawHeaders as Buffer[] | undefined, statusCode, rt.compiled.source.request_id.header));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const x = this.#p.x;
    if (this.#clientGone) return;
    x.bytesOut += chunk.length;
    this.#captured?.add(chunk);
    if (!x.res.write(chunk)) {
      controller.pause();
      x.res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    const x = this.#p.x;
    x.upstream = undefined;
    this.#keepBody();
    if (!this.#clientGone) x.res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    clearTimeout(this.#late);
    try {
      this.#failed(err);
    } catch (bug) {
      // Thrown from here it would reach undici, which re-emits it as an 'error' the pool does not
      // listen to: an uncaught exception.
      this.#deps.onInternalError(bug, this.#p.x.requestId);
      this.#socket.destroy();
    }
  }

  #failed(err: Error): void {
    const { x } = this.#p;
    x.upstream = undefined;
    this.#keepBody();
    if (this.#clientGone) {
      // The client left and the handshake was aborted for it: nothing to answer, not the target's fault.
      x.code = 'CLIENT_CLOSED_REQUEST';
      x.layer = 'client';
      return;
    }
    const f = upstreamFailure(this.#deps, x, this.#group, this.#target, err);
    if (f !== undefined) x.reply(f.code, `upstream:${this.#group.id}`, { evidence: f.evidence, rule: f.rule });
  }

  #keepBody(): void {
    if (this.#captured !== undefined) this.#p.x.upstreamBody = this.#captured.text(this.#p.x.req);
    this.#captured = undefined;
  }
}
