/**
 * Renders docs/errors.md from the catalog. The file is committed, and a test fails when it differs
 * from what this renders, so the published reference and the code cannot drift apart.
 */
import { CATALOG, CODES, docsAnchor } from './catalog.ts';

export function renderErrorReference(): string {
  const out: string[] = [];
  out.push('# Error reference');
  out.push('');
  out.push('<!-- Generated from src/errors/catalog.ts by `npm run docs`. Do not edit by hand: a test checks it. -->');
  out.push('');
  out.push('Every response Pinpoint makes itself is an RFC 9457 `application/problem+json` document with');
  out.push('`type`, `title`, `status`, `code`, `layer`, `policy`, `request_id` and `retryable`; in detailed mode also');
  out.push('`detail`, `remediation` and `evidence`. The same code is in the `x-pinpoint-code` header, the');
  out.push('RFC 9209 `Proxy-Status` header and the call log. Codes are stable and never reused.');
  out.push('');
  out.push('| code | status | layer | retryable | Proxy-Status error |');
  out.push('|---|---|---|---|---|');
  for (const c of CODES) {
    const e = CATALOG[c];
    out.push(`| [${c}](#${docsAnchor(c)}) | ${e.status} | ${e.layer} | ${e.retryable ? 'yes' : 'no'} | \`${e.proxyStatus}\` |`);
  }
  out.push('');
  for (const c of CODES) {
    const e = CATALOG[c];
    out.push(`## ${c}`);
    out.push('');
    out.push(`**${e.status}** — ${e.title}. Layer: \`${e.layer}\`. Retryable: ${e.retryable ? 'yes' : 'no'}.`);
    out.push('');
    out.push(`Remediation: ${e.remediation}`);
    out.push('');
  }
  return out.join('\n');
}
