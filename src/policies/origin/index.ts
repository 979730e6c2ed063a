/**
 * `origin`: for state-changing methods, the `Origin` header (or, when absent, the Referer's
 * origin) must be one of the allowed origins. Fails closed: an unknown origin, an unknown Referer
 * origin and a request with neither are each refused with their own code (403). WebSocket
 * handshakes are checked whatever their method (see decide.ts: cross-site WebSocket hijacking).
 */
import { ConfigError, type ConfigIssue, type PolicyModule } from '../../pipeline/types.ts';
import { decideOrigin, type OriginCompiled } from './decide.ts';
import { compileOrigins } from './origins.ts';
import { OriginSchema } from './schema.ts';

export const origin: PolicyModule<typeof OriginSchema> = {
  type: 'origin',
  summary: 'Refuses state-changing requests whose Origin (or Referer origin) is not an allowed origin.',
  schema: OriginSchema,
  compile(config, meta, ctx) {
    const issues: ConfigIssue[] = [];
    const allowed = compileOrigins(config.allowed_origins, `${ctx.path}.allowed_origins`, issues, {
      allowStar: false,
      starRefusal: 'it would allow every site to send these requests; list your origins (patterns such as https://*.example.com are accepted)',
    });
    if (issues.length > 0) throw new ConfigError(issues);
    const compiled: OriginCompiled = Object.freeze({
      allowed,
      // Methods are case-sensitive (RFC 9110 §9.1) but the standard ones are upper-case; a config
      // writing "post" means POST.
      methods: new Set(config.methods.map((m) => m.toUpperCase())),
      refererFallback: config.allow_referer_fallback,
      allowMissing: config.allow_missing,
    });
    return { id: meta.id, type: 'origin', mode: meta.mode, decide: (dctx) => decideOrigin(compiled, dctx) };
  },
};
