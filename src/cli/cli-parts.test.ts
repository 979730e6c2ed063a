/** Small pieces of the commands: time arguments of `impact`, the AI part of a `logs` line, paging. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CallLogEntry, CallLogPage, CallLogScan } from '../calllog/types.ts';
import { aiColumns } from './commands.ts';
import { logEntries, parseWhen } from './impact.ts';

const NOW = Date.parse('2026-05-02T00:00:00Z');

void describe('impact: --since / --until', () => {
  void test('a duration counts back from now; RFC 3339 needs a full time and an offset', () => {
    assert.equal(parseWhen('24h', NOW), NOW - 86_400_000);
    assert.equal(parseWhen('30m', NOW), NOW - 1_800_000);
    assert.equal(parseWhen('2026-05-01T00:00:00Z', NOW), Date.parse('2026-05-01T00:00:00Z'));
    assert.equal(parseWhen('2026-05-01T02:00:00.5+02:00', NOW), Date.parse('2026-05-01T00:00:00.5Z'));
    for (const bad of ['yesterday', '2026-05-01', '2026-05-01T00:00:00', '1.5h', '']) assert.equal(parseWhen(bad, NOW), undefined, bad);
  });

  void test('entries are read a page at a time up to the limit, following the cursor', async () => {
    const calls: CallLogScan[] = [];
    const all = Array.from({ length: 1203 }, (_, i) => ({ requestId: `r${i}` }) as CallLogEntry);
    const store = {
      scan(q: CallLogScan): CallLogPage {
        calls.push(q);
        const from = q.after?.id ?? 0;
        const entries = all.slice(from, from + (q.limit ?? 500));
        return { entries, next: from + entries.length < all.length ? { ts: 0, id: from + entries.length } : null };
      },
    };
    const ids: string[] = [];
    for await (const e of logEntries(store, {}, 1100)) ids.push(e.requestId);
    assert.equal(ids.length, 1100);
    assert.deepEqual(calls.map((c) => c.limit), [500, 500, 100]);
    ids.length = 0;
    for await (const e of logEntries(store, {}, Number.MAX_SAFE_INTEGER)) ids.push(e.requestId);
    assert.equal(ids.length, 1203);
  });
});

void describe('logs: the AI part of a line', () => {
  void test('shown when present, empty otherwise', () => {
    const e = { ai: { provider: 'openai', model: 'gpt-x', servedModel: 'gpt-x-mini', promptTokens: 10, completionTokens: 20, costMicroUsd: 1500, ttftMs: 120, stream: true } } as CallLogEntry;
    const s = aiColumns(e);
    for (const part of ['openai/gpt-x', 'gpt-x-mini', '10+20', '0.001500', 'stream', '120']) assert.ok(s.includes(part), part);
    assert.equal(aiColumns({ ai: null } as CallLogEntry), '');
    assert.equal(aiColumns({} as CallLogEntry), '');
  });
});
