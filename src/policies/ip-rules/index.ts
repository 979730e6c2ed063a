/**
 * `ip-rules`: CIDR allow and deny lists, IPv4 and IPv6, on the client IP as decided by
 * trusted_proxies (src/proxy/forwarded.ts). The denial says which address was seen and where it
 * came from, because "my IP is allowed" failing usually means a proxy is not trusted.
 */
import { parseCidr, type Cidr } from '../../net/cidr.ts';
import { TtlLru } from '../../cache/ttl-lru.ts';
import { ConfigError, type ConfigIssue, type Decision, type PolicyModule } from '../../pipeline/types.ts';
import { DECISION_CACHE_MAX, decideIpRules } from './decide.ts';
import { IpRulesSchema } from './schema.ts';

function parseAll(list: readonly string[], path: string, issues: ConfigIssue[]): Cidr[] {
  const out: Cidr[] = [];
  list.forEach((text, i) => {
    const r = parseCidr(text);
    if (typeof r === 'string') issues.push({ path: `${path}[${i}]`, message: r });
    else out.push(r);
  });
  return out;
}

export const ipRules: PolicyModule<typeof IpRulesSchema> = {
  type: 'ip-rules',
  summary: 'Allow or deny clients by IP address or CIDR (IPv4 and IPv6).',
  schema: IpRulesSchema,
  compile(config, meta, ctx) {
    const issues: ConfigIssue[] = [];
    const compiled = Object.freeze({
      allow: parseAll(config.allow, `${ctx.path}.allow`, issues),
      deny: parseAll(config.deny, `${ctx.path}.deny`, issues),
      decisions: new TtlLru<Decision>(DECISION_CACHE_MAX),
    });
    if (issues.length > 0) throw new ConfigError(issues);
    if (compiled.allow.length === 0 && compiled.deny.length === 0) {
      throw new ConfigError([{ path: ctx.path, message: 'ip-rules needs at least one allow or deny entry' }]);
    }
    return { id: meta.id, type: 'ip-rules', mode: meta.mode, decide: (dctx) => decideIpRules(compiled, dctx) };
  },
};
