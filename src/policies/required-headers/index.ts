/**
 * `required-headers`: requests must carry the listed headers, with values matching a pattern or
 * one of a set — a tenant id, an API version, an internal-caller marker. A missing header and a
 * malformed one have distinct codes, each at 400 or 403 as the rule says. Fails closed.
 *
 * @example
 * ```yaml
 * policies:
 *   tenant-header:
 *     type: required-headers
 *     config:
 *       headers:
 *         - { name: x-tenant, pattern: "[a-z0-9-]{3,32}" }
 *         - { name: x-api-version, values: ["2024-06-01", "2025-01-01"] }
 *         - { name: x-internal-caller, values: ["billing"], status: 403, secret: true }
 * ```
 */
import { RE2JS } from 're2js';
import { ConfigError, type ConfigIssue, type PolicyModule } from '../../pipeline/types.ts';
import { decideRequiredHeaders, type HeaderRule } from './decide.ts';
import { RequiredHeadersSchema, type HeaderRuleConfig } from './schema.ts';


function describeRule(h: HeaderRuleConfig): string {
  const parts: string[] = [];
  if (h.pattern !== undefined) parts.push(`matches ${h.pattern} (whole value)`);
  if (h.values !== undefined) {
    // A secret header's allowed values are the secret itself: count them, never list them.
    parts.push(h.secret ? `one of ${h.values.length} configured value(s)` : `one of: ${h.values.join(', ')}`);
  }
  return parts.length === 0 ? 'present, non-empty' : parts.join(' and ');
}

function compileRule(h: HeaderRuleConfig, path: string, issues: ConfigIssue[]): HeaderRule | undefined {
  let pattern: { test(value: string): boolean } | undefined;
  if (h.pattern !== undefined) {
    // Header values are attacker-controlled (up to Node's 16 KiB header limit), so patterns run on
    // RE2 (re2js): matching is linear in the input, whatever the pattern — no ReDoS. RE2 has no
    // look-around or back-references; such a pattern is refused here. `matches` is a whole-value
    // match: an unanchored "[0-9]+" accepting "abc1" is the commonest pattern mistake.
    try {
      const re2 = RE2JS.compile(h.pattern);
      pattern = { test: (value: string) => re2.matches(value) };
    } catch (err) {
      issues.push({ path: `${path}.pattern`, message: `invalid regular expression (RE2 syntax): ${(err as Error).message}` });
      return undefined;
    }
    const re = pattern;
    h.values?.forEach((v, k) => {
      if (!re.test(v)) issues.push({ path: `${path}.values[${k}]`, message: h.secret ? 'this value does not match pattern, so it can never be accepted' : `"${v}" does not match pattern, so it can never be accepted` });
    });
  }
  return Object.freeze({
    name: h.name.toLowerCase(),
    pattern,
    values: h.values !== undefined ? new Set(h.values) : undefined,
    forbidden: h.status === 403,
    secret: h.secret,
    rule: describeRule(h),
  });
}

export const requiredHeaders: PolicyModule<typeof RequiredHeadersSchema> = {
  type: 'required-headers',
  summary: 'Requires request headers to be present, matching a pattern or one of a set of values (400 or 403).',
  schema: RequiredHeadersSchema,
  compile(config, meta, ctx) {
    const issues: ConfigIssue[] = [];
    const rules: HeaderRule[] = [];
    const seen = new Map<string, number>();
    config.headers.forEach((h, i) => {
      const path = `${ctx.path}.headers[${i}]`;
      const name = h.name.toLowerCase();
      const before = seen.get(name);
      if (before !== undefined) issues.push({ path: `${path}.name`, message: `${name} is already required by headers[${before}]; merge the two rules` });
      else seen.set(name, i);
      const rule = compileRule(h, path, issues);
      if (rule !== undefined) rules.push(rule);
    });
    if (issues.length > 0) throw new ConfigError(issues);
    const compiled = Object.freeze({ rules: Object.freeze(rules) });
    return { id: meta.id, type: 'required-headers', mode: meta.mode, decide: (dctx) => decideRequiredHeaders(compiled, dctx) };
  },
};
