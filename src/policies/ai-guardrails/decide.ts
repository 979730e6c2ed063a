/**
 * The guardrails' decision on one AI request body. Order: the body must be JSON (else 400
 * AI_GUARDRAILS_BODY_NOT_JSON); the token ceiling (cheapest, and it spares pattern work on an
 * oversized prompt); injection phrasings; denied topics; then masking, which never refuses.
 * The first check that matches refuses, naming the guardrail, the JSON pointer of the text and a
 * short excerpt of the match with any sensitive value in it masked.
 */
import type { RE2JS } from 're2js';
import type { AiProtocol, Decision, DecisionContext, Deny, Evidence } from '../../pipeline/types.ts';
import { hasBody } from '../content-type/media-type.ts';
import { collectTexts, readJsonBody, type PromptText, type TextSource } from './body.ts';
import { DEFAULT_MASK_LABELS, findSensitive, MASK_KINDS, maskText, type MaskKind } from './mask.ts';
import type { GuardrailScope } from './schema.ts';

/** One compiled pattern; `group` is the capture group that is the match (1 for word lists). */
export interface GuardRule {
  readonly id: string;
  readonly re: RE2JS;
  readonly group: number;
}

export interface GuardrailsCompiled {
  /** Empty when prompt_injection.action is off. */
  readonly injection: readonly GuardRule[];
  readonly topics: readonly { readonly id: string; readonly rules: readonly GuardRule[] }[];
  readonly maxInputTokens: number | undefined;
  readonly mask: readonly MaskKind[];
  readonly labels: Readonly<Record<MaskKind, string>>;
  readonly scope: GuardrailScope;
  readonly maskScope: GuardrailScope;
  /** Monitor mode: masking is reported, never applied (the body goes on as the client sent it). */
  readonly monitor: boolean;
}

/** Named in evidence so nobody mistakes the estimate for a tokenizer count. */
export const TOKEN_ESTIMATOR = 'estimated: ceil(utf8_bytes / 4)';

/**
 * Prompt tokens, estimated: a quarter of the UTF-8 bytes, rounded up. BPE tokenizers of current
 * models average about four bytes of English text per token, so prose and code land within about
 * ±25%; scripts of 3 UTF-8 bytes per character that tokenize near one token per character (CJK)
 * come out up to about 2× low. Counting characters instead would make that 4–6× low.
 */
export function estimateTokens(texts: readonly string[]): number {
  let bytes = 0;
  for (const t of texts) bytes += Buffer.byteLength(t, 'utf8');
  return Math.ceil(bytes / 4);
}

function inScope(scope: GuardrailScope, source: TextSource): boolean {
  if (scope === 'all') return true;
  if (source === 'user') return true;
  return scope === 'user_and_tools' && source === 'tool';
}

/**
 * What the checks read: NFKC folds look-alike forms (full-width letters, ligatures, non-breaking
 * and other Unicode spaces) onto the plain ones (UAX #15), and format characters (zero-width
 * spaces and joiners, soft hyphens, bidi controls: category Cf) are dropped, so "ｉｇｎｏｒｅ" and
 * "ig\u200Bnore" read as "ignore".
 */
export function normalizeForMatching(text: string): string {
  return text.normalize('NFKC').replace(/\p{Cf}/gu, '');
}

const EXCERPT_MAX = 60;

/**
 * The matched text as a person can read it in a denial: sensitive values in it masked (every
 * kind, found on the whole text so a value cut by the match's edges is still recognised), control
 * characters and whitespace runs collapsed to one space, clipped to 60 characters.
 */
export function excerpt(text: string, start: number, end: number): string {
  let out = '';
  let at = start;
  for (const s of findSensitive(text, MASK_KINDS)) {
    if (s.end <= start || s.start >= end) continue;
    if (s.start > at) out += text.slice(at, s.start);
    out += DEFAULT_MASK_LABELS[s.kind];
    at = Math.max(at, s.end);
  }
  if (at < end) out += text.slice(at, end);
  const flat = out.replace(/[\s\p{Cc}]+/gu, ' ').trim();
  const chars = [...flat];
  return chars.length <= EXCERPT_MAX ? flat : `${chars.slice(0, EXCERPT_MAX).join('')}…`;
}

/** The first match of a rule in a text; `test` runs on RE2's DFA, the matcher only on a hit. */
function firstMatch(rule: GuardRule, text: string): readonly [number, number] | undefined {
  if (!rule.re.test(text)) return undefined;
  const m = rule.re.matcher(text);
  if (!m.find()) return undefined;
  return [m.start(rule.group), m.end(rule.group)];
}

/** Client-controlled keys end up in pointers (prompt variables): bound what one adds to a denial. */
function clipPointer(p: string): string {
  return p.length <= 200 ? p : `${p.slice(0, 200)}…`;
}

function notJson(reason: string, at: string, bytes: number, protocol: AiProtocol): Deny {
  return {
    outcome: 'deny',
    code: 'AI_GUARDRAILS_BODY_NOT_JSON',
    rule: `body is not JSON: ${reason} at ${at}`,
    evidence: { reason, at, received_bytes: bytes, protocol },
  };
}

