/**
 * Pure decision for `ownership`: compare the owner value the request names (path, query, header
 * or JSON body) with the caller's identity claim. Synchronous unless the value is in the body.
 *
 * Order: method filter → identity (401) → override permissions → the caller's claim → the
 * request's value → comparison. The claim is checked before the body is read, so a caller that
 * can never pass costs no body buffering.
 */
import { duplicateMember } from '../../json/duplicates.ts';
import type { Decision, DecisionContext, Deny, Evidence, Identity, RequestFacts } from '../../pipeline/types.ts';
import { unauthenticated } from '../rbac/decide.ts';
import type { ResourceSource } from './schema.ts';

export interface OwnershipCompiled {
  readonly source: ResourceSource;
  /** Param / query / lower-cased header name, or the original JSON pointer text. */
  readonly name: string;
  /** Decoded JSON pointer reference tokens (RFC 6901 §4), for body. */
  readonly pointer: readonly string[];
  /** 'path parameter id', 'body /owner_id'…: names the value in evidence. */
  readonly label: string;
  readonly claim: string;
  readonly overrides: readonly string[];
  /** Methods checked; null for all. */
  readonly methods: ReadonlySet<string> | null;
  readonly skipMissing: boolean;
  readonly challenge: string;
}

/** Evidence values from the request are capped: they are ids, and logs should not carry bodies. */
const MAX_VALUE = 128;

/** A request or claim value as evidence shows it: at most 128 characters. Shared with tenant. */
export function cap(s: string): string {
  return s.length > MAX_VALUE ? `${s.slice(0, MAX_VALUE)}…` : s;
}

/** RFC 6901 §4: walk the decoded reference tokens; array indexes are decimal without leading zeros. */
export function resolvePointer(doc: unknown, tokens: readonly string[]): unknown {
  let cur = doc;
  for (const t of tokens) {
    if (Array.isArray(cur)) {
      if (!/^(0|[1-9][0-9]*)$/.test(t)) return undefined;
      cur = (cur as unknown[])[Number(t)];
    } else if (typeof cur === 'object' && cur !== null && Object.hasOwn(cur, t)) {
      cur = (cur as Record<string, unknown>)[t];
    } else return undefined;
  }
  return cur;
}

/**
 * A claim's values: a non-empty string, a finite number (as text), or an array of them (other
 * members ignored); [] when it holds none. Shared with tenant.
 */
export function claimStrings(v: unknown): string[] {
  return (Array.isArray(v) ? (v as unknown[]) : [v]).flatMap((x) =>
    typeof x === 'string' && x !== '' ? [x] : typeof x === 'number' && Number.isFinite(x) ? [String(x)] : [],
  );
}

/** The caller's value(s) for the claim; undefined when the identity does not carry it. */
function callerValues(c: OwnershipCompiled, id: Identity): readonly string[] | undefined {
  if (c.claim === 'consumer') return [id.consumer];
  const claims = id.claims;
  if (claims === undefined || !Object.hasOwn(claims, c.claim)) return undefined;
  const out = claimStrings(claims[c.claim]);
  return out.length > 0 ? out : undefined;
}

/** The one value a request names (a parameter, header or body member), or why it names none. */
export type RequestValue =
  | { readonly kind: 'value'; readonly value: string }
  | { readonly kind: 'missing'; readonly problem: string }
  | { readonly kind: 'ambiguous'; readonly count: number };

/** What the request says, or why it says nothing usable. */
type Found = RequestValue | { readonly kind: 'path_param_missing' } | { readonly kind: 'not_json' };

/** One value as the request sent it: a non-empty string or a finite number. Shared with tenant. */
export function namedValue(v: unknown): RequestValue {
  if (v === undefined) return { kind: 'missing', problem: 'absent' };
  if (typeof v === 'number' && Number.isFinite(v)) return { kind: 'value', value: String(v) };
  if (typeof v !== 'string') return { kind: 'missing', problem: v === null ? 'null' : `a ${Array.isArray(v) ? 'array' : typeof v}, not a string or number` };
  return v === '' ? { kind: 'missing', problem: 'empty' } : { kind: 'value', value: v };
}

/**
 * A query parameter or header (lower-case `name`) the request must send once. HTTP parameter
 * pollution: with ?owner=me&owner=victim the gateway and the upstream may each pick a different
 * one, so more than one is refused rather than guessed. Shared with tenant.
 */
export function requestValue(facts: RequestFacts, from: 'query' | 'header', name: string): RequestValue {
  if (from === 'query') {
    if (facts.rawQuery === '') return { kind: 'missing', problem: 'absent' };
    const all = new URLSearchParams(facts.rawQuery).getAll(name);
    return all.length > 1 ? { kind: 'ambiguous', count: all.length } : namedValue(all[0]);
  }
  const v = facts.headers[name];
  if (Array.isArray(v)) return v.length > 1 ? { kind: 'ambiguous', count: v.length } : namedValue(v[0]);
  return namedValue(v);
}

