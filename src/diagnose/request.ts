/**
 * A request described rather than received: what `pinpoint diagnose` and `POST /admin/trace`
 * run through the live config, from a curl command line, a raw HTTP message or JSON.
 */
export interface DescribedRequest {
  readonly method: string;
  /** Path and query as sent, e.g. /orders?limit=5. */
  readonly target: string;
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Buffer;
  /** The client address the gateway would see (default 127.0.0.1). */
  readonly clientIp?: string;
}

/** Splits an absolute URL or a path into the Host header and the request target. */
export function splitUrl(url: string): { host: string | undefined; target: string } {
  if (url.startsWith('/')) return { host: undefined, target: url };
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `http://${url}`;
  const u = new URL(withScheme);
  return { host: u.host, target: `${u.pathname}${u.search}` };
}
