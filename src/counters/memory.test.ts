/**
 * MemoryCounterStore with a fake clock: every `now` is given, so each table row is an exact,
 * reproducible arrival. Times are offsets from an epoch-sized instant on purpose: that is where
 * floating-point rounding would bite (see EPS_MS).
 */
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EPS_MS, MemoryCounterStore } from './memory.ts';
import type { CounterOp, OpResult } from './types.ts';

const T0 = Date.parse('2026-06-01T12:00:00Z');

const stores: MemoryCounterStore[] = [];
function store(opts: ConstructorParameters<typeof MemoryCounterStore>[0] = {}): MemoryCounterStore {
  const s = new MemoryCounterStore({ sweepIntervalMs: 0, ...opts });
  stores.push(s);
  return s;
}
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

interface Step {
  /** ms after T0. */
  readonly at: number;
  readonly ok: boolean;
  readonly available?: number;
  readonly retryAfterMs?: number;
  readonly resetMs?: number;
}

interface GcraCase {
  readonly name: string;
  /** limit per window, with burst (bucket depth). */
  readonly limit: number;
  readonly windowMs: number;
  readonly burst: number;
  readonly steps: readonly Step[];
}

/** Epoch-sized times carry ~2.4e-4 ms of rounding; the store's own tolerance is EPS_MS. */
const close = (a: number, b: number): boolean => Math.abs(a - b) <= EPS_MS;

const GCRA: readonly GcraCase[] = [
  {
    name: '4 per second, burst 4: four at once, then one every 250 ms',
    limit: 4,
    windowMs: 1000,
    burst: 4,
    steps: [
      { at: 0, ok: true, available: 4, resetMs: 0 },
      { at: 0, ok: true, available: 3, resetMs: 250 },
      { at: 0, ok: true, available: 2, resetMs: 500 },
      { at: 0, ok: true, available: 1, resetMs: 750 },
      { at: 0, ok: false, available: 0, retryAfterMs: 250, resetMs: 1000 },
      { at: 100, ok: false, retryAfterMs: 150, resetMs: 900 },
      { at: 249, ok: false, retryAfterMs: 1 },
      { at: 250, ok: true, available: 1, resetMs: 750 },
      { at: 250, ok: false, retryAfterMs: 250 },
      { at: 1000, ok: true, available: 3, resetMs: 250 },
      // Idle long enough: the bucket is full again, never more than full.
      { at: 10_000, ok: true, available: 4, resetMs: 0 },
    ],
  },
  {
    name: 'burst 1 spaces requests evenly at window/limit',
    limit: 4,
    windowMs: 1000,
    burst: 1,
    steps: [
      { at: 0, ok: true, available: 1, resetMs: 0 },
      { at: 0, ok: false, retryAfterMs: 250, resetMs: 250 },
      { at: 249, ok: false, retryAfterMs: 1 },
      { at: 250, ok: true, available: 1 },
      { at: 600, ok: true, available: 1, resetMs: 0 },
      { at: 600, ok: false, retryAfterMs: 250 },
    ],
  },
  {
    name: 'burst above the limit lets a larger burst through, same sustained rate',
    limit: 2,
    windowMs: 1000,
    burst: 5,
    steps: [
      { at: 0, ok: true, available: 5 },
      { at: 0, ok: true },
      { at: 0, ok: true },
      { at: 0, ok: true },
      { at: 0, ok: true, available: 1 },
      { at: 0, ok: false, retryAfterMs: 500, resetMs: 2500 },
      { at: 500, ok: true, available: 1 },
      { at: 500, ok: false, retryAfterMs: 500 },
    ],
  },
  {
    name: '3 per second: T = 333.33… ms is not exact, boundaries still hold',
    limit: 3,
    windowMs: 1000,
    burst: 3,
    steps: [
      { at: 0, ok: true, available: 3 },
      { at: 0, ok: true, available: 2 },
      { at: 0, ok: true, available: 1 },
      { at: 0, ok: false, retryAfterMs: 1000 / 3 },
      { at: 333, ok: false, retryAfterMs: 1000 / 3 - 333 },
      // Exactly one emission interval later the next request conforms.
      { at: 1000 / 3, ok: true, available: 1 },
      { at: 1000 / 3, ok: false },
      { at: 2000 / 3, ok: true, available: 1 },
    ],
  },
  {
    name: '100 per minute: 100 pass at once, the 101st waits 600 ms',
    limit: 100,
    windowMs: 60_000,
    burst: 100,
    steps: [
      ...Array.from({ length: 100 }, (_, i): Step => ({ at: 0, ok: true, available: 100 - i })),
      { at: 0, ok: false, retryAfterMs: 600, resetMs: 60_000 },
      { at: 599, ok: false, retryAfterMs: 1 },
      { at: 600, ok: true, available: 1 },
    ],
  },
];

