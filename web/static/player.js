// seance's player: plays a channel over WHEP (WebRTC-HTTP Egress Protocol,
// same HTTP exchange as RFC 9725 WHIP) and keeps the citizen informed of the
// session's state. When WebRTC cannot connect within 5 s (UDP blocked, an
// old browser) and the browser plays HLS itself (Safari, iOS, recent
// Chrome), it plays the channel's HLS playlist instead. ?transport=hls or
// ?transport=webrtc in the page's address forces one. Vanilla JS, no
// framework, no HLS library, nothing from another origin.
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
  const STALL_RECONNECT = 20000; // still nothing: start a new session
  const FALLBACK = 5000; // WebRTC shows nothing this long: HLS, if the browser plays it
  const HLS_RETRY = 1000; // the HLS playlist failed: open it again after this long

  // Native HLS only: no JS library. canPlayType says "maybe" where the
  // media element plays HLS playlists itself.
  const hlsNative = video.canPlayType('application/vnd.apple.mpegurl') !== '';
  const forced = new URLSearchParams(location.search).get('transport'); // 'hls', 'webrtc' or null

  let pc = null; // the current RTCPeerConnection
  let sessionURL = null; // its WHEP resource, to DELETE
  let connecting = false;
  let retryTimer = 0;
  let attempt = 0;
  let wasLive = false;
  let state = '';
  let stream = null; // the current session's MediaStream
  let lastTime = -1; // the video's clock at the last check
  let startedAt = 0; // when the current session was answered
  let frameAt = 0; // when it last showed a new frame; 0: not yet
  let pollTimer = 0;
  let channelState = ''; // idle, live or interrupted, from the public API
  let transport = 'webrtc'; // or 'hls', for the rest of the page's life
  let hlsPlaying = false; // the video element plays the HLS playlist
  let hlsConnecting = false; // connectHLS waits for the server
  let hlsErrors = 0; // HLS failures since it last played
  let tryingSince = 0; // when WebRTC started trying without showing a frame yet

  // For tests and the curious: the current connection and state.
  window.seancePlayer = {
    get pc() { return pc; },
    get state() { return state; },
    get video() { return video; },
    get transport() { return transport; },
  };

  function showTransport() {
    transportEl.textContent = transport === 'hls' ? t.viaHLS : t.viaWebRTC;
    root.dataset.transport = transport;
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
    overlay.textContent = t[s];
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
  // it already, tells the server (WHEP DELETE).
  function teardown(ended) {
    const conn = pc;
    const url = sessionURL;
    pc = null;
    sessionURL = null;
    if (conn) {
      conn.ontrack = null;
      conn.onconnectionstatechange = null;
      conn.close();
    }
    if (url && !ended) fetch(url, { method: 'DELETE', keepalive: true, cache: 'no-store' }).catch(() => {});
  }

  // stopHLS stops playing the HLS playlist.
  function stopHLS() {
    if (!hlsPlaying) return;
    hlsPlaying = false;
    video.removeAttribute('src');
    video.load();
  }

  // stop ends whatever plays.
  function stop(ended) {
    teardown(ended);
    stopHLS();
  }

  // iceServers reads the STUN/TURN servers the server advertises in Link
  // headers (RFC 9725 4.6). There are none unless the operator set some.
  async function iceServers() {
    try {
      const res = await fetch(whepURL, { method: 'OPTIONS', cache: 'no-store' });
      const link = res.headers.get('Link') || '';
      const out = [];
      for (const m of link.matchAll(/<([^>]+)>([^<]*)/g)) {
        const params = {};
        for (const p of m[2].matchAll(/([\w-]+)="((?:[^"\\]|\\.)*)"/g)) params[p[1]] = p[2].replace(/\\(.)/g, '$1');
        if (params.rel !== 'ice-server') continue;
        const server = { urls: m[1] };
        if (params.username) { server.username = params.username; server.credential = params.credential || ''; }
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
      conn.addTransceiver('video', { direction: 'recvonly' });
      conn.addTransceiver('audio', { direction: 'recvonly' });
      const ms = new MediaStream();
      stream = ms;
      frameAt = 0;
      lastTime = -1;
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
    } catch (err) {
      if (conn === pc) {
        teardown();
        setState(typeof RTCPeerConnection === 'undefined' ? 'unsupported' : 'error');
        if (state === 'error') retry();
      }
    } finally {
      connecting = false;
    }
  }

  // fallBack switches to HLS for good, since WebRTC did not connect within
  // FALLBACK while the channel was live.
  function fallBack() {
    transport = 'hls';
    tryingSince = 0;
    clearTimeout(retryTimer);
    retryTimer = 0;
    teardown(); // a WHEP request still in flight is ignored when it ends
    showTransport();
    connectHLS();
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
        frameAt = 0;
        lastTime = -1;
        startedAt = performance.now();
        hlsPlaying = true;
        video.src = hlsURL;
        play();
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
      setState('error');
      retry();
    } finally {
      hlsConnecting = false;
    }
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

  // watch follows the frames: new ones mean live, none for STALL an
  // interruption, none for STALL_RECONNECT a new session.
  function watch() {
    const now = performance.now();
    if (transport === 'webrtc' && tryingSince && !frameAt && hlsNative && forced !== 'webrtc' &&
        channelState === 'live' && now - tryingSince >= FALLBACK) {
      fallBack();
      return;
    }
    if (transport === 'hls' ? !hlsPlaying : !pc || !sessionURL) return;
    const mine = transport === 'hls' ? !video.srcObject : video.srcObject === stream;
    if (mine && video.readyState >= 2) {
      if (video.currentTime !== lastTime) {
        lastTime = video.currentTime;
        frameAt = now;
        hlsErrors = 0;
      } else if (video.paused) {
        play();
      }
    }
    const quiet = now - (frameAt || startedAt);
    const stalled = !frameAt || quiet > (transport === 'hls' ? STALL_HLS : STALL);
    if (quiet > STALL_RECONNECT) {
      stop();
      setState(wasLive ? 'interrupted' : 'connecting');
      retry();
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
    stop();
  });
  addEventListener('pageshow', (e) => { if (e.persisted) connect(); });

  updateSound();
  const webrtc = typeof RTCPeerConnection !== 'undefined';
  if (hlsNative && (forced === 'hls' || !webrtc)) transport = 'hls';
  if (transport === 'webrtc' && !webrtc) {
    setState('unsupported');
  } else {
    showTransport();
    setState('connecting');
    connect();
    setInterval(watch, 250);
    video.addEventListener('playing', watch);
    // An HLS playlist that fails is opened again soon: browsers that do
    // not know EXT-X-GAP (Chromium) fail on the gaps low-latency playlists
    // list in their first seconds, and start past them a moment later. If
    // the session ended, connectHLS hears it (404) and waits for the next.
    video.addEventListener('error', () => {
      if (transport !== 'hls' || !hlsPlaying) return;
      stopHLS();
      if (state !== 'live') setState(wasLive ? 'interrupted' : 'connecting');
      hlsErrors++;
      retry(hlsErrors <= 5 ? HLS_RETRY : 0); // then with backoff
    });
  }
  poll();
})();
