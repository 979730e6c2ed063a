/**
 * `ai-guardrails`: checks the prompt of an AI request before it leaves for the provider — known
 * prompt-injection phrasings, denied topics, an estimated token ceiling — and masks sensitive
 * values (e-mail, phone, card numbers, API keys and other secrets, optionally IBANs) in it. A
 * refusal is a 400 naming the guardrail, the JSON pointer of the text and a masked excerpt; masking
 * never refuses: the provider gets the body with labels in place of the values, and the trace
 * counts them per kind. On a route that is not an AI route the policy skips.
 *
 * @example
 * ```yaml
 * policies:
 *   prompt-guard:
 *     type: ai-guardrails
 *     config:
 *       prompt_injection: { action: block, extra_patterns: ["act as my (late )?grandmother"] }
 *       denied_topics:
 *         - { id: weapons, words: ["nerve agent", "pipe bomb"] }
 *         - { id: competitors, patterns: ["\\bacme\\s+corp\\b"] }
 *       max_input_tokens: 8000
 *       mask: [email, phone, card, secret]
 *       mask_with: { email: "<email>" }
 * ```
 */
import { RE2JS } from 're2js';
import { ConfigError, type ConfigIssue, type PolicyModule } from '../../pipeline/types.ts';
import { decideGuardrails, type GuardRule, type GuardrailsCompiled } from './decide.ts';
import { DEFAULT_MASK_LABELS, MASK_KINDS, type MaskKind } from './mask.ts';
import { BUILTIN_INJECTION } from './patterns.ts';
import { AiGuardrailsSchema } from './schema.ts';

export { maskText, findSensitive, MASK_KINDS, DEFAULT_MASK_LABELS, type MaskKind, type MaskResult } from './mask.ts';

/**
 * Prompts are attacker-controlled and can be long, so every pattern runs on RE2 (re2js): matching
 * is linear in the text whatever the pattern — an operator's pattern cannot introduce ReDoS. RE2
 * has no look-around or back-references; such a pattern is refused here, as is one that matches
 * the empty string (it would refuse every prompt).
 */
function compilePattern(id: string, pattern: string, group: number, path: string, issues: ConfigIssue[]): GuardRule | undefined {
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern, RE2JS.CASE_INSENSITIVE);
  } catch (err) {
    issues.push({ path, message: `invalid regular expression (RE2 syntax): ${(err as Error).message}` });
    return undefined;
  }
  if (re.test('')) {
    issues.push({ path, message: 'matches the empty string, so it would refuse every prompt' });
    return undefined;
  }
  return Object.freeze({ id, re, group });
}

/**
 * Words become one RE2 pattern: each word quoted, inner whitespace as \s+, between boundaries
 * that are not letters, digits or underscores in any script (RE2's \b knows only ASCII).
 */
function wordsPattern(words: readonly string[]): string {
  const alts = words.map((w) => w.trim().split(/\s+/).map((part) => RE2JS.quote(part)).join('\\s+'));
  return `(?:^|[^\\p{L}\\p{N}_])(${alts.join('|')})(?:[^\\p{L}\\p{N}_]|$)`;
}

export const aiGuardrails: PolicyModule<typeof AiGuardrailsSchema> = {
  type: 'ai-guardrails',
  summary: 'Checks AI prompts for injection phrasings, denied topics and a token ceiling, and masks e-mails, phones, cards and secrets before they reach the provider.',
  schema: AiGuardrailsSchema,
  compile(config, meta, ctx) {
    const issues: ConfigIssue[] = [];

    const injection: GuardRule[] = [];
    if (config.prompt_injection.action === 'block') {
      for (const b of BUILTIN_INJECTION) {
        const rule = compilePattern(b.id, b.pattern, 0, `${ctx.path}.prompt_injection`, issues);
        if (rule !== undefined) injection.push(rule);
      }
      config.prompt_injection.extra_patterns.forEach((p, i) => {
        const rule = compilePattern(`extra_patterns[${i}]`, p, 0, `${ctx.path}.prompt_injection.extra_patterns[${i}]`, issues);
        if (rule !== undefined) injection.push(rule);
      });
    }

    const topics: { id: string; rules: readonly GuardRule[] }[] = [];
    const seen = new Map<string, number>();
    config.denied_topics.forEach((t, i) => {
      const path = `${ctx.path}.denied_topics[${i}]`;
      const before = seen.get(t.id);
      if (before !== undefined) issues.push({ path: `${path}.id`, message: `topic ${t.id} is already defined by denied_topics[${before}]; merge the two` });
      else seen.set(t.id, i);
      if (t.patterns.length === 0 && t.words.length === 0) issues.push({ path, message: 'a topic needs at least one of patterns and words' });
      const rules: GuardRule[] = [];
      t.patterns.forEach((p, k) => {
        const rule = compilePattern(t.id, p, 0, `${path}.patterns[${k}]`, issues);
        if (rule !== undefined) rules.push(rule);
      });
      t.words.forEach((w, k) => {
        if (w.trim() === '') issues.push({ path: `${path}.words[${k}]`, message: 'a word cannot be blank' });
      });
      const words = t.words.filter((w) => w.trim() !== '');
      if (words.length > 0) {
        const rule = compilePattern(t.id, wordsPattern(words), 1, `${path}.words`, issues);
        if (rule !== undefined) rules.push(rule);
      }
      topics.push(Object.freeze({ id: t.id, rules: Object.freeze(rules) }));
    });

    if (issues.length > 0) throw new ConfigError(issues);

    const labels = Object.fromEntries(MASK_KINDS.map((k) => [k, config.mask_with[k] ?? DEFAULT_MASK_LABELS[k]])) as Record<MaskKind, string>;
    const compiled: GuardrailsCompiled = Object.freeze({
      injection: Object.freeze(injection),
      topics: Object.freeze(topics),
      maxInputTokens: config.max_input_tokens,
      mask: Object.freeze([...config.mask]),
      labels: Object.freeze(labels),
      scope: config.scope,
      maskScope: config.mask_scope,
      monitor: meta.mode === 'monitor',
    });
    return {
      id: meta.id,
      type: 'ai-guardrails',
      mode: meta.mode,
      // The prompt is in the body; masking may replace it (Allow.replaceBody).
      needsBody: true,
      decide: (dctx) => decideGuardrails(compiled, dctx),
    };
  },
};
