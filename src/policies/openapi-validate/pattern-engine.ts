/**
 * The regular-expression engine ajv runs OpenAPI `pattern` keywords on.
 *
 * A `pattern` comes from an API description and runs against attacker-chosen request values, so
 * it must not be a ReDoS. Two engines, chosen once per pattern when the document compiles:
 *
 * - V8's own RegExp (ECMA-262, the dialect JSON Schema 2020-12 §6.4 names for `pattern`) when
 *   redos-detector proves the pattern cannot backtrack beyond MAX_SCORE paths for any input: such a
 *   pattern runs in time linear in the value, with a small constant, on the fastest engine we have.
 * - RE2 (re2js) for every other pattern: linear by construction, but it walks the input in
 *   JavaScript (~20 ns a character, measured: `^x*$` on a 1 KB value cost ~22 µs on re2js), so it
 *   is the fallback, not the default.
 *
 * redos-detector errs towards "unsafe" (its README: it should never call an unsafe pattern safe);
 * unanchored patterns, for instance, are analysed as if prefixed with `[^]*?` and so come out
 * unsafe and stay on RE2. An analysis that hits its step or time cap also counts as unsafe.
 *
 * JSON Schema patterns are unanchored searches: RegExp#test and RE2 `find`, not a full match.
 */
import { RE2JS } from 're2js';
import { isSafePattern } from 'redos-detector';
import type { RegExpEngine, RegExpLike } from 'ajv/dist/types/index.js';

/**
 * The most alternative paths one input prefix may take through a pattern still run natively: the
 * worst-case work is then at most this factor times the value's length.
 */
export const MAX_SCORE = 20;

export type PatternEngineName = 'v8' | 're2';

/** Which engine a pattern runs on (exported for tests, `explain` and docs). */
export function engineFor(pattern: string, unicode: boolean): PatternEngineName {
  try {
    const r = isSafePattern(pattern, { maxScore: MAX_SCORE, maxSteps: 20_000, timeout: 100, unicode });
    return r.safe ? 'v8' : 're2';
  } catch {
    // A pattern redos-detector cannot parse (RE2-only syntax, say) goes to RE2, which decides
    // whether it compiles at all.
    return 're2';
  }
}

function compile(pattern: string, u: string): RegExpLike {
  if (engineFor(pattern, u === 'u') === 'v8') {
    // ajv keys its pattern cache by toString(); a RegExp's is "/p/u", unique per pattern and flag.
    return new RegExp(pattern, u);
  }
  const re = RE2JS.compile(pattern);
  // ajv caches compiled patterns by their toString(): it must be the pattern, not "[object Object]".
  const like = { test: (s: string): boolean => re.matcher(s).find(), toString: (): string => pattern };
  return like;
}

export const patternEngine: RegExpEngine = Object.assign(compile, { code: 'pinpoint-linear' });
