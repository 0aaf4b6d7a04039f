// Publishes to seance over WHIP from Debian's Chromium and prints one JSON
// report on stdout; cmd/seance/browser_whip_test.go makes the assertions.
// It never downloads a browser (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1).
//
// Environment: PAGE_URL (whip.html, served by the test on its own origin),
// WHIP_URL (http://127.0.0.1:PORT/whip/<channel>), WHIP_KEY (the channel's
// ingest key), PUBLISH_MS (how long to publish, default 10000), CHROMIUM.

import { chromium } from 'playwright-core';

const publishMs = Number(process.env.PUBLISH_MS || 10000);
const report = { errors: [], consoleErrors: [], requests: [], stats: [] };
const log = (...a) => console.error('[whip]', ...a);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run',
    '--autoplay-policy=no-user-gesture-required',
  ],
});
try {
  const page = await (await browser.newContext()).newPage();
  page.on('console', (m) => { if (m.type() === 'error') report.consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => report.consoleErrors.push(e.message));
  // What the page fetched, for the test's failure messages.
  page.on('response', (r) => report.requests.push(`${r.request().method()} ${new URL(r.url()).pathname} ${r.status()}`));
  page.on('requestfailed', (r) => report.requests.push(`${r.method()} ${new URL(r.url()).pathname} failed: ${r.failure().errorText}`));

  const t0 = Date.now();
  await page.goto(process.env.PAGE_URL);
  try {
    report.start = await page.evaluate(([url, key]) => window.startWHIP(url, key),
      [process.env.WHIP_URL, process.env.WHIP_KEY]);
    log(`publishing after ${Date.now() - t0} ms`);
    const until = Date.now() + publishMs;
    while (Date.now() < until) {
      await page.waitForTimeout(Math.min(1000, Math.max(0, until - Date.now())));
      report.stats.push(await page.evaluate(() => window.whipStats()));
    }
    report.stop = await page.evaluate((key) => window.stopWHIP(key), process.env.WHIP_KEY);
  } catch (err) {
    report.errors.push(String(err && err.message ? err.message : err));
  }
  report.ms = Date.now() - t0;
  await page.close();
} catch (err) {
  report.errors.push(String(err && err.stack ? err.stack : err));
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report) + '\n');
