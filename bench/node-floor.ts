/**
 * The "node-floor" scenario of bench/run.ts: the plainest Node proxy that does the same job on the
 * wire, so a run shows what Node itself costs on the machine it runs on.
 *
 *   node bench/node-floor.ts PORT UPSTREAM_PORT
 *
 * It is the stack the reference measurements rank first among Node proxies
 * (/work/shared/reference/proxy-stacks.md: node:http + undici `Pool.stream()`, 0.32 × nginx there):
 * one node:http server, one undici Pool with keep-alive to the upstream, the request body piped up
 * and the response body streamed straight from undici into the Node response. It does what any
 * proxy must do to be correct (hop-by-hop fields dropped both ways per RFC 9110 §7.6.1, a 502 when
 * the upstream fails) and nothing a gateway adds: no routing, no policies, no request id, no log,
 * no metrics. Pinpoint bare ÷ node-floor is the share of Node's own ceiling the gateway keeps;
 * nginx ÷ node-floor says how much of the bare ÷ nginx target the machine leaves to win.
 *
 * Not part of the gateway and not shipped: it lives in bench/ only.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { Pool } from 'undici';

const [portArg, upstreamArg] = process.argv.slice(2);
const port = Number(portArg);
const upstreamPort = Number(upstreamArg);
if (!Number.isInteger(port) || !Number.isInteger(upstreamPort)) {
  console.error('usage: node bench/node-floor.ts PORT UPSTREAM_PORT');
  process.exit(64);
}

/** RFC 9110 §7.6.1 hop-by-hop fields, plus the ones Node and undici set themselves. */
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host']);

const pool = new Pool(`http://127.0.0.1:${upstreamPort}`, { connections: 128, pipelining: 1 });

/** The end-to-end fields of a header object, either way (requests up, responses down). */
function endToEnd(h: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in h) {
    const v = h[name];
    if (v !== undefined && !HOP.has(name)) out[name] = v;
  }
  return out;
}

const server = createServer((req, res) => {
  pool
    .stream(
      { method: req.method ?? 'GET', path: req.url ?? '/', headers: endToEnd(req.headers), body: req.method === 'GET' || req.method === 'HEAD' ? null : req },
      ({ statusCode, headers }) => {
        res.writeHead(statusCode, endToEnd(headers));
        // The Node response is the sink undici writes the body into.
        return res;
      },
    )
    .catch(() => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('upstream failed\n');
    });
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1');
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    server.close();
    void pool.close();
    server.closeAllConnections();
  });
}
