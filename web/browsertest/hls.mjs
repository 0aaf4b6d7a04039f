// Drives Debian's Chromium (which plays HLS natively: canPlayType says
// "maybe") through the watch page's HLS fallback and prints one JSON report
// on stdout; cmd/seance/browser_hls_test.go makes the assertions.
//
// WebRTC is made to fail the way a network that blocks it does: the WHEP
// offer is never answered (the request hangs). Environment: SEANCE_URL,
// CHANNEL (a live channel), CHROMIUM; HLS_DEBUG=1 logs every /hls/ answer.
//
// The fallback starts about 6 s into the channel's session: in the
// low-latency variant that is while gohlslib still lists its EXT-X-GAP
// placeholders, which seance must hide from Chromium (see
// publish/hls/gaps.go), so firstFrameMs - firstHLSMs measures the switch.

import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const base = process.env.SEANCE_URL;
const channel = process.env.CHANNEL || 'demo';
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const report = { errors: [], consoleErrors: [], offOrigin: [] };
const log = (...a) => console.error('[hls]', ...a);

async function step(name, fn) {
  const t0 = Date.now();
  try {
    report[name] = await fn();
  } catch (err) {
    report.errors.push(`${name}: ${err && err.stack ? err.stack.split('\n').slice(0, 3).join(' | ') : err}`);
  }
  log(`${name}: ${Date.now() - t0} ms`);
}

// open makes a page that records its requests (ms after open) and errors;
// with blockWebRTC its WHEP offers are never answered.
async function open(ctx, blockWebRTC) {
  const page = await ctx.newPage();
  const t0 = Date.now();
  const requests = [];
  const entries = new Map(); // request → its entry in requests
  const frame = { ms: -1 };
  const origin = new URL(base).origin;
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.origin !== origin && u.protocol !== 'blob:' && u.protocol !== 'data:') report.offOrigin.push(r.url());
    const entry = { ms: Date.now() - t0, method: r.method(), path: u.pathname, status: 0 };
    entries.set(r, entry);
    requests.push(entry);
  });
  page.on('console', (m) => { if (m.type() === 'error') report.consoleErrors.push(m.text()); });
  page.on('response', (r) => {
    const entry = entries.get(r.request());
    if (entry) entry.status = r.status();
    if (r.status() >= 400 || (process.env.HLS_DEBUG && r.url().includes('/hls/'))) log(Date.now() - t0, r.status(), r.url());
  });
  page.on('pageerror', (e) => report.consoleErrors.push(e.message));
  // The first frame the video element plays from an HLS playlist (not a
  // WebRTC stream), in ms after open: media events do not bubble, so listen
  // in the capture phase.
  await page.exposeFunction('seanceFirstHLSFrame', () => { if (frame.ms < 0) frame.ms = Date.now() - t0; });
  await page.addInitScript(() => {
    document.addEventListener('timeupdate', (e) => {
      const v = e.target;
      if (v.currentTime > 0 && v.videoWidth > 0 && !v.srcObject && v.currentSrc) window.seanceFirstHLSFrame();
    }, true);
  });
  if (blockWebRTC) {
    await page.route('**/whep/**', (route) => {
      if (route.request().method() !== 'POST') return route.continue();
      // Never answered, like an offer lost on a filtering network.
      return undefined;
    });
  }
  return { page, requests, frame };
}

// playing waits until the video shows frames and watches it for 3 s
// (HLS plays from a buffer that may run short on a loaded machine).
async function playing(page) {
  await page.waitForFunction(() => {
    const v = document.querySelector('video');
    return v && v.videoWidth > 0 && v.currentTime > 0.3;
  }, null, { timeout: 30000, polling: 100 });
  const read = () => page.evaluate(() => {
    const v = document.querySelector('video');
    return { videoWidth: v.videoWidth, videoHeight: v.videoHeight, currentTime: v.currentTime, paused: v.paused };
  });
  const before = await read();
  await page.waitForTimeout(3000);
  const after = await read();
  return { ...after, timeBefore: before.currentTime, timeAfter: after.currentTime };
}

