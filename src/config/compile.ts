/**
 * Config → compiled, frozen runtime form. Everything that can be decided once is decided here:
 * policies compiled, plans sorted, routes in the radix tree, CIDRs parsed, keys hashed. A config
 * with any issue is rejected whole, each issue naming its path, so a bad config never goes live.
 */
import { pathFormPattern } from '../routing/admit.ts';
import path from 'node:path';
import { KeyIndex } from '../credentials/api-keys.ts';
import { parseCidr, type Cidr } from '../net/cidr.ts';
import { plan, type PlannedPolicy } from '../pipeline/plan.ts';
import { ConfigError, type AiProtocol, type CompiledPolicy, type ConfigIssue, type PolicyModule, type TraceEntry } from '../pipeline/types.ts';
import { POLICY_BY_TYPE } from '../policies/index.ts';
import { Router, type HttpMethod } from '../routing/router.ts';
import type { Config, RouteConfig, UpstreamConfig } from './schema.ts';
import { compileAi, type CompiledAi } from '../ai/compile.ts';
import { compilePrompt, type CompiledPrompt } from '../ai/prompt.ts';
import type { AiRouteConfig } from '../ai/schema.ts';
import type { Envelope } from '../errors/envelopes.ts';
import { idEntries } from '../json/one-byte.ts';
import { validate } from './validate.ts';
import { HeaderNames } from '../proxy/header-names.ts';

export type ErrorsMode = 'public' | 'detailed';

/** What a route does once its policies allowed: proxy to an upstream, serve the AI API, or run a prompt. */
export type RouteKind = 'proxy' | 'ai' | 'prompt';


export interface CompiledRoute {
  readonly id: string;
  readonly index: number;
  readonly kind: RouteKind;
  /** Shape of the errors the gateway answers here: problem+json, or the AI protocol's error object. */
  readonly envelope: Envelope;
  /** The AI client protocol policies answer in (DecisionContext.protocol); undefined on proxy routes. */
  readonly protocol: AiProtocol | undefined;
  /** The upstream group id ('' on AI and prompt routes). */
  readonly upstreamId: string;
  readonly upstream: UpstreamConfig;
  readonly ai: AiRouteConfig | undefined;
  readonly prompt: CompiledPrompt | undefined;
  readonly plan: readonly PlannedPolicy[];
  readonly errors: ErrorsMode | undefined;
  readonly stripPrefix: string | undefined;
  readonly preserveHost: boolean;
  /** Most bytes buffered for policies that read the body: the route's smallest request-size limit, or 1 MiB. */
  readonly maxBufferedBody: number;
  /** The request-size policy that sets maxBufferedBody, if any. */
  readonly bodyLimitPolicy: string | undefined;
  /** The route has a cors policy: the gateway owns the Access-Control-* response headers. */
  readonly ownsCors: boolean;
  /** The router's trace entry for each path template of the route, built once. */
  readonly routerTrace: ReadonlyMap<string, TraceEntry>;
}

export interface CompiledConfig {
  readonly source: Config;
  /** Absolute path of the file, or undefined for configs built in memory. */
  readonly file: string | undefined;
  readonly router: Router<CompiledRoute>;
  readonly routes: readonly CompiledRoute[];
  readonly policies: ReadonlyMap<string, CompiledPolicy>;
  readonly consumerPolicies: ReadonlyMap<string, readonly CompiledPolicy[]>;
  readonly consumerErrors: ReadonlyMap<string, ErrorsMode>;
  readonly trustedProxies: readonly Cidr[];
  readonly callLogPath: string;
  readonly apiKeys: KeyIndex;
  readonly ai: CompiledAi;
  /**
   * Request headers the proxy rewrites or consumes (lower-case): host, forwarding headers, the
   * request id, and Expect (Node's server already answered 100-continue; RFC 9110 §10.1.1).
   */
  readonly rewrittenHeaders: HeaderNames;
  /** The path forms request_paths refuses (src/routing/admit.ts); undefined when all are allowed. */
  readonly pathForms: RegExp | undefined;
}

/** Bodies buffered for policies (schema validation) are bounded even without a request-size policy. */
export const DEFAULT_MAX_BUFFERED_BODY = 1024 * 1024;

/** AI requests are always read whole (JSON, images inline as data: URLs): bounded, larger by default. */
export const DEFAULT_MAX_AI_BODY = 16 * 1024 * 1024;

const MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(text: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(text);
  if (m === null) throw new Error(`not a duration: ${text}`);
  return Number(m[1]) * (MS[m[2] as string] as number);
}

/** The folder a config's relative paths start from: the config file's, or the working directory. */
function configBaseDir(file: string | undefined): string {
  return file !== undefined ? path.dirname(path.resolve(file)) : process.cwd();
}

