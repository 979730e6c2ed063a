/**
 * `cors`: the CORS protocol (Fetch standard, #http-cors-protocol) at the gateway. Preflights are answered here
 * (204 with the allowance, or a 403 denial naming what was missing, for the log); responses to
 * allowed origins carry Access-Control-Allow-Origin, including the gateway's own denials, so a
 * page can read why it was refused. Other origins are not blocked (the browser does that) but get
 * no CORS headers, and the trace says so.
 */
import { ConfigError, type ConfigIssue, type PolicyModule } from '../../pipeline/types.ts';
import { compileOrigins } from '../origin/origins.ts';
import { decideCors, type CorsCompiled } from './decide.ts';
import { CorsSchema } from './schema.ts';

/** Fetch #http-responses: with credentials, `*` in these headers is the literal name "*", not a wildcard. */
const CREDENTIALED_STAR = 'with allow_credentials: true, browsers read "*" as a literal name, not a wildcard (Fetch standard, CORS protocol); list the values instead';

function starIssues(list: readonly string[], path: string, credentials: boolean, issues: ConfigIssue[]): boolean {
  let star = false;
  list.forEach((v, i) => {
    if (v !== '*') return;
    star = true;
    if (credentials) issues.push({ path: `${path}[${i}]`, message: `"*" ${CREDENTIALED_STAR}` });
  });
  return star;
}

export const cors: PolicyModule<typeof CorsSchema> = {
  type: 'cors',
  summary: 'CORS (Fetch standard): answers preflights, adds Access-Control-* headers for allowed origins, logs what a refused preflight lacked.',
  schema: CorsSchema,
  compile(config, meta, ctx) {
    const issues: ConfigIssue[] = [];
    const credentials = config.allow_credentials;
    const origins = compileOrigins(config.allow_origins, `${ctx.path}.allow_origins`, issues, {
      allowStar: !credentials,
      // Fetch #cors-protocol-and-credentials: a credentialed response must name the origin;
      // `Access-Control-Allow-Origin: *` with credentials fails in every browser.
      starRefusal: 'allow_credentials is true, and a credentialed response must name the origin (Fetch standard, CORS protocol and credentials); list the origins, or use patterns such as https://*.example.com',
    });
    const anyMethod = starIssues(config.allow_methods, `${ctx.path}.allow_methods`, credentials, issues);
    const anyHeader = starIssues(config.allow_headers, `${ctx.path}.allow_headers`, credentials, issues);
    starIssues(config.expose_headers, `${ctx.path}.expose_headers`, credentials, issues);
    if (issues.length > 0) throw new ConfigError(issues);

    const preflightStatic: Record<string, string> = {};
    if (config.allow_methods.length > 0) preflightStatic['access-control-allow-methods'] = config.allow_methods.join(', ');
    if (config.allow_headers.length > 0) preflightStatic['access-control-allow-headers'] = config.allow_headers.join(', ');
    if (credentials) preflightStatic['access-control-allow-credentials'] = 'true';
    preflightStatic['access-control-max-age'] = String(config.max_age);

    const actualStatic: Record<string, string> = {};
    if (credentials) actualStatic['access-control-allow-credentials'] = 'true';
    if (config.expose_headers.length > 0) actualStatic['access-control-expose-headers'] = config.expose_headers.join(', ');

    const noGrant: Record<string, string> = origins.any ? { 'access-control-allow-origin': '*', ...actualStatic } : { vary: 'Origin' };
    const compiled: CorsCompiled = Object.freeze({
      origins,
      methods: new Set(config.allow_methods),
      anyMethod,
      headers: new Set(config.allow_headers.map((h) => h.toLowerCase())),
      anyHeader,
      allowedMethods: Object.freeze([...config.allow_methods]),
      allowedHeaders: Object.freeze([...config.allow_headers]),
      preflightStatic: Object.freeze(preflightStatic),
      actualStatic: Object.freeze(actualStatic),
      noGrant: Object.freeze(noGrant),
    });
    return { id: meta.id, type: 'cors', mode: meta.mode, decide: (dctx) => decideCors(compiled, dctx) };
  },
};