void describe('GCRA (virtual scheduling, fake clock)', () => {
  for (const c of GCRA) {
    void test(c.name, () => {
      const s = store();
      const T = c.windowMs / c.limit;
      const tau = (c.burst - 1) * T;
      c.steps.forEach((step, i) => {
        const r = s.gcra('k', T, tau, T0 + step.at, false);
        const where = `step ${i} at +${step.at} ms: ${JSON.stringify(r)}`;
        assert.equal(r.ok, step.ok, where);
        if (step.available !== undefined) assert.equal(r.available, step.available, where);
        if (!step.ok) assert.equal(r.available, 0, where);
        if (step.retryAfterMs !== undefined) assert.ok(close(r.retryAfterMs, step.retryAfterMs), `retryAfterMs ${where}`);
        if (step.ok) assert.equal(r.retryAfterMs, 0, where);
        if (step.resetMs !== undefined) assert.ok(close(r.resetMs, step.resetMs), `resetMs ${where}`);
      });
    });
  }

  void test('keys are independent', () => {
    const s = store();
    assert.equal(s.gcra('a', 1000, 0, T0, false).ok, true);
    assert.equal(s.gcra('a', 1000, 0, T0, false).ok, false);
    assert.equal(s.gcra('b', 1000, 0, T0, false).ok, true);
  });
});

void describe('quota (fixed UTC windows)', () => {
  const day = (iso: string): { start: number; end: number } => {
    const start = Date.parse(`${iso}T00:00:00Z`);
    return { start, end: start + 86_400_000 };
  };

  void test('counts up to the limit, refuses until the window end, resets at the boundary', () => {
    const s = store();
    const d1 = day('2026-06-01');
    const d2 = day('2026-06-02');
    const late = Date.parse('2026-06-01T23:59:59Z');
    const rows: readonly [number, { start: number; end: number }, Partial<OpResult>][] = [
      [late, d1, { ok: true, available: 2, resetMs: 1000 }],
      [late, d1, { ok: true, available: 1 }],
      [late, d1, { ok: false, available: 0, retryAfterMs: 1000, resetMs: 1000 }],
      [late + 999, d1, { ok: false, retryAfterMs: 1 }],
      [d2.start, d2, { ok: true, available: 2, resetMs: 86_400_000 }],
      [d2.start + 1, d2, { ok: true, available: 1 }],
      [d2.start + 2, d2, { ok: false }],
    ];
    rows.forEach(([now, w, want], i) => {
      const r = s.quota('q', 2, w.start, w.end, now, false);
      for (const [k, v] of Object.entries(want)) assert.equal(r[k as keyof OpResult], v, `row ${i} ${k}: ${JSON.stringify(r)}`);
    });
  });

  void test('a late request for an earlier window does not reset a newer count', () => {
    const s = store();
    const d1 = day('2026-06-01');
    const d2 = day('2026-06-02');
    assert.equal(s.quota('q', 1, d2.start, d2.end, d2.start, false).ok, true);
    // A worker whose clock lags a few ms behind still sees the new day's count.
    assert.equal(s.quota('q', 1, d1.start, d1.end, d2.start - 5, false).ok, false);
  });
});

