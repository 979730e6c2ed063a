/**
 * The gateway's ServerResponse: once the gateway drains, every response says `Connection: close`
 * (RFC 9112 §9.6: a server that is about to close the connection says so in the response), however
 * it was made: proxied, a denial, an upstream failure, `OPTIONS *`, a policy's local answer, the AI
 * gateway. writeHead is where every response head passes (`res.end()` without it calls
 * `_implicitHeader`, which calls writeHead), so this is the one place to decide it, where
 * answering code would otherwise each have to remember. Node itself keeps `keep-alive` on
 * responses written after `server.close()`.
 */
import { ServerResponse, type IncomingMessage, type OutgoingHttpHeader, type OutgoingHttpHeaders } from 'node:http';

type Head = OutgoingHttpHeaders | OutgoingHttpHeader[];

export function drainingAwareResponse(draining: () => boolean): typeof ServerResponse<IncomingMessage> {
  return class DrainingAwareResponse extends ServerResponse<IncomingMessage> {
    // Both of Node's forms, (status, headers) and (status, message, headers), pass through as given.
    override writeHead(statusCode: number, messageOrHeaders?: string | Head, headers?: Head): this {
      if (draining()) this.shouldKeepAlive = false;
      return super.writeHead(statusCode, messageOrHeaders as string, headers);
    }
  };
}
