/** Helpers for policy tests: a full DecisionContext and a synchronous decide. */
import assert from 'node:assert/strict';
import { ConfigError, type CompiledPolicy, type Decision, type DecisionContext } from './types.ts';

/** Fills the context fields a test does not care about. */
export function context(partial: Pick<DecisionContext, 'facts'> & Partial<DecisionContext>): DecisionContext {
  return {
    identity: undefined,
    routeId: undefined,
    dryRun: false,
    body: () => Promise.reject(new Error('no body in this test')),
    ...partial,
  };
}

/** Runs a policy that must decide synchronously; fails the test if it returned a promise. */
export function decideSync(p: CompiledPolicy, ctx: DecisionContext): Decision {
  const d = p.decide(ctx);
  if (typeof (d as { then?: unknown }).then === 'function') throw new Error(`${p.type} decided asynchronously`);
  return d as Decision;
}

/**
 * Asserts that `compile` throws a ConfigError with exactly these issue paths, in order, and
 * messages matching the patterns.
 */
export function expectConfigIssues(compile: () => unknown, expected: readonly { readonly path: string; readonly message: RegExp }[]): void {
  let caught: unknown;
  try {
    compile();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected ConfigError, got ${String(caught)}`);
  assert.deepEqual(
    caught.issues.map((i) => i.path),
    expected.map((i) => i.path),
  );
  expected.forEach((e, i) => assert.match(caught.issues[i]?.message ?? '', e.message));
}