void describe('meter (metered amounts over fixed windows)', () => {
  const MIN = 60_000;
  const minute = (at: number): { start: number; end: number } => {
    const start = Math.floor(at / MIN) * MIN;
    return { start, end: start + MIN };
  };

  void test('checks used < limit without counting; add grows it; the next window starts at zero', () => {
    const s = store();
    const at = T0 + 15_000;
    const w = minute(at);
    const rows: readonly [add: number, want: Partial<OpResult>][] = [
      [0, { ok: true, available: 100, used: 0, retryAfterMs: 0, resetMs: 45_000 }],
      [70, { ok: true, available: 30, used: 70 }],
      [29, { ok: true, available: 1, used: 99 }],
      // The request that crosses the limit was let through; now used >= limit refuses.
      [41, { ok: false, available: 0, used: 140, retryAfterMs: 45_000, resetMs: 45_000 }],
    ];
    rows.forEach(([amount, want], i) => {
      if (amount > 0) s.add('tpm', amount, w.start, w.end);
      for (let n = 0; n < 3; n++) {
        const r = s.meter('tpm', 100, w.start, w.end, at);
        for (const [k, v] of Object.entries(want)) assert.equal(r[k as keyof OpResult], v, `row ${i} check ${n} ${k}: ${JSON.stringify(r)}`);
      }
    });
    const next = minute(w.end);
    assert.deepEqual(s.meter('tpm', 100, next.start, next.end, next.start), { ok: true, available: 100, retryAfterMs: 0, resetMs: MIN, used: 0 });
    s.add('tpm', 5, next.start, next.end);
    assert.equal(s.meter('tpm', 100, next.start, next.end, next.start).used, 5, 'the old window\u2019s 140 did not carry over');
  });

  void test('a run of meter ops never writes, peek or not', () => {
    const s = store();
    const w = minute(T0);
    const ops: CounterOp[] = [{ kind: 'meter', key: 'm', limit: 10, windowStart: w.start, windowEnd: w.end }];
    for (let i = 0; i < 5; i++) assert.equal(s.run(ops, T0, false)[0]?.available, 10);
    assert.equal(s.stats().keys, 0);
  });

  void test('all-or-nothing: a spent meter stops the rate token from being taken', () => {
    const s = store();
    const w = minute(T0);
    s.add('m', 10, w.start, w.end);
    const rs = s.run([{ kind: 'gcra', key: 'r', emissionIntervalMs: 1000, burstToleranceMs: 0 }, { kind: 'meter', key: 'm', limit: 10, windowStart: w.start, windowEnd: w.end }], T0, false);
    assert.deepEqual(rs.map((r) => r.ok), [true, false]);
    assert.equal(s.gcra('r', 1000, 0, T0, true).ok, true, 'the rate token was not spent');
  });

  void test('add ignores amounts that are not positive finite numbers, and empty windows', () => {
    const s = store();
    const w = minute(T0);
    for (const amount of [0, -5, Number.NaN, Number.POSITIVE_INFINITY]) s.add('m', amount, w.start, w.end);
    s.add('m', 5, w.start, w.start);
    assert.equal(s.stats().keys, 0);
    s.add('m', 0.5, w.start, w.end);
    s.add('m', 0.25, w.start, w.end);
    assert.equal(s.meter('m', 1, w.start, w.end, T0).used, 0.75, 'fractional amounts (micro-dollars) add up');
  });

  void test('clock skew: an add or a check for an earlier window counts in the newer one', () => {
    const s = store();
    const d1 = { start: Date.parse('2026-06-01T00:00:00Z'), end: Date.parse('2026-06-02T00:00:00Z') };
    const d2 = { start: d1.end, end: d1.end + 86_400_000 };
    s.add('day', 300, d2.start, d2.end);
    // A worker whose clock lags a few ms is still on day 1.
    s.add('day', 200, d1.start, d1.end);
    assert.equal(s.meter('day', 1000, d2.start, d2.end, d2.start + 1).used, 500);
    assert.equal(s.meter('day', 500, d1.start, d1.end, d2.start - 5).ok, false);
  });

  void test('adds of new keys respect maxKeys', () => {
    const s = store({ maxKeys: 100 });
    const w = minute(T0);
    for (let i = 0; i < 150; i++) s.add(`m${i}`, 1, w.start, w.end);
    assert.ok(s.stats().keys <= 100, `keys ${s.stats().keys}`);
    assert.ok(s.stats().evicted >= 50);
  });

  void test('sweep drops a meter when its window ends', () => {
    const s = store();
    const w = minute(T0);
    s.add('m', 1, w.start, w.end);
    assert.equal(s.sweep(w.end - 1), 0);
    assert.equal(s.sweep(w.end), 1);
    assert.equal(s.stats().keys, 0);
  });
});

