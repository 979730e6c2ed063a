/** The per-process admission of password checks (./admission.ts), on its own. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PasswordCheckAdmission, type AdmissionLimits, type AdmissionRefused } from './admission.ts';

/** A task the test finishes by hand, so "slow" is exact and needs no timers. */
function gated<T>(value: T): { task: () => Promise<T>; started: () => boolean; finish: () => void; fail: () => void } {
  let started = false;
  let resolve: (v: T) => void = () => undefined;
  let reject: (e: Error) => void = () => undefined;
  const p = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return {
    task: () => {
      started = true;
      return p;
    },
    started: () => started,
    finish: () => resolve(value),
    fail: () => reject(new Error('scrypt failed')),
  };
}

function isRefused<T>(r: Promise<T> | AdmissionRefused): r is AdmissionRefused {
  return 'refused' in r;
}

const ONE_ONE: AdmissionLimits = { maxConcurrent: 1, maxQueued: 1 };

void describe('password check admission', () => {
  void test('one runs, one waits, the third is refused synchronously with a retry delay', async () => {
    const a = new PasswordCheckAdmission();
    const [t1, t2, t3] = [gated(1), gated(2), gated(3)];
    const r1 = a.run(ONE_ONE, t1.task);
    const r2 = a.run(ONE_ONE, t2.task);
    const r3 = a.run(ONE_ONE, t3.task);
    assert.ok(!isRefused(r1) && !isRefused(r2));
    assert.ok(isRefused(r3));
    assert.ok(Number.isInteger(r3.retryAfterS) && r3.retryAfterS >= 1 && r3.retryAfterS <= 60);
    assert.deepEqual([r3.running, r3.queued, t1.started(), t2.started(), t3.started()], [1, 1, true, false, false]);
    t1.finish();
    assert.equal(await r1, 1);
    assert.equal(t2.started(), true, 'the waiter starts when the slot frees');
    t2.finish();
    assert.equal(await r2, 2);
    assert.deepEqual([a.running, a.queued, a.peakQueued], [0, 0, 1]);
  });

  void test('after the burst, new checks are admitted again', async () => {
    const a = new PasswordCheckAdmission();
    const t1 = gated('a');
    const r1 = a.run(ONE_ONE, t1.task);
    const r2 = a.run(ONE_ONE, () => Promise.resolve('b'));
    assert.ok(isRefused(a.run(ONE_ONE, () => Promise.resolve('c'))));
    t1.finish();
    await Promise.all([r1, r2]);
    const later = a.run(ONE_ONE, () => Promise.resolve('d'));
    assert.ok(!isRefused(later));
    assert.equal(await later, 'd');
  });

  void test('under a flood, running and waiting never exceed their bounds, and every admitted check finishes', async () => {
    const a = new PasswordCheckAdmission();
    const limits: AdmissionLimits = { maxConcurrent: 2, maxQueued: 3 };
    let peakRunning = 0;
    const gates = Array.from({ length: 50 }, (_, i) => gated(i));
    const results = gates.map((g) =>
      a.run(limits, () => {
        peakRunning = Math.max(peakRunning, a.running);
        assert.ok(a.queued <= limits.maxQueued);
        return g.task();
      }),
    );
    const admitted = results.filter((r): r is Promise<number> => !isRefused(r));
    assert.equal(admitted.length, limits.maxConcurrent + limits.maxQueued);
    gates.forEach((g) => g.finish());
    assert.deepEqual((await Promise.all(admitted)).sort((x, y) => x - y), [0, 1, 2, 3, 4]);
    assert.deepEqual([peakRunning, a.peakQueued, a.running, a.queued], [2, 3, 0, 0]);
  });

  void test('first in, first out', async () => {
    const a = new PasswordCheckAdmission();
    const limits: AdmissionLimits = { maxConcurrent: 1, maxQueued: 5 };
    const order: number[] = [];
    const head = gated(0);
    const all = [a.run(limits, head.task), ...[1, 2, 3].map((i) => a.run(limits, () => (order.push(i), Promise.resolve(i))))];
    head.finish();
    await Promise.all(all.filter((r): r is Promise<number> => !isRefused(r)));
    assert.deepEqual(order, [1, 2, 3]);
  });

  void test('a failed check frees its slot and rejects only its own caller', async () => {
    const a = new PasswordCheckAdmission();
    const bad = gated(0);
    const r1 = a.run(ONE_ONE, bad.task);
    const r2 = a.run(ONE_ONE, () => Promise.resolve(7));
    bad.fail();
    assert.ok(!isRefused(r1) && !isRefused(r2));
    await assert.rejects(r1);
    assert.equal(await r2, 7);
    assert.deepEqual([a.running, a.queued], [0, 0]);
  });

  void test('max_queued 0 refuses as soon as every slot is taken', async () => {
    const a = new PasswordCheckAdmission();
    const g = gated(0);
    const r = a.run({ maxConcurrent: 1, maxQueued: 0 }, g.task);
    assert.ok(isRefused(a.run({ maxConcurrent: 1, maxQueued: 0 }, g.task)));
    g.finish();
    assert.ok(!isRefused(r));
    await r;
  });

  void test('shared by policies with different bounds: each admits against its own, the count is common', async () => {
    const a = new PasswordCheckAdmission();
    const wide: AdmissionLimits = { maxConcurrent: 2, maxQueued: 2 };
    const narrow: AdmissionLimits = { maxConcurrent: 1, maxQueued: 2 };
    const g1 = gated(1);
    const r1 = a.run(wide, g1.task);
    // One check is running: the narrow policy's limit (1) is reached, so its check waits.
    const g2 = gated(2);
    const r2 = a.run(narrow, g2.task);
    assert.equal(g2.started(), false);
    assert.equal(a.queued, 1);
    g1.finish();
    await r1;
    assert.equal(g2.started(), true);
    g2.finish();
    assert.ok(!isRefused(r2));
    await r2;
  });
});
