/**
 * A HAR file recorded by real headless Chromium (playwright-core driving Debian's chromium):
 * a page on one origin POSTs JSON to the gateway on another, the gateway refuses the preflight,
 * and `diagnose` on the recorded HAR names the same code and policy the gateway logged.
 *
 * CI installs Chromium (.ci/run) and sets PINPOINT_REQUIRE_CHROMIUM=1, so there this test cannot
 * be skipped; on a developer machine without Chromium it is skipped with the reason.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { diagnoseAsBrowser } from '../../src/diagnose/diagnose.ts';
import { parseHar } from '../../src/diagnose/har.ts';
import { startGateway, startUpstream } from '../helpers/harness.ts';

const CHROMIUM = '/usr/bin/chromium';
const required = process.env.PINPOINT_REQUIRE_CHROMIUM === '1';
const skip = !existsSync(CHROMIUM) && !required ? `no ${CHROMIUM} (CI installs it; apt-get install chromium)` : false;

void test('a cross-origin POST refused at the preflight, diagnosed from a Chromium HAR', { skip, timeout: 60_000 }, async () => {
  const up = await startUpstream();
  const gw = await startGateway({
    version: 1,
    errors: { mode: 'detailed' },
    upstreams: { u: { targets: [{ url: up.url }] } },
    policies: { web: { type: 'cors', config: { allow_origins: ['https://shop.example.com'], allow_headers: ['content-type'] } } },
    routes: [{ id: 'orders', paths: ['/orders'], methods: ['POST'], upstream: 'u', policies: ['web'] }],
  });
  // The page lives on another origin (another port) and POSTs JSON: a preflighted request.
  const page = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><title>start</title><script>
      fetch('${gw.url}/orders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"item":"tea"}' })
        .then(() => { document.title = 'passed'; }, () => { document.title = 'blocked'; });
    </script>`);
  });
  await new Promise<void>((r) => page.listen(0, '127.0.0.1', () => r()));
  const pageUrl = `http://127.0.0.1:${(page.address() as AddressInfo).port}/`;
  const harPath = path.join(mkdtempSync(path.join(tmpdir(), 'pinpoint-har-')), 'session.har');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const context = await browser.newContext({ recordHar: { path: harPath } });
    const tab = await context.newPage();
    await tab.goto(pageUrl);
    await tab.waitForFunction("document.title !== 'start'", undefined, { timeout: 15_000 });
    assert.equal(await tab.title(), 'blocked');
    await context.close(); // writes the HAR

    // What the gateway itself logged for the preflight.
    const logged = await gw.waitForLog({ code: 'CORS_PREFLIGHT_ORIGIN_NOT_ALLOWED' }, 1);
    assert.equal(logged[0]?.method, 'OPTIONS');
    assert.equal(logged[0]?.policy, 'web');

    // The same story from the HAR alone.
    const entries = parseHar(readFileSync(harPath, 'utf8'));
    const post = entries.find((e) => e.method === 'POST' && e.target === '/orders');
    assert.ok(post !== undefined, `no POST /orders in the HAR (${entries.map((e) => `${e.method} ${e.target}`).join(', ')})`);
    const d = await diagnoseAsBrowser(gw.app.config, post);
    assert.equal(d.verdict, 'denied');
    assert.equal(d.code, 'CORS_PREFLIGHT_ORIGIN_NOT_ALLOWED');
    assert.equal(d.policy, 'web');
    assert.equal(d.preflight?.code, 'CORS_PREFLIGHT_ORIGIN_NOT_ALLOWED');
    assert.equal(up.requests.filter((r) => r.method === 'POST').length, 0, 'the browser never sent the POST');
  } finally {
    await browser.close();
    page.close();
    await gw.close();
    await up.close();
  }
});
