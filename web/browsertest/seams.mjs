// Plays a recording across its seams (live → slate → live) in Debian's
// Chromium, from the channel's watch page, and prints one JSON report on
// stdout; cmd/seance/e2e_allsinks_test.go makes the assertions. It never
// downloads a browser (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1).
//
// Environment: SEANCE_URL, CHANNEL (a channel with replay: public and one
// finished recording), CHROMIUM (/usr/bin/chromium), PLAYS (JSON list of
// [from, to] in seconds: each seeks to `from` and plays until `to`,
// sampling the picture's top-left corner every 100 ms).

import { chromium } from 'playwright-core';

const base = process.env.SEANCE_URL;
const channel = process.env.CHANNEL;
const plays = JSON.parse(process.env.PLAYS || '[]');

const report = { errors: [], consoleErrors: [], href: '', plays: [] };
const log = (...a) => console.error('[seamstest]', ...a);

// sample reads the replay video's clock, its decoded frames and the mean
// RGB of its top-left corner (1/16 × 1/9 of the picture, as the Go side
// measures with ffmpeg).
const sample = (page) => page.evaluate(() => {
  const v = document.querySelector('.replay-video');
  const q = v.getVideoPlaybackQuality();
  const out = {
    t: v.currentTime, duration: v.duration, paused: v.paused, readyState: v.readyState,
    frames: q.totalVideoFrames, corrupted: q.corruptedVideoFrames,
    error: v.error ? `${v.error.code} ${v.error.message}` : '', rgb: null,
  };
  if (v.videoWidth > 0) {
    const c = new OffscreenCanvas(160, 90);
    const ctx = c.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(v, 0, 0, 160, 90);
    const d = ctx.getImageData(0, 0, 10, 10).data;
    const rgb = [0, 0, 0];
    for (let i = 0; i < d.length; i += 4) { rgb[0] += d[i]; rgb[1] += d[i + 1]; rgb[2] += d[i + 2]; }
    out.rgb = rgb.map((x) => Math.round(x / 100));
  }
  return out;
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
  const ctx = await browser.newContext({ locale: 'fr-FR', viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error') report.consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => report.consoleErrors.push(e.message));
  try {
    await page.goto(`${base}/watch/${channel}`);
    const link = page.locator('.replays a.replay-link').first();
    report.href = await link.getAttribute('href');
    await link.click();
    await page.waitForFunction(() => {
      const v = document.querySelector('.replay-video');
      return v.videoWidth > 0 && v.currentTime > 0.3 && v.getVideoPlaybackQuality().totalVideoFrames > 5;
    }, null, { timeout: 20000, polling: 100 });
    report.start = await sample(page);
    for (const [from, to] of plays) {
      const t0 = Date.now();
      await page.evaluate((t) => { document.querySelector('.replay-video').currentTime = t; }, from);
      await page.waitForFunction(() => {
        const v = document.querySelector('.replay-video');
        return !v.seeking && v.readyState >= 2;
      }, null, { timeout: 15000, polling: 50 });
      const play = { from, to, seekedMs: Date.now() - t0, samples: [] };
      report.plays.push(play);
      for (;;) {
        const s = await sample(page);
        play.samples.push(s);
        if (s.t >= to || s.error || s.paused || Date.now() - t0 > 15000) break;
        await page.waitForTimeout(100);
      }
      log(`play ${from} → ${to}: ${play.samples.length} samples, ${Date.now() - t0} ms`);
    }
  } catch (err) {
    report.errors.push(err && err.stack ? err.stack.split('\n').slice(0, 3).join(' | ') : String(err));
  }
  await ctx.close();
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report) + '\n');
