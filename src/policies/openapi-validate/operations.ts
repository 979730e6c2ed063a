/**
 * Compiling a loaded OpenAPI document into what a request is checked against: a path index
 * (templates → operations), and per operation one parameter validator and one validator per
 * request-body media type. Everything here runs once per config load.
 */
import { Ajv, type ErrorObject, type Options, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { isJsonMediaType, parseMediaPattern, parseMediaType, type MediaPattern } from '../content-type/media-type.ts';
import { patternEngine } from './pattern-engine.ts';
import { deref, fragment, isObject, type Json, type JsonObject, type LoadedDocument } from './load.ts';
import type { ParamIn, ParamSpec, Shape } from './params.ts';

// ajv-formats is CommonJS with a default export; under NodeNext the namespace object is what we get.
const addFormats = addFormatsModule as unknown as (ajv: Ajv | Ajv2020) => unknown;

/** The id the document is registered under in ajv; `.invalid` (RFC 2606) can never be fetched. */
const DOC_ID = 'https://openapi.pinpoint.invalid/document.json';

/** Path Item fields that are operations, in the order `Allow` lists them. */
const METHODS = ['get', 'head', 'post', 'put', 'patch', 'delete', 'options', 'trace'] as const;

export interface BodyMedia extends MediaPattern {
  /** Validator of the media type's schema; undefined when it has none (any content). */
  readonly validate: ValidateFunction | undefined;
}

export interface BodySpec {
  readonly required: boolean;
  readonly media: readonly BodyMedia[];
  /** The `content` keys, for evidence. */
  readonly accepted: readonly string[];
}

export interface CompiledOperation {
  /** Upper-case. */
  readonly method: string;
  readonly template: string;
  /** `POST /orders`, for evidence and traces. */
  readonly label: string;
  readonly operationId: string | null;
  readonly params: readonly ParamSpec[];
  /** Validates `{ path, query, header, cookie }`; undefined when the operation has no parameters. */
  readonly validateParams: ValidateFunction | undefined;
  readonly body: BodySpec | undefined;
}

export type Segment = { readonly literal: string } | { readonly re: RegExp; readonly names: readonly string[] };

export interface PathEntry {
  readonly template: string;
  readonly segments: readonly Segment[];
  /** Per segment: 0 literal, 1 templated; lower sorts first ("concrete paths before templated"). */
  readonly rank: readonly number[];
  /** By upper-case method. */
  readonly ops: ReadonlyMap<string, CompiledOperation>;
  /** For 405: the described methods, plus HEAD wherever GET is (RFC 9110 §9.3.2). */
  readonly allow: readonly string[];
}

export interface CompiledDocument {
  /** By segment count, most specific first. */
  readonly paths: ReadonlyMap<number, readonly PathEntry[]>;
  readonly templates: readonly string[];
  /** Path prefixes from the document's servers (path part, variables at their defaults). */
  readonly serverBases: readonly string[];
}

export interface DocIssue {
  /** JSON pointer into the document. */
  readonly at: string;
  readonly message: string;
}

function ajvFor(loaded: LoadedDocument, coerce: boolean): Ajv | Ajv2020 {
  const opts: Options = {
    // OpenAPI schemas carry keywords JSON Schema does not know (example, xml, discriminator,
    // x- extensions) and formats tools may ignore (OpenAPI "format" is open): strict mode would
    // refuse valid documents, and its warnings have no one to read them here.
    strict: false,
    logger: false,
    // Every failing field, so one denial lists all of them.
    allErrors: true,
    // Parameters arrive as strings; coerce per schema ("array": a lone value fills a list).
    coerceTypes: coerce ? 'array' : false,
    useDefaults: false,
    // `pattern` runs on V8 when proven backtrack-bounded, else on RE2: either way linear in the
    // input, so a document's pattern cannot become a ReDoS against a request value.
    code: { regExp: patternEngine },
  };
  // OpenAPI 3.1 Schema Objects are JSON Schema 2020-12; 3.0's dialect is read by draft-07 ajv
  // once load.ts has rewritten its nullable / boolean exclusive bounds.
  const ajv = loaded.version === '3.1' ? new Ajv2020(opts) : new Ajv(opts);
  // int32, int64, float, double, byte, binary, password: the OpenAPI formats, with the rest.
  addFormats(ajv);
  ajv.addSchema(loaded.doc, DOC_ID);
  return ajv;
}

function ref(segments: readonly string[]): { $ref: string } {
  return { $ref: DOC_ID + fragment(segments) };
}

function errorsText(errors: readonly ErrorObject[] | null | undefined): string {
  return (errors ?? []).slice(0, 3).map((e) => `${e.instancePath || '(schema)'} ${e.message ?? e.keyword}`).join('; ');
}

/** Array / object / primitive, from the schema's type (following $ref), for reading parameters. */
function shapeOf(doc: JsonObject, schema: Json | undefined): { shape: Shape; properties: string[] } {
  let s: Json | undefined = schema;
  try {
    s = deref(doc, schema, []).value;
  } catch {
    return { shape: 'primitive', properties: [] };
  }
  if (!isObject(s)) return { shape: 'primitive', properties: [] };
  const types = Array.isArray(s.type) ? s.type : [s.type];
  const properties = isObject(s.properties) ? Object.keys(s.properties) : [];
  if (types.includes('array') || (s.type === undefined && s.items !== undefined)) return { shape: 'array', properties };
  if (types.includes('object') || (s.type === undefined && s.properties !== undefined)) return { shape: 'object', properties };
  return { shape: 'primitive', properties };
}

function parseTemplate(template: string): { segments: Segment[]; rank: number[] } | string {
  if (!template.startsWith('/')) return 'a path must start with "/"';
  const segments: Segment[] = [];
  const rank: number[] = [];
  for (const seg of template.split('/').slice(1)) {
    if (!seg.includes('{')) {
      if (seg.includes('}')) return `unbalanced "}" in "${seg}"`;
      segments.push({ literal: seg });
      rank.push(0);
      continue;
    }
    const names: string[] = [];
    let re = '';
    const parts = seg.split(/(\{[^{}]*\})/);
    for (const part of parts) {
      if (part.startsWith('{') && part.endsWith('}')) {
        names.push(part.slice(1, -1));
        re += '([^/]+?)';
      } else if (part.includes('{') || part.includes('}')) {
        return `unbalanced braces in "${seg}"`;
      } else re += part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    }
    segments.push({ re: new RegExp(`^${re}$`), names });
    rank.push(1);
  }
  return { segments, rank };
}

function serverBases(doc: JsonObject): string[] {
  const servers = Array.isArray(doc.servers) ? doc.servers : [];
  const out = new Set<string>();
  for (const s of servers) {
    if (!isObject(s) || typeof s.url !== 'string') continue;
    const vars = isObject(s.variables) ? s.variables : {};
    // Server Object: each {variable} is replaced by its default.
    const url = s.url.replace(/\{([^}]+)\}/g, (whole, name: string) => {
      const v = vars[name];
      return isObject(v) && typeof v.default === 'string' ? v.default : whole;
    });
    let p: string;
    try {
      p = new URL(url, 'http://relative.invalid/').pathname;
    } catch {
      continue;
    }
    out.add(p.replace(/\/+$/, ''));
  }
  return [...out];
}

