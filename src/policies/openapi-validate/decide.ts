import { distance } from 'fastest-levenshtein';
import { duplicateMember } from '../../json/duplicates.ts';
import type { Decision, DecisionContext, Deny, RequestFacts } from '../../pipeline/types.ts';
import { bestMatch, clip, hasBody, headerValue, isJsonMediaType, parseMediaType } from '../content-type/media-type.ts';
import { fieldErrors, type FieldError } from './errors.ts';
import type { CompiledDocument, CompiledOperation, PathEntry } from './operations.ts';
import { collectParams } from './params.ts';

export interface OpenApiCompiled {
  readonly doc: CompiledDocument;
  /** Path prefixes to strip, longest first; `['']` when none. */
  readonly bases: readonly string[];
  readonly unknownAllow: boolean;
  readonly maxErrors: number;
}

/** RFC 8259 §8.1: JSON exchanged between systems MUST be UTF-8; `fatal` refuses anything else. */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function stripBase(bases: readonly string[], path: string): string | undefined {
  for (const base of bases) {
    if (base === '') return path;
    if (path === base) return '/';
    if (path.startsWith(`${base}/`)) return path.slice(base.length);
  }
  return undefined;
}

interface PathMatch {
  readonly entry: PathEntry;
  readonly params: Record<string, string>;
}

/** Every template matching the path, most specific first. Parameter values are percent-decoded. */
function matchPaths(doc: CompiledDocument, path: string): PathMatch[] {
  const segs = path.split('/').slice(1);
  const out: PathMatch[] = [];
  for (const entry of doc.paths.get(segs.length) ?? []) {
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < segs.length && ok; i++) {
      const seg = segs[i] as string;
      const t = entry.segments[i];
      if (t === undefined) ok = false;
      else if ('literal' in t) ok = t.literal === seg || t.literal === safeDecode(seg);
      else {
        const m = t.re.exec(seg);
        if (m === null) ok = false;
        else t.names.forEach((n, k) => (params[n] = safeDecode(m[k + 1] ?? '')));
      }
    }
    if (ok) out.push({ entry, params });
  }
  return out;
}

function nearest(doc: CompiledDocument, path: string): string[] {
  return [...doc.templates]
    .map((t) => ({ t, d: distance(t, path) }))
    .sort((a, b) => a.d - b.d || a.t.localeCompare(b.t))
    .slice(0, 3)
    .map((x) => x.t);
}

function operationEvidence(op: CompiledOperation): { operation: string; operation_id: string | null } {
  return { operation: op.label, operation_id: op.operationId };
}

/**
 * The verdict once every part was checked. The code names the first part that failed in request
 * order (parameters, then body); `errors` lists every failing field of the whole request, so one
 * answer is enough to fix it.
 */
function finish(c: OpenApiCompiled, op: CompiledOperation, errors: readonly FieldError[], note?: string): Decision {
  if (errors.length === 0) {
    return { outcome: 'allow', rule: `${op.label} matches the description${note !== undefined ? ` (${note})` : ''}`, evidence: operationEvidence(op) };
  }
  const params = errors.some((e) => !e.pointer.startsWith('/body'));
  const shown = errors.slice(0, c.maxErrors);
  return {
    outcome: 'deny',
    code: params ? 'OPENAPI_PARAMS_INVALID' : 'OPENAPI_BODY_INVALID',
    rule: `${errors.length} field(s) invalid, first ${errors[0]?.pointer ?? ''}`,
    evidence: {
      ...operationEvidence(op),
      errors: shown.map((e) => `${e.pointer}: ${e.message}`),
      rules: shown.map((e) => `${e.pointer}: ${e.rule}`),
      error_count: errors.length,
    },
  };
}

/** Not JSON: its own code, unless parameters failed too, when it joins their list. */
function bodyNotJson(c: OpenApiCompiled, op: CompiledOperation, errors: FieldError[], contentType: string, reason: string, bytes: number): Decision {
  if (errors.length === 0) return notJson(op, contentType, reason, bytes);
  errors.push({ pointer: '/body', message: `is not valid JSON: ${reason}`, rule: 'json' });
  return finish(c, op, errors);
}

function notJson(op: CompiledOperation, contentType: string, reason: string, bytes: number): Deny {
  return {
    outcome: 'deny',
    code: 'OPENAPI_BODY_NOT_JSON',
    rule: `body of ${op.label} is not JSON`,
    // Never the parser's message: V8 quotes the body text in it.
    evidence: { ...operationEvidence(op), content_type: contentType, reason, received_bytes: bytes },
  };
}

/**
 * Why a JSON body did not parse, without quoting it: where the parser stopped, in characters of
 * the decoded text, when it says so.
 */
function parseFailure(err: unknown, length: number): string {
  const message = (err as Error).message;
  const m = /position (\d+)/.exec(message);
  const pos = m === null ? undefined : Number(m[1]);
  if ((pos !== undefined && pos >= length) || /end of JSON input/.test(message)) return 'JSON ends early';
  return pos !== undefined ? `invalid JSON at character ${pos}` : 'invalid JSON';
}

