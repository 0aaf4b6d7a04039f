// seance's player: plays a channel over WHEP (WebRTC-HTTP Egress Protocol,
// same HTTP exchange as RFC 9725 WHIP) and keeps the citizen informed of the
// session's state. It picks the transport once, at load:
//   - WebRTC where the browser can receive H.264 over it (RTCPeerConnection,
//     and RTCRtpReceiver.getCapabilities('video') lists H264: not Debian's
//     Firefox without OpenH264, not WebKitGTK);
//   - otherwise HLS at once: natively where the media element plays HLS
//     playlists (Safari, iOS, recent Chromium, WebKitGTK with its HLS
//     support), else through Media Source Extensions with hls.js, served
//     from seance's own origin (web/static/hls.min.js, pinned by
//     web/browsertest/package-lock.json).
// When WebRTC shows nothing within 5 s (UDP blocked), it switches to HLS.
// ?transport=hls or ?transport=webrtc in the page's address forces one. A
// stall is judged by the frames shown (requestVideoFrameCallback, else
// getVideoPlaybackQuality), never by the clock alone. The quality menu
// (Auto, Haute, Basse, Son seul) asks WHEP for audio only or, through the
// WHEP draft's layer-selection extension, for a reduced rendition.
// Vanilla JS, no framework, nothing from another origin.
'use strict';

