// Drives Debian's Chromium through seance's admin dashboard and prints one
// JSON report on stdout; cmd/seance/dashboard_test.go makes the assertions.
// It never downloads a browser (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1).
//
// Environment: ADMIN_URL (http://127.0.0.1:9090), TOKEN (the admin token),
// CHANNEL (the demo channel, with a destination that cannot connect),
// DESTINATION (its name), PUSH_CHANNEL and PUSH_URL (a channel and its RTMP
// publish URL: ffmpeg pushes video without sound and with keyframes 10 s
// apart, for warnings), CHROMIUM, SCREENSHOTS (a directory).
// To follow a relay restart, the driver writes "RESTART" on stderr and
// waits for a line on stdin, which the test sends once the relay is back.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const base = process.env.ADMIN_URL;
const token = process.env.TOKEN;
const channel = process.env.CHANNEL || 'demo';
const destination = process.env.DESTINATION || 'youtube';
const pushChannel = process.env.PUSH_CHANNEL;
const shots = process.env.SCREENSHOTS || '';
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const wcag = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

const report = { errors: [], offOrigin: [], consoleErrors: [], tokenInURL: [], httpErrors: [], refusedWhileDown: 0 };
// restarting is true while the restart step has the relay down.
let restarting = false;
const log = (...a) => console.error('[dashboardtest]', ...a);
const stdin = createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();

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
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.protocol === 'blob:' || u.protocol === 'data:') return;
    if (u.hostname !== '127.0.0.1' && u.hostname !== 'localhost') report.offOrigin.push(r.url());
    if (token && r.url().includes(token)) report.tokenInURL.push(r.url());
  });
  page.on('response', (r) => { if (r.status() >= 400) report.httpErrors.push(`${r.request().method()} ${new URL(r.url()).pathname} ${r.status()}`); });
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    // While the relay is down on purpose (the restart step), the page's
    // reconnection attempts are refused: expected, reported apart.
    if (restarting && m.text().includes('net::ERR_CONNECTION_REFUSED')) report.refusedWhileDown++;
    else report.consoleErrors.push(`${page.url()}: ${m.text()}`);
  });
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

const card = (name) => `article.card[data-channel="${name}"]`;

// stat reads a figure of a card by its label.
function stat(page, name, label) {
  return page.evaluate(([sel, l]) => {
    const dts = [...document.querySelectorAll(`${sel} .stats dt`)];
    const dt = dts.find((d) => d.textContent === l);
    return dt ? dt.nextElementSibling.textContent : null;
  }, [card(name), label]);
}

