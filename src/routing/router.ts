/**
 * Route matching on find-my-way (Fastify's radix router): host, path templates with parameters
 * and prefixes, methods. A miss is explained: 405 with the methods the path does accept
 * (RFC 9110 §15.5.6 requires `Allow`), or 404 with the nearest configured paths.
 */
import FindMyWay from 'find-my-way';
import { distance } from 'fastest-levenshtein';
import type { ConfigIssue } from '../pipeline/types.ts';

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

export interface RouteSpec<T> {
  readonly id: string;
  readonly hosts: readonly string[];
  readonly paths: readonly string[];
  readonly methods: readonly HttpMethod[];
  /** Methods the route also answers unless another route declares them (OPTIONS for CORS preflights). */
  readonly impliedMethods?: readonly HttpMethod[];
  readonly value: T;
}

export type Match<T> =
  | { readonly kind: 'found'; readonly value: T; readonly params: Record<string, string | undefined>; readonly template: string }
  | { readonly kind: 'method'; readonly allow: readonly string[] }
  | { readonly kind: 'none'; readonly nearest: readonly string[] };

interface Stored<T> {
  readonly value: T;
  readonly template: string;
  readonly routeId: string;
}

/** `/orders/{id}` → `/orders/:id`; a trailing `/*` stays a wildcard. Returns an error for bad templates. */
export function toRouterPath(template: string): string | { error: string } {
  if (template.includes('*') && !template.endsWith('/*') && template !== '*') {
    return { error: `"*" is only allowed as the last segment ("/files/*")` };
  }
  if (/[:()]/.test(template)) return { error: 'use {name} for parameters; ":" and "(" are not allowed' };
  let bad: string | undefined;
  const out = template.replace(/\{([^}]*)\}/g, (_m, name: string) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) bad = name;
    return `:${name}`;
  });
  if (bad !== undefined) return { error: `parameter name "${bad}" must be letters, digits and _` };
  if (/[{}]/.test(out)) return { error: 'unbalanced { } in path template' };
  return out;
}

function hostConstraint(host: string): string | RegExp {
  if (host.startsWith('*.')) {
    const rest = host.slice(2).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    return new RegExp(`^[^.]+\\.${rest}$`, 'i');
  }
  return host.toLowerCase();
}

export class Router<T> {
  readonly #fmw = FindMyWay({ caseSensitive: true, ignoreTrailingSlash: false, ignoreDuplicateSlashes: false });
  readonly #templates: string[] = [];
  readonly #methodsInUse = new Set<string>();

  private constructor() {}

  static build<T>(routes: readonly RouteSpec<T>[], pathOf: (routeIndex: number) => string): { router: Router<T>; issues: ConfigIssue[] } {
    const r = new Router<T>();
    const issues: ConfigIssue[] = [];
    const owners = new Map<string, string>();
    // HEAD implied by GET (RFC 9110 §9.3.2) is registered after every explicit route, so that an
    // explicit HEAD route wins wherever it is declared.
    const implied: { ri: number; pi: number; template: string; converted: string; host: string | undefined; method: string }[] = [];
    const register = (ri: number, pi: number, template: string, converted: string, host: string | undefined, method: string, isImplied: boolean): void => {
      const route = routes[ri] as RouteSpec<T>;
      // Parameter names do not make paths different to the router: /a/{id} and /a/{x} collide.
      const key = `${method} ${host?.toLowerCase() ?? '*'} ${converted.replace(/:[A-Za-z0-9_]+/g, ':')}`;
      const owner = owners.get(key);
      if (owner !== undefined) {
        if (isImplied) return;
        issues.push({
          path: `${pathOf(ri)}.paths[${pi}]`,
          message: `${method} ${template}${host !== undefined ? ` on host ${host}` : ''} is already served by route "${owner}"`,
        });
        return;
      }
      owners.set(key, route.id);
      r.#methodsInUse.add(method);
      const store: Stored<T> = { value: route.value, template, routeId: route.id };
      const opts = host === undefined ? {} : { constraints: { host: hostConstraint(host) } };
      try {
        r.#fmw.on(method as 'GET', converted, opts, () => undefined, store);
      } catch (err) {
        issues.push({ path: `${pathOf(ri)}.paths[${pi}]`, message: (err as Error).message });
      }
    };
    routes.forEach((route, ri) => {
      const methods: readonly string[] = route.methods.length === 0 ? HTTP_METHODS : route.methods;
      const extra: string[] = [];
      if (route.methods.includes('GET') && !route.methods.includes('HEAD')) extra.push('HEAD');
      if (route.methods.length > 0) for (const m of route.impliedMethods ?? []) if (!route.methods.includes(m)) extra.push(m);
      route.paths.forEach((template, pi) => {
        const converted = toRouterPath(template);
        if (typeof converted !== 'string') {
          issues.push({ path: `${pathOf(ri)}.paths[${pi}]`, message: converted.error });
          return;
        }
        r.#templates.push(template);
        const hosts = route.hosts.length === 0 ? [undefined] : route.hosts;
        for (const host of hosts) {
          for (const method of methods) register(ri, pi, template, converted, host, method, false);
          for (const method of extra) implied.push({ ri, pi, template, converted, host, method });
        }
      });
    });
    for (const i of implied) register(i.ri, i.pi, i.template, i.converted, i.host, i.method, true);
    return { router: r, issues };
  }

  /** Matches method + path (no query) + host (port removed). */
  match(method: string, path: string, host: string): Match<T> {
    const constraints = { host };
    const found = this.#find(method, path, constraints);
    if (found !== undefined) {
      const store = found.store as Stored<T>;
      return { kind: 'found', value: store.value, params: found.params, template: store.template };
    }
    const allow: string[] = [];
    for (const m of this.#methodsInUse) {
      if (m !== method && this.#find(m, path, constraints) !== undefined) allow.push(m);
    }
    if (allow.length > 0) return { kind: 'method', allow };
    return { kind: 'none', nearest: this.nearest(path) };
  }

  /**
   * A `{name}` parameter is one non-empty segment: `/orders/` does not match `/orders/{id}` with an
   * empty id (find-my-way would), so it falls through to the 404 that points at `/orders`.
   */
  #find(method: string, path: string, constraints: { host: string }): { store: unknown; params: Record<string, string | undefined> } | undefined {
    const found = this.#fmw.find(method as 'GET', path, constraints);
    if (found === null) return undefined;
    for (const k in found.params) if (k !== '*' && found.params[k] === '') return undefined;
    return found;
  }

  /** Configured path templates closest to `path` (case, trailing slash and typos), best first. */
  nearest(path: string, max = 3): string[] {
    const p = path.toLowerCase();
    const scored = [...new Set(this.#templates)].map((t) => {
      const tl = t.toLowerCase().replace(/\{[^}]*\}/g, '1');
      const cut = tl.endsWith('/*') ? tl.slice(0, -2) : tl;
      return { t, d: Math.min(distance(p, tl), distance(p, cut), distance(p.replace(/\/+$/, ''), cut.replace(/\/+$/, ''))) };
    });
    const limit = Math.max(3, Math.ceil(path.length / 3));
    return scored
      .filter((s) => s.d <= limit)
      .sort((a, b) => a.d - b.d)
      .slice(0, max)
      .map((s) => s.t);
  }
}
