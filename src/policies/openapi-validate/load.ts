/**
 * Loading an OpenAPI document once, at config load: read, parse (YAML 1.2, of which JSON is a
 * subset), check the version, refuse external references, and normalise schemas so one JSON
 * Schema validator (ajv) reads them as the OpenAPI version means them.
 *
 * Schema `$ref`s are NOT inlined: the whole document is registered with ajv, which resolves them
 * itself, so recursive schemas work. Only the OpenAPI objects around schemas (Parameter, Request
 * Body, Path Item) are followed here, with {@link deref}.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import type { CompileContext } from '../../pipeline/types.ts';
import { oneByteStrings } from '../../json/one-byte.ts';

export type OpenApiVersion = '3.0' | '3.1';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export interface LoadedDocument {
  readonly file: string;
  readonly version: OpenApiVersion;
  /** Normalised for request validation (see normalise30 and relaxReadOnly). */
  readonly doc: JsonObject;
}

/** A problem with the document; `at` is a JSON pointer into it when one applies. */
export class DocumentError extends Error {
  readonly at: string | undefined;
  constructor(message: string, at?: string) {
    super(message);
    this.name = 'DocumentError';
    this.at = at;
  }
}

/**
 * Where `spec` points. Relative paths resolve against the config file's folder
 * (CompileContext.baseDir), so the config works from any working directory.
 */