/** Compiles every operation. Problems are collected with their location in the document. */
export function compileDocument(loaded: LoadedDocument, issues: DocIssue[]): CompiledDocument {
  const { doc } = loaded;
  const paramsAjv = ajvFor(loaded, true);
  const bodyAjv = ajvFor(loaded, false);

  // Meta-validate every schema a request can meet, so a malformed one fails the load, not a request.
  const schemaChecked = new Set<string>();
  const checkSchema = (segments: readonly string[], schema: Json | undefined): void => {
    const at = fragment(segments);
    if (schemaChecked.has(at)) return;
    schemaChecked.add(at);
    if (typeof schema === 'boolean' && loaded.version === '3.1') return;
    if (!isObject(schema)) {
      issues.push({ at, message: 'a schema must be an object' });
      return;
    }
    if (bodyAjv.validateSchema(schema) !== true) issues.push({ at, message: `invalid schema: ${errorsText(bodyAjv.errors)}` });
  };
  const components = isObject(doc.components) && isObject(doc.components.schemas) ? doc.components.schemas : {};
  for (const [name, s] of Object.entries(components)) checkSchema(['components', 'schemas', name], s);

  const byCount = new Map<number, PathEntry[]>();
  const templates: string[] = [];
  for (const [template, rawItem] of Object.entries(doc.paths as JsonObject)) {
    const itemAt = ['paths', template];
    const parsed = parseTemplate(template);
    if (typeof parsed === 'string') {
      issues.push({ at: fragment(itemAt), message: parsed });
      continue;
    }
    let item: Json | undefined;
    let itemSegments: readonly string[];
    try {
      ({ value: item, segments: itemSegments } = deref(doc, rawItem, itemAt));
    } catch (err) {
      issues.push({ at: fragment(itemAt), message: (err as Error).message });
      continue;
    }
    if (!isObject(item)) continue;
    const ops = new Map<string, CompiledOperation>();
    for (const m of METHODS) {
      const op = item[m];
      if (!isObject(op)) continue;
      const compiled = compileOperation({ doc, template, method: m, op, opAt: [...itemSegments, m], item, itemAt: itemSegments, paramsAjv, bodyAjv, checkSchema, issues });
      if (compiled !== undefined) ops.set(m.toUpperCase(), compiled);
    }
    const allow = METHODS.map((m) => m.toUpperCase()).filter((m) => ops.has(m) || (m === 'HEAD' && ops.has('GET')));
    const entry: PathEntry = { template, segments: parsed.segments, rank: parsed.rank, ops, allow };
    const list = byCount.get(parsed.segments.length) ?? [];
    list.push(entry);
    byCount.set(parsed.segments.length, list);
    templates.push(template);
  }
  // OpenAPI Paths Object: "concrete (non-templated) paths would be matched before their templated counterparts".
  for (const list of byCount.values()) {
    list.sort((a, b) => {
      for (let i = 0; i < a.rank.length; i++) if (a.rank[i] !== b.rank[i]) return (a.rank[i] ?? 0) - (b.rank[i] ?? 0);
      return 0;
    });
  }
  return { paths: byCount, templates, serverBases: serverBases(doc) };
}

