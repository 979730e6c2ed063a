/**
 * Protocol upgrades (WebSocket, RFC 6455 §4): the upgrade request goes through the same route
 * match and policies as any request; a denial is answered in the same envelope. An allowed
 * upgrade is tunnelled to one target with undici's `upgrade()` (no retries: the handshake is not
 * replayable once the upstream accepted it).
 */
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { rawProblem } from '../errors/problem.ts';
import { CATALOG } from '../errors/catalog.ts';
import { classifyUpstreamError, type UpstreamGroup } from '../proxy/upstreams.ts';
import { prepare, requestIdOf, upstreamHeaders, upstreamPath, type GatewayDeps, type Prepared } from './gateway.ts';

export function createUpgradeHandler(deps: GatewayDeps, proto = 'http'): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    const res = new ServerResponse(req);
    res.assignSocket(socket as never);
    res.once('finish', () => socket.end());
    socket.on('error', () => socket.destroy());
    const rt0 = deps.current();
    const prepared = prepare(deps, rt0, requestIdOf(rt0, req), req, res);
    if (prepared instanceof Promise) {
      prepared.then(
        (p) => {
          if (p !== undefined) tunnel(deps, proto, p, socket, head);
        },
        () => socket.destroy(),
      );
    } else if (prepared !== undefined) tunnel(deps, proto, prepared, socket, head);
  };
}

function tunnel(deps: GatewayDeps, proto: string, p: Prepared, socket: Duplex, head: Buffer): void {
    const res = p.x.res;
    const req = p.x.req;
    res.detachSocket(socket as never);
    res.removeAllListeners('finish');
    const { x, rt, route } = p;
    const group = rt.upstreams.groups.get(route.upstreamId) as UpstreamGroup;
    const { target } = group.pick(Date.now());
    const fail = (code: Parameters<typeof x.reply>[0], evidence: Record<string, string | number | null>): void => {
      x.code = code;
      x.policy = `upstream:${group.id}`;
      x.layer = CATALOG[code].layer;
      x.rawStatus = CATALOG[code].status;
      socket.end(
        rawProblem(
          {
            code,
            policy: `upstream:${group.id}`,
            requestId: x.requestId,
            requestIdHeader: rt.compiled.source.request_id.header,
            detailed: x.detailed(),
            evidence,
            typeBase: rt.compiled.source.errors.type_base,
          },
        ),
      );
      res.emit('close');
    };
    if (target === undefined) {
      fail('UPSTREAM_NO_HEALTHY_TARGET', { upstream: group.id });
      return;
    }
    x.attempts = 1;
    x.upstreamTarget = target.url;
    const upgrade = typeof req.headers.upgrade === 'string' ? req.headers.upgrade : 'websocket';
    target.pool
      .upgrade({
        path: upstreamPath(route, target, x.path, p.query),
        method: (req.method ?? 'GET'),
        headers: upstreamHeaders(p, target, proto),
        protocol: upgrade,
      })
      .then(
        ({ headers, socket: up }) => {
          group.success(target);
          let head101 = 'HTTP/1.1 101 Switching Protocols\r\n';
          for (const [k, v] of Object.entries(headers)) {
            for (const one of Array.isArray(v) ? v : [v]) if (one !== undefined) head101 += `${k}: ${one}\r\n`;
          }
          head101 += `${rt.compiled.source.request_id.header}: ${x.requestId}\r\n\r\n`;
          socket.write(head101);
          if (head.length > 0) up.write(head);
          x.upgraded = true;
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
        },
        (err: unknown) => {
          const code = classifyUpstreamError(err);
          group.failure(target, Date.now());
          deps.metrics.upstreamFailures.inc({ upstream: group.id, target: target.url, code });
          fail(code, { upstream: group.id, target: target.url, reason: (err as { code?: string }).code ?? (err as Error).message });
        },
      );
}
