/**
 * docs/metrics.md lists exactly the metrics the gateway registers, with their types and labels:
 * a metric added, renamed or relabelled without its documentation fails here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Metrics } from './metrics.ts';

void test('docs/metrics.md and the registry list the same metrics, types and labels', async () => {
  const m = new Metrics();
  const registered = new Map<string, string>();
  for (const metric of await m.registry.getMetricsAsJSON()) {
    if (metric.name.startsWith('pinpoint_process_')) continue;
    const labels = (m.registry.getSingleMetric(metric.name) as unknown as { labelNames?: readonly string[] }).labelNames ?? [];
    registered.set(metric.name, `${String(metric.type)} ${labels.join(',')}`);
  }
  const documented = new Map<string, string>();
  const doc = readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
  for (const row of doc.matchAll(/^\| `(pinpoint_[a-z_]+)` \| (\w+) \| ([^|]*) \|/gm)) {
    const labels = [...(row[3] ?? '').matchAll(/`([a-z_]+)`/g)].map((l) => l[1]).join(',');
    documented.set(row[1] as string, `${row[2]} ${labels}`);
  }
  assert.ok(registered.size >= 10, `found ${registered.size} registered metrics`);
  assert.deepEqual(new Map([...documented].sort()), new Map([...registered].sort()));
});
