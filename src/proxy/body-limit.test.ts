import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BodyLimit, BodyTooLargeError } from './body-limit.ts';

async function run(limit: number, chunks: readonly string[]): Promise<{ out: string; limiter: BodyLimit }> {
  const limiter = new BodyLimit(limit);
  const parts: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      parts.push(chunk);
      cb();
    },
  });
  await pipeline(Readable.from(chunks.map((c) => Buffer.from(c))), limiter, sink);
  return { out: Buffer.concat(parts).toString(), limiter };
}

const PASS: readonly { name: string; limit: number; chunks: string[] }[] = [
  { name: 'no body', limit: 10, chunks: [] },
  { name: 'one chunk under the limit', limit: 10, chunks: ['hello'] },
  { name: 'several chunks adding up to exactly the limit', limit: 10, chunks: ['hel', 'lo', 'world'] },
  { name: 'empty chunks count for nothing', limit: 0, chunks: ['', ''] },
];

const FAIL: readonly { name: string; limit: number; chunks: string[]; received: number }[] = [
  { name: 'a single chunk past the limit', limit: 4, chunks: ['hello'], received: 5 },
  { name: 'the chunk that crosses the limit', limit: 10, chunks: ['hello', 'world', '!', 'more'], received: 11 },
  { name: 'limit 0, one byte', limit: 0, chunks: ['x'], received: 1 },
];

void describe('BodyLimit', () => {
  for (const c of PASS) {
    void test(`passes: ${c.name}`, async () => {
      const { out, limiter } = await run(c.limit, c.chunks);
      assert.equal(out, c.chunks.join(''));
      assert.equal(limiter.seen, Buffer.byteLength(c.chunks.join('')));
    });
  }

  for (const c of FAIL) {
    void test(`fails: ${c.name}`, async () => {
      await assert.rejects(run(c.limit, c.chunks), (err: unknown) => {
        assert.ok(err instanceof BodyTooLargeError, String(err));
        assert.equal(err.code, 'PINPOINT_BODY_TOO_LARGE');
        assert.equal(err.limit, c.limit);
        assert.equal(err.received, c.received);
        return true;
      });
    });
  }

  void test('nothing past the limit is passed on', async () => {
    const limiter = new BodyLimit(5);
    const seen: string[] = [];
    limiter.on('data', (b: Buffer) => seen.push(b.toString()));
    const failed = new Promise<unknown>((resolve) => limiter.once('error', resolve));
    limiter.write(Buffer.from('abc'));
    limiter.write(Buffer.from('de'));
    limiter.write(Buffer.from('f'));
    const err = await failed;
    assert.ok(err instanceof BodyTooLargeError);
    assert.deepEqual(seen, ['abc', 'de']);
  });

  void test('bytes, not characters, are counted', async () => {
    await assert.rejects(run(3, ['éé']), BodyTooLargeError);
    const { limiter } = await run(4, ['éé']);
    assert.equal(limiter.seen, 4);
  });
});
