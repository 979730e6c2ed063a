import type { Allow, DecisionContext, RequestTransform } from '../../pipeline/types.ts';

export interface Rename {
  /** Lower-cased. */
  readonly from: string;
  readonly to: string;
}

export interface RequestTransformCompiled {
  /** The transform when no rename applies (also the base of one that does). Holds secrets: never traced. */
  readonly base: RequestTransform;
  readonly renames: readonly Rename[];
  /** Names only, for the trace. */
  readonly setHeaderNames: readonly string[];
  readonly removeHeaders: readonly string[];
  readonly setQueryNames: readonly string[];
  readonly removeQuery: readonly string[];
}

/**
 * Builds the RequestTransform for this request. Renames need the request's value (rename = remove
 * `from` + set `to` to that value); everything else was fixed at load. The trace names what
 * changed and never a value: set headers may carry an upstream credential.
 */
export function decideRequestTransform(c: RequestTransformCompiled, ctx: DecisionContext): Allow {
  const headers = ctx.facts.headers;
  let transform = c.base;
  const renamed: string[] = [];
  if (c.renames.length > 0) {
    const set: Record<string, string> = { ...c.base.setHeaders };
    const remove = [...(c.base.removeHeaders ?? [])];
    for (const r of c.renames) {
      const v = headers[r.from];
      if (v === undefined) continue;
      remove.push(r.from);
      // A header kept as a list is one field line per value; combined with ", " (RFC 9110 §5.3).
      set[r.to] = Array.isArray(v) ? v.join(', ') : v;
      renamed.push(`${r.from}→${r.to}`);
    }
    if (renamed.length > 0) transform = { ...c.base, setHeaders: set, removeHeaders: remove };
  }

  const removed = c.removeHeaders.filter((h) => headers[h] !== undefined);
  let removedQuery: string[] = [];
  if (c.removeQuery.length > 0 && ctx.facts.rawQuery !== '') {
    const q = new URLSearchParams(ctx.facts.rawQuery);
    removedQuery = c.removeQuery.filter((k) => q.has(k));
  }

  const parts: string[] = [];
  const evidence: Record<string, readonly string[]> = {};
  const note = (label: string, key: string, names: readonly string[]): void => {
    if (names.length === 0) return;
    parts.push(`${label} ${names.join(', ')}`);
    evidence[key] = names;
  };
  note('set', 'set_headers', c.setHeaderNames);
  note('removed', 'removed_headers', removed);
  note('renamed', 'renamed_headers', renamed);
  note('set query', 'set_query', c.setQueryNames);
  note('removed query', 'removed_query', removedQuery);
  const rule = parts.length > 0 ? parts.join('; ') : 'nothing to change';
  return parts.length > 0 ? { outcome: 'allow', rule, evidence, transform } : { outcome: 'allow', rule, transform };
}
