/**
 * WebSocket helpers for the e2e tests: an echo upstream on the `ws` package, and a client `open`.
 */
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { closeServer } from './harness.ts';

export interface WsUpstream {
  readonly url: string;
  readonly server: Server;
  readonly wss: WebSocketServer;
  /** Handshake headers of each accepted connection. */
  readonly handshakes: { path: string; headers: IncomingHttpHeaders }[];
  close(): Promise<void>;
}

export async function startWsUpstream(): Promise<WsUpstream> {
  const server = createServer((_req, res) => res.end('plain http'));
  const wss = new WebSocketServer({ server });
  const handshakes: WsUpstream['handshakes'] = [];
  wss.on('connection', (ws, req) => {
    handshakes.push({ path: req.url ?? '', headers: req.headers });
    ws.on('message', (data, isBinary) => {
      const text = Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]).toString('utf8');
      ws.send(isBinary ? data : `echo:${text}`, { binary: isBinary });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    wss,
    handshakes,
    async close() {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await closeServer(server);
    },
  };
}

/** Opens a WebSocket; resolves with the socket and the 101 response, once open. */
export function open(url: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket; res: IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, handshakeTimeout: 5000 });
    let upgrade: IncomingMessage | undefined;
    // ws emits 'upgrade' and then 'open' in the same tick: listen to both up front.
    ws.once('upgrade', (res) => (upgrade = res));
    ws.once('open', () => (upgrade !== undefined ? resolve({ ws, res: upgrade }) : reject(new Error('open without upgrade'))));
    ws.once('unexpected-response', (_req, res) => {
      res.socket.destroy();
      reject(new Error(`unexpected response ${res.statusCode}`));
    });
    ws.once('error', reject);
  });
}
