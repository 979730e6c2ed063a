/**
 * docs/denials.md cites catalog codes and end-to-end tests; both must exist, so the page cannot
 * promise a code or a test that is gone.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { isCode } from './catalog.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const doc = readFileSync(path.join(ROOT, 'docs/denials.md'), 'utf8');
const rows = doc.split('\n').filter((l) => /^\| \d+ \|/.test(l));

void test('every code named in docs/denials.md is a catalog code', () => {
  const codes = [...doc.matchAll(/`([A-Z][A-Z0-9_]{3,})`/g)].map((m) => m[1] as string);
  assert.ok(codes.length > 40, `only ${codes.length} codes found`);
  for (const c of codes) assert.ok(isCode(c), `${c} is not in the catalog`);
});

void test('every test cited in docs/denials.md exists, with a test per code where the row says <code>', () => {
  for (const row of rows) {
    const cells = row.split('|').map((c) => c.trim());
    const ref = cells[4] ?? '';
    const m = /^`(test\/[^`]+?) › ([^`]+?) › ([^`]+)`$/.exec(ref);
    if (m === null) continue;
    const [, file, suite, name] = m as unknown as [string, string, string, string];
    const src = readFileSync(path.join(ROOT, file), 'utf8');
    assert.ok(src.includes(`describe('${suite}'`), `${file}: no describe('${suite}')`);
    const names = name === '<code>' ? [...(cells[3] ?? '').matchAll(/`([A-Z][A-Z0-9_]{3,})`/g)].map((x) => x[1] as string) : [name];
    for (const n of names) assert.ok(src.includes(`test('${n}'`), `${file} › ${suite}: no test('${n}')`);
  }
});
