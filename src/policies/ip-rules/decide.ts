import type { TtlLru } from '../../cache/ttl-lru.ts';
import { firstMatch, type Cidr } from '../../net/cidr.ts';
import type { Decision, DecisionContext, RequestFacts } from '../../pipeline/types.ts';

export interface IpRulesCompiled {
  readonly allow: readonly Cidr[];
  readonly deny: readonly Cidr[];
  /**
   * Decisions already made, by client address and where it came from. A decision depends on
   * nothing else, and one `BlockList.check` costs about a microsecond (Node parses the address
   * string on every call), once per rule, while a client sends many requests. Bounded by
   * DECISION_CACHE_MAX, oldest out: a client rotating through addresses only pushes others out
   * (their decisions are then made again), it cannot grow it. Decisions never expire: they
   * depend on the compiled rules only, and a reload compiles a new policy.
   */
  readonly decisions: TtlLru<Decision>;
}

/** Decisions kept per ip-rules policy. */
export const DECISION_CACHE_MAX = 4096;

/** Deny rules first (deny wins), then the allow list if there is one. */
export function decideIpRules(c: IpRulesCompiled, ctx: DecisionContext): Decision {
  const { clientIp, clientIpSource } = ctx.facts;
  const key = clientIpSource === 'socket' ? clientIp : `${clientIpSource} ${clientIp}`;
  // Read without touching: eviction stays oldest-first and a hit costs one map lookup.
  let d = c.decisions.get(key, 0, false);
  if (d === undefined) {
    d = decideFor(c, clientIp, clientIpSource);
    c.decisions.set(key, d, Infinity, 0);
  }
  return d;
}

/** The decision for one client address; frozen, because every request from it shares it. */
function decideFor(c: IpRulesCompiled, clientIp: string, clientIpSource: RequestFacts['clientIpSource']): Decision {
  const denied = firstMatch(c.deny, clientIp);
  if (denied !== undefined) {
    return freeze({
      outcome: 'deny',
      code: 'IP_DENIED',
      rule: `deny ${denied.text}`,
      evidence: { client_ip: clientIp, ip_source: clientIpSource, rule: denied.text },
    });
  }
  if (c.allow.length === 0) return freeze({ outcome: 'allow', rule: 'no deny rule matched' });
  const allowed = firstMatch(c.allow, clientIp);
  if (allowed === undefined) {
    return freeze({
      outcome: 'deny',
      code: 'IP_NOT_ALLOWED',
      rule: 'not in allow list',
      evidence: { client_ip: clientIp, ip_source: clientIpSource, allow: c.allow.map((r) => r.text) },
    });
  }
  return freeze({ outcome: 'allow', rule: `allow ${allowed.text}`, evidence: { client_ip: clientIp } });
}

function freeze(d: Decision): Decision {
  if ('evidence' in d && d.evidence !== undefined) {
    for (const v of Object.values(d.evidence)) if (Array.isArray(v)) Object.freeze(v);
    Object.freeze(d.evidence);
  }
  return Object.freeze(d);
}
