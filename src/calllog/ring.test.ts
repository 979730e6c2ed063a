import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ByteRing } from './ring.ts';

function ring(capacity: number): ByteRing {
  const { data, control } = ByteRing.allocate(capacity, 8);
  return new ByteRing(data, control);
}

/** Appends a payload of `bytes` bytes all set to `fill`; false if it did not fit. */
function put(r: ByteRing, bytes: number, fill: number): boolean {
  const at = r.reserve(bytes);
  if (at < 0) return false;
  r.data.fill(fill, at, at + bytes);
  r.commit(at, bytes);
  return true;
}

const read = (r: ByteRing, max: number): number[][] => r.take(max, (at, bytes) => [bytes, ...new Set(r.data.subarray(at, at + bytes))]);

void test('a seeded random walk of appends, takes and evictions agrees with an array model, across many wraps', () => {
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (let trial = 0; trial < 200; trial++) {
    const capacity = 64 + 4 * rand(64);
    const r = ring(capacity);
    const model: [number, number][] = [];
    let used = 0; // bytes the model's records occupy, headers and alignment included
    for (let step = 0; step < 500; step++) {
      const op = rand(10);
      if (op < 6) {
        const bytes = rand(capacity / 2);
        const fill = 1 + rand(250);
        if (put(r, bytes, fill)) {
          model.push([bytes, fill]);
          used += (4 + bytes + 3) & ~3;
        } else if (model.length === 0) {
          // An empty ring refuses only for want of one piece; rewound, it must take the row.
          r.rewindIfEmpty();
          assert.ok(put(r, bytes, fill), `an empty, rewound ${capacity} B ring refused ${bytes} B`);
          model.push([bytes, fill]);
          used += (4 + bytes + 3) & ~3;
        } else {
          assert.ok(used + ((4 + bytes + 3) & ~3) > capacity / 2 - 4, `refused ${bytes} B with only ${used} of ${capacity} B used`);
        }
      } else if (op < 9) {
        const n = 1 + rand(4);
        const got = read(r, n);
        const want = model.splice(0, n);
        for (const [bytes] of want) used -= (4 + bytes + 3) & ~3;
        assert.deepEqual(got, want.map(([bytes, fill]) => (bytes === 0 ? [0] : [bytes, fill])));
      } else {
        const evicted = r.evictOldest();
        assert.equal(evicted, model.length > 0);
        const gone = model.shift();
        if (gone !== undefined) used -= (4 + gone[0] + 3) & ~3;
      }
      assert.equal(r.empty(), model.length === 0);
    }
  }
});

void test('an empty ring rewound to its start takes a row larger than half of it', () => {
  const r = ring(1024);
  assert.ok(put(r, 400, 1));
  assert.equal(read(r, 1).length, 1); // head and tail now sit mid-buffer
  assert.equal(r.reserve(700), -1, 'mid-buffer, 700 B fit neither before the end nor before the head');
  r.rewindIfEmpty();
  assert.ok(put(r, 700, 2));
  assert.deepEqual(read(r, 1), [[700, 2]]);
});

void test('take counts what it took, through its callback and the TAKEN word, before the head moves', () => {
  const r = ring(256);
  put(r, 10, 1);
  put(r, 10, 2);
  let seen = -1;
  r.take(5, () => 0, (n) => (seen = n));
  assert.equal(seen, 2);
  assert.equal(Atomics.load(r.ctl, 2), 2);
  assert.ok(r.empty());
});
