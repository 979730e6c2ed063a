/**
 * Pure decision for `tenant`: the tenant the request names (a path parameter, header or query
 * parameter) must be the caller's own: its token's tenant claim when configured and carried, else
 * its consumers[].team. Synchronous: nothing here reads the body or calls out.
 *
 * Order: identity (401) → the request's tenant (400 when absent or sent twice; 500 when the route
 * lacks the path parameter) → override scopes → the caller's tenant (403 when none is known) →
 * comparison (403 on mismatch). The request value comes first: without it there is nothing to
 * authorize yet, for administrators too, and the upstream would not know the tenant either.
 */
import type { Decision, DecisionContext, Deny, Evidence, Identity, RequestFacts } from '../../pipeline/types.ts';
import { cap, claimStrings, namedValue, requestValue, type RequestValue } from '../ownership/decide.ts';
import { unauthenticated } from '../rbac/decide.ts';
import type { TenantSource } from './schema.ts';

export interface TenantCompiled {
  readonly source: TenantSource;
  /** Path parameter, lower-cased header or query parameter name. */
  readonly name: string;
  /** 'header x-tenant-id', 'path parameter team'…: names the value in evidence. */
  readonly label: string;
  /** Claim holding the caller's tenant; null to use consumers[].team only. */
  readonly claim: string | null;
  readonly overrides: readonly string[];
  /** consumers[].team by consumer id. */
  readonly teamOf: ReadonlyMap<string, string>;
  /** Every configured consumer id. */
  readonly known: ReadonlySet<string>;
  readonly challenge: string;
}

type Found = RequestValue | { readonly kind: 'route_param_missing' };

function fromRequest(c: TenantCompiled, facts: RequestFacts): Found {
  switch (c.source) {
    case 'param':
      return Object.hasOwn(facts.params, c.name) ? namedValue(facts.params[c.name]) : { kind: 'route_param_missing' };
    case 'query':
      return requestValue(facts, 'query', c.name);
    case 'header': {
      const found = requestValue(facts, 'header', c.name);
      // Repeated field lines reach us joined into one comma-separated value (RFC 9110 §5.3), and
      // no tenant id contains a comma: a list means the request named several tenants.
      return found.kind === 'value' && found.value.includes(',') ? { kind: 'ambiguous', count: found.value.split(',').length } : found;
    }
  }
}

/** The caller's tenant(s) and where they came from; undefined when none is known. */
function callerTenants(c: TenantCompiled, id: Identity): { readonly values: readonly string[]; readonly source: string } | undefined {
  const claims = id.claims;
  if (c.claim !== null && claims !== undefined && Object.hasOwn(claims, c.claim)) {
    const values = claimStrings(claims[c.claim]);
    if (values.length > 0) return { values, source: `claim ${c.claim}` };
  }
  const team = c.teamOf.get(id.consumer);
  return team === undefined ? undefined : { values: [team], source: 'consumers[].team' };
}

export function decideTenant(c: TenantCompiled, ctx: DecisionContext): Decision {
  const facts = ctx.facts;
  const route = ctx.routeId ?? null;
  const id = ctx.identity;
  if (id === undefined) return unauthenticated('AUTH_TENANT_UNAUTHENTICATED', 'no identity', { route, method: facts.method, tenant: c.label }, c.challenge);
  const deny = (code: Deny['code'], rule: string, evidence: Evidence): Deny => ({ outcome: 'deny', code, rule, evidence });

  const found = fromRequest(c, facts);
  switch (found.kind) {
    case 'route_param_missing':
      return deny('TENANT_ROUTE_PARAM_MISSING', `route has no path parameter ${c.name}`, { route, path: facts.path, name: c.name, params: Object.keys(facts.params) });
    case 'missing':
      return deny('TENANT_MISSING', `${c.label} ${found.problem}`, { tenant: c.label, problem: found.problem, consumer: id.consumer, route });
    case 'ambiguous':
      return deny('TENANT_AMBIGUOUS', `${c.label} sent ${found.count} times`, { tenant: c.label, count: found.count, consumer: id.consumer, route });
    case 'value':
      break;
  }
  const requested = found.value;

  for (const s of c.overrides) {
    if (id.scopes.has(s)) return { outcome: 'allow', rule: `override: scope ${s}`, evidence: { override: s, requested_tenant: cap(requested) } };
  }

  const caller = callerTenants(c, id);
  if (caller === undefined) {
    return deny('TENANT_UNKNOWN', `no tenant known for ${id.consumer}`, {
      consumer: id.consumer,
      requested_tenant: cap(requested),
      tenant: c.label,
      looked_in: c.claim !== null ? `claim ${c.claim}, then consumers[].team` : 'consumers[].team',
      known_consumer: c.known.has(id.consumer),
      credential_type: id.credentialType,
      // Names only, never values: they say what the credential offers.
      claims_present: Object.keys(id.claims ?? {}).sort(),
      route,
    });
  }
  if (caller.values.includes(requested)) {
    return { outcome: 'allow', rule: `tenant ${cap(requested)} is the caller's (${caller.source})`, evidence: { requested_tenant: cap(requested), caller_tenant_source: caller.source } };
  }
  // Both values are safe to show: the requested tenant is what the caller sent, and the other is
  // the caller's own. Evidence reaches the client only in detailed error mode.
  return deny('TENANT_MISMATCH', `${c.label} is not the caller's tenant`, {
    requested_tenant: cap(requested),
    tenant: c.label,
    caller_tenant: caller.values.length === 1 ? cap(caller.values[0] as string) : caller.values.slice(0, 20).map(cap),
    caller_tenant_source: caller.source,
    consumer: id.consumer,
    override_scopes: c.overrides,
    method: facts.method,
    route,
  });
}