function checks(c: GuardrailsCompiled, texts: readonly PromptText[]): Deny | undefined {
  if (c.injection.length === 0 && c.topics.length === 0) return undefined;
  const checked = texts.filter((t) => inScope(c.scope, t.source)).map((t) => ({ t, norm: normalizeForMatching(t.text) }));
  for (const { t, norm } of checked) {
    for (const rule of c.injection) {
      const hit = firstMatch(rule, norm);
      if (hit === undefined) continue;
      const pointer = clipPointer(t.pointer);
      return {
        outcome: 'deny',
        code: 'AI_GUARDRAILS_PROMPT_INJECTION',
        rule: `prompt_injection ${rule.id} at ${pointer}`,
        evidence: { guardrail: 'prompt_injection', pattern: rule.id, pointer, source: t.source, excerpt: excerpt(norm, hit[0], hit[1]) },
      };
    }
  }
  for (const { t, norm } of checked) {
    for (const topic of c.topics) {
      for (const rule of topic.rules) {
        const hit = firstMatch(rule, norm);
        if (hit === undefined) continue;
        const pointer = clipPointer(t.pointer);
        return {
          outcome: 'deny',
          code: 'AI_GUARDRAILS_TOPIC_DENIED',
          rule: `denied topic ${topic.id} at ${pointer}`,
          evidence: { guardrail: 'denied_topics', topic: topic.id, pointer, source: t.source, excerpt: excerpt(norm, hit[0], hit[1]) },
        };
      }
    }
  }
  return undefined;
}

/** Most pointers listed in a masking's evidence (the counts cover them all). */
const MAX_MASKED_POINTERS = 20;

/** The decision on a body already read. Pure: exported for tests and tools. */
export function decideBody(c: GuardrailsCompiled, protocol: AiProtocol, buf: Buffer): Decision {
  const read = readJsonBody(buf);
  if (!read.ok) return notJson(read.problem.reason, read.problem.at, buf.length, protocol);
  const texts = collectTexts(read.value, protocol);

  const estimated = estimateTokens(texts.map((t) => t.text));
  if (c.maxInputTokens !== undefined && estimated > c.maxInputTokens) {
    return {
      outcome: 'deny',
      code: 'AI_GUARDRAILS_INPUT_TOO_LONG',
      rule: `estimated ${estimated} tokens > max_input_tokens ${c.maxInputTokens}`,
      evidence: { guardrail: 'max_input_tokens', estimated_tokens: estimated, limit: c.maxInputTokens, estimator: TOKEN_ESTIMATOR, texts: texts.length },
    };
  }

  const refused = checks(c, texts);
  if (refused !== undefined) return refused;

  const counts: Partial<Record<MaskKind, number>> = {};
  const maskedAt: string[] = [];
  if (c.mask.length > 0) {
    for (const t of texts) {
      if (!inScope(c.maskScope, t.source)) continue;
      const r = maskText(t.text, c.mask, c.labels);
      const kinds = Object.keys(r.counts) as MaskKind[];
      if (kinds.length === 0) continue;
      for (const k of kinds) counts[k] = (counts[k] ?? 0) + (r.counts[k] ?? 0);
      maskedAt.push(clipPointer(t.pointer));
      // Monitor mode sends the body unchanged, so the parsed copy is not rewritten.
      if (c.monitor) continue;
      // A data property, as JSON.parse made it (also for a variable named "__proto__").
      Object.defineProperty(t.holder, t.key, { value: r.text, writable: true, enumerable: true, configurable: true });
    }
  }
  const checked = c.injection.length + c.topics.length > 0 ? 'no guardrail matched' : 'no checks configured';
  if (maskedAt.length === 0) {
    return { outcome: 'allow', rule: `${checked}; nothing to mask`, evidence: { estimated_tokens: estimated } };
  }
  const evidence: Record<string, Evidence[string]> = {};
  let total = 0;
  for (const k of MASK_KINDS) {
    const n = counts[k];
    if (n === undefined) continue;
    evidence[`masked_${k}`] = n;
    total += n;
  }
  evidence.masked_at = maskedAt.slice(0, MAX_MASKED_POINTERS);
  evidence.estimated_tokens = estimated;
  const what = `${total} value(s) in ${maskedAt.length} text(s)`;
  if (c.monitor) return { outcome: 'allow', rule: `${checked}; monitor: would mask ${what}, body sent unchanged`, evidence };
  return { outcome: 'allow', rule: `${checked}; masked ${what}`, evidence, replaceBody: Buffer.from(JSON.stringify(read.value), 'utf8') };
}

export function decideGuardrails(c: GuardrailsCompiled, ctx: DecisionContext): Decision | Promise<Decision> {
  const protocol = ctx.protocol;
  if (protocol === undefined) return { outcome: 'skip', rule: 'not an AI route: no prompt to check' };
  // RFC 9112 §6.3: no Content-Length or Transfer-Encoding, no body (GET /v1/models and the like).
  if (!hasBody(ctx.facts)) return { outcome: 'skip', rule: 'no request body' };
  return ctx.body().then(
    (buf) => decideBody(c, protocol, buf),
    (err: unknown) => {
      // A dry run (diagnose / trace of a logged request) may have no body to give. Live, a failed
      // read (over the route's body limit, client gone) is the gateway's to answer.
      if (!ctx.dryRun) throw err;
      return { outcome: 'skip', rule: 'body not available in this dry run' };
    },
  );
}