async function until(what, fn, timeout = 15000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

const publishers = new Set();
function publish() {
  const ff = spawn('ffmpeg', ['-nostdin', '-v', 'error', '-re',
    '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30', '-t', '120',
    '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-preset', 'veryfast', '-tune', 'zerolatency',
    '-g', '300', '-keyint_min', '300', '-sc_threshold', '0', '-an',
    '-f', 'flv', process.env.PUSH_URL], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  ff.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => ff.on('exit', (code, signal) => { publishers.delete(ff); resolve({ code, signal, stderr: stderr.slice(-300) }); }));
  publishers.add(ff);
  return { exited, kill() { ff.kill('SIGKILL'); } };
}

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
  const page = watchPage(await ctx.newPage());

  await step('login', async () => {
    await page.goto(`${base}/dashboard`);
    await page.waitForSelector('form.login:not([hidden])');
    const focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
    const violations = await axe(page);
    await page.fill('#token', 'not-the-token');
    await page.press('#token', 'Enter');
    await page.waitForFunction(() => document.querySelector('.login-error').textContent !== '');
    const refused = await page.textContent('.login-error');
    await page.fill('#token', token);
    await page.click('form.login button[type=submit]');
    await page.waitForSelector('form.login', { state: 'hidden' });
    return { focused, refused, violations };
  });

  await step('live', async () => {
    await page.waitForSelector(`${card(channel)}[data-state="live"]`, { timeout: 15000 });
    const bitrate = await until('a bitrate', async () => {
      const b = await stat(page, channel, 'Débit');
      return b && b !== '0 kbit/s' ? b : null;
    });
    return {
      badge: await page.textContent(`${card(channel)} .card-head .badge`),
      bitrate,
      video: await stat(page, channel, 'Vidéo'),
      fps: await stat(page, channel, 'Images/s'),
      keyframes: await stat(page, channel, 'Images clés'),
      audio: await stat(page, channel, 'Audio'),
      source: await stat(page, channel, 'Source'),
      title: await page.textContent(`${card(channel)} h2`),
      link: await page.evaluate(() => window.seanceDashboard.link),
    };
  });

  await step('destination', async () => {
    const sel = `${card(channel)} li[data-destination="${destination}"]`;
    const error = await until('the destination error', () => page.evaluate((s) => {
      const e = document.querySelector(`${s} .dest-error`);
      return e && e.textContent;
    }, sel));
    return { state: await page.textContent(`${sel} .badge`), error, url: await page.textContent(`${sel} .dest-url`) };
  });

  await step('preview', async () => {
    await page.waitForFunction((s) => {
      const v = document.querySelector(`${s} .preview video`);
      return v && v.videoWidth > 0 && v.currentTime > 0.3;
    }, card(channel), { timeout: 20000, polling: 200 });
    return page.evaluate((s) => {
      const v = document.querySelector(`${s} .preview video`);
      return { videoWidth: v.videoWidth, videoHeight: v.videoHeight, muted: v.muted };
    }, card(channel));
  });

  let pub = null;
  if (pushChannel) {
    await step('warnings', async () => {
      pub = publish();
      await page.waitForSelector(`${card(pushChannel)}[data-state="live"]`, { timeout: 20000 });
      await until('the keyframe warning', () => page.$(`${card(pushChannel)} li[data-warning="keyframe_interval"]`), 20000);
      return page.$$eval(`${card(pushChannel)} .warnings li`, (lis) => lis.map((li) => ({ name: li.dataset.warning, text: li.textContent })));
    });
  }

  await step('sparklines', async () => {
    await until('sparkline points', () => page.evaluate((s) => {
      const p = document.querySelector(`${s} .spark polyline`);
      return p && p.getAttribute('points').split(' ').length >= 3;
    }, card(channel)));
    return page.$$eval(`${card(channel)} .spark svg`, (svgs) => svgs.map((s) => s.getAttribute('aria-label')));
  });

  if (process.env.MEETING_CHANNEL) {
    await step('meeting', async () => {
      const sel = `${card(process.env.MEETING_CHANNEL)} section.meeting`;
      await page.waitForSelector(`${sel}:not([hidden])`);
      return {
        badge: await page.textContent(`${sel} .badge`),
        server: await page.textContent(`${sel} .dest-url`),
        join: await page.isVisible(`${sel} button[data-action="meeting-start"]`),
        leave: await page.isVisible(`${sel} button[data-action="meeting-stop"]`),
      };
    });
  }

  await step('axe', () => axe(page));

  await step('keyboard', async () => {
    const stops = [];
    await page.evaluate(() => document.activeElement && document.activeElement.blur());
    for (let i = 0; i < 40; i++) {
      await page.keyboard.press('Tab');
      const s = await page.evaluate(() => {
        const e = document.activeElement;
        if (!e || e === document.body) return null;
        const cs = getComputedStyle(e);
        return { el: e.tagName.toLowerCase() + (e.dataset.action ? `[${e.dataset.action}]` : '') + (e.className ? '.' + e.className.split(' ')[0] : ''), outline: cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) >= 2 };
      });
      if (s) stops.push(s);
    }
    return { stops };
  });

  if (shots) {
    await page.screenshot({ path: join(shots, 'dashboard.png'), fullPage: true });
  }

  await step('stop', async () => {
    const sel = `${card(channel)} li[data-destination="${destination}"]`;
    await page.click(`${sel} button[data-action="stop"]`);
    await until('the destination idle', async () => (await page.textContent(`${sel} .badge`)) === 'À l\u2019arrêt');
    return { state: await page.textContent(`${sel} .badge`), status: await page.textContent(`${sel} [role=status]`) };
  });

  if (pub) {
    await step('kick', async () => {
      const dialogs = [];
      page.once('dialog', (d) => { dialogs.push(d.message()); d.accept(); });
      await page.click(`${card(pushChannel)} button.danger`);
      const ended = await Promise.race([pub.exited, new Promise((r) => setTimeout(() => r(null), 10000))]);
      await page.waitForSelector(`${card(pushChannel)}:not([data-state="live"])`, { timeout: 10000 });
      return {
        dialog: dialogs[0] || '',
        publisherExited: ended !== null,
        state: await page.getAttribute(card(pushChannel), 'data-state'),
        notice: await page.textContent(`${card(pushChannel)} .actions [role=status]`),
      };
    });
  }

  await step('phone', async () => {
    const phone = await browser.newContext({ locale: 'fr-FR', viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const p = watchPage(await phone.newPage());
    // Same tab storage does not cross contexts: log in again.
    await p.goto(`${base}/dashboard`);
    await p.fill('#token', token);
    await p.press('#token', 'Enter');
    await p.waitForSelector(`${card(channel)}[data-state="live"]`, { timeout: 15000 });
    const overflowX = await p.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
    if (shots) await p.screenshot({ path: join(shots, 'dashboard-phone.png') });
    const violations = await axe(p);
    await phone.close();
    return { overflowX, violations };
  });

  await step('restart', async () => {
    const seen = [];
    const note = async () => {
      const s = await page.evaluate(() => window.seanceDashboard.link);
      if (seen[seen.length - 1] !== s) seen.push(s);
      return s;
    };
    await note();
    restarting = true;
    log('RESTART');
    const relayBack = lines.next();
    await until('the link lost', async () => (await note()) !== 'online', 15000);
    await relayBack;
    await until('the link back', async () => (await note()) === 'online', 20000);
    restarting = false;
    await page.waitForSelector(`${card(channel)}[data-state="live"]`, { timeout: 15000 });
    const bitrate = await until('a bitrate after the restart', async () => {
      const b = await stat(page, channel, 'Débit');
      return b && b !== '0 kbit/s' ? b : null;
    });
    return { seen, bitrate, loginShown: await page.isVisible('form.login') };
  });

  report.cookies = (await ctx.cookies()).length;
  report.sessionStorage = await page.evaluate(() => Object.keys(sessionStorage));
  await ctx.close();
} finally {
  for (const ff of publishers) ff.kill('SIGKILL');
  await browser.close();
  stdin.close();
}
process.stdout.write(JSON.stringify(report) + '\n');
