/**
 * `csrf`: cross-site request forgery protection for cookie-authenticated browser requests, by
 * double-submit token or by a required custom header. Fails closed on the requests it checks: a
 * missing cookie, a missing or different token and a missing header each have their own code (403).
 * A WebSocket handshake with cookies, which no browser can add a token to, is checked on its Origin
 * instead: it must be on the request's own host (see decide.ts).
 */
import { ConfigError, type ConfigIssue, type PolicyModule } from '../../pipeline/types.ts';
import { decideCsrf, type CsrfCompiled } from './decide.ts';
import { CsrfSchema } from './schema.ts';

/**
 * Headers a cross-site page can get sent without a preflight, or that the browser sets itself
 * (Fetch #cors-safelisted-request-header, #forbidden-request-header): requiring one proves
 * nothing about where the request came from.
 */
const SAFELISTED = new Set(['accept', 'accept-language', 'content-language', 'content-type', 'range']);
const FORBIDDEN = new Set([
  'accept-charset',
  'accept-encoding',
  'access-control-request-headers',
  'access-control-request-method',
  'connection',
  'content-length',
  'cookie',
  'cookie2',
  'date',
  'dnt',
  'expect',
  'host',
  'keep-alive',
  'origin',
  'referer',
  'set-cookie',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'via',
]);

/** Why `name` cannot serve as proof of a same-site request, or undefined when it can. */
function unusableHeader(name: string): string | undefined {
  if (SAFELISTED.has(name)) return `${name} is a CORS-safelisted header: a cross-site form or simple request can send it without a preflight`;
  if (FORBIDDEN.has(name) || name.startsWith('proxy-') || name.startsWith('sec-')) return `${name} is set by the browser itself, on cross-site requests too`;
  return undefined;
}

export const csrf: PolicyModule<typeof CsrfSchema> = {
  type: 'csrf',
  summary: 'CSRF protection for cookie-authenticated unsafe requests: double-submit token or required custom header.',
  schema: CsrfSchema,
  compile(config, meta, ctx) {
    const issues: ConfigIssue[] = [];
    const headerName = config.header_name.toLowerCase();
    const requiredHeader = config.required_header.toLowerCase();
    // Only the field the mode uses is checked: the other one holds its (valid) default.
    if (config.mode === 'header') {
      const why = unusableHeader(requiredHeader);
      if (why !== undefined) issues.push({ path: `${ctx.path}.required_header`, message: why });
    } else {
      // A token in a header the browser controls could never be set by the page.
      if (FORBIDDEN.has(headerName) || headerName.startsWith('proxy-') || headerName.startsWith('sec-')) {
        issues.push({ path: `${ctx.path}.header_name`, message: `${headerName} is set by the browser itself; page script cannot put the token in it` });
      }
    }
    if (issues.length > 0) throw new ConfigError(issues);
    const compiled: CsrfCompiled = Object.freeze({
      mode: config.mode,
      cookieName: config.cookie_name,
      headerName,
      requiredHeader,
      // Methods are case-sensitive (RFC 9110 §9.1); a config writing "post" means POST.
      methods: new Set(config.methods.map((m) => m.toUpperCase())),
      onlyWithCookies: config.only_with_cookies,
    });
    return { id: meta.id, type: 'csrf', mode: meta.mode, decide: (dctx) => decideCsrf(compiled, dctx) };
  },
};
