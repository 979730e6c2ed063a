/** Helpers for policy tests: a full DecisionContext and a synchronous decide. */
import assert from 'node:assert/strict';
import { ConfigError, type Allow, type CompiledPolicy, type Decision, type DecisionContext, type Deny } from './types.ts';

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

/** The decision as a denial; fails the test, showing the decision, when it is not one. */
export function asDeny(d: Decision): Deny {
  if (d.outcome !== 'deny') assert.fail(`expected a denial, got ${JSON.stringify(d)}`);
  return d;
}

/** The decision as an allow; fails the test, showing the decision, when it is not one. */
export function asAllow(d: Decision): Allow {
  if (d.outcome !== 'allow') assert.fail(`expected allow, got ${JSON.stringify(d)}`);
  return d;
}

/** Asserts each listed evidence field (deep equality); fields not listed are not checked. */
export function assertEvidence(d: Decision, want: Readonly<Record<string, unknown>>): void {
  assert.ok(d.outcome !== 'skip', `expected evidence, got a skip: ${d.rule}`);
  const ev = d.evidence;
  assert.ok(ev !== undefined, 'decision has evidence');
  for (const [k, v] of Object.entries(want)) assert.deepEqual(ev[k], v, `evidence.${k} in ${JSON.stringify(ev)}`);
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
