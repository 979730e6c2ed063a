/** Reads a raw HTTP/1.1 request message (request line, headers, blank line, body). */
import type { DescribedRequest } from './request.ts';

export function parseRawHttp(text: string | Buffer): DescribedRequest {
  const buf = typeof text === 'string' ? Buffer.from(text.replace(/\r?\n/g, '\r\n')) : text;
  const end = buf.indexOf('\r\n\r\n');
  const head = buf.subarray(0, end < 0 ? buf.length : end).toString('latin1');
  const lines = head.split('\r\n');
  const m = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/.exec(lines[0] ?? '');
  if (m === null) throw new Error(`not an HTTP/1.1 request line: ${JSON.stringify(lines[0] ?? '')}`);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`malformed header line: ${JSON.stringify(line)}`);
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const body = end < 0 ? undefined : buf.subarray(end + 4);
  return { method: m[1] as string, target: m[2] as string, headers, ...(body !== undefined && body.length > 0 ? { body } : {}) };
}
