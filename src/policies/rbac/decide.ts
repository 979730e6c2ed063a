/**
 * Pure decision for `rbac`: find the rule for the request method, then check that the caller holds
 * every permission it names. Everything config-derived (grants by consumer and group, role
 * permissions, level implications) was expanded at compile, so a request costs a few set lookups.
 */
import type { Decision, DecisionContext, Deny, Evidence, Identity } from '../../pipeline/types.ts';

export interface RequiredPermission {
  readonly permission: string;
  /** The permission itself, then every higher level that implies it (see RbacSchema.levels). */
  readonly satisfiedBy: readonly string[];
}

export interface CompiledRule {
  /** `rules[i]`, as named in traces and evidence. */
  readonly name: string;
  /** Methods decided; null when the rule decides every method. HEAD is in it when GET is. */
  readonly methods: ReadonlySet<string> | null;
  readonly required: readonly RequiredPermission[];
  readonly permissions: readonly string[];
}

export interface RbacCompiled {
  readonly rules: readonly CompiledRule[];
  readonly unmatchedAllow: boolean;
  /** Methods some rule decides ('*' when a rule decides all), for RBAC_METHOD_NOT_COVERED. */
  readonly coveredMethods: readonly string[];
  readonly rolePermissions: ReadonlyMap<string, ReadonlySet<string>>;
  /** Permissions granted in config (directly or through a granted role), by consumer id. */
  readonly consumerPermissions: ReadonlyMap<string, ReadonlySet<string>>;
  /** Same, by consumer group. */
  readonly groupPermissions: ReadonlyMap<string, ReadonlySet<string>>;
  readonly challenge: string;
}

const NONE: ReadonlySet<string> = new Set();

/**
 * The refusal of a policy that compares with the caller (rbac, ownership, subscription, tenant)
 * when no identity reached it: a misplaced or missing authentication policy, or one that let an
 * anonymous caller through. Unauthenticated (RFC 9110 §15.5.2), not forbidden, with the
 * policy's challenge (§11.6.1).
 */
export function unauthenticated(code: Deny['code'], rule: string, evidence: Evidence, challenge: string): Deny {
  return { outcome: 'deny', code, rule, evidence, headers: { 'www-authenticate': challenge } };
}

/** How the caller holds `p`, for the trace; undefined when it does not. */
function heldVia(c: RbacCompiled, id: Identity, p: string): string | undefined {
  if (id.scopes.has(p)) return `scope ${p}`;
  if (c.consumerPermissions.get(id.consumer)?.has(p) === true) return `grant ${p} to consumer ${id.consumer}`;
  for (const g of id.groups ?? NONE) if (c.groupPermissions.get(g)?.has(p) === true) return `grant ${p} to group ${g}`;
  for (const r of id.roles ?? NONE) if (c.rolePermissions.get(r)?.has(p) === true) return `role ${r} → ${p}`;
  return undefined;
}

/** Every permission the caller holds before level implication, for a denial's evidence. */
export function permissionsHeld(c: RbacCompiled, id: Identity): string[] {
  const out = new Set(id.scopes);
  for (const p of c.consumerPermissions.get(id.consumer) ?? NONE) out.add(p);
  for (const g of id.groups ?? NONE) for (const p of c.groupPermissions.get(g) ?? NONE) out.add(p);
  for (const r of id.roles ?? NONE) for (const p of c.rolePermissions.get(r) ?? NONE) out.add(p);
  return [...out].sort();
}

function ruleFor(c: RbacCompiled, method: string): CompiledRule | undefined {
  for (const r of c.rules) if (r.methods === null || r.methods.has(method)) return r;
  return undefined;
}

export function decideRbac(c: RbacCompiled, ctx: DecisionContext): Decision {
  const { method, path } = ctx.facts;
  const route = ctx.routeId ?? null;
  const rule = ruleFor(c, method);
  if (rule === undefined) {
    if (c.unmatchedAllow) return { outcome: 'allow', rule: `no rule for ${method} (unmatched: allow)` };
    return {
      outcome: 'deny',
      code: 'RBAC_METHOD_NOT_COVERED',
      rule: `no rule for ${method}`,
      evidence: { method, route, path, covered_methods: c.coveredMethods },
    };
  }

  const id = ctx.identity;
  if (id === undefined) {
    return unauthenticated('AUTH_RBAC_UNAUTHENTICATED', `${rule.name}: no identity`, { method, route, path, rule: rule.name, required_permissions: rule.permissions }, c.challenge);
  }

  let via: string[] | undefined;
  let missing: RequiredPermission[] | undefined;
  for (const req of rule.required) {
    let how: string | undefined;
    for (const p of req.satisfiedBy) {
      how = heldVia(c, id, p);
      if (how !== undefined) break;
    }
    if (how === undefined) (missing ??= []).push(req);
    else (via ??= []).push(how);
  }

  if (missing !== undefined) {
    const alsoBy = new Set<string>();
    for (const m of missing) for (const p of m.satisfiedBy.slice(1)) alsoBy.add(p);
    const missingNames = missing.map((m) => m.permission);
    return {
      outcome: 'deny',
      code: 'RBAC_PERMISSION_MISSING',
      rule: `${rule.name}: lacks ${missingNames.join(', ')}`,
      // Evidence reaches the client only in detailed mode; all of it is non-secret (names, not credentials).
      evidence: {
        method,
        route,
        path,
        rule: rule.name,
        required_permissions: rule.permissions,
        missing_permissions: missingNames,
        also_satisfied_by: [...alsoBy],
        consumer: id.consumer,
        credential_type: id.credentialType,
        scopes: [...id.scopes],
        roles: [...(id.roles ?? NONE)],
        groups: [...(id.groups ?? NONE)],
        permissions_held: permissionsHeld(c, id),
      },
    };
  }
  return {
    outcome: 'allow',
    rule: `${rule.name}: ${rule.permissions.join(', ')}`,
    evidence: { rule: rule.name, required_permissions: rule.permissions, held_via: via ?? [] },
  };
}
