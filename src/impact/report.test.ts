/** The human report and the progress line: what they show, not how they word it. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ImpactReport } from './impact.ts';
import { formatImpact, progressLine } from './report.ts';

const REPORT: ImpactReport = {
  entries: 5,
  compared: 4,
  changed: 2,
  by_kind: { newly_denied: 1, newly_allowed: 1, denied_differently: 0, answered_differently: 0 },
  changes: [
    { kind: 'newly_denied', route: 'items', consumer: 'bob', from: { outcome: 'allowed', status: null, code: null, policy: null }, to: { outcome: 'denied', status: 403, code: 'IP_DENIED', policy: 'ips' }, count: 1, examples: ['req-1'] },
    { kind: 'newly_allowed', route: 'items', consumer: null, from: { outcome: 'denied', status: 405, code: 'METHOD_NOT_ALLOWED', policy: 'router' }, to: { outcome: 'allowed', status: null, code: null, policy: null }, count: 1, examples: ['req-2'] },
  ],
  not_replayable: [{ config: 'new', reason: 'body not recorded', count: 1, examples: ['req-3'] }],
  counters: [{ policy: 'rl', type: 'rate-limit', change: 'added', requests: 4 }],
};

const HEADER = { next: 'new.yaml', current: 'cur.yaml', since: 0, until: 1000 };

void describe('impact report', () => {
  void test('every group shows its codes, policies and example ids; not replayable and counters follow', () => {
    const text = formatImpact(REPORT, HEADER);
    for (const s of ['IP_DENIED', '(ips)', 'req-1', 'METHOD_NOT_ALLOWED', '(router)', 'req-2', 'body not recorded', 'req-3', 'rl', 'added']) assert.ok(text.includes(s), s);
    assert.doesNotMatch(text, /\u001b\[/, 'no colour unless asked');
  });

  void test('colour goes through the paint it is given', () => {
    const tag = (t: string) => (s: string) => `<${t}>${s}</${t}>`;
    const text = formatImpact(REPORT, HEADER, { red: tag('r'), green: tag('g'), yellow: tag('y'), bold: tag('b'), dim: tag('d') });
    assert.match(text, /<r>✗<\/r>/);
    assert.match(text, /<g>✓<\/g>/);
  });

  void test('nothing changed says so', () => {
    const none: ImpactReport = { ...REPORT, changed: 0, by_kind: { newly_denied: 0, newly_allowed: 0, denied_differently: 0, answered_differently: 0 }, changes: [], not_replayable: [], counters: [] };
    assert.match(formatImpact(none, HEADER), /✓/);
  });

  void test('the progress line fills with the share done', () => {
    assert.equal(progressLine(0, 10, 10), '\r[----------]   0% 0/10');
    assert.equal(progressLine(5, 10, 10), '\r[#####-----]  50% 5/10');
    assert.equal(progressLine(10, 10, 10), '\r[##########] 100% 10/10');
  });
});