function fromRequest(c: OwnershipCompiled, facts: RequestFacts): Found {
  switch (c.source) {
    case 'path': {
      const v = facts.params[c.name];
      return v === undefined ? { kind: 'path_param_missing' } : namedValue(v);
    }
    case 'query':
    case 'header':
      return requestValue(facts, c.source, c.name);
    case 'body':
      throw new Error('body is read asynchronously');
  }
}

function fromBody(c: OwnershipCompiled, body: Buffer): Found {
  if (body.length === 0) return { kind: 'missing', problem: 'empty body' };
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    return { kind: 'not_json' };
  }
  // A duplicate member (`{"owner_id":"me","owner_id":"victim"}`): JSON.parse keeps the last, an
  // upstream may take the first, so the check could pass on one value and act on the other.
  if (duplicateMember(body.toString('utf8')) !== undefined) return { kind: 'ambiguous', count: 2 };
  return namedValue(resolvePointer(doc, c.pointer));
}

function header(facts: RequestFacts, name: string): string | null {
  const v = facts.headers[name];
  return (Array.isArray(v) ? v[0] : v) ?? null;
}

function judge(c: OwnershipCompiled, ctx: DecisionContext, id: Identity, callers: readonly string[], found: Found): Decision {
  const facts = ctx.facts;
  const route = ctx.routeId ?? null;
  const deny = (code: Deny['code'], rule: string, evidence: Evidence): Deny => ({ outcome: 'deny', code, rule, evidence });
  switch (found.kind) {
    case 'path_param_missing':
      if (c.skipMissing) return { outcome: 'skip', rule: `no path parameter ${c.name} (missing: skip)` };
      return deny('OWNERSHIP_PATH_PARAM_MISSING', `route has no path parameter ${c.name}`, {
        route,
        path: facts.path,
        name: c.name,
        params: Object.keys(facts.params),
      });
    case 'missing':
      if (c.skipMissing) return { outcome: 'skip', rule: `no ${c.label} (missing: skip)` };
      return deny('OWNERSHIP_RESOURCE_ID_MISSING', `${c.label} ${found.problem}`, { resource: c.label, problem: found.problem, route });
    case 'ambiguous':
      return deny('OWNERSHIP_RESOURCE_ID_AMBIGUOUS', `${c.label} sent ${found.count} times`, { resource: c.label, count: found.count, route });
    case 'not_json':
      return deny('OWNERSHIP_BODY_NOT_JSON', 'body is not JSON', {
        resource: c.label,
        content_type: header(facts, 'content-type'),
        body_bytes: facts.contentLength ?? null,
        route,
      });
    case 'value': {
      if (callers.includes(found.value)) return { outcome: 'allow', rule: `owner: ${c.label} = ${c.claim}`, evidence: { resource: c.label, claim: c.claim } };
      // Both values are safe to show: the resource id is what the caller sent, and the claim value
      // is the caller's own id. Evidence reaches the client only in detailed error mode.
      return deny('OWNERSHIP_NOT_OWNER', `${c.label} is not the caller's ${c.claim}`, {
        resource: c.label,
        resource_value: cap(found.value),
        claim: c.claim,
        caller_value: callers.length === 1 ? cap(callers[0] as string) : callers.slice(0, 20).map(cap),
        consumer: id.consumer,
        override_permissions: c.overrides,
        method: facts.method,
        route,
      });
    }
  }
}

function methodChecked(c: OwnershipCompiled, method: string): boolean {
  return c.methods === null || c.methods.has(method);
}

export function decideOwnership(c: OwnershipCompiled, ctx: DecisionContext): Decision | Promise<Decision> {
  const facts = ctx.facts;
  if (!methodChecked(c, facts.method)) return { outcome: 'skip', rule: `${facts.method} not checked` };
  const id = ctx.identity;
  if (id === undefined) {
    return unauthenticated('AUTH_OWNERSHIP_UNAUTHENTICATED', 'no identity', { route: ctx.routeId ?? null, method: facts.method, resource: c.label, claim: c.claim }, c.challenge);
  }
  for (const p of c.overrides) {
    if (id.scopes.has(p)) return { outcome: 'allow', rule: `override: scope ${p}`, evidence: { override: p, via: 'scope' } };
    if (id.roles?.has(p) === true) return { outcome: 'allow', rule: `override: role ${p}`, evidence: { override: p, via: 'role' } };
  }
  const callers = callerValues(c, id);
  if (callers === undefined) {
    return {
      outcome: 'deny',
      code: 'OWNERSHIP_CLAIM_MISSING',
      rule: `identity has no ${c.claim}`,
      evidence: {
        claim: c.claim,
        consumer: id.consumer,
        credential_type: id.credentialType,
        // Names only, never values: they say what the credential offers.
        claims_present: Object.keys(id.claims ?? {}).sort(),
        route: ctx.routeId ?? null,
      },
    };
  }
  if (c.source !== 'body') return judge(c, ctx, id, callers, fromRequest(c, facts));
  // ctx.body() is bounded by the route's body limit; its rejection (too large, client gone) is
  // the gateway's to report, so it is not caught here.
  return ctx.body().then((buf) => judge(c, ctx, id, callers, fromBody(c, buf)));
}
