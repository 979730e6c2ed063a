/**
 * Preloaded into Portkey's gateway by bench/ai.ts (`node --import ./bench/ai-loopback.ts …`).
 * Its start-server.js listens on `--port` with no host, i.e. on every interface, and has no option
 * for the address; the benchmark keeps everything on 127.0.0.1. So a listen() given a port and no
 * host gets host 127.0.0.1. Nothing else is changed, and a listen() that names a host is left alone.
 */
import net from 'node:net';

// Called through Reflect.apply with the server as `this`, so it is never used unbound.
// eslint-disable-next-line @typescript-eslint/unbound-method
const listen = net.Server.prototype.listen;

net.Server.prototype.listen = function listenOnLoopback(this: net.Server, ...args: unknown[]): net.Server {
  if (typeof args[0] === 'number' && (args[1] === undefined || typeof args[1] === 'function')) {
    args = [args[0], '127.0.0.1', ...args.slice(args[1] === undefined ? 2 : 1)];
  }
  return Reflect.apply(listen, this, args) as net.Server;
};