(() => {
  const root = document.querySelector('.player[data-channel]');
  if (!root) return;

  const lang = (document.documentElement.lang || 'fr').toLowerCase().startsWith('en') ? 'en' : 'fr';
  const number = new Intl.NumberFormat(lang);
  const dict = {
    fr: {
      connecting: 'Connexion…',
      notStarted: "La séance n'a pas encore commencé",
      live: 'En direct',
      interrupted: 'Séance interrompue — reconnexion…',
      ended: 'La séance est terminée',
      full: 'Trop de spectateurs pour le moment — nouvel essai dans quelques instants',
      notFound: "Cette séance n'existe pas",
      error: 'Lecture impossible pour le moment — nouvel essai…',
      unsupported: 'Ce navigateur ne sait pas lire le direct (ni WebRTC ni HLS).',
      viaWebRTC: 'Diffusion en temps réel (WebRTC)',
      viaHLS: 'Diffusion HLS : quelques secondes de décalage',
      viewers: (n) => number.format(n) + (n > 1 ? ' spectateurs' : ' spectateur'),
      mute: 'Couper le son',
      unmute: 'Rétablir le son',
      fullscreen: 'Plein écran',
      exitFullscreen: 'Quitter le plein écran',
      quality: { auto: 'Auto', high: 'Haute', low: 'Basse', audio: 'Son seul' },
      playing: (q, auto) => 'Qualité : ' + (auto ? 'Auto, ' + q.toLowerCase() : q),
      audioOnly: 'Son seul : pas d’image',
    },
    en: {
      connecting: 'Connecting…',
      notStarted: 'The session has not started yet',
      live: 'Live',
      interrupted: 'Session interrupted — reconnecting…',
      ended: 'The session has ended',
      full: 'Too many viewers right now — trying again shortly',
      notFound: 'This session does not exist',
      error: 'Cannot play right now — trying again…',
      unsupported: 'This browser cannot play the live stream (neither WebRTC nor HLS).',
      viaWebRTC: 'Real-time stream (WebRTC)',
      viaHLS: 'HLS stream: a few seconds behind',
      viewers: (n) => number.format(n) + (n === 1 ? ' viewer' : ' viewers'),
      mute: 'Mute',
      unmute: 'Unmute',
      fullscreen: 'Full screen',
      exitFullscreen: 'Exit full screen',
      quality: { auto: 'Auto', high: 'High', low: 'Low', audio: 'Sound only' },
      playing: (q, auto) => 'Quality: ' + (auto ? 'Auto, ' + q.toLowerCase() : q),
      audioOnly: 'Sound only: no picture',
    },
  };
  const t = dict[lang];

  const channel = root.dataset.channel;
  const whepURL = new URL('/whep/' + encodeURIComponent(channel), location.href).href;
  const apiURL = new URL('/api/public/channels/' + encodeURIComponent(channel), location.href).href;
  const hlsURL = new URL('/hls/' + encodeURIComponent(channel) + '/index.m3u8', location.href).href;
  const $ = (sel) => root.querySelector(sel);
  const video = $('.video');
  const overlay = $('.overlay');
  const stateEl = $('.state');
  const viewersEl = $('.viewers');
  const transportEl = $('.transport');
  const qualityEl = $('.quality-now');
  const qualitySelect = $('.quality select');
  const lowOption = qualitySelect ? qualitySelect.querySelector('option[value="low"]') : null;
  const unmuteBtn = $('.unmute');
  const muteBtn = $('.mute');
  const volume = $('.volume input');
  const fullscreenBtn = $('.fullscreen');

  // Timings, in milliseconds.
  const GATHER_MAX = 2000; // send the offer after ICE gathering, or this long
  const BACKOFF_MIN = 2000;
  const BACKOFF_MAX = 10000;
  const POLL = 5000; // viewer count and channel state
  const STALL = 2000; // no new frame this long: interrupted
  const STALL_HLS = 5000; // the same over HLS, which plays from a buffer
  const RELOAD_HLS = 10000; // no new HLS frame this long: open the playlist again
  const STALL_RECONNECT = 20000; // still nothing: start a new session
  const FALLBACK = 5000; // WebRTC shows nothing this long: HLS, if the browser plays it
  const HLS_RETRY = 1000; // the HLS playlist failed: open it again after this long
  const STATS = 2000; // Auto reads the WebRTC loss this often
  const LOSS_STEP = 0.05; // ... and steps down after LOSS_SAMPLES samples above this
  const LOSS_SAMPLES = 3;
  const UP_AFTER = 60000; // Auto tries one step up after this long lower (doubling each failure)

  // What the browser can do. canPlayType says "maybe" where the media
  // element plays HLS playlists itself; hls.js needs Media Source
  // Extensions that take H.264 and AAC in fMP4 (it transmuxes MPEG-TS).
  const hlsNative = video.canPlayType('application/vnd.apple.mpegurl') !== '';
  const MS = window.ManagedMediaSource || window.MediaSource;
  const mse = !!root.dataset.hlsjs && !!MS && typeof MS.isTypeSupported === 'function' &&
    MS.isTypeSupported('video/mp4; codecs="avc1.42E01E,mp4a.40.2"');
  const hlsEngine = hlsNative ? 'native' : mse ? 'hls.js' : '';
  const webrtc = typeof RTCPeerConnection !== 'undefined';
  const forced = new URLSearchParams(location.search).get('transport'); // 'hls', 'webrtc' or null

  // h264 reports whether WebRTC can receive H.264 here. Debian's Firefox
  // (OpenH264 disabled) lists only VP8, VP9 and AV1.
  function h264() {
    if (!webrtc) return false;
    try {
      if (typeof RTCRtpReceiver !== 'undefined' && typeof RTCRtpReceiver.getCapabilities === 'function') {
        const caps = RTCRtpReceiver.getCapabilities('video');
        return !!caps && caps.codecs.some((c) => /^video\/h264$/i.test(c.mimeType));
      }
    } catch {
      return false;
    }
    return true; // cannot tell: WebRTC will say (a 400 from the server)
  }

  let pc = null; // the current RTCPeerConnection
  let sessionURL = null; // its WHEP resource, to DELETE
  let layerURL = null; // its layer-selection entrypoint, if the server offers one
  let events = null; // its server-sent events (EventSource), if any
  let layers = []; // encodingIds the server offers, best first
  let videoMid = '0'; // the video m-line's index, for layer selection
  let connecting = false;
  let retryTimer = 0;
  let attempt = 0;
  let wasLive = false;
  let state = '';
  let stream = null; // the current session's MediaStream
  let startedAt = 0; // when the current session was answered
  let frameAt = 0; // when it last showed a new frame; 0: not yet
  let firstFrameAt = 0; // when it showed its first frame (performance.now())
  let pollTimer = 0;
  let channelState = ''; // idle, live or interrupted, from the public API
  let transport = 'webrtc'; // or 'hls', for the rest of the page's life
  let hls = null; // the hls.js instance, when hls.js plays
  let hlsLoad = null; // the promise of hls.js's script
  let hlsPlaying = false; // the video element plays the HLS playlist
  let hlsConnecting = false; // connectHLS waits for the server
  let hlsErrors = 0; // HLS failures since it last played
  let tryingSince = 0; // when WebRTC started trying without showing a frame yet
  // The quality: what the citizen chose (auto, high, low, audio), and what
  // plays (high, low or audio).
  let choice = 'auto';
  let playing = 'high';
  let lossSamples = 0;
  let lastStats = null; // { lost, received } at the last sample
  let lowerSince = 0; // when Auto stepped down
  let upAfter = UP_AFTER;
  let upTriedAt = 0; // when Auto last stepped up again

  // Frames shown: counted by requestVideoFrameCallback where present (a
  // callback per frame composited), else read from getVideoPlaybackQuality.
  let rvfcFrames = 0;
  let lastFrames = -1; // the count at the last check
  let lastTime = -1; // the media clock at the last check (audio only)
  function countFrames() {
    if (typeof video.requestVideoFrameCallback !== 'function') return;
    const tick = () => { rvfcFrames++; video.requestVideoFrameCallback(tick); };
    video.requestVideoFrameCallback(tick);
  }
  let lastByRVFC = false; // lastFrames counts rVFC callbacks (else decoded frames)
  function qualityFrames() {
    if (typeof video.getVideoPlaybackQuality === 'function') {
      const q = video.getVideoPlaybackQuality();
      return q.totalVideoFrames - q.droppedVideoFrames;
    }
    if (typeof video.webkitDecodedFrameCount === 'number') return video.webkitDecodedFrameCount;
    return -1;
  }
  function framesShown() { return rvfcFrames > 0 ? rvfcFrames : qualityFrames(); }

  // For tests and the curious: the current connection and state.
  window.seancePlayer = {
    get pc() { return pc; },
    get state() { return state; },
    get video() { return video; },
    get transport() { return transport; },
    get engine() { return transport === 'hls' ? hlsEngine : 'webrtc'; },
    get quality() { return choice; },
    get playing() { return playing; },
    get layers() { return layers.slice(); },
    get frames() { return framesShown(); },
    get firstFrameMs() { return firstFrameAt ? Math.round(firstFrameAt) : -1; },
  };

  function showTransport() {
    transportEl.textContent = transport === 'hls' ? t.viaHLS : t.viaWebRTC;
    root.dataset.transport = transport;
    root.dataset.engine = window.seancePlayer.engine;
  }

  function showQuality() {
    root.dataset.quality = playing;
    root.classList.toggle('audio-only', playing === 'audio');
    if (qualityEl) qualityEl.textContent = t.playing(t.quality[playing], choice === 'auto');
    if (playing === 'audio' && state === 'live') overlay.textContent = t.audioOnly;
  }

  // active says whether a session (WebRTC) or a playlist (HLS) is open;
  // busy whether one is being opened.
  function active() { return transport === 'hls' ? hlsPlaying : pc !== null; }
  function busy() { return transport === 'hls' ? hlsConnecting : connecting; }

  function setState(s) {
    if (s === state) return;
    state = s;
    root.dataset.state = s;
    stateEl.textContent = t[s];
    overlay.textContent = s === 'live' && playing === 'audio' ? t.audioOnly : t[s];
  }

  function retryAfter(res) {
    const s = Number(res.headers.get('Retry-After'));
    return Number.isFinite(s) && s > 0 ? Math.min(Math.max(s * 1000, BACKOFF_MIN), BACKOFF_MAX) : 0;
  }

  // retry schedules the next attempt: after delay, or with exponential
  // backoff from BACKOFF_MIN to BACKOFF_MAX.
  function retry(delay) {
    if (retryTimer) return;
    if (!delay) {
      delay = Math.min(BACKOFF_MIN * 2 ** attempt, BACKOFF_MAX);
      attempt++;
    }
    retryTimer = setTimeout(() => { retryTimer = 0; connect(); }, delay);
  }

  // teardown closes the current session and, unless the server has ended
  // it already, tells the server (WHEP DELETE). unloading: the page goes
  // away, close at once (the DELETE is a keepalive request).
  function teardown(ended, unloading) {
    const conn = pc;
    const url = sessionURL;
    pc = null;
    sessionURL = null;
    layerURL = null;
    lastStats = null;
    if (events) {
      events.close();
      events = null;
    }
    if (conn) {
      conn.ontrack = null;
      conn.onconnectionstatechange = null;
    }
    if (url && !ended && !unloading) {
      // The DELETE first, the close once answered: the server ends a
      // session whose peer closes, and would answer the DELETE 404.
      fetch(url, { method: 'DELETE', keepalive: true, cache: 'no-store' }).catch(() => {}).finally(() => { if (conn) conn.close(); });
    } else {
      if (url && !ended) fetch(url, { method: 'DELETE', keepalive: true, cache: 'no-store' }).catch(() => {});
      if (conn) conn.close();
    }
  }

  // stopHLS stops playing the HLS playlist.
  function stopHLS() {
    if (hls) {
      hls.destroy();
      hls = null;
    }
    if (!hlsPlaying) return;
    hlsPlaying = false;
    video.removeAttribute('src');
    video.load();
  }

  // stop ends whatever plays.
  function stop(ended, unloading) {
    teardown(ended, unloading);
    stopHLS();
  }

  // links parses a Link header (RFC 8288) into [{url, params}].
  function links(header) {
    const out = [];
    for (const m of (header || '').matchAll(/<([^>]+)>([^<]*)/g)) {
      const params = {};
      for (const p of m[2].matchAll(/([\w-]+)="((?:[^"\\]|\\.)*)"/g)) params[p[1]] = p[2].replace(/\\(.)/g, '$1');
      for (const p of m[2].matchAll(/([\w-]+)=([^";,\s]+)/g)) if (!(p[1] in params)) params[p[1]] = p[2];
      let url = m[1];
      try { url = new URL(m[1], whepURL).href; } catch { /* kept as written */ }
      out.push({ raw: m[1], url, params });
    }
    return out;
  }

  // iceServers reads the STUN/TURN servers the server advertises in Link
  // headers (RFC 9725 4.6). There are none unless the operator set some.
  async function iceServers() {
    try {
      const res = await fetch(whepURL, { method: 'OPTIONS', cache: 'no-store' });
      const out = [];
      for (const l of links(res.headers.get('Link'))) {
        if (l.params.rel !== 'ice-server') continue;
        const server = { urls: l.raw };
        if (l.params.username) { server.username = l.params.username; server.credential = l.params.credential || ''; }
        out.push(server);
      }
      return out;
    } catch {
      return [];
    }
  }

  function gathered(conn) {
    if (conn.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        conn.removeEventListener('icegatheringstatechange', check);
        resolve();
      };
      const check = () => { if (conn.iceGatheringState === 'complete') done(); };
      const timer = setTimeout(done, GATHER_MAX);
      conn.addEventListener('icegatheringstatechange', check);
    });
  }

  function connect() {
    return transport === 'hls' ? connectHLS() : connectWebRTC();
  }

  function resetFrames() {
    frameAt = 0;
    firstFrameAt = 0;
    lastTime = -1;
    rvfcFrames = 0;
    lastByRVFC = false;
    lastFrames = qualityFrames(); // counts from the previous source may linger
  }

  async function connectWebRTC() {
    clearTimeout(retryTimer);
    retryTimer = 0;
    if (connecting) return;
    connecting = true;
    teardown();
    if (state !== 'interrupted' && state !== 'ended' && state !== 'notStarted') setState('connecting');
    if (!tryingSince) tryingSince = performance.now();
    let conn = null;
    try {
      conn = new RTCPeerConnection({ iceServers: await iceServers() });
      pc = conn;
      // Son seul: the offer asks for audio only, and the server sends no video.
      const audioOnly = playing === 'audio';
      if (!audioOnly) conn.addTransceiver('video', { direction: 'recvonly' });
      conn.addTransceiver('audio', { direction: 'recvonly' });
      videoMid = '0';
      const ms = new MediaStream();
      stream = ms;
      resetFrames();
      conn.ontrack = (e) => {
        ms.addTrack(e.track);
        if (video.srcObject !== ms) video.srcObject = ms;
        play();
      };
      conn.onconnectionstatechange = () => onConnectionState(conn);
      await conn.setLocalDescription(await conn.createOffer());
      await gathered(conn);
      const res = await fetch(whepURL, {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp' },
        body: conn.localDescription.sdp,
        cache: 'no-store',
      });
      if (conn !== pc) return; // torn down meanwhile
      if (res.status === 201) {
        sessionURL = new URL(res.headers.get('Location'), whepURL).href;
        await conn.setRemoteDescription({ type: 'answer', sdp: await res.text() });
        startedAt = performance.now();
        if (!audioOnly) extensions(conn, res.headers.get('Link'));
        return; // "live" once frames play (watch)
      }
      teardown();
      switch (res.status) {
        case 409: // not live: the poll reconnects as soon as it is
          tryingSince = 0; // WebRTC is not at fault
          setState(wasLive ? 'ended' : 'notStarted');
          retry(BACKOFF_MAX);
          break;
        case 404:
          setState('notFound');
          break;
        case 503:
          setState('full');
          retry(retryAfter(res) || BACKOFF_MAX);
          break;
        default:
          setState('error');
          retry();
      }
    } catch {
      if (conn === pc) {
        teardown();
        setState(typeof RTCPeerConnection === 'undefined' ? 'unsupported' : 'error');
        if (state === 'error') retry();
      }
    } finally {
      connecting = false;
    }
  }

  // extensions follows the WHEP draft's (draft-ietf-wish-whep) layer
  // selection: a Link rel urn:ietf:params:whep:ext:core:layer on the 201,
  // with its server-sent events (rel ...:server-sent-events): the player
  // POSTs the events it wants, reads the event stream at the Location it
  // gets, and learns the layers from the "layers" event, keyed by m-line
  // index.
  async function extensions(conn, header) {
    const all = links(header);
    const layer = all.find((l) => l.params.rel === 'urn:ietf:params:whep:ext:core:layer');
    const sse = all.find((l) => l.params.rel === 'urn:ietf:params:whep:ext:core:server-sent-events');
    if (!layer || !sse) {
      setLayers([]);
      return;
    }
    layerURL = layer.url;
    try {
      const res = await fetch(sse.url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(['layers']),
        cache: 'no-store',
      });
      if (conn !== pc || res.status !== 201 || !res.headers.get('Location')) return;
      const es = new EventSource(new URL(res.headers.get('Location'), sse.url).href);
      events = es;
      es.addEventListener('layers', (e) => {
        if (es !== events) return;
        try {
          onLayers(JSON.parse(e.data));
        } catch {
          // A malformed event changes nothing.
        }
      });
    } catch {
      // No events: no layers to choose.
    }
  }

  // onLayers reads a "layers" event: {"<m-line>": {layers: [{encodingId,
  // width, height, bitrate}, ...]}}. Layers are sorted best first.
  function onLayers(data) {
    for (const [mid, v] of Object.entries(data || {})) {
      const list = (v && (v.layers || v.active)) || [];
      const ids = [];
      const sorted = list.slice().sort((a, b) => (b.height || b.bitrate || 0) - (a.height || a.bitrate || 0));
      for (const l of sorted) {
        const id = l.encodingId !== undefined ? l.encodingId : l.id;
        if (id !== undefined && !ids.includes(String(id))) ids.push(String(id));
      }
      if (ids.length) {
        videoMid = mid;
        setLayers(ids);
        selectLayer();
        return;
      }
    }
    setLayers([]);
  }

  // setLayers shows « Basse » when the server offers more than one layer.
  function setLayers(ids) {
    layers = ids;
    const offered = transport === 'hls' ? hlsLevels().low >= 0 : layers.length > 1;
    if (!lowOption) return;
    if (offered && !lowOption.parentNode) qualitySelect.insertBefore(lowOption, qualitySelect.querySelector('option[value="audio"]'));
    if (!offered && lowOption.parentNode) {
      if (qualitySelect.value === 'low') qualitySelect.value = 'auto';
      lowOption.remove();
    }
  }

  // selectLayer asks the server for the layer that matches playing.
  function selectLayer() {
    if (transport === 'hls') {
      const lv = hlsLevels();
      if (!hls) return;
      if (choice === 'auto' && playing === 'high') hls.currentLevel = -1; // hls.js's own choice
      else if (playing === 'low' && lv.low >= 0) hls.currentLevel = lv.low;
      else if (playing === 'audio' && lv.audio >= 0) hls.currentLevel = lv.audio;
      else if (lv.high >= 0) hls.currentLevel = lv.high;
      return;
    }
    if (!layerURL || layers.length < 2 || playing === 'audio') return;
    const encodingId = playing === 'low' ? layers[layers.length - 1] : layers[0];
    fetch(layerURL, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ mediaId: videoMid, encodingId }),
      cache: 'no-store',
    }).catch(() => {});
  }

  // hlsLevels finds hls.js's levels: the best with video, the lowest with
  // video, and one with audio only (a multivariant playlist may list one).
  function hlsLevels() {
    const out = { high: -1, low: -1, audio: -1 };
    if (!hls || !hls.levels) return out;
    hls.levels.forEach((l, i) => {
      if (!l.height && !l.videoCodec && l.audioCodec) {
        out.audio = i;
        return;
      }
      if (out.high < 0 || l.height > hls.levels[out.high].height) out.high = i;
    });
    hls.levels.forEach((l, i) => {
      if (i !== out.audio && i !== out.high && (l.height || l.videoCodec) &&
          (out.low < 0 || l.height < hls.levels[out.low].height)) out.low = i;
    });
    return out;
  }

  // setPlaying changes what plays: over WebRTC, between audio and video it
  // takes a new session (the offer differs); between layers a POST.
  function setPlaying(q) {
    if (q === playing) return;
    const wasAudio = playing === 'audio';
    playing = q;
    lossSamples = 0;
    showQuality();
    if (transport === 'webrtc' && (wasAudio || q === 'audio')) {
      if (active() || busy()) {
        teardown();
        connectWebRTC();
      }
    } else {
      selectLayer();
    }
  }

  function choose(q) {
    choice = q;
    lowerSince = 0;
    upAfter = UP_AFTER;
    if (q === 'auto') {
      showQuality();
      setPlaying('high');
    } else {
      setPlaying(q);
      showQuality();
    }
  }

  // stepDown is Auto's answer to sustained loss or a stall: Basse where
  // the server offers it, else Son seul.
  function stepDown() {
    if (choice !== 'auto' || playing === 'audio') return;
    const low = transport === 'hls' ? hlsLevels().low >= 0 : layers.length > 1;
    lowerSince = performance.now();
    if (upTriedAt && lowerSince - upTriedAt < 30000) upAfter = Math.min(upAfter * 2, 8 * UP_AFTER);
    setPlaying(playing === 'high' && low ? 'low' : 'audio');
  }

  // stepUp tries one step up, carefully: after upAfter in the lower step.
  function stepUp() {
    if (choice !== 'auto' || playing === 'high' || !lowerSince) return;
    if (performance.now() - lowerSince < upAfter) return;
    const low = transport === 'hls' ? hlsLevels().low >= 0 : layers.length > 1;
    upTriedAt = performance.now();
    lowerSince = playing === 'audio' && low ? performance.now() : 0;
    setPlaying(playing === 'audio' && low ? 'low' : 'high');
  }

  // adapt reads the WebRTC loss for Auto (HLS adapts in hls.js).
  async function adapt() {
    if (choice !== 'auto' || transport !== 'webrtc' || !pc || !sessionURL || state !== 'live') return;
    stepUp();
    if (playing === 'audio') return;
    const conn = pc;
    let lost = 0;
    let received = 0;
    try {
      (await conn.getStats()).forEach((r) => {
        if (r.type === 'inbound-rtp' && r.kind === 'video') {
          lost += r.packetsLost || 0;
          received += r.packetsReceived || 0;
        }
      });
    } catch {
      return;
    }
    if (conn !== pc) return;
    const prev = lastStats;
    lastStats = { lost, received };
    if (!prev) return;
    const dl = lost - prev.lost;
    const dr = received - prev.received;
    const ratio = dl + dr > 0 ? dl / (dl + dr) : 0;
    lossSamples = ratio > LOSS_STEP ? lossSamples + 1 : 0;
    if (lossSamples >= LOSS_SAMPLES) stepDown();
  }

  // fallBack switches to HLS for good, since WebRTC did not connect within
  // FALLBACK while the channel was live.
  function fallBack() {
    transport = 'hls';
    tryingSince = 0;
    clearTimeout(retryTimer);
    retryTimer = 0;
    teardown(); // a WHEP request still in flight is ignored when it ends
    setLayers([]);
    showTransport();
    connectHLS();
  }

  // loadHLSJS loads hls.js from seance's own origin, once.
  function loadHLSJS() {
    if (window.Hls) return Promise.resolve(window.Hls);
    if (!hlsLoad) {
      hlsLoad = new Promise((resolve, reject) => {
        const s = document.createElement('script');
        s.src = root.dataset.hlsjs;
        s.onload = () => (window.Hls ? resolve(window.Hls) : reject(new Error('hls.js did not load')));
        s.onerror = () => { hlsLoad = null; reject(new Error('hls.js did not load')); };
        document.head.appendChild(s);
      });
    }
    return hlsLoad;
  }

  // playHLS has the video element play the playlist: itself, or through
  // hls.js. A fatal hls.js error is handled as the element's own error.
  async function playHLS() {
    if (hlsEngine === 'native') {
      video.src = hlsURL;
      play();
      return;
    }
    const Hls = await loadHLSJS();
    if (!hlsPlaying) return; // stopped meanwhile
    // Its worker (transmuxing MPEG-TS off the main thread) is a file from
    // seance's origin too, not the blob: hls.js would make: the pages' CSP
    // (worker-src falls back to script-src 'self') stays as it is.
    const worker = root.dataset.hlsjsWorker;
    // Plain MediaSource, not ManagedMediaSource: WebKitGTK has both, and
    // showed fewer frames with the managed one.
    const h = new Hls({
      enableWorker: !!worker, workerPath: worker || null, lowLatencyMode: true, backBufferLength: 30,
      preferManagedMediaSource: false,
    });
    hls = h;
    h.on(Hls.Events.ERROR, (_, d) => { if (d.fatal && h === hls) onHLSError(); });
    h.on(Hls.Events.MANIFEST_PARSED, () => {
      if (h !== hls) return;
      setLayers([]);
      selectLayer();
      play();
    });
    h.loadSource(hlsURL);
    h.attachMedia(video);
  }

  // connectHLS has the video element play the channel's HLS playlist, once
  // the server says it exists (404 while the channel is not live).
  async function connectHLS() {
    clearTimeout(retryTimer);
    retryTimer = 0;
    if (hlsConnecting) return;
    hlsConnecting = true;
    stopHLS();
    if (state !== 'interrupted' && state !== 'ended' && state !== 'notStarted') setState('connecting');
    try {
      const res = await fetch(hlsURL, { cache: 'no-store' });
      if (res.ok) {
        video.srcObject = null;
        stream = null;
        resetFrames();
        startedAt = performance.now();
        hlsPlaying = true;
        await playHLS();
        return; // "live" once frames play (watch)
      }
      if (res.status === 404 && channelState !== 'live') {
        setState(wasLive ? 'ended' : 'notStarted');
        retry(BACKOFF_MAX); // the poll starts it as soon as it is live
      } else {
        setState('error');
        retry();
      }
    } catch {
      stopHLS();
      setState('error');
      retry();
    } finally {
      hlsConnecting = false;
    }
  }

  // onHLSError: an HLS playlist that fails is opened again soon: browsers
  // that do not know EXT-X-GAP (Chromium) fail on the gaps low-latency
  // playlists list in their first seconds, and start past them a moment
  // later. If the session ended, connectHLS hears it (404) and waits for
  // the next.
  function onHLSError() {
    if (transport !== 'hls' || !hlsPlaying) return;
    stopHLS();
    if (state !== 'live') setState(wasLive ? 'interrupted' : 'connecting');
    hlsErrors++;
    retry(hlsErrors <= 5 ? HLS_RETRY : 0); // then with backoff
  }

  function onConnectionState(conn) {
    if (conn !== pc) return;
    switch (conn.connectionState) {
      case 'disconnected':
        if (wasLive) setState('interrupted');
        break;
      case 'failed':
      case 'closed':
        teardown(true); // the server ends (or reaps) its side itself
        setState(wasLive ? 'interrupted' : 'connecting');
        retry();
        break;
    }
  }

  function play() {
    const p = video.play();
    if (p) p.catch(() => showUnmute(true));
  }

  // progressed says whether the video showed a new frame since the last
  // check (or, with sound only, whether the media clock moved).
  function progressed() {
    const audioOnly = playing === 'audio' && (transport === 'webrtc' || video.videoWidth === 0);
    if (audioOnly || framesShown() < 0) { // no picture, or no frame counter at all
      const first = lastTime < 0;
      const moved = video.currentTime !== lastTime;
      lastTime = video.currentTime;
      return moved && !(first && video.currentTime === 0);
    }
    const byRVFC = rvfcFrames > 0;
    const n = framesShown();
    if (byRVFC !== lastByRVFC) { // rVFC's first callback for this source
      lastByRVFC = byRVFC;
      lastFrames = n;
      return byRVFC;
    }
    const moved = n > lastFrames;
    lastFrames = n;
    return moved;
  }

  // watch follows the frames: new ones mean live, none for STALL an
  // interruption, none for STALL_RECONNECT a new session (for HLS, the
  // playlist is opened again after RELOAD_HLS).
  function watch() {
    const now = performance.now();
    if (transport === 'webrtc' && tryingSince && !frameAt && hlsEngine && forced !== 'webrtc' &&
        channelState === 'live' && now - tryingSince >= FALLBACK) {
      fallBack();
      return;
    }
    if (transport === 'hls' ? !hlsPlaying : !pc || !sessionURL) return;
    if (document.hidden) { // no frames are composited in a hidden tab
      if (frameAt) frameAt = now;
      return;
    }
    const mine = transport === 'hls' ? !video.srcObject : video.srcObject === stream;
    if (mine && video.readyState >= 2) {
      if (progressed()) {
        frameAt = now;
        if (!firstFrameAt) firstFrameAt = now;
        hlsErrors = 0;
      } else if (video.paused) {
        play();
      }
    }
    const quiet = now - (frameAt || startedAt);
    const stalled = !frameAt || quiet > (transport === 'hls' ? STALL_HLS : STALL);
    if (quiet > (transport === 'hls' ? RELOAD_HLS : STALL_RECONNECT) && channelState !== 'interrupted') {
      if (frameAt && channelState === 'live') stepDown();
      stop();
      setState(wasLive ? 'interrupted' : 'connecting');
      if (transport === 'hls') connect(); else retry();
    } else if (stalled && state === 'live') {
      setState('interrupted');
      schedulePoll(0); // ask the server whether the publisher left
    } else if (!stalled && state !== 'live' && channelState !== 'interrupted') {
      // While the publisher is away, frames may still come: replays of the
      // last picture. Only the server says when it is really back.
      setState('live');
      wasLive = true;
      attempt = 0;
      tryingSince = 0;
      if (video.muted) showUnmute(true);
      schedulePoll(500); // the count now includes this viewer
    }
  }

  function schedulePoll(delay) {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(poll, delay);
  }

  // poll reads the channel's state and viewer count from the public API,
  // every POLL, or every second during an interruption.
  async function poll() {
    clearTimeout(pollTimer);
    try {
      const res = await fetch(apiURL, { cache: 'no-store' });
      if (res.status === 404) {
        setState('notFound');
      } else if (res.ok) {
        const c = await res.json();
        channelState = c.state;
        viewersEl.textContent = t.viewers(c.viewers);
        if (c.state === 'idle') {
          // The server ended every session of the channel.
          if (sessionURL || hlsPlaying || state === 'live' || state === 'interrupted') stop(true);
          tryingSince = 0;
          if (!busy()) setState(wasLive ? 'ended' : 'notStarted');
        } else if (c.state === 'interrupted' && state === 'live') {
          setState('interrupted');
        } else if (!active() && !busy() && ['connecting', 'notStarted', 'ended'].includes(state)) {
          connect(); // it has started (again): no need to wait for the retry
        } else {
          watch();
        }
      }
    } catch {
      // The next poll will tell.
    }
    schedulePoll(channelState === 'interrupted' || state === 'interrupted' ? 1000 : POLL);
  }

  // Controls. Browsers only autoplay muted: one click turns the sound on.
  function updateSound() {
    const silent = video.muted || video.volume === 0;
    muteBtn.textContent = silent ? t.unmute : t.mute;
    if (!silent) showUnmute(false);
    if (!video.muted) volume.value = String(Math.round(video.volume * 100));
  }

  // While the big "turn on sound" button shows, the mute toggle would say
  // the same thing: only one of them is shown.
  function showUnmute(show) {
    const hadFocus = document.activeElement === unmuteBtn;
    unmuteBtn.hidden = !show;
    muteBtn.hidden = show;
    if (hadFocus && !show) muteBtn.focus();
  }

  unmuteBtn.addEventListener('click', () => {
    video.muted = false;
    if (video.volume === 0) video.volume = 1;
    play();
    showUnmute(false);
  });
  muteBtn.addEventListener('click', () => {
    if (video.muted || video.volume === 0) {
      video.muted = false;
      if (video.volume === 0) video.volume = 1;
      play();
    } else {
      video.muted = true;
    }
  });
  volume.addEventListener('input', () => {
    video.volume = Number(volume.value) / 100;
    if (video.volume > 0 && video.muted) video.muted = false;
  });
  video.addEventListener('volumechange', updateSound);
  if (qualitySelect) {
    // ?quality=audio|high|low|auto opens the page on that choice.
    const asked = new URLSearchParams(location.search).get('quality');
    if (['auto', 'high', 'low', 'audio'].includes(asked)) {
      choice = asked;
      playing = asked === 'auto' ? 'high' : asked;
    }
    if (lowOption) lowOption.remove(); // until the server offers a reduced layer
    if (lowOption && choice === 'low') qualitySelect.insertBefore(lowOption, qualitySelect.querySelector('option[value="audio"]'));
    qualitySelect.value = choice;
    qualitySelect.addEventListener('change', () => choose(qualitySelect.value));
  }

  const canFullscreen = document.fullscreenEnabled || typeof video.webkitEnterFullscreen === 'function';
  fullscreenBtn.hidden = !canFullscreen;
  fullscreenBtn.addEventListener('click', () => {
    if (document.fullscreenElement) {
      document.exitFullscreen();
    } else if (document.fullscreenEnabled) {
      root.requestFullscreen().catch(() => {});
    } else {
      video.webkitEnterFullscreen(); // iPhone Safari: the video alone
    }
  });
  document.addEventListener('fullscreenchange', () => {
    fullscreenBtn.textContent = document.fullscreenElement ? t.exitFullscreen : t.fullscreen;
  });

  // Leaving the page ends the session at once rather than after the
  // server's ICE timeout; coming back from the back/forward cache resumes.
  addEventListener('pagehide', () => {
    clearTimeout(retryTimer);
    retryTimer = 0;
    stop(false, true);
  });
  addEventListener('pageshow', (e) => { if (e.persisted) connect(); });

  updateSound();
  countFrames();
  showQuality();
  // The transport, once: WebRTC where it receives H.264, else HLS at once.
  let usable = true;
  if (forced === 'webrtc') {
    usable = webrtc;
  } else if (forced === 'hls') {
    transport = 'hls';
    usable = hlsEngine !== '';
  } else if (!h264()) {
    transport = 'hls';
    usable = hlsEngine !== '';
  }
  if (!usable) {
    setState('unsupported');
  } else {
    showTransport();
    setState('connecting');
    connect();
    setInterval(watch, 250);
    setInterval(adapt, STATS);
    video.addEventListener('playing', watch);
    video.addEventListener('error', () => { if (!hls) onHLSError(); });
  }
  poll();
})();
