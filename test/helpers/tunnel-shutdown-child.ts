/**
 * Child process for websocket.test.ts: opens a WebSocket tunnel through a gateway, closes the
 * gateway while the client leaves, closes everything else, prints a JSON line, and then lets the
 * process end on its own. The parent measures how long the process stays alive after that line:
 * anything the gateway left behind (a ref'd timer, a socket) keeps it alive.
 *
 * argv[2]: shutdownGraceMs.
 */
import { once } from 'node:events';
import { startGateway } from './harness.ts';
import { open, startWsUpstream } from './ws.ts';

const grace = Number(process.argv[2] ?? '3000');
const up = await startWsUpstream();
const gw = await startGateway(
  { version: 1, upstreams: { ws: { targets: [{ url: up.url }] } }, routes: [{ id: 'ws', paths: ['/ws'], upstream: 'ws' }] },
  { shutdownGraceMs: grace },
);
const { ws, res } = await open(`${gw.url.replace('http:', 'ws:')}/ws`);
const id = String(res.headers['x-request-id']);
const echoed = once(ws, 'message');
ws.send('ping');
await echoed;
const upstreamSides = [...up.wss.clients].map((c) => once(c, 'close'));

const t0 = performance.now();
const closing = gw.closeApp();
const wsClosed = once(ws, 'close');
ws.close(1000, 'bye');
await wsClosed;
await closing;
const closeMs = performance.now() - t0;
await Promise.all(upstreamSides);
const rows = gw.queryLog({ requestId: id });
await gw.close();
await up.close();
process.stdout.write(`${JSON.stringify({ closeMs, status: rows[0]?.status ?? null })}\n`);