void describe('concurrency', () => {
  void test('acquire up to max, refuse, release frees one slot', () => {
    const s = store();
    assert.deepEqual(s.acquire('c', 2, false), { ok: true, inFlight: 0 });
    assert.deepEqual(s.acquire('c', 2, false), { ok: true, inFlight: 1 });
    assert.deepEqual(s.acquire('c', 2, false), { ok: false, inFlight: 2 });
    s.release('c');
    assert.equal(s.inFlight('c'), 1);
    assert.deepEqual(s.acquire('c', 2, false), { ok: true, inFlight: 1 });
    s.release('c');
    s.release('c');
    assert.equal(s.inFlight('c'), 0);
    assert.equal(s.stats().inFlightKeys, 0, 'the entry is gone at zero');
    s.release('c');
    s.release('never-taken');
    assert.equal(s.inFlight('c'), 0, 'extra releases are ignored');
  });
});

void describe('run: all-or-nothing, peek', () => {
  const gcra = (key: string): CounterOp => ({ kind: 'gcra', key, emissionIntervalMs: 1000, burstToleranceMs: 0 });

  void test('when one op is refused, none is committed', () => {
    const s = store();
    const d = Date.parse('2026-06-01T00:00:00Z');
    s.quota('q', 1, d, d + 86_400_000, T0, false);
    const rs = s.run([gcra('r'), { kind: 'quota', key: 'q', limit: 1, windowStart: d, windowEnd: d + 86_400_000 }, { kind: 'concurrency', key: 'c', max: 1 }], T0, false);
    assert.deepEqual(rs.map((r) => r.ok), [true, false, true]);
    assert.equal(s.gcra('r', 1000, 0, T0, true).available, 1, 'the rate token was not spent');
    assert.equal(s.inFlight('c'), 0, 'no slot was taken');
  });

  void test('peekOnly never changes anything', () => {
    const s = store();
    const ops: CounterOp[] = [gcra('r'), { kind: 'concurrency', key: 'c', max: 1 }];
    for (let i = 0; i < 5; i++) assert.deepEqual(s.run(ops, T0, true).map((r) => r.ok), [true, true]);
    assert.equal(s.stats().keys, 0);
    assert.equal(s.inFlight('c'), 0);
  });

  void test('the same key twice in one run sees the first op', () => {
    const s = store();
    assert.deepEqual(s.run([gcra('r'), gcra('r')], T0, false).map((r) => r.ok), [true, false]);
    assert.equal(s.gcra('r', 1000, 0, T0, false).ok, true, 'refused run committed nothing');
    const c: CounterOp = { kind: 'concurrency', key: 'c', max: 1 };
    assert.deepEqual(s.run([c, c], T0, false).map((r) => r.ok), [true, false]);
  });
});

void describe('bounded memory', () => {
  void test('sweep drops entries whose bucket is full again or whose window ended', () => {
    const s = store();
    s.gcra('a', 1000, 0, T0, false); // full again at T0 + 1000
    s.quota('q', 5, T0, T0 + 5000, T0, false);
    assert.equal(s.stats().keys, 2);
    assert.equal(s.sweep(T0 + 999), 0);
    assert.equal(s.sweep(T0 + 1000), 1);
    assert.equal(s.sweep(T0 + 5000), 1);
    assert.equal(s.stats().keys, 0);
  });

  void test('maxKeys: expired entries go first, then the oldest live ones', () => {
    const s = store({ maxKeys: 100 });
    for (let i = 0; i < 100; i++) s.gcra(`short${i}`, 10, 0, T0, false);
    // Later: the first 100 are expired, so making room sweeps them and evicts nothing.
    for (let i = 0; i < 100; i++) s.gcra(`long${i}`, 3_600_000, 0, T0 + 1000, false);
    assert.equal(s.stats().keys, 100);
    assert.equal(s.stats().evicted, 0);
    for (let i = 0; i < 50; i++) s.gcra(`more${i}`, 3_600_000, 0, T0 + 2000, false);
    assert.ok(s.stats().keys <= 100, `keys ${s.stats().keys}`);
    assert.equal(s.stats().evicted, 50);
    // The evicted key (oldest first) starts afresh: that caller is briefly unlimited (fail open).
    assert.equal(s.gcra('long0', 3_600_000, 0, T0 + 2000, false).ok, true);
  });

  void test('the sweep timer runs on its own and does not hold the process open', async () => {
    let now = T0;
    const s = store({ sweepIntervalMs: 5, clock: () => now });
    s.gcra('a', 1000, 0, T0, false);
    now = T0 + 2000;
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(s.stats().keys, 0);
  });
});
