// seance's dashboard for IT staff: one card per channel, updated live from
// the admin API's event stream. Vanilla JS, no build step, nothing from
// another origin. The admin token is asked for once and kept in this tab's
// sessionStorage; it is sent as "Authorization: Bearer", never in a URL,
// which is why the event stream is read with fetch() rather than
// EventSource (which cannot send headers).
'use strict';

(() => {
  const body = document.body;
  const authRequired = body.dataset.auth === 'required';
  const publicURL = body.dataset.publicUrl || '';
  const WARNINGS = JSON.parse(document.getElementById('warning-texts').textContent || '{}');
  const TOKEN_KEY = 'seance.adminToken';
  const WINDOW_MS = 15 * 60 * 1000; // sparklines
  const STALE_MS = 40000; // no byte from the stream this long (heartbeats every 15 s): reconnect
  const REFRESH_MS = 30000; // full channel list, for what samples do not carry
  const RETRY_MIN = 1000;
  const RETRY_MAX = 10000;

  const $ = (sel, root = document) => root.querySelector(sel);
  const cardsEl = $('.cards');
  const loginForm = $('.login');
  const loginError = $('.login-error');
  const tokenInput = $('#token');
  const linkEl = $('.link');
  const logoutBtn = $('.logout');
  const emptyEl = $('.empty');
  const announceEl = $('.announce');

  let token = '';
  try { token = sessionStorage.getItem(TOKEN_KEY) || ''; } catch { /* storage disabled */ }
  let clockOffset = 0; // server clock minus this browser's, in ms
  let streamAbort = null;
  let retryTimer = 0;
  let attempt = 0;
  let refreshTimer = 0;
  let generation = 0; // bumped on logout: stale loops stop
  const channels = new Map(); // name → Card

  // ——— Words ———
  const num = (v, digits = 1) => new Intl.NumberFormat('fr-FR', { maximumFractionDigits: digits }).format(v);
  const STATE = { live: 'En direct', interrupted: 'Interrompue', idle: 'Hors ligne' };
  const DEST_STATE = { idle: 'À l\u2019arrêt', connecting: 'Connexion…', live: 'Diffuse', retrying: 'Nouvel essai…', failed: 'En échec' };
  const PULL_STATE = { idle: 'Arrêtée', connecting: 'Connexion…', live: 'Reçue', retrying: 'Nouvel essai…' };
  const MEETING_STATE = {
    idle: 'À l\u2019arrêt', waiting: 'En attente de la réunion', launching: 'Démarrage du navigateur…',
    joining: 'Entrée dans la réunion…', capturing: 'Capture en cours', retrying: 'Redémarrage…',
    removed: 'Retiré de la réunion', alone: 'Seul dans la réunion',
  };
  // What the capture waits for; nothing is broadcast meanwhile. The lobby's
  // name is the bot's (ingest.meeting.display_name).
  const MEETING_DETAIL = {
    meeting_not_started: () => 'La réunion n\u2019a pas encore commencé : seance la rejoindra dès son ouverture.',
    lobby: (m) => `En salle d\u2019attente : un modérateur doit faire entrer « ${m.display_name || 'Diffusion publique'} ».`,
    lobby_no_knock: (m) => `Bloqué en salle d\u2019attente sans frapper : un modérateur doit faire entrer « ${m.display_name || 'Diffusion publique'} » ou désactiver la salle d\u2019attente.`,
    login_page: () => 'La réunion demande une connexion ou un mot de passe : vérifiez le jeton (ingest.meeting.jitsi.jwt). Rien n\u2019est diffusé.',
    other_page: () => 'La page ouverte n\u2019est pas la réunion (page de connexion, d\u2019erreur ou de sortie) : rien n\u2019est diffusé.',
    page_loading: () => 'Chargement de la page de la réunion… Rien n\u2019est diffusé avant l\u2019entrée dans la réunion.',
  };
  const MEETING_STATE_DETAIL = {
    removed: () => 'Un modérateur a retiré seance de la réunion : il n\u2019y retourne pas tant qu\u2019on ne le relance pas (bouton « Rejoindre la réunion »).',
    alone: () => 'Plus personne d\u2019autre dans la réunion : la chaîne affiche sa mire ; seance reprend la diffusion dès que quelqu\u2019un revient.',
  };
  const PLATFORM = { jitsi: 'Jitsi Meet', bbb: 'BigBlueButton' };

  function bitrate(bps) {
    if (!bps) return '0 kbit/s';
    return bps >= 1e6 ? num(bps / 1e6) + ' Mbit/s' : num(bps / 1e3, 0) + ' kbit/s';
  }
  function bytes(n) {
    if (n >= 1e9) return num(n / 1e9) + ' Go';
    if (n >= 1e6) return num(n / 1e6) + ' Mo';
    if (n >= 1e3) return num(n / 1e3, 0) + ' ko';
    return n + ' o';
  }
  function duration(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const pad = (x) => String(x).padStart(2, '0');
    if (h) return `${h} h ${pad(m)} min`;
    if (m) return `${m} min ${pad(s % 60)} s`;
    return `${s} s`;
  }
  function channelsWord(n) {
    return { 1: 'mono', 2: 'stéréo' }[n] || `${n} canaux`;
  }
  function warningText(name, h) {
    const t = WARNINGS[name] || name;
    return t.replace('{keyint}', num(h.keyframe_interval_s || 0))
      .replace('{codec}', (h.audio && h.audio.codec) || '?')
      .replace('{rate}', h.audio ? num(h.audio.sample_rate, 0) : '?');
  }
  function announce(text) {
    announceEl.textContent = '';
    setTimeout(() => { announceEl.textContent = text; }, 50);
  }
  function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k === 'hidden') e.hidden = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) if (c != null) e.append(c);
    return e;
  }

  // ——— The admin API ———
  class Unauthorized extends Error {}

  async function api(path, opts = {}) {
    const headers = { ...(opts.headers || {}) };
    if (token) headers.Authorization = 'Bearer ' + token;
    const res = await fetch(path, { ...opts, headers, cache: 'no-store' });
    if (res.status === 401) throw new Unauthorized();
    return res;
  }
  async function apiJSON(path, opts) {
    const res = await api(path, opts);
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      const e = data.error || {};
      throw new Error(`${e.message || res.statusText} (code ${e.code || res.status}${e.id ? ', réf. ' + e.id : ''})`);
    }
    return data;
  }

  function setLink(state, text) {
    linkEl.dataset.state = state;
    linkEl.textContent = text;
  }

  // ——— Login ———
  function showLogin(message) {
    stopAll();
    token = '';
    try { sessionStorage.removeItem(TOKEN_KEY); } catch { /* ignore */ }
    loginForm.hidden = false;
    logoutBtn.hidden = true;
    loginError.textContent = message || '';
    setLink('offline', 'Hors connexion');
    tokenInput.focus();
  }

  loginForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const candidate = tokenInput.value.trim();
    if (!candidate) return;
    token = candidate;
    try {
      await apiJSON('/api/v1/channels');
    } catch (err) {
      token = '';
      loginError.textContent = err instanceof Unauthorized ? 'Ce jeton est refusé par le relais.' : 'Le relais ne répond pas : ' + err.message;
      tokenInput.focus();
      return;
    }
    try { sessionStorage.setItem(TOKEN_KEY, token); } catch { /* kept in memory only */ }
    tokenInput.value = '';
    loginForm.hidden = true;
    logoutBtn.hidden = false;
    $('h1').focus();
    start();
  });

  logoutBtn.addEventListener('click', () => showLogin('Jeton oublié. Entrez-le à nouveau pour continuer.'));

  // ——— Sparklines ———
  const SVGNS = 'http://www.w3.org/2000/svg';

  class Spark {
    constructor(label, format) {
      this.label = label;
      this.format = format;
      this.value = el('strong', { text: '—' });
      this.svg = document.createElementNS(SVGNS, 'svg');
      this.svg.setAttribute('viewBox', '0 0 300 48');
      this.svg.setAttribute('preserveAspectRatio', 'none');
      this.svg.setAttribute('role', 'img');
      this.area = document.createElementNS(SVGNS, 'polygon');
      this.line = document.createElementNS(SVGNS, 'polyline');
      this.svg.append(this.area, this.line);
      this.root = el('figure', { class: 'spark' }, el('figcaption', {}, el('span', { text: label }), this.value), this.svg,
        el('p', { class: 'axis', 'aria-hidden': 'true' }, el('span', { text: '−15 min' }), el('span', { text: 'maintenant' })));
    }

    draw(times, values, now) {
      const pts = [];
      let max = 0;
      for (let i = 0; i < times.length; i++) if (times[i] >= now - WINDOW_MS) max = Math.max(max, values[i]);
      const top = max > 0 ? max * 1.1 : 1;
      for (let i = 0; i < times.length; i++) {
        const x = 300 - ((now - times[i]) / WINDOW_MS) * 300;
        if (x < 0) continue;
        pts.push(`${x.toFixed(1)},${(48 - (values[i] / top) * 46).toFixed(1)}`);
      }
      this.line.setAttribute('points', pts.join(' '));
      this.area.setAttribute('points', pts.length > 1 ? `${pts[0].split(',')[0]},48 ${pts.join(' ')} ${pts[pts.length - 1].split(',')[0]},48` : '');
      const last = values.length ? values[values.length - 1] : 0;
      this.value.textContent = this.format(last);
      this.svg.setAttribute('aria-label', `${this.label} sur 15 minutes : ${this.format(last)} maintenant, ${this.format(max)} au plus`);
    }
  }

  // ——— Live preview over WHEP (RFC 9725's exchange, from the public listener) ———
  class Preview {
    constructor(name, title) {
      this.url = publicURL ? publicURL + '/whep/' + encodeURIComponent(name) : '';
      this.enabled = !!this.url;
      this.pc = null;
      this.resource = null;
      this.live = false;
      this.timer = 0;
      this.video = el('video', { 'aria-label': 'Aperçu en direct : ' + title });
      this.video.muted = true;
      this.video.autoplay = true;
      this.video.playsInline = true;
      this.note = el('p', { text: this.url ? 'Hors ligne' : 'Aperçu indisponible' });
      this.box = el('div', { class: 'preview', 'data-playing': 'false' }, this.video, this.note);
      this.toggle = el('button', { type: 'button', class: 'preview-toggle', 'aria-pressed': String(this.enabled), hidden: !this.url }, 'Aperçu');
      this.toggle.addEventListener('click', () => {
        this.enabled = !this.enabled;
        this.toggle.setAttribute('aria-pressed', String(this.enabled));
        this.update(this.live);
      });
      this.video.addEventListener('playing', () => { this.box.dataset.playing = 'true'; });
      this.root = el('div', {}, this.box, this.toggle);
    }

    update(live) {
      this.live = live;
      if (!this.enabled || !live) {
        this.stop();
        this.note.textContent = !this.url ? 'Aperçu indisponible' : live ? 'Aperçu coupé' : 'Hors ligne';
        return;
      }
      if (!this.pc && !this.timer) this.start();
    }

    async start() {
      this.note.textContent = 'Connexion…';
      const pc = new RTCPeerConnection();
      this.pc = pc;
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      const ms = new MediaStream();
      pc.ontrack = (e) => {
        ms.addTrack(e.track);
        if (this.video.srcObject !== ms) this.video.srcObject = ms;
        this.video.play().catch(() => {});
      };
      pc.onconnectionstatechange = () => {
        if (pc !== this.pc) return;
        if (pc.connectionState === 'failed' || pc.connectionState === 'closed') this.retry();
      };
      try {
        await pc.setLocalDescription(await pc.createOffer());
        await new Promise((resolve) => {
          if (pc.iceGatheringState === 'complete') return resolve();
          const t = setTimeout(resolve, 1500);
          pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); } });
        });
        const res = await fetch(this.url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp, cache: 'no-store' });
        if (pc !== this.pc) return;
        if (res.status !== 201) throw new Error('WHEP ' + res.status);
        this.resource = new URL(res.headers.get('Location'), this.url).href;
        await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
      } catch {
        if (pc === this.pc) this.retry();
      }
    }

    retry() {
      this.stop();
      this.note.textContent = 'Reconnexion…';
      this.timer = setTimeout(() => { this.timer = 0; this.update(this.live); }, 3000);
    }

    stop() {
      clearTimeout(this.timer);
      this.timer = 0;
      const pc = this.pc;
      const url = this.resource;
      this.pc = null;
      this.resource = null;
      this.box.dataset.playing = 'false';
      if (pc) {
        pc.ontrack = null;
        pc.onconnectionstatechange = null;
        pc.close();
        this.video.srcObject = null;
      }
      if (url) fetch(url, { method: 'DELETE', keepalive: true, cache: 'no-store' }).catch(() => {});
    }
  }

  // ——— One channel's card ———
  class Card {
    constructor(st) {
      this.name = st.name;
      this.status = st;
      this.hist = { t: [], bitrate: [], viewers: [] };
      const id = 'ch-' + st.name;
      this.title = el('h2', { id }, st.title || st.name, el('span', { class: 'name', text: st.name }));
      this.badge = el('span', { class: 'badge' });
      this.since = el('span', { class: 'since' });
      this.preview = new Preview(st.name, st.title || st.name);
      this.stats = el('dl', { class: 'stats' });
      this.warnings = el('div');
      this.bitrateSpark = new Spark('Débit', bitrate);
      this.viewersSpark = new Spark('Spectateurs', (v) => num(v, 0));
      this.dests = el('ul', { class: 'dests' });
      this.pullSection = el('section', { class: 'section pull', 'aria-labelledby': id + '-pull', hidden: true },
        el('h3', { id: id + '-pull', text: 'Source tirée' }));
      this.pullBody = el('div');
      this.pullSection.append(this.pullBody);
      this.meetingSection = el('section', { class: 'section meeting', 'aria-labelledby': id + '-meeting', hidden: true },
        el('h3', { id: id + '-meeting', text: 'Réunion capturée' }));
      this.meetingBody = el('div');
      this.meetingStatus = el('p', { class: 'dest-figures', role: 'status' });
      this.meetingStart = this.meetingButton('start', 'Rejoindre la réunion');
      this.meetingStop = this.meetingButton('stop', 'Quitter la réunion');
      this.meetingSection.append(this.meetingBody,
        el('div', { class: 'dest-actions' }, this.meetingStart, this.meetingStop), this.meetingStatus);
      this.kickBtn = el('button', { type: 'button', class: 'danger' }, 'Déconnecter l\u2019encodeur');
      this.kickBtn.addEventListener('click', () => this.kick());
      this.notice = el('p', { role: 'status' });
      this.recording = el('p');
      this.renditions = el('p', { class: 'renditions' });
      this.root = el('article', { class: 'card', 'aria-labelledby': id, 'data-channel': st.name },
        el('div', { class: 'card-head' }, this.title, el('p', { class: 'state-line' }, this.badge, this.since)),
        el('div', { class: 'overview' }, this.preview.root, this.stats),
        el('section', { class: 'section', 'aria-labelledby': id + '-warn' }, el('h3', { id: id + '-warn', text: 'Alertes' }), this.warnings),
        el('section', { class: 'section', 'aria-labelledby': id + '-hist' }, el('h3', { id: id + '-hist', text: '15 dernières minutes' }),
          el('div', { class: 'sparks' }, this.bitrateSpark.root, this.viewersSpark.root)),
        el('section', { class: 'section', 'aria-labelledby': id + '-dest' }, el('h3', { id: id + '-dest', text: 'Diffusions' }), this.dests),
        this.pullSection,
        this.meetingSection,
        el('div', { class: 'section actions' }, el('div', {}, this.recording, this.renditions, this.notice), this.kickBtn));
      this.destEls = new Map();
      this.render();
    }

    // set replaces the whole status (state events, list refreshes).
    set(st) {
      const before = this.status.state;
      this.status = st;
      this.render();
      if (before !== st.state) announce(`${st.title || st.name} : ${STATE[st.state] || st.state}`);
    }

    // sample merges a health sample.
    sample(s) {
      const st = this.status;
      const h = st.health;
      h.bitrate_bps = s.bitrate_bps;
      h.fps = s.fps;
      h.keyframe_interval_s = s.keyframe_interval_s;
      h.warnings = s.warnings;
      h.slate = s.slate;
      st.viewers = s.viewers;
      st.destinations = s.destinations;
      if (s.pull) st.pull = s.pull;
      if (s.meeting) st.meeting = s.meeting;
      if (s.recording) st.recording = s.recording;
      if (s.renditions) st.renditions = s.renditions;
      const t = Date.parse(s.time);
      this.hist.t.push(t);
      this.hist.bitrate.push(s.bitrate_bps);
      this.hist.viewers.push(s.viewers.total || 0);
      while (this.hist.t.length && this.hist.t[0] < t - WINDOW_MS) {
        this.hist.t.shift(); this.hist.bitrate.shift(); this.hist.viewers.shift();
      }
      if (s.state !== st.state) refreshChannel(this.name); // a state event may have been missed
      this.render();
    }

    setHistory(hd) {
      this.hist = { t: hd.t.slice(), bitrate: hd.bitrate_bps.slice(), viewers: hd.viewers.slice() };
      this.drawSparks();
    }

    drawSparks() {
      const now = Date.now() + clockOffset;
      this.bitrateSpark.draw(this.hist.t, this.hist.bitrate, now);
      this.viewersSpark.draw(this.hist.t, this.hist.viewers, now);
    }

    tick() {
      const st = this.status;
      const d = duration(Date.now() + clockOffset - Date.parse(st.since));
      let text = st.state === 'interrupted' ? `depuis ${d} — en attente de l\u2019encodeur` : `depuis ${d}`;
      if (st.health && st.health.slate) text += ' — mire d\u2019interruption à l\u2019antenne';
      this.since.textContent = text;
    }

    render() {
      const st = this.status;
      const h = st.health || {};
      const live = st.state !== 'idle';
      this.root.dataset.state = st.state;
      this.badge.dataset.state = st.state;
      this.badge.textContent = STATE[st.state] || st.state;
      this.tick();
      this.preview.update(live);

      // Figures.
      const rows = [];
      if (live) {
        const ing = st.ingest || {};
        rows.push(['Source', ing.protocol === 'meeting'
          ? `Réunion ${PLATFORM[(st.meeting || {}).platform] || ''} capturée par seance`.replace('  ', ' ')
          : [ing.protocol && ing.protocol.toUpperCase(), ing.remote_addr].filter(Boolean).join(' · ')]);
        const v = h.video || {};
        rows.push(['Vidéo', [v.codec, v.profile, v.width && v.height ? `${v.width}×${v.height}` : ''].filter(Boolean).join(' · ') || '—']);
        rows.push(['Images/s', num(h.fps || 0)]);
        rows.push(['Débit', bitrate(h.bitrate_bps)]);
        rows.push(['Images clés', h.keyframe_interval_s ? `toutes les ${num(h.keyframe_interval_s)} s` : '—']);
        const a = h.audio;
        rows.push(['Audio', a ? `${a.codec} · ${num(a.sample_rate / 1000)} kHz · ${channelsWord(a.channels)}` : 'aucun']);
        rows.push(['Reconnexions', num(h.publisher_reconnects || 0, 0)]);
      }
      const vw = st.viewers || {};
      const parts = Object.keys(vw).filter((k) => k !== 'total').sort().map((k) => `${k === 'webrtc' ? 'WebRTC' : k.toUpperCase()} ${vw[k]}`);
      rows.push(['Spectateurs', `${num(vw.total || 0, 0)}${parts.length ? ' (' + parts.join(', ') + ')' : ''}`]);
      this.stats.replaceChildren(...rows.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })]));

      // Warnings.
      const warns = live ? (h.warnings || []) : [];
      const key = warns.join(',') + '|' + (h.keyframe_interval_s || 0).toFixed(1);
      if (key !== this.warnKey) {
        this.warnKey = key;
        this.warnings.replaceChildren(warns.length
          ? el('ul', { class: 'warnings' }, ...warns.map((w) => el('li', { 'data-warning': w, text: warningText(w, h) })))
          : el('p', { class: 'ok', text: live ? 'Aucun problème détecté.' : 'Rien à signaler : la chaîne est hors ligne.' }));
      }

      this.renderDestinations();
      this.renderPull();
      this.renderMeeting();
      this.renderRecording();
      this.renderRenditions();
      this.kickBtn.hidden = st.state !== 'live'; // nobody to kick
      this.drawSparks();
    }

    renderDestinations() {
      const list = this.status.destinations || [];
      if (!list.length) {
        this.dests.replaceChildren(el('li', { class: 'none', text: 'Aucune diffusion configurée.' }));
        this.destEls.clear();
        return;
      }
      if (this.destEls.size !== list.length || list.some((d) => !this.destEls.has(d.name))) {
        this.destEls.clear();
        this.dests.replaceChildren(...list.map((d) => this.destItem(d)));
      }
      for (const d of list) {
        const e = this.destEls.get(d.name);
        e.badge.dataset.state = d.state;
        e.badge.textContent = DEST_STATE[d.state] || d.state;
        e.figures.textContent = `${bytes(d.bytes)} envoyés · ${num(d.reconnects, 0)} reconnexion${d.reconnects > 1 ? 's' : ''}`;
        e.error.textContent = d.last_error ? 'Dernière erreur : ' + d.last_error : '';
      }
    }

    destItem(d) {
      const badge = el('span', { class: 'badge' });
      const figures = el('p', { class: 'dest-figures' });
      const error = el('p', { class: 'dest-error' });
      const status = el('p', { class: 'dest-figures', role: 'status' });
      const button = (action, label) => {
        const b = el('button', { type: 'button', 'data-action': action }, label, el('span', { class: 'visually-hidden', text: ' ' + d.name }));
        b.addEventListener('click', async () => {
          b.disabled = true;
          try {
            const st = await apiJSON(`/api/v1/channels/${encodeURIComponent(this.name)}/destinations/${encodeURIComponent(d.name)}/${action}`, { method: 'POST' });
            status.textContent = action === 'start' ? 'Démarrage demandé.' : 'Arrêt demandé.';
            this.updateDestination(st);
          } catch (err) {
            if (err instanceof Unauthorized) return showLogin('Le jeton n\u2019est plus accepté.');
            status.textContent = 'Échec : ' + err.message;
          } finally {
            b.disabled = false;
          }
        });
        return b;
      };
      const li = el('li', { class: 'dest', 'data-destination': d.name },
        el('p', { class: 'dest-name' }, d.name, badge),
        el('div', { class: 'dest-actions' }, button('start', 'Démarrer'), button('stop', 'Arrêter')),
        el('p', { class: 'dest-url', text: d.url }), figures, error, status);
      this.destEls.set(d.name, { badge, figures, error });
      return li;
    }

    updateDestination(d) {
      const list = this.status.destinations || [];
      const i = list.findIndex((x) => x.name === d.name);
      if (i >= 0) list[i] = d;
      this.renderDestinations();
    }

    renderRecording() {
      const r = this.status.recording || {};
      let text = 'Enregistrement : désactivé';
      if (r.enabled && r.state === 'recording') text = `Enregistrement en cours : ${r.file} (${bytes(r.bytes)})`;
      else if (r.enabled && r.state === 'failed') text = `Enregistrement en échec, nouvel essai à la prochaine image clé : ${r.last_error || ''}`;
      else if (r.enabled) text = 'Enregistrement : en attente de la séance';
      this.recording.textContent = text;
      this.recording.dataset.state = r.enabled ? r.state : 'off';
    }

    // renderRenditions says how the reduced renditions (ffmpeg) are doing.
    renderRenditions() {
      const list = this.status.renditions || [];
      this.renditions.hidden = !list.length;
      const state = { idle: 'en attente de la séance', starting: 'démarrage', live: 'en direct', retrying: 'ffmpeg arrêté, nouvel essai' };
      this.renditions.textContent = list.map((r) => {
        let t = `Version allégée « ${r.name} » (${r.height}p, ${Math.round(r.video_bitrate / 1000)} kbit/s) : ${state[r.state] || r.state}`;
        if (r.state === 'live') t += `, ${Math.round(r.fps)} i/s, ${r.cpu.toFixed(2).replace('.', ',')} cœur`;
        if (r.restarts) t += `, ${r.restarts} redémarrage${r.restarts > 1 ? 's' : ''}`;
        return t;
      }).join(' · ');
    }

    renderPull() {
      const p = this.status.pull;
      this.pullSection.hidden = !p;
      if (!p) return;
      this.pullBody.replaceChildren(
        el('p', { class: 'dest-name' }, el('span', { class: 'badge', 'data-state': p.state === 'live' ? 'live' : p.state, text: PULL_STATE[p.state] || p.state })),
        el('p', { class: 'dest-url', text: p.url }),
        el('p', { class: 'dest-figures', text: `${num(p.reconnects, 0)} reconnexion${p.reconnects > 1 ? 's' : ''}` }),
        el('p', { class: 'dest-error', text: p.last_error ? 'Dernière erreur : ' + p.last_error : '' }));
    }

    meetingButton(action, label) {
      const b = el('button', { type: 'button', 'data-action': 'meeting-' + action }, label);
      b.addEventListener('click', async () => {
        b.disabled = true;
        try {
          const m = await apiJSON(`/api/v1/channels/${encodeURIComponent(this.name)}/meeting/${action}`, { method: 'POST' });
          this.meetingStatus.textContent = action === 'start' ? 'Entrée dans la réunion demandée.' : 'Sortie de la réunion demandée.';
          this.status.meeting = m;
          this.renderMeeting();
        } catch (err) {
          if (err instanceof Unauthorized) return showLogin('Le jeton n\u2019est plus accepté.');
          this.meetingStatus.textContent = 'Échec : ' + err.message;
        } finally {
          b.disabled = false;
        }
      });
      return b;
    }

    renderMeeting() {
      const m = this.status.meeting;
      this.meetingSection.hidden = !m;
      if (!m) return;
      const badgeState = m.state === 'capturing' ? 'live' : m.state === 'retrying' || m.state === 'removed' ? 'retrying' : m.state === 'idle' ? 'idle' : 'connecting';
      const detail = (MEETING_STATE_DETAIL[m.state] || MEETING_DETAIL[m.detail] || (() => ''))(m);
      const figures = [];
      if (m.state === 'capturing') figures.push(`${num(m.capture_fps || 0, 0)} images/s capturées`);
      if (m.processes) {
        figures.push(`navigateur : ${num(m.cpu_cores || 0)} cœur${(m.cpu_cores || 0) >= 2 ? 's' : ''}, ${bytes(m.memory_bytes || 0)} de mémoire`);
      }
      figures.push(`${num(m.restarts, 0)} redémarrage${m.restarts > 1 ? 's' : ''}`);
      if (m.page_errors) figures.push(`${num(m.page_errors, 0)} erreur${m.page_errors > 1 ? 's' : ''} de la page`);
      this.meetingBody.replaceChildren(
        el('p', { class: 'dest-name' }, el('span', { class: 'badge', 'data-state': badgeState, text: MEETING_STATE[m.state] || m.state })),
        el('p', { class: 'dest-url', text: `${PLATFORM[m.platform] || m.platform} sur ${m.server} · ${m.size.replace('x', '×')}${m.manual ? ' · démarrage manuel' : ''}` }),
        el('p', { class: 'dest-figures', 'data-meeting-detail': m.detail || m.state, text: detail }),
        el('p', { class: 'dest-figures', text: figures.join(' · ') }),
        el('p', { class: 'dest-error', text: m.last_error ? 'Dernier incident : ' + m.last_error : '' }),
        el('p', { class: 'dest-error', text: m.last_page_error ? 'Dernière erreur de la page : ' + m.last_page_error : '' }));
      // A removed bot is still wanted: starting it joins again.
      this.meetingStart.hidden = m.started && m.state !== 'removed';
      this.meetingStop.hidden = !m.started;
    }

    async kick() {
      const title = this.status.title || this.name;
      if (!window.confirm(`Déconnecter l\u2019encodeur de « ${title} » ?\n\nS\u2019il se reconnecte pendant le délai de grâce, la diffusion continue ; sinon la séance se termine.`)) return;
      this.kickBtn.disabled = true;
      try {
        const st = await apiJSON(`/api/v1/channels/${encodeURIComponent(this.name)}/kick`, { method: 'POST' });
        this.notice.textContent = 'Encodeur déconnecté.';
        this.set(st);
      } catch (err) {
        if (err instanceof Unauthorized) return showLogin('Le jeton n\u2019est plus accepté.');
        this.notice.textContent = 'Échec : ' + err.message;
      } finally {
        this.kickBtn.disabled = false;
        this.render();
      }
    }
  }

  // ——— Loading and the event stream ———
  function upsert(list) {
    const seen = new Set();
    for (const st of list) {
      seen.add(st.name);
      const c = channels.get(st.name);
      if (c) c.set(st);
      else {
        const card = new Card(st);
        channels.set(st.name, card);
        cardsEl.append(card.root);
      }
    }
    for (const [name, c] of channels) {
      if (!seen.has(name)) {
        c.preview.stop();
        c.root.remove();
        channels.delete(name);
      }
    }
    emptyEl.hidden = channels.size > 0;
  }

  async function refreshChannel(name) {
    try {
      const st = await apiJSON('/api/v1/channels/' + encodeURIComponent(name));
      channels.get(name)?.set(st);
    } catch (err) {
      if (err instanceof Unauthorized) showLogin('Le jeton n\u2019est plus accepté.');
    }
  }

  async function load() {
    const data = await apiJSON('/api/v1/channels');
    upsert(data.channels);
    await Promise.all([...channels.keys()].map(async (name) => {
      const hd = await apiJSON(`/api/v1/channels/${encodeURIComponent(name)}/history`);
      channels.get(name)?.setHistory(hd);
    }));
  }

  function handle(event, data) {
    let v;
    try { v = JSON.parse(data); } catch { return; }
    switch (event) {
      case 'state':
        channels.get(v.name)?.set(v);
        break;
      case 'destination':
        channels.get(v.channel)?.updateDestination(v.destination);
        break;
      case 'health': {
        const t = Date.parse(v.time);
        if (Number.isFinite(t)) clockOffset = t - Date.now();
        channels.get(v.channel)?.sample(v);
        break;
      }
      case 'shutdown':
        setLink('retrying', 'Le relais redémarre…');
        break;
    }
  }

  async function stream(gen) {
    const ctrl = new AbortController();
    streamAbort = ctrl;
    let last = Date.now();
    const watchdog = setInterval(() => { if (Date.now() - last > STALE_MS) ctrl.abort(); }, 5000);
    try {
      const res = await api('/api/v1/events', { signal: ctrl.signal, headers: { Accept: 'text/event-stream' } });
      if (!res.ok || !res.body) throw new Error('event stream: HTTP ' + res.status);
      setLink('online', 'Connecté au relais');
      attempt = 0;
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done || gen !== generation) break;
        last = Date.now();
        buf += dec.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let event = 'message';
          const data = [];
          for (const line of block.split('\n')) {
            if (!line || line[0] === ':') continue;
            const c = line.indexOf(':');
            const field = c < 0 ? line : line.slice(0, c);
            let val = c < 0 ? '' : line.slice(c + 1);
            if (val[0] === ' ') val = val.slice(1);
            if (field === 'event') event = val;
            else if (field === 'data') data.push(val);
          }
          if (data.length) handle(event, data.join('\n'));
        }
      }
    } finally {
      clearInterval(watchdog);
      if (streamAbort === ctrl) streamAbort = null;
    }
  }

  // run loads the channels, then follows the event stream; when either
  // fails (a relay restart, a network change) it tries again with backoff.
  async function run(gen) {
    try {
      await load();
      if (gen !== generation) return;
      await stream(gen);
    } catch (err) {
      if (err instanceof Unauthorized) {
        if (gen === generation) showLogin('Le jeton n\u2019est plus accepté : entrez-le à nouveau.');
        return;
      }
    }
    if (gen !== generation) return;
    const delay = Math.min(RETRY_MIN * 2 ** attempt, RETRY_MAX);
    attempt++;
    setLink('retrying', 'Relais injoignable — nouvel essai…');
    retryTimer = setTimeout(() => run(gen), delay);
  }

  function stopAll() {
    generation++;
    clearTimeout(retryTimer);
    clearInterval(refreshTimer);
    if (streamAbort) streamAbort.abort();
    for (const c of channels.values()) c.preview.stop();
  }

  function start() {
    stopAll();
    const gen = generation;
    logoutBtn.hidden = !authRequired;
    setLink('retrying', 'Connexion…');
    run(gen);
    refreshTimer = setInterval(() => {
      if (linkEl.dataset.state === 'online') apiJSON('/api/v1/channels').then((d) => upsert(d.channels)).catch(() => {});
    }, REFRESH_MS);
  }

  setInterval(() => { for (const c of channels.values()) { c.tick(); c.drawSparks(); } }, 1000);
  window.addEventListener('pagehide', () => { for (const c of channels.values()) c.preview.stop(); });

  // For tests and the curious.
  window.seanceDashboard = {
    get link() { return linkEl.dataset.state; },
    channels,
  };

  if (authRequired && !token) showLogin();
  else start();
})();
