import type { Decision, DecisionContext } from '../../pipeline/types.ts';

/**
 * Checks the declared Content-Length. A body without one (chunked) is allowed here and counted
 * while it streams (src/proxy/body-limit.ts), which reports the same code and policy.
 */
export function decideRequestSize(maxBytes: number, ctx: DecisionContext): Decision {
  const len = ctx.facts.contentLength;
  if (len === undefined) return { outcome: 'allow', rule: `no Content-Length: counted while streaming (max ${maxBytes})` };
  if (len > maxBytes) {
    return {
      outcome: 'deny',
      code: 'BODY_TOO_LARGE',
      rule: `Content-Length ${len} > ${maxBytes}`,
      evidence: { limit_bytes: maxBytes, received_bytes: len },
    };
  }
  return { outcome: 'allow', rule: `Content-Length ${len} <= ${maxBytes}` };
}
