// Drives Debian's Firefox ESR (stock prefs: no OpenH264, so WebRTC cannot
// receive H.264) through the watch page over WebDriver BiDi with
// puppeteer-core, and prints one JSON report on stdout;
// cmd/seance/browser_firefox_test.go makes the assertions. Environment:
// SEANCE_URL, CHANNEL (a live channel), FIREFOX (default
// /usr/bin/firefox-esr), SECONDS (how long each page is measured).
//
// Cases: the watch page as a citizen opens it (HLS through hls.js at
// once); ?transport=webrtc (honoured: WebRTC is tried, and the server's 400
// shows); ?quality=audio over HLS.

import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';

const base = process.env.SEANCE_URL;
const channel = process.env.CHANNEL || 'demo';
const seconds = Number(process.env.SECONDS || 4);
const measure = readFileSync(new URL('./measure.js', import.meta.url), 'utf8');
const report = { errors: [], consoleErrors: [] };
const log = (...a) => console.error('[firefox]', ...a);

async function step(name, fn) {
  const t0 = Date.now();
  try {
    report[name] = await fn();
  } catch (err) {
    report.errors.push(`${name}: ${err && err.stack ? err.stack.split('\n').slice(0, 3).join(' | ') : err}`);
  }
  log(`${name}: ${Date.now() - t0} ms`);
}

// watch opens path, clicks « Activer le son » (a trusted click, so the
// sound plays and the analyser runs) and measures.
async function watch(browser, path, { unmute = true, wait = true } = {}) {
  const page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') report.consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => report.consoleErrors.push(String(e)));
  try {
    await page.evaluateOnNewDocument(measure + '\nwindow.seanceHookMSE();');
    await page.goto(base + path);
    await page.evaluate(() => window.seanceAudioSetup());
    if (wait) {
      await page.waitForFunction(() => window.seancePlayer && window.seancePlayer.state === 'live', { timeout: 40000, polling: 100 });
    }
    if (unmute) {
      await page.waitForSelector('.unmute:not([hidden])', { timeout: 10000 });
      await page.click('.unmute');
    }
    return await page.evaluate((s) => window.seanceMeasure(s), seconds);
  } finally {
    await page.close();
  }
}

const profile = mkdtempSync(join(tmpdir(), 'seance-firefox-'));
const browser = await puppeteer.launch({
  browser: 'firefox',
  executablePath: process.env.FIREFOX || '/usr/bin/firefox-esr',
  headless: true,
  userDataDir: profile,
});
try {
  await step('caps', async () => {
    const page = await browser.newPage();
    await page.goto(base + '/');
    const out = await page.evaluate(() => ({
      userAgent: navigator.userAgent,
      rtc: typeof RTCPeerConnection,
      videoCodecs: typeof RTCRtpReceiver !== 'undefined' && RTCRtpReceiver.getCapabilities
        ? RTCRtpReceiver.getCapabilities('video').codecs.map((c) => c.mimeType) : [],
    }));
    await page.close();
    return out;
  });
  await step('watch', () => watch(browser, `/watch/${channel}`));
  await step('embed', () => watch(browser, `/embed/${channel}`, { unmute: false }));
  await step('audio', () => watch(browser, `/watch/${channel}?quality=audio`));
  await step('webrtc', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${base}/watch/${channel}?transport=webrtc`);
      await page.waitForFunction(() => window.seancePlayer && window.seancePlayer.state === 'error', { timeout: 20000, polling: 100 });
      return await page.evaluate(() => ({
        transport: window.seancePlayer.transport,
        state: window.seancePlayer.state,
        whepRequests: performance.getEntriesByType('resource').filter((e) => new URL(e.name).pathname.startsWith('/whep/')).length,
        hlsRequests: performance.getEntriesByType('resource').filter((e) => new URL(e.name).pathname.startsWith('/hls/')).length,
      }));
    } finally {
      await page.close();
    }
  });
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(report) + '\n');
