/**
 * ajv errors → one line per failing field: a JSON pointer into the request (`/query/limit`,
 * `/body/items/0/quantity`), ajv's message, and the rule broken (keyword + its parameter).
 * Messages and rules come from the schema, never from the request's values, so a password in a
 * body cannot leak through a denial.
 */
import type { ErrorObject } from 'ajv';
import { escapePointer } from './load.ts';

export interface FieldError {
  /** JSON pointer into the request: /path/…, /query/…, /header/…, /cookie/…, /body/…. */
  readonly pointer: string;
  readonly message: string;
  /** The keyword and its limit, e.g. `minimum 1`, `type integer`, `required`. */
  readonly rule: string;
}

function clip(s: string, max = 120): string {
  return s.length <= max ? s : `${s.slice(0, max)}…`;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** The rule text for one error: keyword plus the schema value that was broken. */
function rule(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
    case 'minLength':
    case 'maxLength':
    case 'minItems':
    case 'maxItems':
    case 'minProperties':
    case 'maxProperties':
    case 'minContains':
    case 'maxContains':
      return `${e.keyword} ${str(p.limit)}`;
    case 'multipleOf':
      return `multipleOf ${str(p.multipleOf)}`;
    case 'type':
      return `type ${Array.isArray(p.type) ? p.type.join(',') : str(p.type)}`;
    case 'format':
      return `format ${str(p.format)}`;
    case 'pattern':
      return `pattern ${str(p.pattern)}`;
    case 'enum':
      return clip(`enum ${(Array.isArray(p.allowedValues) ? p.allowedValues : []).map(str).join(', ')}`);
    case 'const':
      return clip(`const ${str(p.allowedValue)}`);
    case 'required':
    case 'dependentRequired':
    case 'dependencies':
      return e.keyword;
    case 'additionalProperties':
    case 'unevaluatedProperties':
    case 'additionalItems':
    case 'unevaluatedItems':
      return `${e.keyword} false`;
    case 'uniqueItems':
      return `uniqueItems (items ${str(p.j)} and ${str(p.i)} are equal)`;
    default: {
      const keys = Object.keys(p);
      return keys.length === 0 ? e.keyword : clip(`${e.keyword} ${JSON.stringify(p)}`);
    }
  }
}

/**
 * Converts ajv errors. Errors about a property that is missing or not allowed point at that
 * property, not at its parent, so each pointer names the field to fix.
 */
export function fieldErrors(prefix: string, errors: readonly ErrorObject[] | null | undefined): FieldError[] {
  const out: FieldError[] = [];
  const seen = new Set<string>();
  for (const e of errors ?? []) {
    const p = e.params as Record<string, unknown>;
    let pointer = prefix + e.instancePath;
    let message = e.message ?? e.keyword;
    if ((e.keyword === 'required' || e.keyword === 'dependentRequired' || e.keyword === 'dependencies') && typeof p.missingProperty === 'string') {
      pointer += `/${escapePointer(p.missingProperty)}`;
      message = e.keyword === 'required' ? 'is required' : `is required when ${str(p.property)} is present`;
    } else if (e.keyword === 'additionalProperties' && typeof p.additionalProperty === 'string') {
      pointer += `/${escapePointer(p.additionalProperty)}`;
      message = 'is not allowed';
    } else if (e.keyword === 'unevaluatedProperties' && typeof p.unevaluatedProperty === 'string') {
      pointer += `/${escapePointer(p.unevaluatedProperty)}`;
      message = 'is not allowed';
    } else if (e.keyword === 'propertyNames' && typeof p.propertyName === 'string') {
      pointer += `/${escapePointer(p.propertyName)}`;
    }
    if (pointer === '') pointer = '/';
    // Property names come from the request: bound what one can add to a denial.
    pointer = clip(pointer, 200);
    const r = rule(e);
    const key = `${pointer}\u0000${r}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ pointer, message, rule: r });
  }
  return out;
}
