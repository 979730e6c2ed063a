/**
 * The cluster counter store, for real: this test process is a node:cluster primary with the
 * counter host attached, and forks two worker processes (cluster-worker.fixture.ts) that hit the
 * same keys at the same time. Then the worker side alone, over a fake channel, for timeouts and
 * bad answers that a healthy primary never produces.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import cluster, { type Cluster, type Worker } from 'node:cluster';
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { attachCounterHost, ClusterCounterStore, type CounterHost, type IpcChannel } from './cluster.ts';
import type { FixtureCommand, FixtureReply } from './cluster-worker.fixture.ts';
import type { OpResult } from './types.ts';

const NOW = Date.parse('2026-06-01T12:00:00Z');

function ask(w: Worker, command: FixtureCommand): Promise<FixtureReply> {
  return new Promise((resolve) => {
    const on = (m: FixtureReply): void => {
      if (m.reply !== command.cmd) return;
      w.off('message', on);
      resolve(m);
    };
    w.on('message', on);
    w.send(command);
  });
}

function forkWorker(env: Record<string, string> = {}): Promise<Worker> {
  const w = cluster.fork(env);
  return new Promise((resolve, reject) => {
    const on = (m: FixtureReply): void => {
      if (m.reply !== 'ready') return;
      w.off('message', on);
      resolve(w);
    };
    w.on('message', on);
    w.once('exit', (code) => reject(new Error(`worker exited early (${code})`)));
  });
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`timed out waiting for ${what}`);
}

void describe('ClusterCounterStore across real worker processes', () => {
  let host: CounterHost;
  let workers: Worker[] = [];

  before(async () => {
    // execArgv: [] so the workers do not inherit the test runner's flags; TypeScript runs by type stripping.
    cluster.setupPrimary({ exec: path.join(import.meta.dirname, 'cluster-worker.fixture.ts'), execArgv: [] });
    host = attachCounterHost(cluster);
    // Two consumers of one team: the ai-limits fixture policy has a per-team limit.
    workers = await Promise.all([forkWorker({ FIXTURE_CONSUMER: 'alice' }), forkWorker({ FIXTURE_CONSUMER: 'bob' })]);
  });

  after(async () => {
    await Promise.all(
      workers.filter((w) => !w.isDead()).map((w) => new Promise<void>((resolve) => {
        w.once('exit', () => resolve());
        w.kill();
      })),
    );
    host.detach();
  });

  void test('two workers racing on one GCRA key: exactly `limit` pass in total', async () => {
    // 50 per hour, burst 50: no refill during the test; each worker tries 40 at once.
    const T = 3_600_000 / 50;
    const tau = 49 * T;
    const replies = await Promise.all(workers.map((w) => ask(w, { cmd: 'gcra', key: 'shared', n: 40, T, tau, now: NOW })));
    const allowed = replies.map((r) => r.allowed ?? -1);
    assert.equal(allowed[0]! + allowed[1]!, 50, `allowed per worker: ${allowed.join(', ')}`);
    assert.equal(host.store.gcra('shared', T, tau, NOW, true).ok, false, 'the primary holds the spent bucket');
  });

  void test('the rate-limit policy decides asynchronously in a worker, and counts across workers', async () => {
    const replies = await Promise.all(workers.map((w) => ask(w, { cmd: 'policy', n: 8, now: NOW })));
    assert.ok(replies.every((r) => r.async === true), 'decide returned a promise');
    assert.equal(replies.reduce((a, r) => a + (r.allowed ?? 0), 0), 10);
    const codes = replies.flatMap((r) => r.codes ?? []);
    assert.equal(codes.length, 6);
    assert.ok(codes.every((c) => c === 'RATE_LIMIT_EXCEEDED'), codes.join(', '));
  });

  void test('metered adds from two workers all count, and a worker\u2019s meter check sees them', async () => {
    const w = { windowStart: NOW, windowEnd: NOW + 60_000 };
    await Promise.all(workers.map((wk) => ask(wk, { cmd: 'add', key: 'tokens', n: 50, amount: 3, ...w })));
    assert.equal(host.store.meter('tokens', 1000, w.windowStart, w.windowEnd, NOW).used, 300);
    const [first] = workers as [Worker, Worker];
    const r = (await ask(first, { cmd: 'meter', key: 'tokens', limit: 300, ...w, now: NOW + 1000 })).result as OpResult;
    assert.deepEqual(r, { ok: false, available: 0, retryAfterMs: 59_000, resetMs: 59_000, used: 300 });
  });

  void test('ai-limits: a team limit is one allowance across workers, for requests and for tokens', async () => {
    const replies = await Promise.all(workers.map((w) => ask(w, { cmd: 'ai', n: 8, now: NOW, tokens: 0 })));
    assert.equal(replies.reduce((a, r) => a + (r.allowed ?? 0), 0), 10);
    const codes = replies.flatMap((r) => r.codes ?? []);
    assert.deepEqual([...new Set(codes)], ['AI_RPM_EXCEEDED']);
    assert.equal(codes.length, 6);

    // Ten minutes on, the request rate is full again; alice's worker uses 1500 of the team's 1000
    // tokens per minute, so bob's worker is refused in the same minute.
    const later = NOW + 600_000;
    const [alice, bob] = workers as [Worker, Worker];
    assert.equal((await ask(alice, { cmd: 'ai', n: 1, now: later, tokens: 1500 })).allowed, 1);
    assert.deepEqual((await ask(bob, { cmd: 'ai', n: 1, now: later + 1000, tokens: 0 })).codes, ['AI_TPM_EXCEEDED']);
    assert.equal((await ask(bob, { cmd: 'ai', n: 1, now: later + 60_000, tokens: 0 })).allowed, 1, 'the next minute starts afresh');
  });

  void test('concurrency slots are global; a worker that dies gives its slots back', async () => {
    const replies = await Promise.all(workers.map((w) => ask(w, { cmd: 'acquire', key: 'slots', n: 3, max: 4 })));
    assert.equal(replies.reduce((a, r) => a + (r.allowed ?? 0), 0), 4);
    assert.equal(host.store.inFlight('slots'), 4);
    const [dying, survivor] = workers as [Worker, Worker];
    const survivorHeld = host.held(survivor);
    assert.equal(host.held(dying) + survivorHeld, 4);

    // Killed mid-request: it never calls release; the primary does it on 'exit'.
    await new Promise<void>((resolve) => {
      dying.once('exit', () => resolve());
      dying.process.kill('SIGKILL');
    });
    await until(() => host.store.inFlight('slots') === survivorHeld, 'the dead worker\u2019s slots');
    assert.equal(host.held(dying), 0);

    await ask(survivor, { cmd: 'release', key: 'slots', n: survivorHeld });
    await until(() => host.store.inFlight('slots') === 0, 'the survivor\u2019s releases');
    // A release for slots this worker does not hold is ignored, not taken from someone else.
    await ask(survivor, { cmd: 'release', key: 'slots', n: 2 });
    assert.equal(host.store.inFlight('slots'), 0);
  });
});

/** A channel to nowhere: records what the worker sends; the test plays the primary. */
class FakeChannel extends EventEmitter implements IpcChannel {
  readonly sent: unknown[] = [];
  send = (message: unknown, _h?: undefined, _o?: undefined, cb?: (e: Error | null) => void): boolean => {
    this.sent.push(message);
    cb?.(null);
    return true;
  };
  answer(id: number, body: { results?: readonly OpResult[]; error?: string }): void {
    this.emit('message', { type: 'pinpoint:counters:result', id, ...body });
  }
}

