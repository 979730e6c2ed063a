import type { Decision, DecisionContext } from '../../pipeline/types.ts';
import { bestMatch, clip, hasBody, headerValue, parseMediaType, type MediaPattern } from './media-type.ts';

export interface ContentTypeCompiled {
  readonly patterns: readonly MediaPattern[];
  /** The patterns as written, for evidence. */
  readonly accepted: readonly string[];
  readonly methods: ReadonlySet<string>;
  readonly requireBodyType: boolean;
  /** Lower-cased; empty = any charset. */
  readonly charsets: ReadonlySet<string>;
  readonly charsetList: readonly string[];
  /**
   * The Accept-Post (W3C LDP §7.1.2) / Accept-Patch (RFC 5789 §3.1) value: the patterns a media
   * range can express (`*+suffix` cannot be), or undefined when none can.
   */
  readonly acceptValue: string | undefined;
}

/**
 * On a 415, say which formats would be taken, in the header a client can act on: RFC 5789 §3.1
 * for PATCH, LDP's Accept-Post for POST (RFC 9110 §15.5.16 leaves the choice to the server).
 */
function acceptHeaders(c: ContentTypeCompiled, method: string): Record<string, string> | undefined {
  if (c.acceptValue === undefined) return undefined;
  if (method === 'POST') return { 'accept-post': c.acceptValue };
  if (method === 'PATCH') return { 'accept-patch': c.acceptValue };
  return undefined;
}

export function decideContentType(c: ContentTypeCompiled, ctx: DecisionContext): Decision {
  const facts = ctx.facts;
  if (!c.methods.has(facts.method)) return { outcome: 'skip', rule: `${facts.method} bodies are not checked` };
  // No content, nothing to label: a Content-Type on an empty body is harmless (RFC 9110 §8.3).
  if (!hasBody(facts)) return { outcome: 'allow', rule: 'no body' };

  const raw = headerValue(facts, 'content-type');
  const headers = acceptHeaders(c, facts.method);
  if (raw === undefined || raw.trim() === '') {
    if (!c.requireBodyType) return { outcome: 'allow', rule: 'body without Content-Type (require_body_type: false)' };
    return {
      outcome: 'deny',
      code: 'CONTENT_TYPE_MISSING',
      rule: 'body without Content-Type',
      evidence: { method: facts.method, accepted: c.accepted },
      ...(headers !== undefined ? { headers } : {}),
    };
  }

  const mt = parseMediaType(raw);
  const match = mt === undefined ? undefined : bestMatch(c.patterns, mt);
  if (mt === undefined || match === undefined) {
    const sent = mt?.essence ?? clip(raw);
    return {
      outcome: 'deny',
      code: 'CONTENT_TYPE_NOT_ACCEPTED',
      rule: mt === undefined ? 'Content-Type is not a media type' : `${mt.essence} matches no accepted type`,
      evidence: { method: facts.method, sent, accepted: c.accepted },
      ...(headers !== undefined ? { headers } : {}),
    };
  }

  const charset = mt.params.get('charset');
  if (c.charsets.size > 0 && charset !== undefined && !c.charsets.has(charset.toLowerCase())) {
    return {
      outcome: 'deny',
      code: 'CONTENT_TYPE_CHARSET_NOT_ACCEPTED',
      rule: `charset ${charset} not accepted`,
      evidence: { media_type: mt.essence, sent_charset: clip(charset, 40), accepted_charsets: c.charsetList },
    };
  }
  return { outcome: 'allow', rule: `${mt.essence} matches ${match.text}` };
}
