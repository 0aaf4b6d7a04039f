// Drives Debian's Chromium through a channel's past sessions on its watch
// page and prints one JSON report on stdout; cmd/seance/e2e_record_test.go
// makes the assertions. It never downloads a browser
// (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1) and runs on Node >= 18.
//
// Environment: SEANCE_URL (e.g. http://127.0.0.1:8080), CHANNEL (a channel
// with replay: public and one finished recording), OTHER (a channel
// without replays), CHROMIUM (/usr/bin/chromium), SCREENSHOTS (a directory).

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const base = process.env.SEANCE_URL;
const channel = process.env.CHANNEL;
const shots = process.env.SCREENSHOTS || '';
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const wcag = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

const report = { errors: [], offOrigin: [], consoleErrors: [], replayRequests: [] };
const log = (...a) => console.error('[replaytest]', ...a);

async function step(name, fn) {
  const t0 = Date.now();
  try {
    report[name] = await fn();
  } catch (err) {
    report.errors.push(`${name}: ${err && err.stack ? err.stack.split('\n').slice(0, 3).join(' | ') : err}`);
  }
  log(`${name}: ${Date.now() - t0} ms`);
}

function watchPage(page) {
  const origin = new URL(base).origin;
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.origin !== origin && u.protocol !== 'blob:' && u.protocol !== 'data:') report.offOrigin.push(r.url());
  });
  page.on('response', (r) => {
    if (new URL(r.url()).pathname.startsWith('/replay/')) {
      report.replayRequests.push({ range: r.request().headers().range || '', status: r.status() });
    }
  });
  page.on('console', (m) => { if (m.type() === 'error') report.consoleErrors.push(`${page.url()}: ${m.text()}`); });
  page.on('pageerror', (e) => report.consoleErrors.push(`${page.url()}: ${e.message}`));
  return page;
}

async function axe(page) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(axeSource);
  const res = await page.evaluate((tags) => window.axe.run(document, { runOnly: { type: 'tag', values: tags } }), wcag);
  return res.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary}`),
  }));
}

// sample reads the replay video's clock and decoded frames.
const sample = (page) => page.evaluate(() => {
  const v = document.querySelector('.replay-video');
  const q = v.getVideoPlaybackQuality();
  return {
    currentTime: v.currentTime, duration: v.duration, paused: v.paused, seeking: v.seeking,
    videoWidth: v.videoWidth, videoHeight: v.videoHeight, frames: q.totalVideoFrames,
    seekable: v.seekable.length ? [v.seekable.start(0), v.seekable.end(v.seekable.length - 1)] : [],
  };
});

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
  const fr = await browser.newContext({ locale: 'fr-FR', viewport: { width: 1280, height: 900 } });
  const page = watchPage(await fr.newPage());

  await step('list', async () => {
    await page.goto(`${base}/watch/${channel}`);
    const links = await page.locator('.replays a.replay-link').evaluateAll((as) => as.map((a) => ({ text: a.textContent, href: a.getAttribute('href') })));
    return {
      heading: await page.locator('#replays-title').innerText(),
      links,
      playerHidden: await page.evaluate(() => document.querySelector('.replay').hidden),
      violations: await axe(page),
    };
  });

  await step('play', async () => {
    const link = page.locator('.replays a.replay-link').first();
    await link.click();
    const focused = await page.evaluate(() => document.activeElement.className);
    const now = await page.locator('.replay-now').innerText();
    await page.waitForFunction(() => {
      const v = document.querySelector('.replay-video');
      return v.videoWidth > 0 && v.currentTime > 1 && v.getVideoPlaybackQuality().totalVideoFrames > 10;
    }, null, { timeout: 20000, polling: 100 });
    const before = await sample(page);
    await page.waitForTimeout(1000);
    const after = await sample(page);
    if (shots) await page.screenshot({ path: join(shots, 'replay.png') });
    return { focused, now, before, after, current: await link.getAttribute('aria-current') };
  });

  await step('seek', async () => {
    const { duration, frames } = await sample(page);
    const target = duration / 2;
    const t0 = Date.now();
    await page.evaluate((t) => { document.querySelector('.replay-video').currentTime = t; }, target);
    await page.waitForFunction((t) => {
      const v = document.querySelector('.replay-video');
      return !v.seeking && v.currentTime >= t && v.readyState >= 3;
    }, target, { timeout: 15000, polling: 50 });
    const seekedMs = Date.now() - t0;
    const at = await sample(page);
    // It plays on from there.
    await page.waitForFunction((t) => document.querySelector('.replay-video').currentTime > t + 1, target, { timeout: 10000, polling: 100 });
    const later = await sample(page);
    return { target, seekedMs, framesBefore: frames, at, later };
  });

  await step('axePlaying', async () => axe(page));

  await step('keyboard', async () => {
    // The video's controls are reachable with Tab from the title.
    await page.focus('.replay-now');
    await page.keyboard.press('Tab');
    return page.evaluate(() => document.activeElement.className);
  });

  await step('english', async () => {
    const ctx = await browser.newContext({ locale: 'en-GB' });
    const p = watchPage(await ctx.newPage());
    await p.goto(`${base}/watch/${channel}`);
    const out = {
      heading: await p.locator('#replays-title').innerText(),
      first: await p.locator('.replays a.replay-link').first().innerText(),
    };
    await ctx.close();
    return out;
  });

  await step('other', async () => {
    const p = watchPage(await fr.newPage());
    await p.goto(`${base}/watch/${process.env.OTHER}`);
    const out = { replays: await p.locator('.replays').count() };
    await p.close();
    return out;
  });

  report.cookies = (await fr.cookies()).length;
  await fr.close();
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report) + '\n');