const OK: OpResult = { ok: true, available: 1, retryAfterMs: 0, resetMs: 0 };

void describe('ClusterCounterStore worker side', () => {
  void test('no answer within timeoutMs rejects', async () => {
    const ch = new FakeChannel();
    const s = new ClusterCounterStore({ channel: ch, timeoutMs: 20 });
    await assert.rejects(s.run([{ kind: 'concurrency', key: 'k', max: 1 }], NOW, false), /did not answer within 20 ms/);
    s.close();
  });

  void test('a late answer that took a slot is given back', async () => {
    const ch = new FakeChannel();
    const s = new ClusterCounterStore({ channel: ch, timeoutMs: 20 });
    await assert.rejects(s.run([{ kind: 'concurrency', key: 'k', max: 1 }], NOW, false));
    const { id } = ch.sent[0] as { id: number };
    ch.answer(id, { results: [OK] });
    assert.deepEqual(ch.sent[1], { type: 'pinpoint:counters:release', key: 'k' });
    s.close();
  });

  void test('an error answer, or one with the wrong number of results, rejects', async () => {
    const ch = new FakeChannel();
    const s = new ClusterCounterStore({ channel: ch, timeoutMs: 1000 });
    const a = s.run([{ kind: 'concurrency', key: 'k', max: 1 }], NOW, false);
    ch.answer((ch.sent[0] as { id: number }).id, { error: 'malformed counter op' });
    await assert.rejects(a, /malformed counter op/);
    const b = s.run([{ kind: 'concurrency', key: 'k', max: 1 }], NOW, false);
    ch.answer((ch.sent[1] as { id: number }).id, { results: [OK, OK] });
    await assert.rejects(b, /malformed answer/);
    s.close();
  });

  void test('add sends one unanswered message; amounts that are not positive are not sent', () => {
    const ch = new FakeChannel();
    const s = new ClusterCounterStore({ channel: ch, timeoutMs: 1000 });
    s.add('k', 12, NOW, NOW + 60_000);
    s.add('k', 0, NOW, NOW + 60_000);
    s.add('k', Number.NaN, NOW, NOW + 60_000);
    assert.deepEqual(ch.sent, [{ type: 'pinpoint:counters:add', key: 'k', amount: 12, windowStart: NOW, windowEnd: NOW + 60_000 }]);
    s.close();
  });

  void test('a send failure rejects at once; close rejects what is pending', async () => {
    const ch = new FakeChannel();
    ch.send = (_m, _h, _o, cb) => {
      cb?.(new Error('channel closed'));
      return false;
    };
    const s = new ClusterCounterStore({ channel: ch, timeoutMs: 1000 });
    await assert.rejects(s.run([], NOW, false), /channel closed/);
    const ok = new FakeChannel();
    const s2 = new ClusterCounterStore({ channel: ok, timeoutMs: 1000 });
    const p = s2.run([], NOW, false);
    s2.close();
    await assert.rejects(p, /closed/);
    s.close();
  });
});

