import type { Code } from '../../errors/catalog.ts';
import type { Decision, DecisionContext } from '../../pipeline/types.ts';

export interface HeaderRule {
  /** Lower-cased, as Node exposes header names. */
  readonly name: string;
  /** Anchored at load; undefined = any value. */
  readonly pattern: { test(value: string): boolean } | undefined;
  readonly values: ReadonlySet<string> | undefined;
  readonly forbidden: boolean;
  readonly secret: boolean;
  /** What the value must be, for evidence; never a secret value (see index.ts). */
  readonly rule: string;
}

export interface RequiredHeadersCompiled {
  readonly rules: readonly HeaderRule[];
}

type Failure = 'missing' | 'malformed';

function check(rule: HeaderRule, v: string | string[] | undefined): Failure | undefined {
  // Node joins most repeated headers into one string; those it keeps as arrays are checked value by value.
  const list = v === undefined ? [] : Array.isArray(v) ? v : [v];
  // An empty value carries nothing (RFC 9110 §5.5 allows it, but a required header needs a value).
  if (list.length === 0 || list.every((x) => x.trim() === '')) return 'missing';
  for (const x of list) {
    if (rule.pattern !== undefined && !rule.pattern.test(x)) return 'malformed';
    if (rule.values !== undefined && !rule.values.has(x)) return 'malformed';
  }
  return undefined;
}

function codeFor(f: Failure, forbidden: boolean): Code {
  if (f === 'missing') return forbidden ? 'REQUIRED_HEADER_MISSING_FORBIDDEN' : 'REQUIRED_HEADER_MISSING';
  return forbidden ? 'REQUIRED_HEADER_MALFORMED_FORBIDDEN' : 'REQUIRED_HEADER_MALFORMED';
}

/** Shown so a person can see what was sent; clipped so a 16 KiB header does not fill the log. */
function shown(v: string | string[] | undefined): string {
  const s = Array.isArray(v) ? v.join(', ') : (v ?? '');
  return s.length <= 64 ? s : `${s.slice(0, 64)}…`;
}

/**
 * Every rule is checked so the evidence lists every failing header (one round trip fixes them
 * all); the first failing rule, in config order, gives the code and its status.
 */
export function decideRequiredHeaders(c: RequiredHeadersCompiled, ctx: DecisionContext): Decision {
  const headers = ctx.facts.headers;
  let first: { rule: HeaderRule; failure: Failure } | undefined;
  const failing: string[] = [];
  for (const rule of c.rules) {
    const failure = check(rule, headers[rule.name]);
    if (failure === undefined) continue;
    failing.push(rule.name);
    first ??= { rule, failure };
  }
  if (first === undefined) return { outcome: 'allow', rule: `${c.rules.length} required header(s) present and valid` };
  const { rule, failure } = first;
  return {
    outcome: 'deny',
    code: codeFor(failure, rule.forbidden),
    rule: `${rule.name} ${failure}`,
    evidence: {
      header: rule.name,
      rule: rule.rule,
      failing_headers: failing,
      // Never the value of a secret header, whatever the failure.
      ...(failure === 'malformed' && !rule.secret ? { received: shown(headers[rule.name]) } : {}),
    },
  };
}
