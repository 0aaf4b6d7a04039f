// In-page measurements shared by the Firefox (firefox.mjs, WebDriver BiDi)
// and WebKitGTK (cmd/seance/browser_webkit_test.go, W3C WebDriver)
// drivers: plain script, evaluated in the watch page.
//
// seanceAudioSetup installs a listener that, on the first trusted click (the
// driver clicks « Activer le son »), routes the video's sound through a Web
// Audio analyser: a user gesture lets the AudioContext run in every engine.
// seanceMeasure(seconds) waits for the player to say "live" (and 1.5 s more
// to leave the start out), then counts the
// frames shown over that many seconds (getVideoPlaybackQuality and
// requestVideoFrameCallback where present), the clock, and the sound.
window.seanceAudioSetup = function () {
  if (window.seanceAudio) return;
  window.seanceAudio = { peak: 0, samples: 0, error: '' };
  document.addEventListener('click', () => {
    if (window.seanceAudio.ctx) return;
    try {
      const AC = window.AudioContext || window.webkitAudioContext;
      const ctx = new AC();
      const v = document.querySelector('video.video');
      const src = ctx.createMediaElementSource(v);
      const an = ctx.createAnalyser();
      an.fftSize = 2048;
      src.connect(an);
      an.connect(ctx.destination);
      ctx.resume();
      window.seanceAudio.ctx = ctx;
      const buf = new Float32Array(an.fftSize);
      setInterval(() => {
        an.getFloatTimeDomainData(buf);
        let peak = 0;
        for (const x of buf) peak = Math.max(peak, Math.abs(x));
        window.seanceAudio.peak = Math.max(window.seanceAudio.peak, peak);
        window.seanceAudio.samples++;
      }, 100);
    } catch (err) {
      window.seanceAudio.error = String(err);
    }
  }, true);
};

// seanceHookMSE, run before the page's scripts where the driver can (a
// preload script over BiDi), counts the bytes appended to Media Source
// Extensions buffers, by kind: hls.js feeds audio and video in separate
// SourceBuffers, so audio bytes mean sound reaches the decoder.
window.seanceHookMSE = function () {
  const MS = window.ManagedMediaSource || window.MediaSource;
  if (!MS || window.seanceMSE) return;
  window.seanceMSE = { audio: 0, video: 0 };
  const add = MS.prototype.addSourceBuffer;
  MS.prototype.addSourceBuffer = function (type) {
    const sb = add.call(this, type);
    const kind = /^audio\//.test(type) ? 'audio' : 'video';
    const append = sb.appendBuffer;
    sb.appendBuffer = function (data) {
      window.seanceMSE[kind] += data.byteLength;
      return append.call(this, data);
    };
    return sb;
  };
};

window.seanceMeasure = async function (seconds) {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const v = document.querySelector('video.video');
  const p = window.seancePlayer;
  const t0 = performance.now();
  while (!(p && p.state === 'live' && (v.videoWidth > 0 || p.playing === 'audio')) && performance.now() - t0 < 40000) await sleep(100);
  await sleep(1500); // past the start, where the picture catches up with the live edge
  const quality = () => {
    if (typeof v.getVideoPlaybackQuality !== 'function') return -1;
    const q = v.getVideoPlaybackQuality();
    return q.totalVideoFrames - q.droppedVideoFrames;
  };
  let rvfc = 0;
  const hasRVFC = typeof v.requestVideoFrameCallback === 'function';
  if (hasRVFC) {
    const tick = () => { rvfc++; v.requestVideoFrameCallback(tick); };
    v.requestVideoFrameCallback(tick);
  }
  const q0 = quality();
  const c0 = v.currentTime;
  const mse0 = window.seanceMSE ? { ...window.seanceMSE } : null;
  const a0 = typeof v.webkitAudioDecodedByteCount === 'number' ? v.webkitAudioDecodedByteCount : -1;
  const s0 = performance.now();
  await sleep(seconds * 1000);
  const dt = (performance.now() - s0) / 1000;
  const q1 = quality();
  const a1 = typeof v.webkitAudioDecodedByteCount === 'number' ? v.webkitAudioDecodedByteCount : -1;
  const res = performance.getEntriesByType('resource').map((e) => ({ path: new URL(e.name).pathname, ms: Math.round(e.startTime) }));
  const hlsReq = res.filter((r) => r.path.startsWith('/hls/'));
  const audio = window.seanceAudio || {};
  return {
    state: p ? p.state : '',
    transport: p ? p.transport : '',
    engine: p ? p.engine : '',
    quality: p ? p.quality : '',
    playing: p ? p.playing : '',
    transportText: document.querySelector('.transport').textContent,
    stateText: document.querySelector('.state').textContent,
    qualityText: (document.querySelector('.quality-now') || {}).textContent || '',
    videoWidth: v.videoWidth,
    videoHeight: v.videoHeight,
    paused: v.paused,
    muted: v.muted,
    seconds: dt,
    fpsQuality: q0 >= 0 ? (q1 - q0) / dt : -1,
    fpsRVFC: hasRVFC ? rvfc / dt : -1,
    clockRate: (v.currentTime - c0) / dt,
    audioDecodedBytes: a1 >= 0 ? a1 - a0 : -1,
    mseAudioBytes: mse0 ? window.seanceMSE.audio - mse0.audio : -1,
    mseVideoBytes: mse0 ? window.seanceMSE.video - mse0.video : -1,
    mozHasAudio: typeof v.mozHasAudio === 'boolean' ? v.mozHasAudio : null,
    audioPeak: audio.peak || 0,
    audioSamples: audio.samples || 0,
    audioError: audio.error || '',
    firstFrameMs: p ? p.firstFrameMs : -1,
    whepRequests: res.filter((r) => r.path.startsWith('/whep/')).length,
    hlsRequests: hlsReq.length,
    firstHLSMs: hlsReq.length ? hlsReq[0].ms : -1,
    offOrigin: performance.getEntriesByType('resource').map((e) => e.name).filter((n) => new URL(n).origin !== location.origin && !n.startsWith('blob:') && !n.startsWith('data:')),
    hlsjsLoaded: typeof window.Hls === 'function',
    hlsjsWorker: res.some((r) => r.path === '/static/hls.worker.js'),
    canPlayHLS: v.canPlayType('application/vnd.apple.mpegurl'),
  };
};
