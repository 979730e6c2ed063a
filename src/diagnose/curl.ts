/**
 * Reads a curl command line (as copied from a terminal or from a browser's "Copy as cURL") into a
 * described request. Only what changes the request is read; output options are ignored.
 */
import { splitUrl, type DescribedRequest } from './request.ts';

/** POSIX-shell-like word splitting: single quotes, double quotes with \ escapes, $'…', line continuations. */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let i = 0;
  const s = line.replace(/\\\r?\n/g, ' ');
  while (i < s.length) {
    const ch = s[i] as string;
    if (ch === "'" ) {
      const end = s.indexOf("'", i + 1);
      if (end < 0) throw new Error('unterminated single quote');
      cur += s.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (ch === '$' && s[i + 1] === "'") {
      let j = i + 2;
      for (; j < s.length && s[j] !== "'"; j++) {
        if (s[j] === '\\' && j + 1 < s.length) {
          const e = s[++j] as string;
          cur += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e;
        } else cur += s[j];
      }
      if (j >= s.length) throw new Error("unterminated $' quote");
      inWord = true;
      i = j + 1;
    } else if (ch === '"') {
      let j = i + 1;
      for (; j < s.length && s[j] !== '"'; j++) {
        if (s[j] === '\\' && j + 1 < s.length && '"\\$`'.includes(s[j + 1] as string)) cur += s[++j];
        else cur += s[j];
      }
      if (j >= s.length) throw new Error('unterminated double quote');
      inWord = true;
      i = j + 1;
    } else if (ch === '\\' && i + 1 < s.length) {
      cur += s[i + 1];
      inWord = true;
      i += 2;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
      i++;
    } else {
      cur += ch;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

const IGNORED_WITH_VALUE = new Set(['-o', '--output', '-w', '--write-out', '-m', '--max-time', '--connect-timeout', '--retry', '-x', '--proxy', '--resolve', '--cacert', '--cert', '--key']);

export function parseCurl(line: string): DescribedRequest {
  const words = shellWords(line.trim());
  if (words[0] !== 'curl') throw new Error('not a curl command (it must start with "curl")');
  let method: string | undefined;
  let url: string | undefined;
  const headers: Record<string, string> = {};
  const data: string[] = [];
  let json = false;
  let get = false;
  const value = (i: number, flag: string): string => {
    const v = words[i + 1];
    if (v === undefined) throw new Error(`${flag} needs a value`);
    return v;
  };
  for (let i = 1; i < words.length; i++) {
    const w = words[i] as string;
    switch (w) {
      case '-X':
      case '--request':
        method = value(i++, w).toUpperCase();
        break;
      case '-H':
      case '--header': {
        const h = value(i++, w);
        const colon = h.indexOf(':');
        if (colon > 0) headers[h.slice(0, colon).trim().toLowerCase()] = h.slice(colon + 1).trim();
        break;
      }
      case '-d':
      case '--data':
      case '--data-raw':
      case '--data-binary':
      case '--data-ascii':
        data.push(value(i++, w));
        break;
      case '--json':
        data.push(value(i++, w));
        json = true;
        break;
      case '-u':
      case '--user':
        headers.authorization = `Basic ${Buffer.from(value(i++, w)).toString('base64')}`;
        break;
      case '-b':
      case '--cookie':
        headers.cookie = value(i++, w);
        break;
      case '-A':
      case '--user-agent':
        headers['user-agent'] = value(i++, w);
        break;
      case '-e':
      case '--referer':
        headers.referer = value(i++, w);
        break;
      case '-G':
      case '--get':
        get = true;
        break;
      case '--url':
        url = value(i++, w);
        break;
      default:
        if (IGNORED_WITH_VALUE.has(w)) i++;
        else if (!w.startsWith('-')) url ??= w;
    }
  }
  if (url === undefined) throw new Error('no URL in the curl command');
  let { host, target } = splitUrl(url);
  let body: Buffer | undefined;
  if (data.length > 0 && get) {
    target += (target.includes('?') ? '&' : '?') + data.join('&');
  } else if (data.length > 0) {
    body = Buffer.from(data.join('&'));
    // curl's defaults: -d posts a form, --json posts JSON.
    if (headers['content-type'] === undefined) headers['content-type'] = json ? 'application/json' : 'application/x-www-form-urlencoded';
    if (json && headers.accept === undefined) headers.accept = 'application/json';
    headers['content-length'] = String(body.length);
  }
  if (host !== undefined && headers.host === undefined) headers.host = host;
  host = undefined;
  return { method: method ?? (body !== undefined ? 'POST' : 'GET'), target, headers, ...(body !== undefined ? { body } : {}) };
}