/** Where a config's call log lives: `call_log.path`, relative to the config file's folder. */
export function callLogPathOf(config: Pick<Config, 'call_log'>, file: string | undefined): string {
  return path.resolve(configBaseDir(file), config.call_log.path);
}

/**
 * The checks of one policy entry that need nothing but the entry: a known type, and its config
 * against that type's schema (ajv fills the config's defaults in place). `pinpoint validate` also
 * runs them on a file whose overall structure failed the schema, so a typo inside a policy's
 * config is reported in the same run as the structural ones.
 */
export function checkPolicyEntry(id: string, type: string, config: unknown): { mod: PolicyModule | undefined; cfg: unknown; issues: ConfigIssue[] } {
  const mod = POLICY_BY_TYPE.get(type);
  if (mod === undefined) {
    return { mod, cfg: config, issues: [{ path: `policies.${id}.type`, message: `unknown policy type "${type}" (known: ${[...POLICY_BY_TYPE.keys()].join(', ')})` }] };
  }
  const cfg = config ?? {};
  return { mod, cfg, issues: validate(mod.schema, cfg, `policies.${id}.config`) };
}

/**
 * Compiles a schema-valid config. `baseDir` resolves relative paths (the config file's folder).
 * @throws ConfigError listing every issue found.
 */
