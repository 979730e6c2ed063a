/**
 * `tenant`: tenant isolation. The tenant a request names (a path parameter, header or query
 * parameter) must be the caller's own team: the tenant claim of its token when `claim` is set and
 * the credential carries it, otherwise its consumers[].team. Callers holding an override scope
 * may act in any tenant. Exact, case-sensitive comparison; a list claim means several tenants.
 *
 * Fails closed, each cause with its own code: no identity (401, as rbac and ownership: a policy
 * comparing with the caller needs authentication before it), a tenant not the caller's (403
 * TENANT_MISMATCH), a caller with no team or claim (403 TENANT_UNKNOWN), a request that does not
 * name its tenant (400 TENANT_MISSING) or names it twice (400 TENANT_AMBIGUOUS), and a route
 * without the configured path parameter (500 TENANT_ROUTE_PARAM_MISSING, the configuration's fault).
 *
 * @example
 * ```yaml
 * policies:
 *   own-team:
 *     type: tenant
 *     config:
 *       tenant: { from: param, name: team }   # /teams/{team}/projects
 *       claim: tenant_id                      # for JWT callers; API-key callers use consumers[].team
 *       override_scopes: [tenants:admin]
 * ```
 */
import { ConfigError, type CompileContext, type ConfigIssue, type PolicyModule } from '../../pipeline/types.ts';
import { decideTenant, type TenantCompiled } from './decide.ts';
import { TenantSchema, type TenantConfig, type TenantSource } from './schema.ts';

/** RFC 9110 §5.1: a field name is a token. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function label(source: TenantSource, name: string): string {
  switch (source) {
    case 'param':
      return `path parameter ${name}`;
    case 'header':
      return `header ${name}`;
    case 'query':
      return `query parameter ${name}`;
  }
}

export function compileTenant(config: TenantConfig, ctx: Pick<CompileContext, 'consumers' | 'path'>): TenantCompiled {
  const issues: ConfigIssue[] = [];
  const { from } = config.tenant;
  let name = config.tenant.name;
  if (from === 'header') {
    if (!TOKEN.test(name)) issues.push({ path: `${ctx.path}.tenant.name`, message: `"${name}" is not a valid header name (RFC 9110 §5.1)` });
    name = name.toLowerCase();
  } else if (from === 'param' && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    issues.push({ path: `${ctx.path}.tenant.name`, message: `"${name}" is not a path parameter name: write team for /teams/{team}, without braces` });
  }
  if (issues.length > 0) throw new ConfigError(issues);

  const teamOf = new Map<string, string>();
  for (const c of ctx.consumers) if (c.team !== undefined && !teamOf.has(c.id)) teamOf.set(c.id, c.team);
  return Object.freeze({
    source: from,
    name,
    label: label(from, name),
    claim: config.claim ?? null,
    overrides: Object.freeze([...config.override_scopes]),
    teamOf,
    known: new Set(ctx.consumers.map((c) => c.id)),
    challenge: config.challenge,
  });
}

export const tenant: PolicyModule<typeof TenantSchema> = {
  type: 'tenant',
  summary: 'Tenant isolation: the tenant a request names (path parameter, header or query) must be the caller\u2019s team (consumers[].team or a token claim), unless it holds an override scope.',
  schema: TenantSchema,
  compile(config, meta, ctx) {
    const compiled = compileTenant(config, ctx);
    return { id: meta.id, type: 'tenant', mode: meta.mode, decide: (dctx) => decideTenant(compiled, dctx) };
  },
};