void describe('attachCounterHost message handling', () => {
  function fakeWorker(id: number): { worker: Worker; inbox: unknown[] } {
    const inbox: unknown[] = [];
    const worker = { id, isConnected: () => true, send: (m: unknown) => inbox.push(m) } as unknown as Worker;
    return { worker, inbox };
  }

  void test('a malformed op is answered with an error, and changes nothing', () => {
    const fake = new EventEmitter();
    const host = attachCounterHost(fake as unknown as Pick<Cluster, 'on' | 'off'>);
    const { worker, inbox } = fakeWorker(1);
    fake.emit('message', worker, { type: 'pinpoint:counters:run', id: 7, now: NOW, peek: false, ops: [{ kind: 'gcra', key: 'k', emissionIntervalMs: 0, burstToleranceMs: 0 }] });
    assert.deepEqual(inbox, [{ type: 'pinpoint:counters:result', id: 7, error: 'malformed counter op' }]);
    fake.emit('message', worker, { type: 'something-else' });
    assert.equal(inbox.length, 1, 'other messages are not ours');
    assert.equal(host.store.stats().keys, 0);
    host.detach();
  });

  void test('an add is applied to the primary\u2019s store; a malformed one is ignored', () => {
    const fake = new EventEmitter();
    const host = attachCounterHost(fake as unknown as Pick<Cluster, 'on' | 'off'>);
    const { worker, inbox } = fakeWorker(2);
    const w = { windowStart: NOW, windowEnd: NOW + 60_000 };
    fake.emit('message', worker, { type: 'pinpoint:counters:add', key: 'm', amount: 7, ...w });
    fake.emit('message', worker, { type: 'pinpoint:counters:add', key: 'm', amount: '7', ...w });
    fake.emit('message', worker, { type: 'pinpoint:counters:add', key: 'm', amount: 7, windowStart: NOW });
    assert.equal(host.store.meter('m', 100, w.windowStart, w.windowEnd, NOW).used, 7);
    assert.deepEqual(inbox, [], 'adds are not answered');
    fake.emit('message', worker, { type: 'pinpoint:counters:run', id: 9, now: NOW, peek: false, ops: [{ kind: 'meter', key: 'm', limit: 7, windowStart: NOW, windowEnd: 'later' }] });
    assert.deepEqual(inbox, [{ type: 'pinpoint:counters:result', id: 9, error: 'malformed counter op' }]);
    fake.emit('message', worker, { type: 'pinpoint:counters:run', id: 10, now: NOW, peek: false, ops: [{ kind: 'meter', key: 'm', limit: 7, ...w }] });
    assert.equal((inbox[1] as { results?: OpResult[] } | undefined)?.results?.[0]?.ok, false);
    host.detach();
  });

  void test('a slot granted to a worker that is already gone is given back at once', () => {
    const fake = new EventEmitter();
    const host = attachCounterHost(fake as unknown as Pick<Cluster, 'on' | 'off'>);
    const worker = { id: 3, isConnected: () => false, send: () => true } as unknown as Worker;
    fake.emit('message', worker, { type: 'pinpoint:counters:run', id: 1, now: NOW, peek: false, ops: [{ kind: 'concurrency', key: 'c', max: 1 }] });
    assert.equal(host.store.inFlight('c'), 0);
    assert.equal(host.held(worker), 0);
    host.detach();
  });
});