export function compileConfig(
  config: Config,
  opts: { file?: string; env?: Readonly<Record<string, string | undefined>> } = {},
): CompiledConfig {
  const issues: ConfigIssue[] = [];
  const env = opts.env ?? process.env;
  const baseDir = configBaseDir(opts.file);

  // Unique ids.
  const dup = (list: readonly { id: string }[], what: string) => {
    const seen = new Map<string, number>();
    list.forEach((item, i) => {
      const first = seen.get(item.id);
      if (first !== undefined) issues.push({ path: `${what}[${i}].id`, message: `duplicate id "${item.id}" (also ${what}[${first}])` });
      else seen.set(item.id, i);
    });
  };
  dup(config.routes, 'routes');
  dup(config.consumers, 'consumers');

  // Credentials, indexed once for every authentication policy.
  const keys = KeyIndex.build(config.consumers, env);
  issues.push(...keys.issues);

  // Policies: per-type schema, then the type's own compile.
  const policies = new Map<string, CompiledPolicy>();
  for (const [id, inst] of idEntries(config.policies)) {
    const p = `policies.${id}`;
    const { mod, cfg, issues: own } = checkPolicyEntry(id, inst.type, inst.config);
    if (mod === undefined || own.length > 0) {
      issues.push(...own);
      continue;
    }
    try {
      policies.set(id, mod.compile(cfg, { id, mode: inst.mode }, { consumers: config.consumers, apiKeys: keys.index, env, path: `${p}.config`, baseDir }));
    } catch (err) {
      if (err instanceof ConfigError) issues.push(...err.issues);
      else issues.push({ path: `${p}.config`, message: (err as Error).message });
    }
  }

  const resolveRefs = (refs: readonly string[], where: string): CompiledPolicy[] => {
    const out: CompiledPolicy[] = [];
    refs.forEach((ref, i) => {
      const pol = policies.get(ref);
      if (pol !== undefined) out.push(pol);
      else if (!Object.hasOwn(config.policies, ref)) {
        issues.push({ path: `${where}[${i}]`, message: `no policy with id "${ref}" in policies` });
      }
    });
    return out;
  };

  const global = resolveRefs(config.global.policies, 'global.policies');
  const ai = compileAi(config.ai, env, baseDir, issues);

  const consumerPolicies = new Map<string, readonly CompiledPolicy[]>();
  const consumerErrors = new Map<string, ErrorsMode>();
  config.consumers.forEach((c, i) => {
    consumerPolicies.set(c.id, Object.freeze(resolveRefs(c.policies, `consumers[${i}].policies`)));
    if (c.errors !== undefined) consumerErrors.set(c.id, c.errors);
  });

  const routes: CompiledRoute[] = config.routes.map((r: RouteConfig, i) => {
    const kinds = (['upstream', 'ai', 'prompt'] as const).filter((k) => r[k] !== undefined);
    if (kinds.length !== 1) {
      issues.push({ path: `routes[${i}]`, message: kinds.length === 0 ? 'give one of upstream, ai and prompt' : `give only one of ${kinds.join(', ')}` });
    }
    const kind: RouteKind = r.ai !== undefined ? 'ai' : r.prompt !== undefined ? 'prompt' : 'proxy';
    const upstream = r.upstream !== undefined ? config.upstreams[r.upstream] : undefined;
    if (r.upstream !== undefined && upstream === undefined) {
      issues.push({ path: `routes[${i}].upstream`, message: `no upstream "${r.upstream}" in upstreams (known: ${Object.keys(config.upstreams).join(', ') || 'none'})` });
    }
    r.ai?.models.forEach((m, j) => {
      if (ai.resolve(m) === undefined) issues.push({ path: `routes[${i}].ai.models[${j}]`, message: `no model "${m}" in ai.models (known: ${ai.names.join(', ') || 'none'})` });
    });
    const prompt = r.prompt !== undefined ? compilePrompt(r.prompt, ai, `routes[${i}].prompt`, issues) : undefined;
    let planned: readonly PlannedPolicy[] = [];
    try {
      planned = plan(global, resolveRefs(r.policies, `routes[${i}].policies`));
    } catch (err) {
      issues.push({ path: `routes[${i}].policies`, message: (err as Error).message });
    }
    let limitPolicy: CompiledPolicy | undefined;
    for (const pp of planned) {
      const lim = pp.policy.bodyLimit;
      if (lim !== undefined && pp.policy.mode === 'enforce' && (limitPolicy === undefined || lim < (limitPolicy.bodyLimit ?? Infinity))) limitPolicy = pp.policy;
    }
    const bodyCap = kind === 'proxy' ? DEFAULT_MAX_BUFFERED_BODY : DEFAULT_MAX_AI_BODY;
    return Object.freeze({
      maxBufferedBody: Math.min(limitPolicy?.bodyLimit ?? bodyCap, bodyCap),
      bodyLimitPolicy: limitPolicy?.id,
      ownsCors: planned.some((pp) => pp.policy.type === 'cors'),
      id: r.id,
      index: i,
      kind,
      envelope: r.ai?.protocol ?? 'problem',
      protocol: kind === 'prompt' ? 'prompt' : r.ai?.protocol,
      upstreamId: r.upstream ?? '',
      upstream: upstream as UpstreamConfig,
      ai: r.ai,
      prompt,
      plan: planned,
      errors: r.errors,
      stripPrefix: r.strip_prefix,
      preserveHost: r.preserve_host,
      routerTrace: new Map(
        r.paths.map((t): [string, TraceEntry] => [t, Object.freeze({ policy: 'router', type: 'router', outcome: 'allow', rule: `route ${r.id} (${t})`, us: 0 })]),
      ),
    });
  });

  const built = Router.build(
    config.routes.map((r, i) => ({
      id: r.id,
      hosts: r.hosts,
      paths: r.paths,
      methods: r.methods as HttpMethod[],
      // Browsers preflight non-simple cross-origin requests with OPTIONS (Fetch, CORS-preflight
      // fetch): a route with a cors policy must take OPTIONS, or the router answers 405 first.
      impliedMethods: routes[i]?.ownsCors === true ? ['OPTIONS'] : [],
      value: routes[i] as CompiledRoute,
    })),
    (i) => `routes[${i}]`,
  );
  issues.push(...built.issues);

  const trustedProxies: Cidr[] = [];
  config.trusted_proxies.forEach((text, i) => {
    const c = parseCidr(text);
    if (typeof c === 'string') issues.push({ path: `trusted_proxies[${i}]`, message: c });
    else trustedProxies.push(c);
  });

  for (const [id, up] of idEntries(config.upstreams)) {
    up.targets.forEach((t, i) => {
      try {
        const u = new URL(t.url);
        if (u.search !== '' || u.hash !== '') {
          issues.push({ path: `upstreams.${id}.targets[${i}].url`, message: 'a target URL cannot carry a query or fragment' });
        }
        if (u.username !== '' || u.password !== '') {
          issues.push({ path: `upstreams.${id}.targets[${i}].url`, message: 'credentials in a target URL would be logged; use a request-transform policy' });
        }
      } catch {
        issues.push({ path: `upstreams.${id}.targets[${i}].url`, message: `"${t.url}" is not a valid URL` });
      }
    });
  }

  // Policies reading the same consumer data (two subscription policies for one API) find the same
  // problem there; it is one problem to fix, so it is reported once.
  if (issues.length > 0) throw new ConfigError(issues.filter((x, i) => issues.findIndex((y) => y.path === x.path && y.message === x.message) === i));

  return Object.freeze({
    source: config,
    file: opts.file !== undefined ? path.resolve(opts.file) : undefined,
    router: built.router,
    routes: Object.freeze(routes),
    policies,
    consumerPolicies,
    consumerErrors,
    trustedProxies: Object.freeze(trustedProxies),
    callLogPath: callLogPathOf(config, opts.file),
    apiKeys: keys.index,
    ai,
    pathForms: pathFormPattern(config.request_paths),
    rewrittenHeaders: new HeaderNames(['expect', 'host', 'x-forwarded-port', 'x-forwarded-prefix', 'x-forwarded-server', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-real-ip', 'forwarded', config.request_id.header.toLowerCase()]),
  });
}
