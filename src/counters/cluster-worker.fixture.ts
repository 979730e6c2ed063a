/**
 * A node:cluster worker for src/counters/cluster.test.ts: a real separate process that talks to
 * the primary's counter host only through ClusterCounterStore, and answers the test's commands.
 */
import { ClusterCounterStore } from './cluster.ts';
import { setCounterStore } from './index.ts';
import { KeyIndex } from '../credentials/api-keys.ts';
import { rateLimit } from '../policies/rate-limit/index.ts';
import { createAiLimits } from '../policies/ai-limits/index.ts';
import { context } from '../pipeline/testing.ts';
import type { Decision } from '../pipeline/types.ts';

export type FixtureCommand =
  | { readonly cmd: 'gcra'; readonly key: string; readonly n: number; readonly T: number; readonly tau: number; readonly now: number }
  | { readonly cmd: 'acquire'; readonly key: string; readonly n: number; readonly max: number }
  | { readonly cmd: 'release'; readonly key: string; readonly n: number }
  | { readonly cmd: 'policy'; readonly n: number; readonly now: number }
  | { readonly cmd: 'add'; readonly key: string; readonly n: number; readonly amount: number; readonly windowStart: number; readonly windowEnd: number }
  | { readonly cmd: 'meter'; readonly key: string; readonly limit: number; readonly windowStart: number; readonly windowEnd: number; readonly now: number }
  /** ai-limits decisions for consumer alice; each allowed one is charged `tokens` tokens. */
  | { readonly cmd: 'ai'; readonly n: number; readonly now: number; readonly tokens: number };

export interface FixtureReply {
  readonly reply: FixtureCommand['cmd'] | 'ready';
  readonly allowed?: number;
  readonly codes?: readonly string[];
  readonly async?: boolean;
  readonly result?: unknown;
}

const store = new ClusterCounterStore({ timeoutMs: 5000 });
setCounterStore(store);

const policy = rateLimit.compile(
  {
    limits: [{ id: 'shared-hourly', by: ['route'], rate: { limit: 10, window: '1h' } }],
    headers: true,
    concurrency_retry_after: '1s',
    on_store_error: 'deny',
  },
  { id: 'cluster-test', mode: 'enforce' },
  { consumers: [], apiKeys: KeyIndex.build([], {}).index, env: {}, path: 'policies.cluster-test.config', baseDir: process.cwd() },
);

/** The charge clock: the `now` of the current `ai` command. */
let aiNow = 0;
const aiPolicy = createAiLimits({ store: () => store, clock: () => aiNow }).compile(
  { limits: [{ id: 'shared', per: 'team', rpm: 10, tpm: 1000 }], headers: true, on_store_error: 'deny' },
  { id: 'cluster-ai', mode: 'enforce' },
  {
    consumers: [{ id: 'alice', team: 'acme' }, { id: 'bob', team: 'acme' }],
    apiKeys: KeyIndex.build([], {}).index,
    env: {},
    path: 'policies.cluster-ai.config',
    baseDir: process.cwd(),
  },
);

function reply(r: FixtureReply): void {
  process.send?.(r);
}

async function handle(m: FixtureCommand): Promise<void> {
  switch (m.cmd) {
    case 'gcra': {
      // All at once: the runs interleave at the primary with the other worker's.
      const rs = await Promise.all(Array.from({ length: m.n }, () => store.run([{ kind: 'gcra', key: m.key, emissionIntervalMs: m.T, burstToleranceMs: m.tau }], m.now, false)));
      reply({ reply: 'gcra', allowed: rs.filter((r) => r[0]?.ok === true).length });
      return;
    }
    case 'acquire': {
      const rs = await Promise.all(Array.from({ length: m.n }, () => store.run([{ kind: 'concurrency', key: m.key, max: m.max }], 0, false)));
      reply({ reply: 'acquire', allowed: rs.filter((r) => r[0]?.ok === true).length });
      return;
    }
    case 'release':
      for (let i = 0; i < m.n; i++) store.release(m.key);
      reply({ reply: 'release' });
      return;
    case 'add':
      for (let i = 0; i < m.n; i++) store.add(m.key, m.amount, m.windowStart, m.windowEnd);
      reply({ reply: 'add' });
      return;
    case 'meter': {
      const [r] = await store.run([{ kind: 'meter', key: m.key, limit: m.limit, windowStart: m.windowStart, windowEnd: m.windowEnd }], m.now, false);
      reply({ reply: 'meter', result: r });
      return;
    }
    case 'ai': {
      aiNow = m.now;
      const facts = { method: 'POST', path: '/v1/chat/completions', rawQuery: '', host: 'h', headers: {}, clientIp: '192.0.2.1', clientIpSource: 'socket', params: {}, contentLength: undefined, now: m.now } as const;
      const identity = { consumer: process.env.FIXTURE_CONSUMER ?? 'alice', credentialId: 'k', credentialType: 'api-key', scopes: new Set<string>() };
      const ds: Decision[] = await Promise.all(Array.from({ length: m.n }, () => Promise.resolve(aiPolicy.decide(context({ facts, identity, routeId: 'chat', protocol: 'openai' })))));
      for (const d of ds) if (d.outcome === 'allow') d.charge?.({ promptTokens: m.tokens, completionTokens: 0, costMicroUsd: 0 });
      reply({ reply: 'ai', allowed: ds.filter((d) => d.outcome === 'allow').length, codes: ds.flatMap((d) => (d.outcome === 'deny' ? [d.code] : [])) });
      return;
    }
    case 'policy': {
      const facts = { method: 'GET', path: '/', rawQuery: '', host: 'h', headers: {}, clientIp: '192.0.2.1', clientIpSource: 'socket', params: {}, contentLength: undefined, now: m.now } as const;
      const pending = Array.from({ length: m.n }, () => policy.decide(context({ facts, routeId: 'orders' })));
      const isAsync = pending.every((d) => typeof (d as { then?: unknown }).then === 'function');
      // Promise.resolve: decide's type allows a plain Decision (the in-process store answers synchronously).
      const ds: Decision[] = await Promise.all(pending.map((d) => Promise.resolve(d)));
      reply({ reply: 'policy', allowed: ds.filter((d) => d.outcome === 'allow').length, codes: ds.flatMap((d) => (d.outcome === 'deny' ? [d.code] : [])), async: isAsync });
      return;
    }
  }
}

process.on('message', (m: FixtureCommand) => {
  if (typeof m === 'object' && m !== null && 'cmd' in m) void handle(m);
});
reply({ reply: 'ready' });