const player = (page) => page.evaluate(() => ({
  state: window.seancePlayer.state,
  transport: window.seancePlayer.transport,
  transportText: document.querySelector('.transport').textContent,
  canPlayHLS: document.querySelector('video').canPlayType('application/vnd.apple.mpegurl'),
}));

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
  // The fallback and the no-HLS case run side by side (the second decodes
  // nothing), to keep the test short.
  const fallback = step('fallback', async () => {
    const ctx = await browser.newContext({ locale: 'fr-FR', viewport: { width: 1280, height: 800 } });
    const { page, requests, frame } = await open(ctx, true);
    await page.goto(`${base}/watch/${channel}`);
    await page.waitForFunction(() => window.seancePlayer.transport === 'hls' && window.seancePlayer.state === 'live',
      null, { timeout: 40000, polling: 100 });
    const play = await playing(page);
    await page.waitForFunction(() => /\d/.test(document.querySelector('.viewers').textContent), null, { timeout: 8000 });
    const api = await (await fetch(`${base}/api/public/channels/${channel}`)).json();
    await page.evaluate(axeSource);
    const axe = await page.evaluate(() => window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }));
    const firstHLS = requests.find((r) => r.path.startsWith('/hls/'));
    const out = {
      ...play,
      ...(await player(page)),
      whepPosts: requests.filter((r) => r.method === 'POST' && r.path.startsWith('/whep/')).length,
      firstHLSMs: firstHLS ? firstHLS.ms : -1,
      firstFrameMs: frame.ms,
      hlsErrors: requests.filter((r) => r.path.startsWith('/hls/') && r.status >= 400).map((r) => `${r.status} ${r.path}`),
      hlsRequests: requests.filter((r) => r.path.startsWith('/hls/')).length,
      viewersText: await page.locator('.viewers').innerText(),
      apiViewers: api.viewers,
      violations: axe.violations.map((v) => `${v.id}: ${v.help}`),
    };
    await ctx.close();
    return out;
  });

  // A browser that does not play HLS itself falls back the same way,
  // through hls.js (Media Source Extensions), served by seance.
  const noHLS = step('noHLS', async () => {
    const ctx = await browser.newContext({ locale: 'fr-FR', viewport: { width: 1280, height: 800 } });
    await ctx.addInitScript(() => {
      const orig = HTMLMediaElement.prototype.canPlayType;
      HTMLMediaElement.prototype.canPlayType = function (type) {
        return /mpegurl/i.test(type) ? '' : orig.call(this, type);
      };
    });
    const { page, requests } = await open(ctx, true);
    await page.goto(`${base}/watch/${channel}`);
    await page.waitForFunction(() => window.seancePlayer.transport === 'hls' && window.seancePlayer.state === 'live',
      null, { timeout: 40000, polling: 100 });
    const play = await playing(page);
    const firstHLS = requests.find((r) => r.path.startsWith('/hls/'));
    const out = {
      ...play,
      ...(await player(page)),
      engine: await page.evaluate(() => window.seancePlayer.engine),
      hlsjs: requests.filter((r) => r.path === '/static/hls.min.js').length,
      whepPosts: requests.filter((r) => r.method === 'POST' && r.path.startsWith('/whep/')).length,
      firstHLSMs: firstHLS ? firstHLS.ms : -1,
      hlsRequests: requests.filter((r) => r.path.startsWith('/hls/')).length,
    };
    await ctx.close();
    return out;
  });
  await Promise.all([fallback, noHLS]);

  // ?transport=hls plays HLS at once, without trying WebRTC.
  await step('forced', async () => {
    const ctx = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 800 } });
    const { page, requests, frame } = await open(ctx, false);
    await page.goto(`${base}/watch/${channel}?transport=hls`);
    const play = await playing(page);
    await page.waitForFunction(() => window.seancePlayer.state === 'live', null, { timeout: 10000 });
    const out = {
      ...play,
      ...(await player(page)),
      whepRequests: requests.filter((r) => r.path.startsWith('/whep/')).length,
      firstHLSMs: (requests.find((r) => r.path.startsWith('/hls/')) || { ms: -1 }).ms,
      firstFrameMs: frame.ms,
      hlsErrors: requests.filter((r) => r.path.startsWith('/hls/') && r.status >= 400).map((r) => `${r.status} ${r.path}`),
      hlsRequests: requests.filter((r) => r.path.startsWith('/hls/')).length,
    };
    await ctx.close();
    return out;
  });
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report) + '\n');
