/**
 * Reading an operation's parameters out of the request, per their `style` and `explode`
 * (OpenAPI 3.x Parameter Object, "Style Values"), into plain strings and lists of strings. Types
 * come later: ajv coerces them from strings per each parameter's schema.
 */
import type { RequestFacts } from '../../pipeline/types.ts';
import type { FieldError } from './errors.ts';
import { escapePointer } from './load.ts';

export type ParamIn = 'path' | 'query' | 'header' | 'cookie';
export type Shape = 'primitive' | 'array' | 'object';

export interface ParamSpec {
  readonly name: string;
  readonly in: ParamIn;
  /** The property name in the validated object: header names lower-cased (RFC 9110 §5.1). */
  readonly key: string;
  readonly style: string;
  readonly explode: boolean;
  readonly shape: Shape;
  /** Declared properties of an object parameter (form + explode reads each as its own query key). */
  readonly properties: readonly string[];
  /** Described with `content` (a JSON media type) rather than `schema`: the value is JSON text. */
  readonly json: boolean;
}

export type ParamData = Record<ParamIn, Record<string, unknown>>;

/** The parts of a request parameters come from; query and cookies are parsed on first use. */
class Sources {
  readonly facts: RequestFacts;
  readonly pathParams: Readonly<Record<string, string>>;
  #query: URLSearchParams | undefined;
  #cookies: Map<string, string> | undefined;
  constructor(facts: RequestFacts, pathParams: Readonly<Record<string, string>>) {
    this.facts = facts;
    this.pathParams = pathParams;
  }
  get query(): URLSearchParams {
    return (this.#query ??= new URLSearchParams(this.facts.rawQuery));
  }
  get cookies(): Map<string, string> {
    if (this.#cookies === undefined) {
      this.#cookies = new Map();
      const h = this.facts.headers.cookie;
      // RFC 6265 §4.2.1: cookie-pair *( ";" SP cookie-pair ); the first of a repeated name wins.
      for (const part of (Array.isArray(h) ? h.join('; ') : (h ?? '')).split(';')) {
        const eq = part.indexOf('=');
        if (eq <= 0) continue;
        const k = part.slice(0, eq).trim();
        if (!this.#cookies.has(k)) this.#cookies.set(k, part.slice(eq + 1).trim());
      }
    }
    return this.#cookies;
  }
}

/** `k1,v1,k2,v2` (explode false) or `k1=v1,k2=v2` (explode true) → object. */
function pairs(parts: readonly string[], explode: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  if (explode) {
    for (const p of parts) {
      const eq = p.indexOf('=');
      if (eq > 0) out[p.slice(0, eq)] = p.slice(eq + 1);
    }
  } else {
    for (let i = 0; i + 1 < parts.length; i += 2) out[parts[i] as string] = parts[i + 1] as string;
  }
  return out;
}

/** style simple / label / matrix (path), simple (header): one string → value of the shape. */
function fromString(spec: ParamSpec, raw: string): unknown {
  let s = raw;
  let sep = ',';
  if (spec.style === 'label') {
    // RFC 6570 label expansion: ".a" ; exploded lists ".a.b.c".
    s = s.startsWith('.') ? s.slice(1) : s;
    if (spec.explode) sep = '.';
  } else if (spec.style === 'matrix') {
    // RFC 6570 path-style expansion: ";id=5" ; exploded lists ";id=3;id=4".
    const prefix = `;${spec.name}=`;
    if (spec.explode && spec.shape === 'array') return s.split(';').filter((p) => p.startsWith(`${spec.name}=`)).map((p) => p.slice(spec.name.length + 1));
    s = s.startsWith(prefix) ? s.slice(prefix.length) : s;
  }
  if (spec.shape === 'primitive') return s;
  const parts = s.split(sep).map((p) => (spec.in === 'header' ? p.trim() : p));
  return spec.shape === 'array' ? parts : pairs(parts, spec.explode);
}

function fromQuery(spec: ParamSpec, q: URLSearchParams): unknown {
  if (spec.style === 'deepObject') {
    // name[prop]=value (OpenAPI deepObject; only one level is defined).
    const out: Record<string, string> = {};
    const open = `${spec.name}[`;
    for (const [k, v] of q) if (k.startsWith(open) && k.endsWith(']')) out[k.slice(open.length, -1)] = v;
    return Object.keys(out).length > 0 ? out : undefined;
  }
  if (spec.shape === 'object' && spec.explode) {
    // form + explode: every property is its own query key.
    const out: Record<string, string> = {};
    for (const p of spec.properties) {
      const v = q.get(p);
      if (v !== null) out[p] = v;
    }
    return Object.keys(out).length > 0 ? out : undefined;
  }
  const all = q.getAll(spec.name);
  if (all.length === 0) return undefined;
  if (spec.shape === 'array') {
    if (spec.explode) return all;
    const sep = spec.style === 'spaceDelimited' ? ' ' : spec.style === 'pipeDelimited' ? '|' : ',';
    return all.flatMap((v) => v.split(sep));
  }
  if (spec.shape === 'object') return pairs((all[0] ?? '').split(','), false);
  // A primitive sent twice: keep both, so the schema's type refuses the list instead of one being dropped.
  return all.length === 1 ? all[0] : all;
}

function raw(spec: ParamSpec, src: Sources): string | undefined {
  switch (spec.in) {
    case 'path':
      return src.pathParams[spec.name];
    case 'header': {
      const v = src.facts.headers[spec.key];
      return Array.isArray(v) ? v.join(', ') : v;
    }
    case 'cookie':
      return src.cookies.get(spec.name);
    case 'query':
      return src.query.get(spec.name) ?? undefined;
  }
}

/**
 * The request's parameters as `{ path, query, header, cookie }`, ready for the operation's
 * parameter validator. Values that are JSON text (parameters described by `content`) and do not
 * parse are reported here, since no schema can see them.
 */
export function collectParams(specs: readonly ParamSpec[], facts: RequestFacts, pathParams: Readonly<Record<string, string>>): { data: ParamData; errors: FieldError[] } {
  const src = new Sources(facts, pathParams);
  const data: ParamData = { path: {}, query: {}, header: {}, cookie: {} };
  const errors: FieldError[] = [];
  for (const spec of specs) {
    let value: unknown;
    if (spec.json) {
      const text = raw(spec, src);
      if (text === undefined) continue;
      try {
        value = JSON.parse(text);
      } catch {
        errors.push({ pointer: `/${spec.in}/${escapePointer(spec.key)}`, message: 'is not valid JSON', rule: 'content application/json' });
        continue;
      }
    } else if (spec.in === 'query') {
      value = fromQuery(spec, src.query);
    } else if (spec.in === 'cookie') {
      const v = src.cookies.get(spec.name);
      value = v === undefined || spec.shape === 'primitive' ? v : fromString({ ...spec, style: 'simple' }, v);
    } else {
      const v = raw(spec, src);
      value = v === undefined ? undefined : fromString(spec, v);
    }
    if (value !== undefined) data[spec.in][spec.key] = value;
  }
  return { data, errors };
}
