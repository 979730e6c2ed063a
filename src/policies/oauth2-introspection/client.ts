/**
 * The one I/O edge of `oauth2-introspection`: an RFC 7662 §2.1 introspection request over undici.
 * It never throws: every way the call can fail becomes an {@link IntrospectionFailure} that the
 * decision turns into INTROSPECTION_UNAVAILABLE, naming what failed.
 */
import { request, type Dispatcher } from 'undici';

export interface IntrospectionFailure {
  readonly ok: false;
  /** Short, non-secret description: 'HTTP 500', 'timeout after 2000 ms', 'ECONNREFUSED', 'invalid JSON'… */
  readonly failure: string;
  /** HTTP status of the endpoint's answer, when it answered. */
  readonly status: number | null;
  /** Error code of the transport failure (ECONNREFUSED, UND_ERR_SOCKET, TIMEOUT…), when there was one. */
  readonly errorCode: string | null;
}

export interface IntrospectionAnswer {
  readonly ok: true;
  /** The parsed JSON object; `active` is known to be a boolean (RFC 7662 §2.2: REQUIRED). */
  readonly body: Readonly<Record<string, unknown>> & { readonly active: boolean };
}

export type IntrospectionResult = IntrospectionAnswer | IntrospectionFailure;

/** Asks the authorization server about one token. Injected so decide can be tested without a network. */
export interface Introspector {
  introspect(token: string): Promise<IntrospectionResult>;
}

export interface HttpIntrospectorOptions {
  readonly endpoint: URL;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly timeoutMs: number;
  /** Largest answer read; an introspection answer is a small JSON object. */
  readonly maxBytes?: number;
  /** undici dispatcher; the global one when absent. */
  readonly dispatcher?: Dispatcher;
}

const DEFAULT_MAX_BYTES = 64 * 1024;

/**
 * RFC 6749 §2.3.1: client_id and client_secret are form-urlencoded (Appendix B) before they are
 * joined with ':' and base64-encoded, so a ':' or non-ASCII character in either survives.
 */
export function basicAuthorization(clientId: string, clientSecret: string): string {
  const enc = (s: string): string => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(clientId)}:${enc(clientSecret)}`, 'utf8').toString('base64')}`;
}

function fail(failure: string, status: number | null, errorCode: string | null): IntrospectionFailure {
  return { ok: false, failure, status, errorCode };
}

function errorCodeOf(err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code !== '') return code;
    const name = (err as { name?: unknown }).name;
    if (typeof name === 'string' && name !== '') return name;
  }
  return 'UNKNOWN';
}

export function httpIntrospector(opts: HttpIntrospectorOptions): Introspector {
  const authorization = basicAuthorization(opts.clientId, opts.clientSecret);
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const url = opts.endpoint.href;
  return {
    async introspect(token) {
      // One deadline for the whole exchange (connect, headers, body): the client is waiting.
      const signal = AbortSignal.timeout(opts.timeoutMs);
      try {
        const res = await request(url, {
          method: 'POST',
          headers: {
            // RFC 7662 §2.1: parameters as application/x-www-form-urlencoded; the hint lets the
            // server look in its access-token table first.
            'content-type': 'application/x-www-form-urlencoded',
            accept: 'application/json',
            authorization,
          },
          body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
          signal,
          ...(opts.dispatcher !== undefined ? { dispatcher: opts.dispatcher } : {}),
        });
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const chunk of res.body) {
          const b = chunk as Buffer;
          size += b.length;
          if (size > maxBytes) {
            res.body.destroy();
            return fail(`answer larger than ${maxBytes} bytes`, res.statusCode, null);
          }
          chunks.push(b);
        }
        // RFC 7662 §2.2: a successful answer is 200 with a JSON object; §2.3: 401 means the
        // endpoint refused the gateway's own credentials. Anything else is the endpoint's fault.
        if (res.statusCode !== 200) return fail(`HTTP ${res.statusCode}`, res.statusCode, null);
        let parsed: unknown;
        try {
          parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return fail('invalid JSON', res.statusCode, null);
        }
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return fail('answer is not a JSON object', res.statusCode, null);
        if (typeof (parsed as { active?: unknown }).active !== 'boolean') return fail('answer has no boolean "active" member', res.statusCode, null);
        return { ok: true, body: parsed as IntrospectionAnswer['body'] };
      } catch (err) {
        if (signal.aborted) return fail(`timeout after ${opts.timeoutMs} ms`, null, 'TIMEOUT');
        const code = errorCodeOf(err);
        return fail(code, null, code);
      }
    },
  };
}
