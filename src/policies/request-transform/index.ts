/**
 * `request-transform`: edits the request on its way upstream — set, remove and rename headers, set
 * and remove query parameters. Its main use is credential hand-off: strip the client's own
 * credential and inject the gateway's upstream credential from the environment (`${env:NAME}`),
 * so neither leaks to the other side (denial cause 25, and cause 28 when the injected one is bad).
 * It never denies.
 *
 * @example
 * ```yaml
 * policies:
 *   upstream-credential:
 *     type: request-transform
 *     config:
 *       remove_headers: [x-api-key]
 *       set_headers: { authorization: "Bearer ${env:ORDERS_UPSTREAM_TOKEN}" }
 *       rename_headers: [{ from: x-user, to: x-client-user }]
 * ```
 */
import { ConfigError, type ConfigIssue, type PolicyModule, type RequestTransform } from '../../pipeline/types.ts';
import { decideRequestTransform, type Rename, type RequestTransformCompiled } from './decide.ts';
import { RequestTransformSchema } from './schema.ts';

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Connection-specific fields (RFC 9110 §7.6.1) and message framing (RFC 9112 §6) are the proxy's to
 * write; editing them would desynchronise the upstream connection. Host may be set (virtual hosts)
 * but not removed: HTTP/1.1 requires it (RFC 9112 §3.2).
 */
const NOT_EDITABLE = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'content-length']);
const NOT_REMOVABLE = new Set([...NOT_EDITABLE, 'host']);

/** A config path segment for a map key, readable when it can be. */
function keyPath(base: string, key: string): string {
  return /^[A-Za-z0-9_-]+$/.test(key) ? `${base}.${key}` : `${base}[${JSON.stringify(key)}]`;
}

/**
 * Resolves `${env:NAME}` placeholders. Issues name the field and the variable, never a value.
 * Any other `${...}` is refused, so a typo such as `${ENV:X}` cannot reach the upstream literally.
 */
export function interpolateEnv(value: string, env: Readonly<Record<string, string | undefined>>, path: string, issues: ConfigIssue[]): string {
  return value.replace(/\$\{([^}]*)\}/g, (whole, inner: string) => {
    const m = /^env:([A-Za-z_][A-Za-z0-9_]*)$/.exec(inner);
    if (m === null) {
      issues.push({ path, message: `unsupported placeholder ${whole}: only \${env:NAME} is recognised` });
      return whole;
    }
    const name = m[1] as string;
    const v = env[name];
    if (v === undefined || v === '') {
      issues.push({ path, message: `environment variable ${name} is ${v === undefined ? 'not set' : 'empty'}` });
      return whole;
    }
    return v;
  });
}

export const requestTransform: PolicyModule<typeof RequestTransformSchema> = {
  type: 'request-transform',
  summary: 'Sets, removes and renames upstream request headers and query parameters; injects credentials from the environment.',
  schema: RequestTransformSchema,
  compile(config, meta, ctx) {
    const issues: ConfigIssue[] = [];
    const p = ctx.path;

    const setHeaders: Record<string, string> = {};
    const setFrom = new Map<string, string>();
    for (const [raw, value] of Object.entries(config.set_headers)) {
      const path = keyPath(`${p}.set_headers`, raw);
      const name = raw.toLowerCase();
      if (!TOKEN.test(raw)) issues.push({ path, message: `"${raw}" is not a header name` });
      else if (NOT_EDITABLE.has(name)) issues.push({ path, message: `${name} is managed by the proxy and cannot be set` });
      else if (setFrom.has(name)) issues.push({ path, message: `same header as ${setFrom.get(name) ?? ''} (header names are case-insensitive)` });
      const before = issues.length;
      const resolved = interpolateEnv(value, ctx.env, path, issues);
      // RFC 9110 §5.5: a field value has no CR, LF, NUL or other controls; Node would refuse it mid-request.
      if (issues.length === before && /[^\t\x20-\x7e\x80-\xff]/.test(resolved)) {
        issues.push({ path, message: 'the value (after ${env:...} substitution) contains control or non-Latin-1 characters, which a header cannot carry' });
      }
      setFrom.set(name, path);
      setHeaders[name] = resolved.trim();
    }

    const removeHeaders: string[] = [];
    config.remove_headers.forEach((raw, i) => {
      const name = raw.toLowerCase();
      if (NOT_REMOVABLE.has(name)) issues.push({ path: `${p}.remove_headers[${i}]`, message: `${name} is managed by the proxy and cannot be removed` });
      else if (!removeHeaders.includes(name)) removeHeaders.push(name);
    });

    const renames: Rename[] = [];
    config.rename_headers.forEach((r, i) => {
      const from = r.from.toLowerCase();
      const to = r.to.toLowerCase();
      const path = `${p}.rename_headers[${i}]`;
      const fail = (field: 'from' | 'to', message: string): void => void issues.push({ path: `${path}.${field}`, message });
      if (NOT_REMOVABLE.has(from)) fail('from', `${from} is managed by the proxy and cannot be renamed`);
      else if (NOT_EDITABLE.has(to) || to === 'host') fail('to', `${to} is managed by the proxy and cannot be a rename target`);
      else if (from === to) fail('to', 'renaming a header to itself changes nothing');
      // Each of these would make the outcome depend on the order edits are applied in: refuse them.
      else if (setFrom.has(from)) fail('from', `${from} is also in set_headers; rename reads the client's value, set replaces it — keep one`);
      else if (setFrom.has(to)) fail('to', `${to} is also in set_headers; keep one`);
      else if (removeHeaders.includes(from)) fail('from', `${from} is also in remove_headers, so there would be nothing to rename`);
      else if (removeHeaders.includes(to)) fail('to', `${to} is also in remove_headers; the renamed header would be sent anyway`);
      else if (renames.some((o) => o.from === from)) fail('from', `${from} is renamed twice`);
      else if (renames.some((o) => o.to === to)) fail('to', `two headers are renamed to ${to}`);
      else renames.push({ from, to });
    });

    const setQuery: Record<string, string> = {};
    for (const [name, value] of Object.entries(config.set_query)) {
      setQuery[name] = interpolateEnv(value, ctx.env, keyPath(`${p}.set_query`, name), issues);
    }
    const removeQuery = [...new Set(config.remove_query)];

    if (issues.length > 0) throw new ConfigError(issues);

    const base: RequestTransform = Object.freeze({
      ...(Object.keys(setHeaders).length > 0 ? { setHeaders: Object.freeze(setHeaders) } : {}),
      ...(removeHeaders.length > 0 ? { removeHeaders: Object.freeze(removeHeaders) } : {}),
      ...(Object.keys(setQuery).length > 0 ? { setQuery: Object.freeze(setQuery) } : {}),
      ...(removeQuery.length > 0 ? { removeQuery: Object.freeze(removeQuery) } : {}),
    });
    const compiled: RequestTransformCompiled = Object.freeze({
      base,
      renames: Object.freeze(renames),
      setHeaderNames: Object.freeze(Object.keys(setHeaders)),
      removeHeaders: Object.freeze(removeHeaders),
      setQueryNames: Object.freeze(Object.keys(setQuery)),
      removeQuery: Object.freeze(removeQuery),
    });
    return { id: meta.id, type: 'request-transform', mode: meta.mode, decide: (dctx) => decideRequestTransform(compiled, dctx) };
  },
};
