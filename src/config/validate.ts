/**
 * Schema validation with ajv, turning ajv's errors into {@link ConfigIssue}s that name the field
 * the way a person reads YAML: `routes[0].upstream`, `policies.orders-write-key.config.in[1].from`.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { closest } from 'fastest-levenshtein';
import type { TSchema } from '@sinclair/typebox';
import type { ConfigIssue } from '../pipeline/types.ts';

// ajv-formats is CommonJS with a default export; under NodeNext the namespace object is what we get.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false, coerceTypes: false, verbose: true });
addFormats(ajv);

const cache = new WeakMap<TSchema, ValidateFunction>();

/** JSON pointer (`/routes/0/upstream`) → readable path (`routes[0].upstream`). */
export function readablePath(prefix: string, pointer: string): string {
  let out = prefix;
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(seg)) out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out === '' ? '(root)' : out;
}

function describe(err: ErrorObject, siblings: readonly ErrorObject[]): string | undefined {
  switch (err.keyword) {
    case 'additionalProperties': {
      const extra = (err.params as { additionalProperty: string }).additionalProperty;
      const known = Object.keys((err.parentSchema as { properties?: Record<string, unknown> }).properties ?? {});
      const hint = known.length > 0 ? closest(extra, known) : undefined;
      return `unknown field "${extra}"${hint !== undefined ? ` (did you mean "${hint}"?)` : ''}`;
    }
    case 'const':
    case 'enum':
      // Reported through the enclosing anyOf, which lists every allowed value.
      return siblings.some((s) => s.keyword === 'anyOf' && s.instancePath === err.instancePath) ? undefined : err.message;
    case 'anyOf': {
      const allowed = siblings
        .filter((s) => s.instancePath === err.instancePath && s.keyword === 'const')
        .map((s) => JSON.stringify((s.params as { allowedValue: unknown }).allowedValue));
      if (allowed.length > 0) return `must be one of ${allowed.join(', ')}`;
      // A union of shapes: the branch errors already say what is wrong.
      return siblings.some((s) => s.instancePath.startsWith(err.instancePath) && s !== err && s.keyword !== 'type')
        ? undefined
        : err.message;
    }
    case 'type':
      // Inside a failed anyOf every non-matching branch reports a type error; keep just the anyOf line.
      return siblings.some((s) => s.keyword === 'anyOf' && s.instancePath === err.instancePath) ? undefined : err.message;
    default:
      return err.message;
  }
}

/**
 * For a failed `anyOf` of object shapes told apart by a constant field (api-key `in: [{from: …}]`),
 * keep only what helps: if the value's discriminator matched one branch, that branch's errors;
 * if it matched none, one error at the discriminator listing the allowed values. Other branches'
 * complaints ("unknown field name") are noise about shapes the user did not mean.
 */
function focusUnions(errors: readonly ErrorObject[]): ErrorObject[] {
  let out = [...errors];
  for (const u of errors) {
    if (u.keyword !== 'anyOf') continue;
    const prefix = `${u.schemaPath}/`;
    const branches = new Map<string, ErrorObject[]>();
    for (const e of out) {
      if (!e.schemaPath.startsWith(prefix)) continue;
      const idx = e.schemaPath.slice(prefix.length).split('/')[0] as string;
      branches.set(idx, [...(branches.get(idx) ?? []), e]);
    }
    if (branches.size < 2) continue;
    const discriminators = new Set<string>();
    let matched: ErrorObject[] | undefined;
    let allHaveConst = true;
    for (const errs of branches.values()) {
      const c = errs.find((e) => e.keyword === 'const' && e.instancePath.startsWith(`${u.instancePath}/`) && !e.instancePath.slice(u.instancePath.length + 1).includes('/'));
      if (c === undefined) {
        allHaveConst = false;
        matched = errs;
      } else discriminators.add(c.instancePath);
    }
    if (discriminators.size !== 1) continue;
    const inBranches = new Set([...branches.values()].flat());
    if (allHaveConst) {
      const at = [...discriminators][0] as string;
      const allowed = [...branches.values()].map((errs) => errs.find((e) => e.keyword === 'const')?.params as { allowedValue: unknown }).map((p) => JSON.stringify(p.allowedValue));
      out = out.filter((e) => e !== u && !inBranches.has(e));
      out.push({ ...u, keyword: 'union', instancePath: at, message: `must be one of ${allowed.join(', ')}` });
    } else if (matched !== undefined) {
      const keep = new Set(matched);
      out = out.filter((e) => e !== u && (!inBranches.has(e) || keep.has(e)));
    }
  }
  return out;
}

/**
 * Validates `value` in place (ajv fills defaults) and returns the issues, each with its path.
 * @example validate(ConfigSchema, parsedYaml, '') // → [{ path: 'routes[0].upstream', message: 'must be string' }]
 */
export function validate(schema: TSchema, value: unknown, prefix: string): ConfigIssue[] {
  let fn = cache.get(schema);
  if (fn === undefined) {
    fn = ajv.compile(schema);
    cache.set(schema, fn);
  }
  if (fn(value)) return [];
  const errors = focusUnions(fn.errors ?? []);
  const issues: ConfigIssue[] = [];
  const seen = new Set<string>();
  for (const err of errors) {
    const message = describe(err, errors);
    if (message === undefined) continue;
    const path = readablePath(prefix, err.instancePath);
    const key = `${path}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    issues.push({ path, message });
  }
  return issues;
}