interface OperationInput {
  readonly doc: JsonObject;
  readonly template: string;
  readonly method: string;
  readonly op: JsonObject;
  readonly opAt: readonly string[];
  readonly item: JsonObject;
  readonly itemAt: readonly string[];
  readonly paramsAjv: Ajv | Ajv2020;
  readonly bodyAjv: Ajv | Ajv2020;
  readonly checkSchema: (segments: readonly string[], schema: Json | undefined) => void;
  readonly issues: DocIssue[];
}

const IN: ReadonlySet<string> = new Set(['path', 'query', 'header', 'cookie']);
/** Parameter Object: header parameters with these names "SHALL be ignored" (HTTP owns them). */
const IGNORED_HEADERS: ReadonlySet<string> = new Set(['accept', 'content-type', 'authorization']);

function compileOperation(x: OperationInput): CompiledOperation | undefined {
  const { doc, issues } = x;
  const method = x.method.toUpperCase();
  const label = `${method} ${x.template}`;
  const before = issues.length;

  // Path-level parameters apply to every operation; an operation's own with the same name and
  // location override them (Path Item Object, parameters).
  const byKey = new Map<string, { p: JsonObject; at: readonly string[] }>();
  const add = (list: Json | undefined, listAt: readonly string[]): void => {
    if (!Array.isArray(list)) return;
    list.forEach((raw, i) => {
      try {
        const { value, segments } = deref(doc, raw, [...listAt, String(i)]);
        if (!isObject(value) || typeof value.name !== 'string' || typeof value.in !== 'string' || !IN.has(value.in)) {
          issues.push({ at: fragment([...listAt, String(i)]), message: 'a parameter needs a name and in: path, query, header or cookie' });
          return;
        }
        const key = value.in === 'header' ? value.name.toLowerCase() : value.name;
        byKey.set(`${value.in}:${key}`, { p: value, at: segments });
      } catch (err) {
        issues.push({ at: fragment([...listAt, String(i)]), message: (err as Error).message });
      }
    });
  };
  add(x.item.parameters, [...x.itemAt, 'parameters']);
  add(x.op.parameters, [...x.opAt, 'parameters']);

  const params: ParamSpec[] = [];
  const locations: Record<ParamIn, { properties: Record<string, unknown>; required: string[] }> = {
    path: { properties: {}, required: [] },
    query: { properties: {}, required: [] },
    header: { properties: {}, required: [] },
    cookie: { properties: {}, required: [] },
  };
  for (const { p, at } of byKey.values()) {
    const where = p.in as ParamIn;
    const name = p.name as string;
    if (where === 'header' && IGNORED_HEADERS.has(name.toLowerCase())) continue;
    const key = where === 'header' ? name.toLowerCase() : name;
    let schemaAt: string[];
    let schema: Json | undefined;
    let json = false;
    if (p.schema !== undefined) {
      schemaAt = [...at, 'schema'];
      schema = p.schema;
    } else if (isObject(p.content)) {
      // Parameter Object, content: "The map MUST only contain one entry."
      const [mediaKey, m] = Object.entries(p.content)[0] ?? ['', undefined];
      const mt = parseMediaType(mediaKey);
      json = mt !== undefined && isJsonMediaType(mt);
      schemaAt = [...at, 'content', mediaKey, 'schema'];
      schema = isObject(m) ? m.schema : undefined;
      if (!json || schema === undefined) continue; // not JSON, or no schema: nothing to validate
    } else {
      issues.push({ at: fragment(at), message: `parameter ${name} has neither schema nor content` });
      continue;
    }
    x.checkSchema(schemaAt, schema);
    const style = typeof p.style === 'string' ? p.style : where === 'query' || where === 'cookie' ? 'form' : 'simple';
    const { shape, properties } = json ? { shape: 'primitive' as const, properties: [] } : shapeOf(doc, schema);
    params.push({
      name,
      in: where,
      key,
      style,
      // Parameter Object, explode: "When style is form, the default value is true. For all other styles, the default value is false."
      explode: typeof p.explode === 'boolean' ? p.explode : style === 'form',
      shape,
      properties,
      json,
    });
    locations[where].properties[key] = ref(schemaAt);
    // Path parameters are always required (Parameter Object, required).
    if (p.required === true || where === 'path') locations[where].required.push(key);
  }

  let validateParams: ValidateFunction | undefined;
  if (params.length > 0) {
    const properties: Record<string, unknown> = {};
    for (const where of ['path', 'query', 'header', 'cookie'] as const) {
      const l = locations[where];
      if (Object.keys(l.properties).length > 0) properties[where] = { type: 'object', properties: l.properties, required: l.required };
    }
    try {
      validateParams = x.paramsAjv.compile({ type: 'object', properties });
    } catch (err) {
      issues.push({ at: fragment([...x.opAt, 'parameters']), message: (err as Error).message });
    }
  }

  let body: BodySpec | undefined;
  if (x.op.requestBody !== undefined) {
    try {
      const { value: rb, segments: rbAt } = deref(doc, x.op.requestBody, [...x.opAt, 'requestBody']);
      if (isObject(rb) && isObject(rb.content)) {
        const media: BodyMedia[] = [];
        for (const [mediaKey, m] of Object.entries(rb.content)) {
          const mediaAt = [...rbAt, 'content', mediaKey];
          // Content keys are media ranges; parameters on them do not take part in matching here.
          const mt = parseMediaType(mediaKey);
          const pattern = mt === undefined ? mediaKey : parseMediaPattern(`${mt.type}/${mt.subtype}`);
          if (typeof pattern === 'string') {
            issues.push({ at: fragment(mediaAt), message: `"${mediaKey}" is not a media range` });
            continue;
          }
          let validate: ValidateFunction | undefined;
          if (isObject(m) && m.schema !== undefined) {
            x.checkSchema([...mediaAt, 'schema'], m.schema);
            validate = x.bodyAjv.compile(ref([...mediaAt, 'schema']));
          }
          media.push({ ...pattern, text: mediaKey, validate });
        }
        body = { required: rb.required === true, media, accepted: Object.keys(rb.content) };
      }
    } catch (err) {
      issues.push({ at: fragment([...x.opAt, 'requestBody']), message: (err as Error).message });
    }
  }

  if (issues.length > before) return undefined;
  return {
    method,
    template: x.template,
    label,
    operationId: typeof x.op.operationId === 'string' ? x.op.operationId : null,
    params,
    validateParams,
    body,
  };
}
