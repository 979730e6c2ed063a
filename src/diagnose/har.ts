/**
 * Reads the requests of a HAR file (HTTP Archive 1.2, as exported by browser devtools).
 * Pseudo-headers of HTTP/2 entries (":authority" …) are mapped to HTTP/1.1 fields.
 */
import { splitUrl, type DescribedRequest } from './request.ts';

interface HarRequest {
  method?: unknown;
  url?: unknown;
  headers?: { name?: unknown; value?: unknown }[];
  postData?: { text?: unknown; mimeType?: unknown };
}

export function parseHar(text: string): DescribedRequest[] {
  let doc: { log?: { entries?: { request?: HarRequest }[] } };
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch {
    throw new Error('not a HAR file: not JSON');
  }
  const entries = doc.log?.entries;
  if (!Array.isArray(entries)) throw new Error('not a HAR file: no log.entries');
  return entries.map((e, i) => {
    const r = e.request;
    if (r === undefined || typeof r.method !== 'string' || typeof r.url !== 'string') throw new Error(`log.entries[${i}].request: method and url are required`);
    const { host, target } = splitUrl(r.url);
    const headers: Record<string, string> = {};
    for (const h of r.headers ?? []) {
      if (typeof h.name !== 'string' || typeof h.value !== 'string') continue;
      const name = h.name.toLowerCase();
      if (name === ':authority') headers.host = h.value;
      else if (!name.startsWith(':')) headers[name] = h.value;
    }
    if (headers.host === undefined && host !== undefined) headers.host = host;
    const bodyText = r.postData?.text;
    const body = typeof bodyText === 'string' && bodyText !== '' ? Buffer.from(bodyText) : undefined;
    if (body !== undefined) {
      if (headers['content-type'] === undefined && typeof r.postData?.mimeType === 'string') headers['content-type'] = r.postData.mimeType;
      headers['content-length'] = String(body.length);
    }
    return { method: r.method.toUpperCase(), target, headers, ...(body !== undefined ? { body } : {}) };
  });
}
