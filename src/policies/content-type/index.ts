/**
 * `content-type`: refuses request bodies whose Content-Type the route does not accept (415,
 * RFC 9110 §15.5.16) — the "JSON sent as a form" cause — and bodies sent with no Content-Type.
 * Fails closed: the default accepts JSON only and requires a Content-Type on every body.
 *
 * @example
 * ```yaml
 * policies:
 *   json-only:
 *     type: content-type
 *     config: { allow: [application/json, application/*+json], charsets: [utf-8] }
 * ```
 */
import { ConfigError, type ConfigIssue, type PolicyModule } from '../../pipeline/types.ts';
import { decideContentType, type ContentTypeCompiled } from './decide.ts';
import { parseMediaPattern, type MediaPattern } from './media-type.ts';
import { ContentTypeSchema } from './schema.ts';

export const contentType: PolicyModule<typeof ContentTypeSchema> = {
  type: 'content-type',
  summary: 'Refuses request bodies whose Content-Type is missing or not accepted (415), with Accept-Post / Accept-Patch.',
  schema: ContentTypeSchema,
  compile(config, meta, ctx) {
    const issues: ConfigIssue[] = [];
    const patterns: MediaPattern[] = [];
    config.allow.forEach((text, i) => {
      const p = parseMediaPattern(text);
      if (typeof p === 'string') issues.push({ path: `${ctx.path}.allow[${i}]`, message: p });
      else patterns.push(p);
    });
    config.charsets.forEach((cs, i) => {
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(cs)) issues.push({ path: `${ctx.path}.charsets[${i}]`, message: `"${cs}" is not a charset name` });
    });
    if (issues.length > 0) throw new ConfigError(issues);

    // A media range (RFC 9110 §12.5.1) can say type/subtype, type/* and */*; not *+suffix.
    const expressible = patterns.filter((p) => p.suffix === undefined).map((p) => `${p.type}/${p.subtype}`);
    const compiled: ContentTypeCompiled = Object.freeze({
      patterns: Object.freeze(patterns),
      accepted: Object.freeze([...config.allow]),
      // Method names are case-sensitive (RFC 9110 §9.1), but Node's parser only yields upper-case ones.
      methods: new Set(config.methods.map((m) => m.toUpperCase())),
      requireBodyType: config.require_body_type,
      charsets: new Set(config.charsets.map((c) => c.toLowerCase())),
      charsetList: Object.freeze([...config.charsets]),
      acceptValue: expressible.length > 0 ? [...new Set(expressible)].join(', ') : undefined,
    });
    return { id: meta.id, type: 'content-type', mode: meta.mode, decide: (dctx) => decideContentType(compiled, dctx) };
  },
};
