import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { renderConfigReference } from './reference.ts';
import { POLICY_MODULES } from '../policies/index.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

void test('docs/configuration.md is generated from the schema (run `npm run docs` after a schema change)', () => {
  assert.equal(readFileSync(path.join(ROOT, 'docs/configuration.md'), 'utf8'), renderConfigReference());
});

void test('every config field and every policy config field has a description', () => {
  const undocumented = renderConfigReference()
    .split('\n')
    .filter((l) => l.startsWith('| `') && l.trimEnd().endsWith('|  |'))
    .map((l) => l.split('|')[1]?.trim());
  assert.deepEqual(undocumented, []);
});

void test('every policy type has a section', () => {
  const doc = renderConfigReference();
  for (const m of POLICY_MODULES) assert.ok(doc.includes(`### \`${m.type}\``), m.type);
});