export function resolveSpecFile(spec: string, ctx: Pick<CompileContext, 'baseDir'>): string {
  return path.resolve(ctx.baseDir, spec);
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** RFC 6901 §4 reference token escaping. */
export function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** A pointer from segments, URI-fragment encoded (RFC 6901 §6), as ajv expects in a `$ref`. */
export function fragment(segments: readonly string[]): string {
  return `#${segments.map((s) => `/${encodeURIComponent(escapePointer(s))}`).join('')}`;
}

/** Segments of a local `#/a/b~1c` reference. */
export function parseRef(ref: string): string[] | undefined {
  if (ref === '#') return [];
  if (!ref.startsWith('#/')) return undefined;
  try {
    return ref.slice(2).split('/').map((s) => decodeURIComponent(s).replace(/~1/g, '/').replace(/~0/g, '~'));
  } catch {
    return undefined;
  }
}

function at(doc: Json, segments: readonly string[]): Json | undefined {
  let cur: Json | undefined = doc;
  for (const s of segments) {
    if (Array.isArray(cur)) cur = /^\d+$/.test(s) ? cur[Number(s)] : undefined;
    else if (isObject(cur)) cur = Object.hasOwn(cur, s) ? cur[s] : undefined;
    else return undefined;
  }
  return cur;
}

/**
 * Follows `$ref` on an OpenAPI object (Parameter, Request Body, Path Item…) to the object itself,
 * returning it with its location, so schemas under it can be named by pointer.
 */
export function deref(doc: JsonObject, value: Json | undefined, segments: readonly string[]): { value: Json | undefined; segments: readonly string[] } {
  let cur = value;
  let where = segments;
  const seen = new Set<string>();
  while (isObject(cur) && typeof cur.$ref === 'string') {
    const ref = cur.$ref;
    const target = parseRef(ref);
    if (target === undefined) throw new DocumentError(`$ref "${ref}" is not a local reference`, fragment(where));
    if (seen.has(ref)) throw new DocumentError(`$ref "${ref}" refers to itself`, fragment(where));
    seen.add(ref);
    const next = at(doc, target);
    if (next === undefined) throw new DocumentError(`$ref "${ref}" points to nothing`, fragment(where));
    cur = next;
    where = target;
  }
  return { value: cur, segments: where };
}

/**
 * Keys whose value maps names to objects (schemas, parameters, paths…): there a key such as
 * `example` or `x-id` is a name, not a keyword.
 */
const NAME_MAPS = new Set([
  'properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas',
  'schemas', 'parameters', 'requestBodies', 'responses', 'headers', 'examples', 'links', 'callbacks',
  'securitySchemes', 'pathItems', 'paths', 'webhooks', 'content', 'encoding', 'variables',
]);

/** Calls `fn` on every object in the document, depth first, with its location. */
function walk(v: Json, segments: string[], fn: (o: JsonObject, segments: readonly string[]) => void): void {
  if (Array.isArray(v)) {
    v.forEach((x, i) => {
      segments.push(String(i));
      walk(x, segments, fn);
      segments.pop();
    });
  } else if (isObject(v)) {
    fn(v, segments);
    const names = NAME_MAPS.has(segments[segments.length - 1] ?? '');
    for (const [k, x] of Object.entries(v)) {
      // Examples and specification extensions are data, not description: a "$ref" or "nullable"
      // inside one means nothing.
      if (!names && (k === 'example' || k.startsWith('x-'))) continue;
      segments.push(k);
      walk(x, segments, fn);
      segments.pop();
    }
  }
}

/**
 * OpenAPI 3.0 Schema Objects are a JSON Schema draft-05 dialect; ajv speaks draft-07. Two
 * differences change what validates:
 * - `nullable: true` adds "null" to `type`, and only when `type` is present (OpenAPI 3.0.3,
 *   Schema Object; the 3.0.3 clarification also means an `enum` must list null to accept it);
 * - boolean `exclusiveMinimum`/`exclusiveMaximum` modify `minimum`/`maximum` (draft-05), where
 *   draft-07 takes the bound itself.
 * Both keys appear in no other OpenAPI object, so the walk can apply them wherever it meets them.
 */
function normalise30(o: JsonObject): void {
  if (o.nullable === true || o.nullable === false) {
    if (o.nullable && typeof o.type === 'string') o.type = [o.type, 'null'];
    delete o.nullable;
  }
  for (const [flag, bound] of [['exclusiveMinimum', 'minimum'], ['exclusiveMaximum', 'maximum']] as const) {
    if (typeof o[flag] !== 'boolean') continue;
    if (o[flag] === true && typeof o[bound] === 'number') {
      o[flag] = o[bound];
      delete o[bound];
    } else delete o[flag];
  }
}

/**
 * `readOnly` properties are sent by servers, not clients: "if the property is marked as readOnly
 * being true and is in the required list, the required will take effect on the response only"
 * (OpenAPI 3.0 Schema Object; 3.1 keeps the meaning). Request validation drops them from `required`.
 */
function relaxReadOnly(doc: JsonObject, o: JsonObject): void {
  const props = o.properties;
  if (!Array.isArray(o.required) || !isObject(props)) return;
  o.required = o.required.filter((name) => {
    if (typeof name !== 'string' || !Object.hasOwn(props, name)) return true;
    try {
      const s = deref(doc, props[name], []).value;
      return !(isObject(s) && s.readOnly === true);
    } catch {
      return true; // a broken $ref is reported when ajv compiles it, with its location
    }
  });
}

/** Reads, parses and normalises the document. Throws DocumentError. */
export function loadDocument(file: string): LoadedDocument {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new DocumentError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let parsed: unknown;
  try {
    // Operation labels and ids built from the document go into traces: one byte per character.
    parsed = oneByteStrings(parse(text, { prettyErrors: true }));
  } catch (err) {
    throw new DocumentError(`${file} is not valid YAML or JSON: ${(err as Error).message.split('\n')[0] ?? ''}`);
  }
  if (!isObject(parsed)) throw new DocumentError(`${file} is not an OpenAPI document (expected an object at the top)`);
  const declared = parsed.openapi;
  let version: OpenApiVersion;
  if (typeof declared === 'string' && /^3\.0\.\d+$/.test(declared)) version = '3.0';
  else if (typeof declared === 'string' && /^3\.1\.\d+$/.test(declared)) version = '3.1';
  else if (parsed.swagger !== undefined) throw new DocumentError(`${file} is Swagger ${JSON.stringify(parsed.swagger)}; convert it to OpenAPI 3.0 or 3.1`, '#/swagger');
  else throw new DocumentError(`${file}: openapi version ${JSON.stringify(declared ?? null)} is not supported (3.0.x or 3.1.x)`, '#/openapi');
  if (!isObject(parsed.paths)) throw new DocumentError(`${file} describes no paths`, '#/paths');

  const doc = structuredClone(parsed);
  const external: string[] = [];
  walk(doc, [], (o, segments) => {
    if (typeof o.$ref === 'string' && !o.$ref.startsWith('#')) external.push(`${o.$ref} at ${fragment(segments)}`);
  });
  if (external.length > 0) {
    throw new DocumentError(`${file} has external $ref (${external.slice(0, 3).join('; ')}${external.length > 3 ? '; …' : ''}); bundle the document into one file first`);
  }
  if (version === '3.0') walk(doc, [], normalise30);
  walk(doc, [], (o) => relaxReadOnly(doc, o));
  return { file, version, doc };
}
