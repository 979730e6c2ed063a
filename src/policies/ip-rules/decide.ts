import { firstMatch, type Cidr } from '../../net/cidr.ts';
import type { Decision, DecisionContext } from '../../pipeline/types.ts';

export interface IpRulesCompiled {
  readonly allow: readonly Cidr[];
  readonly deny: readonly Cidr[];
}

/** Deny rules first (deny wins), then the allow list if there is one. */
export function decideIpRules(c: IpRulesCompiled, ctx: DecisionContext): Decision {
  const { clientIp, clientIpSource } = ctx.facts;
  const denied = firstMatch(c.deny, clientIp);
  if (denied !== undefined) {
    return {
      outcome: 'deny',
      code: 'IP_DENIED',
      rule: `deny ${denied.text}`,
      evidence: { client_ip: clientIp, ip_source: clientIpSource, rule: denied.text },
    };
  }
  if (c.allow.length === 0) return { outcome: 'allow', rule: 'no deny rule matched' };
  const allowed = firstMatch(c.allow, clientIp);
  if (allowed === undefined) {
    return {
      outcome: 'deny',
      code: 'IP_NOT_ALLOWED',
      rule: 'not in allow list',
      evidence: { client_ip: clientIp, ip_source: clientIpSource, allow: c.allow.map((r) => r.text) },
    };
  }
  return { outcome: 'allow', rule: `allow ${allowed.text}`, evidence: { client_ip: clientIp } };
}
