/**
 * Applies policy-requested changes to the upstream request (request-transform, credential
 * stripping): header and query edits, in pipeline order, on the raw header list and query string.
 */
import type { RequestTransform } from '../pipeline/types.ts';

export function transformHeaders(headers: string[], transforms: readonly RequestTransform[]): string[] {
  let out = headers;
  for (const t of transforms) {
    const drop = new Set<string>([...(t.removeHeaders ?? []), ...Object.keys(t.setHeaders ?? {})].map((h) => h.toLowerCase()));
    if (drop.size > 0) {
      const kept: string[] = [];
      for (let i = 0; i < out.length; i += 2) if (!drop.has(out[i]!.toLowerCase())) kept.push(out[i]!, out[i + 1]!);
      out = kept;
    }
    for (const [k, v] of Object.entries(t.setHeaders ?? {})) out.push(k, v);
  }
  return out;
}

export function transformQuery(query: string, transforms: readonly RequestTransform[]): string {
  if (!transforms.some((t) => t.setQuery !== undefined || t.removeQuery !== undefined)) return query;
  const q = new URLSearchParams(query);
  for (const t of transforms) {
    for (const k of t.removeQuery ?? []) q.delete(k);
    for (const [k, v] of Object.entries(t.setQuery ?? {})) q.set(k, v);
  }
  return q.toString();
}
