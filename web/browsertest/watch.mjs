// Drives Debian's Chromium through seance's public pages and prints one JSON
// report on stdout; cmd/seance/browser_test.go makes the assertions.
// It never downloads a browser (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1) and runs
// on Node >= 18.
//
// Environment: SEANCE_URL (e.g. http://127.0.0.1:8080), CHANNEL (demo),
// CHROMIUM (/usr/bin/chromium), SCREENSHOTS (a directory); and, to follow a
// session that starts, stops and starts again, PUSH_CHANNEL (a channel with
// a short grace) and PUSH_URL (its RTMP publish URL, for ffmpeg).

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const base = process.env.SEANCE_URL;
const channel = process.env.CHANNEL || 'demo';
const shots = process.env.SCREENSHOTS || '';
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const wcag = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

const report = { errors: [], offOrigin: [], consoleErrors: [] };
const log = (...a) => console.error('[browsertest]', ...a);

// step runs one named part; a failure is reported and the rest goes on.
async function step(name, fn) {
  const t0 = Date.now();
  console.error('[watch]', new Date().toISOString(), 'step', name);
  try {
    report[name] = await fn();
  } catch (err) {
    report.errors.push(`${name}: ${err && err.stack ? err.stack.split('\n').slice(0, 3).join(' | ') : err}`);
  }
  log(`${name}: ${Date.now() - t0} ms`);
}

// watchPage records what the page loads and complains about.
function watchPage(page) {
  const origin = new URL(base).origin;
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.origin !== origin && u.protocol !== 'blob:' && u.protocol !== 'data:') report.offOrigin.push(r.url());
  });
  page.on('console', (m) => {
    if (m.type() === 'error') report.consoleErrors.push(`${page.url()}: ${m.text()}` + (m.location().url ? ` (${m.location().url})` : ''));
  });
  page.on('pageerror', (e) => report.consoleErrors.push(`${page.url()}: ${e.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400) console.error('[watch]', new Date().toISOString(), r.request().method(), r.status(), r.url(), 'on', page.url());
  });
  return page;
}

// playing waits until the video shows frames and reads how it plays.
async function playing(page) {
  await page.waitForFunction(() => {
    const v = document.querySelector('video');
    return v && v.videoWidth > 0 && v.currentTime > 0.3;
  }, null, { timeout: 20000, polling: 100 });
  const read = () => page.evaluate(() => {
    const v = document.querySelector('video');
    return { videoWidth: v.videoWidth, videoHeight: v.videoHeight, currentTime: v.currentTime, paused: v.paused };
  });
  const before = await read();
  await page.waitForTimeout(1500);
  const after = await read();
  return { ...after, timeBefore: before.currentTime, timeAfter: after.currentTime };
}

// inboundBytes polls the player's RTCPeerConnection stats until kind has
// received bytes (or 10 s pass) and returns them.
async function inboundBytes(page, kind) {
  const deadline = Date.now() + 10000;
  let bytes = 0;
  while (Date.now() < deadline) {
    bytes = await page.evaluate(async (k) => {
      const pc = window.seancePlayer && window.seancePlayer.pc;
      if (!pc) return 0;
      let n = 0;
      (await pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === k) n += s.bytesReceived || 0; });
      return n;
    }, kind);
    if (bytes > 0) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  return bytes;
}

// axe runs axe-core's WCAG 2.1 A/AA rules. Its script comes from the test's
// node_modules and is evaluated through DevTools, as the page's CSP rightly
// refuses inline scripts.
async function axe(page) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(axeSource);
  const res = await page.evaluate((tags) => window.axe.run(document, { runOnly: { type: 'tag', values: tags } }), wcag);
  return res.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary}`),
  }));
}

const text = (page, sel) => page.locator(sel).first().innerText();

// publish pushes a test pattern and tone to PUSH_URL with ffmpeg until
// stopped; stop() ends ffmpeg and resolves once it has exited.
function publish() {
  const ff = spawn('ffmpeg', ['-nostdin', '-v', 'error', '-re',
    '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
    '-t', '120',
    '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-preset', 'veryfast', '-tune', 'zerolatency', '-g', '60',
    '-c:a', 'aac', '-ar', '44100', '-b:a', '128k',
    '-f', 'flv', process.env.PUSH_URL], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  ff.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => ff.on('exit', (code, signal) => resolve({ code, signal, stderr: stderr.slice(-500) })));
  publishers.add(ff);
  return {
    exited,
    stop() {
      ff.kill('SIGKILL');
      publishers.delete(ff);
      return exited;
    },
  };
}
const publishers = new Set();