function checkBody(c: OpenApiCompiled, op: CompiledOperation, ctx: DecisionContext, errors: FieldError[]): Decision | Promise<Decision> {
  const body = op.body;
  const facts = ctx.facts;
  if (body === undefined) return finish(c, op, errors);
  const missing = (): Decision => {
    if (body.required) errors.push({ pointer: '/body', message: 'is required', rule: 'requestBody required' });
    return finish(c, op, errors);
  };
  if (!hasBody(facts)) return missing();

  const raw = headerValue(facts, 'content-type');
  const mt = raw === undefined ? undefined : parseMediaType(raw);
  const media = mt === undefined ? undefined : bestMatch(body.media, mt);
  if (mt === undefined || media === undefined) {
    // Parameter errors are reported first; the format comes after.
    if (errors.length > 0) return finish(c, op, errors);
    return unsupported(op, facts, raw === undefined ? 'no Content-Type' : (mt?.essence ?? clip(raw)), body.accepted);
  }
  // Only JSON is parsed; other formats (multipart, forms, binary) pass unvalidated.
  if (media.validate === undefined || !isJsonMediaType(mt)) return finish(c, op, errors, `${mt.essence} body not validated`);
  const validate = media.validate;

  const onBody = (buf: Buffer): Decision => {
    if (buf.length === 0) return missing();
    let text: string;
    try {
      text = UTF8.decode(buf);
    } catch {
      return bodyNotJson(c, op, errors, mt.essence, 'not UTF-8 (RFC 8259 §8.1)', buf.length);
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      return bodyNotJson(c, op, errors, mt.essence, parseFailure(err, text.length), buf.length);
    }
    const dup = duplicateMember(text);
    // I-JSON (RFC 7493 §2.3): a repeated member name may be read differently upstream.
    if (dup !== undefined) errors.push({ pointer: `/body${dup}`, message: 'is a repeated member name (RFC 7493 §2.3)', rule: 'duplicate' });
    try {
      if (validate(value) !== true) errors.push(...fieldErrors('/body', validate.errors));
    } catch (err) {
      // A recursive schema walks as deep as the body nests; a hostile body can exhaust the stack.
      if (!(err instanceof RangeError)) throw err;
      errors.push({ pointer: '/body', message: 'is nested too deeply to validate', rule: 'depth' });
    }
    return finish(c, op, errors);
  };
  return ctx.body().then(onBody, (err: unknown) => {
    // A dry run (diagnose / trace of a logged request) may have no body to give: say what could be
    // checked. Live, a failed read (body over the route limit, client gone) is the gateway's to answer.
    if (!ctx.dryRun) throw err;
    return errors.length > 0 ? finish(c, op, errors) : { outcome: 'skip', rule: `${op.label}: body not available in this dry run` };
  });
}

function unsupported(op: CompiledOperation, facts: RequestFacts, sent: string, accepted: readonly string[]): Deny {
  const ranges = accepted.filter((a) => !a.includes('*+'));
  // RFC 5789 §3.1 (PATCH) and W3C LDP §7.1.2 (POST) let a 415 say what would be taken.
  const header = facts.method === 'POST' ? 'accept-post' : facts.method === 'PATCH' ? 'accept-patch' : undefined;
  return {
    outcome: 'deny',
    code: 'OPENAPI_MEDIA_TYPE_UNSUPPORTED',
    rule: `${op.label} does not take ${sent}`,
    evidence: { ...operationEvidence(op), sent, accepted },
    ...(header !== undefined && ranges.length > 0 ? { headers: { [header]: ranges.join(', ') } } : {}),
  };
}

export function decideOpenApi(c: OpenApiCompiled, ctx: DecisionContext): Decision | Promise<Decision> {
  const facts = ctx.facts;
  const rest = stripBase(c.bases, facts.path);
  const matches = rest === undefined ? [] : matchPaths(c.doc, rest);
  if (matches.length === 0) {
    if (c.unknownAllow) return { outcome: 'skip', rule: 'path not in the description (unknown_operations: allow)' };
    return {
      outcome: 'deny',
      code: 'OPENAPI_OPERATION_NOT_FOUND',
      rule: rest === undefined ? 'path outside the base path' : 'no described path matches',
      evidence: {
        method: facts.method,
        path: clip(facts.path, 200),
        base_path: c.bases.filter((b) => b !== '').join(' or ') || '(none)',
        nearest: nearest(c.doc, rest ?? facts.path),
      },
    };
  }

  // The most specific path wins; when it lacks the method, a less specific one that has it is
  // taken (the spec orders matching, but says nothing of methods).
  let found: { op: CompiledOperation; m: PathMatch } | undefined;
  for (const m of matches) {
    // HEAD is GET without content (RFC 9110 §9.3.2): it follows GET's description unless described itself.
    const op = m.entry.ops.get(facts.method) ?? (facts.method === 'HEAD' ? m.entry.ops.get('GET') : undefined);
    if (op !== undefined) {
      found = { op, m };
      break;
    }
  }
  if (found === undefined) {
    const best = matches[0] as PathMatch;
    if (c.unknownAllow) return { outcome: 'skip', rule: `${facts.method} ${best.entry.template} not in the description (unknown_operations: allow)` };
    return {
      outcome: 'deny',
      code: 'OPENAPI_METHOD_NOT_ALLOWED',
      rule: `${best.entry.template} is described for ${best.entry.allow.join(', ')}`,
      evidence: { method: facts.method, path_template: best.entry.template, allow: best.entry.allow },
      headers: { allow: best.entry.allow.join(', ') },
    };
  }

  const { op, m } = found;
  const errors: FieldError[] = [];
  if (op.validateParams !== undefined) {
    const { data, errors: parseErrors } = collectParams(op.params, facts, m.params);
    errors.push(...parseErrors);
    if (op.validateParams(data) !== true) errors.push(...fieldErrors('', op.validateParams.errors));
  }
  return checkBody(c, op, ctx, errors);
}
