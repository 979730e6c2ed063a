/**
 * `rbac`: role-based access control per route and method. The caller holds a permission when it
 * is one of the credential's scopes, is granted in config to the consumer or one of its groups,
 * or is implied by one of its roles; with `levels`, a higher level implies the lower ones. Fails
 * closed: no identity (401), a missing permission (403) and an uncovered method (403) each have
 * their own code.
 *
 * Level rule, exactly: with levels [l0, l1, …, ln] (lowest first), a required permission `R:li`
 * (R = everything before the last ':') is also satisfied by holding `R:lj` for any j > i.
 * Permissions without ':' or whose level is not listed match only themselves.
 *
 * @example
 * ```yaml
 * policies:
 *   orders-rbac:
 *     type: rbac
 *     config:
 *       levels: [read, write, admin]
 *       rules:
 *         - { methods: [GET], permission: orders:read }
 *         - { methods: [POST, PUT, PATCH], permission: orders:write }
 *         - { methods: [DELETE], permission: [orders:admin, audit:write] }
 *       roles: { clerk: [orders:write], auditor: [audit:write] }
 *       grants:
 *         - { role: clerk, groups: [shop-staff] }
 *         - { permission: orders:admin, consumers: [ops-bot] }
 * ```
 */
import { ConfigError, type ConfigIssue, type PolicyModule } from '../../pipeline/types.ts';
import { decideRbac, type CompiledRule, type RbacCompiled, type RequiredPermission } from './decide.ts';
import { RbacSchema, type RbacConfig } from './schema.ts';

/** The permission, then every higher level that implies it. */
function satisfiedBy(permission: string, levels: readonly string[]): string[] {
  const colon = permission.lastIndexOf(':');
  if (colon < 0) return [permission];
  const i = levels.indexOf(permission.slice(colon + 1));
  if (i < 0) return [permission];
  const resource = permission.slice(0, colon);
  return [permission, ...levels.slice(i + 1).map((l) => `${resource}:${l}`)];
}

function addAll(map: Map<string, Set<string>>, key: string, perms: Iterable<string>): void {
  let set = map.get(key);
  if (set === undefined) map.set(key, (set = new Set()));
  for (const p of perms) set.add(p);
}

function freezeMap(map: Map<string, Set<string>>): ReadonlyMap<string, ReadonlySet<string>> {
  for (const s of map.values()) Object.freeze(s);
  return map;
}

export function compileRbac(config: RbacConfig, path: string): RbacCompiled {
  const issues: ConfigIssue[] = [];

  // Levels: a repeated level would make "higher" ambiguous.
  const levelSeen = new Map<string, number>();
  config.levels.forEach((l, i) => {
    const first = levelSeen.get(l);
    if (first !== undefined) issues.push({ path: `${path}.levels[${i}]`, message: `level "${l}" is already levels[${first}]` });
    else levelSeen.set(l, i);
  });

  // Roles.
  const rolePermissions = new Map<string, Set<string>>();
  for (const [role, perms] of Object.entries(config.roles)) addAll(rolePermissions, role, perms);

  // Grants.
  const consumerPermissions = new Map<string, Set<string>>();
  const groupPermissions = new Map<string, Set<string>>();
  config.grants.forEach((g, i) => {
    const at = `${path}.grants[${i}]`;
    if ((g.permission === undefined) === (g.role === undefined)) {
      issues.push({ path: at, message: 'set exactly one of permission and role' });
      return;
    }
    let perms: Iterable<string>;
    if (g.role !== undefined) {
      const rp = rolePermissions.get(g.role);
      if (rp === undefined) {
        const known = [...rolePermissions.keys()];
        issues.push({ path: `${at}.role`, message: `unknown role "${g.role}" (roles: ${known.length > 0 ? known.join(', ') : 'none defined'})` });
        return;
      }
      perms = rp;
    } else perms = [g.permission as string];
    if (g.consumers.length === 0 && g.groups.length === 0) {
      issues.push({ path: at, message: 'grants to nobody: list consumers or groups' });
      return;
    }
    for (const c of g.consumers) addAll(consumerPermissions, c, perms);
    for (const gr of g.groups) addAll(groupPermissions, gr, perms);
  });

  // Rules: first match by method; a method an earlier rule decides can never reach a later one,
  // so listing it again is a mistake to reject, not to ignore.
  const decidedBy = new Map<string, number>();
  let catchAll: number | undefined;
  const rules: CompiledRule[] = config.rules.map((r, i) => {
    const at = `${path}.rules[${i}]`;
    if (catchAll !== undefined) issues.push({ path: at, message: `never applies: rules[${catchAll}] already decides every method` });
    let methods: Set<string> | null = null;
    if (r.methods.length === 0) catchAll ??= i;
    else {
      methods = new Set();
      r.methods.forEach((m, j) => {
        const earlier = decidedBy.get(m);
        if (earlier !== undefined) {
          const why = m === 'HEAD' && config.rules[earlier]?.methods.includes('HEAD') !== true ? ' (a rule listing GET also decides HEAD)' : '';
          issues.push({ path: `${at}.methods[${j}]`, message: `${m} is already decided by rules[${earlier}]${why}` });
        }
        methods?.add(m);
      });
      // RFC 9110 §9.3.2: HEAD is GET without the content, so it needs what GET needs.
      if (methods.has('GET')) methods.add('HEAD');
      for (const m of methods) if (!decidedBy.has(m)) decidedBy.set(m, i);
    }
    const permissions = Object.freeze(typeof r.permission === 'string' ? [r.permission] : [...new Set(r.permission)]);
    const required: RequiredPermission[] = permissions.map((p) => Object.freeze({ permission: p, satisfiedBy: Object.freeze(satisfiedBy(p, config.levels)) }));
    return Object.freeze({ name: `rules[${i}]`, methods: methods === null ? null : Object.freeze(methods), required: Object.freeze(required), permissions });
  });

  if (issues.length > 0) throw new ConfigError(issues);
  return Object.freeze({
    rules: Object.freeze(rules),
    unmatchedAllow: config.unmatched === 'allow',
    coveredMethods: Object.freeze(catchAll !== undefined ? ['*'] : [...decidedBy.keys()]),
    rolePermissions: freezeMap(rolePermissions),
    consumerPermissions: freezeMap(consumerPermissions),
    groupPermissions: freezeMap(groupPermissions),
    challenge: config.challenge,
  });
}

export const rbac: PolicyModule<typeof RbacSchema> = {
  type: 'rbac',
  summary: 'Permissions per route and method, from credential scopes, roles, and grants to consumers and groups; levels like read < write < admin.',
  schema: RbacSchema,
  compile(config, meta, ctx) {
    const compiled = compileRbac(config, ctx.path);
    return { id: meta.id, type: 'rbac', mode: meta.mode, decide: (dctx) => decideRbac(compiled, dctx) };
  },
};
