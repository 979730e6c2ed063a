/**
 * `ownership`: the caller may act only on resources it owns. The request's owner value (a path
 * parameter, query parameter, header or JSON body member) must equal the caller's identity claim
 * (or be one of its values, for an array claim), unless the caller holds an override permission.
 * Fails closed: no identity (401), not the owner (403), a claim the credential lacks (403), a
 * missing or ambiguous owner value (400), a body that is not JSON (400), each with its own code.
 *
 * Why a missing value is 400 and not 403: the request does not say which resource it acts on, so
 * there is nothing to authorize yet; the client fixes its request. A path parameter the route
 * does not have is the configuration's fault (500), never the client's.
 *
 * @example
 * ```yaml
 * policies:
 *   own-orders:
 *     type: ownership
 *     config:
 *       resource: { from: body, name: /customer_id }
 *       claim: sub
 *       override_permissions: [orders:admin]
 *       methods: [POST, PUT, PATCH]
 * ```
 */
import { ConfigError, type ConfigIssue, type PolicyModule } from '../../pipeline/types.ts';
import { decideOwnership, type OwnershipCompiled } from './decide.ts';
import { OwnershipSchema, type OwnershipConfig } from './schema.ts';

/** RFC 9110 §5.1: a field name is a token. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * RFC 6901 §3–4: "" or "/"-prefixed tokens; "~1" is "/", "~0" is "~", and any other "~" escape is
 * an error (decode ~1 before ~0, so "~01" is "~1", not "/").
 */
export function parsePointer(text: string): string[] | string {
  if (text === '') return [];
  if (!text.startsWith('/')) return `"${text}" is not a JSON pointer (RFC 6901): it must start with "/", e.g. /owner_id`;
  const tokens = text.slice(1).split('/');
  for (const t of tokens) if (/~(?![01])/.test(t)) return `"${text}" has an invalid escape: "~" must be followed by 0 or 1 (RFC 6901 §3)`;
  return tokens.map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function label(source: OwnershipConfig['resource']['from'], name: string): string {
  switch (source) {
    case 'path':
      return `path parameter ${name}`;
    case 'query':
      return `query parameter ${name}`;
    case 'header':
      return `header ${name}`;
    case 'body':
      return `body ${name}`;
  }
}

export function compileOwnership(config: OwnershipConfig, path: string): OwnershipCompiled {
  const issues: ConfigIssue[] = [];
  const { from } = config.resource;
  let name = config.resource.name;
  let pointer: string[] = [];
  if (from === 'body') {
    const p = parsePointer(name);
    if (typeof p === 'string') issues.push({ path: `${path}.resource.name`, message: p });
    else pointer = p;
  } else if (from === 'header') {
    if (!TOKEN.test(name)) issues.push({ path: `${path}.resource.name`, message: `"${name}" is not a valid header name (RFC 9110 §5.1)` });
    name = name.toLowerCase();
  } else if (from === 'path' && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    issues.push({ path: `${path}.resource.name`, message: `"${name}" is not a path parameter name: write id for /orders/{id}, without braces` });
  }
  if (issues.length > 0) throw new ConfigError(issues);

  let methods: Set<string> | null = null;
  if (config.methods.length > 0) {
    methods = new Set(config.methods);
    // RFC 9110 §9.3.2: HEAD is GET without the content; checking one and not the other would leak.
    if (methods.has('GET')) methods.add('HEAD');
  }
  return Object.freeze({
    source: from,
    name,
    pointer: Object.freeze(pointer),
    label: label(from, name),
    claim: config.claim,
    overrides: Object.freeze([...config.override_permissions]),
    methods: methods === null ? null : Object.freeze(methods),
    skipMissing: config.missing === 'skip',
    challenge: config.challenge,
  });
}

export const ownership: PolicyModule<typeof OwnershipSchema> = {
  type: 'ownership',
  summary: 'The caller may act only on resources it owns: a path, query, header or JSON body value must match its identity claim.',
  schema: OwnershipSchema,
  compile(config, meta, ctx) {
    const compiled = compileOwnership(config, ctx.path);
    return {
      id: meta.id,
      type: 'ownership',
      mode: meta.mode,
      // Only a body rule makes the route buffer the body; others keep it streaming.
      ...(compiled.source === 'body' ? { needsBody: true } : {}),
      decide: (dctx) => decideOwnership(compiled, dctx),
    };
  },
};