// waitState waits until the player's state is want; seen collects every
// state shown, in order.
async function waitState(page, want, seen, timeout) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const s = await page.evaluate(() => window.seancePlayer.state);
    if (seen[seen.length - 1] !== s) seen.push(s);
    if (s === want) return;
    if (Date.now() > deadline) throw new Error(`state ${want} not reached in ${timeout} ms (seen: ${seen.join(' → ')})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // launch() starts Chromium on a fresh, temporary user-data-dir.
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run',
    '--autoplay-policy=no-user-gesture-required',
  ],
});
try {
  const fr = await browser.newContext({ locale: 'fr-FR', viewport: { width: 1280, height: 800 } });
  const page = watchPage(await fr.newPage());

  await step('watch', async () => {
    await page.goto(`${base}/watch/${channel}`);
    const play = await playing(page);
    const out = {
      ...play,
      // From navigation to the first frame shown (the video's clock starts
      // with it).
      firstFrameMs: await page.evaluate(() => Math.round(performance.now() - document.querySelector('video').currentTime * 1000)),
      lang: await page.evaluate(() => document.documentElement.lang),
      title: await text(page, 'h1'),
      state: await page.evaluate(() => window.seancePlayer.state),
      stateText: await text(page, '.state'),
      stateLive: await page.getAttribute('.state', 'aria-live'),
      captions: await page.locator('[role="region"][aria-label="Sous-titres"]').count(),
      audioBytes: await inboundBytes(page, 'audio'),
      videoBytes: await inboundBytes(page, 'video'),
      transportText: await text(page, '.transport'),
      qualityText: await text(page, '.quality-now'),
    };
    // Packets lost since the start (the fast-start burst is paced).
    out.videoLost = await page.evaluate(async () => {
      let n = 0;
      (await window.seancePlayer.pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') n += s.packetsLost || 0; });
      return n;
    });
    // The viewer count arrives with the first poll of the public API.
    await page.waitForFunction(() => /\d/.test(document.querySelector('.viewers').textContent), null, { timeout: 8000 });
    out.viewersText = await text(page, '.viewers');
    if (shots) await page.screenshot({ path: join(shots, 'watch.png') });
    return out;
  });

  await step('unmute', async () => {
    const button = page.getByRole('button', { name: 'Activer le son', exact: true });
    await button.click({ timeout: 5000 });
    await page.waitForFunction(() => !document.querySelector('video').muted, null, { timeout: 2000, polling: 100 });
    await page.waitForTimeout(100); // let volumechange relabel the mute button
    return page.evaluate(() => ({
      muted: document.querySelector('video').muted,
      buttonHidden: document.querySelector('.unmute').hidden,
      focused: document.activeElement.className,
      muteLabel: document.querySelector('.mute').textContent,
    }));
  });

  await step('keyboard', async () => {
    await page.evaluate(() => document.activeElement && document.activeElement.blur());
    const stops = [];
    for (let i = 0; i < 8; i++) {
      await page.keyboard.press('Tab');
      stops.push(await page.evaluate(() => {
        const el = document.activeElement;
        const cs = getComputedStyle(el);
        return {
          el: el.tagName.toLowerCase() + (el.className ? '.' + el.className : '') + (el.type ? `[${el.type}]` : ''),
          outline: cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) >= 2,
        };
      }));
    }
    // Space on the focused mute button toggles the sound.
    await page.focus('.mute');
    await page.keyboard.press('Space');
    const mutedByKey = await page.evaluate(() => document.querySelector('video').muted);
    await page.keyboard.press('Space');
    return { stops, mutedByKey, unmutedByKey: !(await page.evaluate(() => document.querySelector('video').muted)) };
  });

  await step('axeWatch', () => axe(page));

  // « Son seul » chosen with the keyboard in the quality menu: a new WHEP
  // session that receives audio only; the page says so; then back to Auto.
  await step('soundOnly', async () => {
    const viewers = async () => (await (await fetch(`${base}/api/public/channels/${channel}`)).json()).viewers;
    const alone = await viewers();
    const p = watchPage(await fr.newPage());
    await p.goto(`${base}/watch/${channel}`);
    await playing(p);
    const options = await p.$$eval('.quality select option', (os) => os.map((o) => o.textContent));
    const label = await p.evaluate(() => {
      const s = document.querySelector('.quality select');
      return s.labels && s.labels[0] ? s.labels[0].querySelector('span').textContent.trim() : '';
    });
    await p.focus('.quality select');
    // Keyboard: on a focused closed <select>, arrow keys change the value.
    while ((await p.evaluate(() => document.querySelector('.quality select').value)) !== 'audio') await p.keyboard.press('ArrowDown');
    await p.waitForFunction(() => {
      const pc = window.seancePlayer.pc;
      return window.seancePlayer.state === 'live' && pc && pc.getTransceivers().every((t) => t.receiver.track.kind === 'audio');
    }, null, { timeout: 20000, polling: 100 });
    const read = () => p.evaluate(async () => {
      const out = { audio: 0, video: 0, transceivers: window.seancePlayer.pc.getTransceivers().length };
      (await window.seancePlayer.pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp') out[s.kind] += s.bytesReceived || 0; });
      return out;
    });
    const before = await read();
    await p.waitForTimeout(2000);
    const after = await read();
    const out = {
      options,
      label,
      playing: await p.evaluate(() => window.seancePlayer.playing),
      qualityText: await text(p, '.quality-now'),
      qualityLive: await p.getAttribute('.quality-now', 'aria-live'),
      overlay: await text(p, '.overlay'),
      state: await p.evaluate(() => window.seancePlayer.state),
      transceivers: after.transceivers,
      audioBytesPerS: (after.audio - before.audio) / 2,
      videoBytes: after.video,
    };
    await p.keyboard.press('ArrowUp');
    await p.keyboard.press('ArrowUp');
    await p.waitForFunction(() => window.seancePlayer.playing === 'high' && window.seancePlayer.state === 'live' &&
      document.querySelector('video').videoWidth > 0, null, { timeout: 20000, polling: 100 });
    out.backTo = await p.evaluate(() => window.seancePlayer.quality);
    out.backText = await text(p, '.quality-now');
    await p.close();
    // Its session ends before the next step counts viewers.
    const t0 = Date.now();
    while (Date.now() - t0 < 5000 && (await viewers()) > alone) await new Promise((r) => setTimeout(r, 100));
    return out;
  });

  // Leaving the page ends its session at once (WHEP DELETE on pagehide),
  // not after the server's ICE timeout (10 s).
  await step('leave', async () => {
    const viewers = async () => (await (await fetch(`${base}/api/public/channels/${channel}`)).json()).viewers;
    const before = await viewers();
    const t0 = Date.now();
    await page.goto(`${base}/`);
    let after = before;
    while (Date.now() - t0 < 3000 && (after = await viewers()) >= before) await new Promise((r) => setTimeout(r, 100));
    return { before, after, ms: Date.now() - t0 };
  });

  await step('index', async () => {
    const p = watchPage(await fr.newPage());
    await p.goto(`${base}/`);
    const out = {
      lang: await p.evaluate(() => document.documentElement.lang),
      links: await p.$$eval('.channels a', (as) => as.map((a) => a.getAttribute('href'))),
      violations: await axe(p),
    };
    if (shots) await p.screenshot({ path: join(shots, 'index.png'), fullPage: true });
    await p.close();
    return out;
  });

  await step('embed', async () => {
    const p = watchPage(await fr.newPage());
    await p.goto(`${base}/embed/${channel}`);
    const out = await playing(p);
    out.headerCount = await p.locator('header').count();
    out.violations = await axe(p);
    if (shots) await p.screenshot({ path: join(shots, 'embed.png') });
    await p.close();
    return out;
  });

  await step('phone', async () => {
    const ctx = await browser.newContext({ locale: 'fr-FR', viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const p = watchPage(await ctx.newPage());
    await p.goto(`${base}/watch/${channel}`);
    const out = await playing(p);
    out.overflowX = await p.evaluate(() => document.documentElement.scrollWidth > innerWidth);
    if (shots) await p.screenshot({ path: join(shots, 'watch-phone.png'), fullPage: true });
    await ctx.close();
    return out;
  });

  await step('english', async () => {
    const ctx = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 800 } });
    const p = watchPage(await ctx.newPage());
    await p.goto(`${base}/watch/${channel}`);
    await playing(p);
    await p.waitForFunction(() => window.seancePlayer.state === 'live', null, { timeout: 5000 });
    const out = {
      lang: await p.evaluate(() => document.documentElement.lang),
      stateText: await text(p, '.state'),
      unmuteText: await text(p, '.unmute'),
      muteText: await text(p, '.mute'),
      fullscreenText: await text(p, '.fullscreen'),
      captionsLabel: await p.getAttribute('[role="region"]', 'aria-label'),
    };
    await ctx.close();
    return out;
  });

  await step('notFound', async () => {
    const res = await page.goto(`${base}/watch/no-such-channel`);
    return { status: res.status(), h1: await text(page, 'h1'), violations: await axe(page) };
  });

  if (process.env.PUSH_URL) {
    await step('restart', async () => {
      const p = watchPage(await fr.newPage());
      const seen = [];
      const texts = {};
      const note = async () => { texts[await p.evaluate(() => window.seancePlayer.state)] = await text(p, '.state'); };
      await p.goto(`${base}/watch/${process.env.PUSH_CHANNEL}`);
      await waitState(p, 'notStarted', seen, 10000);
      await note();
      let pub = publish();
      await waitState(p, 'live', seen, 20000);
      await note();
      await pub.stop();
      await waitState(p, 'interrupted', seen, 10000);
      await note();
      // Back within the grace period: the same session goes on.
      const pcBefore = await p.evaluateHandle(() => window.seancePlayer.pc);
      pub = publish();
      await waitState(p, 'live', seen, 10000);
      const samePC = await p.evaluate((old) => old === window.seancePlayer.pc, pcBefore);
      // Gone for good: the session ends, then a new one starts.
      await pub.stop();
      await waitState(p, 'ended', seen, 25000);
      await note();
      pub = publish();
      await waitState(p, 'live', seen, 25000);
      const again = await playing(p);
      await pub.stop();
      await p.close();
      return { seen, texts, samePC, again };
    });
  }

  report.cookies = (await fr.cookies()).length;
  await fr.close();
} finally {
  for (const ff of publishers) ff.kill('SIGKILL');
  await browser.close();
}
process.stdout.write(JSON.stringify(report) + '\n');
