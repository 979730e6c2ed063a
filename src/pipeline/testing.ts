/** Helpers for policy tests: a full DecisionContext and a synchronous decide. */
import type { CompiledPolicy, Decision, DecisionContext } from './types.ts';

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
