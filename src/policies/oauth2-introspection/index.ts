/**
 * `oauth2-introspection`: authenticates the caller by an opaque OAuth 2.0 access token, asking
 * the authorization server whether it is active (RFC 7662). Fails closed: no token, an inactive
 * token, or an endpoint that cannot answer is a denial, each with its own code; the last is a 503
 * attributed to the gateway, never blamed on the client.
 *
 * @example
 * ```yaml
 * policies:
 *   orders-token:
 *     type: oauth2-introspection
 *     config:
 *       endpoint: https://auth.example.com/oauth2/introspect
 *       client_id: pinpoint
 *       client_secret_env: INTROSPECTION_SECRET
 *       consumer_claim: client_id
 *       role_claims: [realm_access.roles]
 * ```
 */
import { ConfigError, type CompileContext, type CompiledPolicy, type ConfigIssue, type Mode, type PolicyModule } from '../../pipeline/types.ts';
import { TtlLru } from '../../cache/ttl-lru.ts';
import { httpIntrospector, type Introspector } from './client.ts';
import { decideIntrospection, describeLocation, type IntrospectionCompiled, type Known } from './decide.ts';
import { IntrospectionSchema, type IntrospectionConfig } from './schema.ts';

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

export interface IntrospectionDeps {
  /** Replaces the undici client (tests of decide without a server). */
  readonly introspector?: Introspector;
}

/** compile, with the I/O edge injectable; the module's compile uses the real HTTP client. */
export function compileIntrospection(
  config: IntrospectionConfig,
  meta: { readonly id: string; readonly mode: Mode },
  ctx: CompileContext,
  deps: IntrospectionDeps = {},
): CompiledPolicy {
  const issues: ConfigIssue[] = [];
  let endpoint: URL | undefined;
  try {
    endpoint = new URL(config.endpoint);
  } catch {
    issues.push({ path: `${ctx.path}.endpoint`, message: `"${config.endpoint}" is not a valid URL` });
  }
  if (endpoint !== undefined) {
    if (endpoint.username !== '' || endpoint.password !== '') {
      issues.push({ path: `${ctx.path}.endpoint`, message: 'the URL must not carry credentials; use client_id and client_secret_env' });
    }
    // RFC 7662 §4: the endpoint MUST be protected by TLS; the gateway sends its client secret
    // and the caller's token there.
    if (endpoint.protocol === 'http:' && !isLoopback(endpoint.hostname) && !config.allow_plain_http) {
      issues.push({ path: `${ctx.path}.endpoint`, message: 'must be https (RFC 7662 §4) unless the host is loopback or allow_plain_http is true' });
    }
  }
  const secret = ctx.env[config.client_secret_env];
  if (secret === undefined || secret === '') {
    issues.push({ path: `${ctx.path}.client_secret_env`, message: `environment variable ${config.client_secret_env} is not set` });
  }
  if (issues.length > 0 || endpoint === undefined || secret === undefined) throw new ConfigError(issues);

  const groups = new Map<string, ReadonlySet<string>>();
  for (const consumer of ctx.consumers) groups.set(consumer.id, Object.freeze(new Set(consumer.groups ?? [])));

  const compiled: IntrospectionCompiled = Object.freeze({
    locations: Object.freeze(config.in.map((l) => Object.freeze({ ...l }))),
    accepted: config.in.map(describeLocation).join(' or '),
    realm: config.realm,
    endpointHost: endpoint.host,
    positiveTtlMs: config.cache_ttl_seconds * 1000,
    negativeTtlMs: config.negative_cache_ttl_seconds * 1000,
    consumerClaim: config.consumer_claim,
    scopeClaim: config.scope_claim,
    roleClaims: Object.freeze(config.role_claims.map((r) => Object.freeze(r.split('.')))),
    groups,
    cache: new TtlLru<Known>(config.cache_max_entries),
    inflight: new Map(),
    introspector:
      deps.introspector ?? httpIntrospector({ endpoint, clientId: config.client_id, clientSecret: secret, timeoutMs: config.timeout_ms }),
  });
  return {
    id: meta.id,
    type: 'oauth2-introspection',
    mode: meta.mode,
    decide: (dctx) => decideIntrospection(compiled, dctx),
  };
}

export const oauth2Introspection: PolicyModule<typeof IntrospectionSchema> = {
  type: 'oauth2-introspection',
  summary: 'Opaque OAuth 2.0 access tokens checked at the authorization server (RFC 7662), with a bounded cache.',
  schema: IntrospectionSchema,
  compile: (config, meta, ctx) => compileIntrospection(config, meta, ctx),
};
