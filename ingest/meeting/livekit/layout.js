// seance's LiveKit layout page: it joins the room as a hidden, subscribe-
// only participant (the token says so), lays the participants out and
// plays their sound, so that the capture extension broadcasts this tab.
// seance reads window.seanceLiveKit.where (see liveKitProbe in
// livekit.go): loading, joined, left, refused:<why>.
'use strict';
(() => {
  const state = { where: 'loading', participants: 0, layouts: 0, main: '' };
  window.seanceLiveKit = state;
  const LK = window.LivekitClient;
  if (!LK) {
    state.where = 'refused:the livekit-client script did not load';
    return;
  }
  let cfg;
  try {
    const b64 = location.hash.slice(1).replace(/-/g, '+').replace(/_/g, '/');
    cfg = JSON.parse(atob(b64));
  } catch (e) {
    state.where = 'refused:the page address carries no room to join';
    return;
  }
  // The token does not stay in the address bar or the history.
  history.replaceState(null, '', location.pathname);
  const tilesLayout = cfg.layout === 'tiles';

  const stage = document.getElementById('stage');
  const empty = document.getElementById('empty');
  const audioBox = document.getElementById('audio');
  stage.className = tilesLayout ? 'tiles' : 'speaker';

  const room = new LK.Room({ adaptiveStream: false, dynacast: false });
  const tiles = new Map(); // key: participant identity + source → tile element
  let lastSpeaker = '';

  function nameOf(p) { return p.name || p.identity; }

  function tileFor(key, p) {
    let t = tiles.get(key);
    if (!t) {
      t = document.createElement('div');
      t.className = 'tile';
      const label = document.createElement('div');
      label.className = 'name';
      t.appendChild(label);
      tiles.set(key, t);
    }
    t.querySelector('.name').textContent = nameOf(p);
    return t;
  }

  // setVideo puts the track's video element in the tile, or the
  // participant's initial when there is no picture.
  function setVideo(t, track, p) {
    let v = t.querySelector('video');
    const initial = t.querySelector('.initial');
    if (track && !track.isMuted) {
      if (initial) initial.remove();
      if (!v || v.dataset.sid !== track.sid) {
        if (v) removeVideo(v);
        v = track.attach();
        v.muted = true; // sound plays through the audio elements
        v.dataset.sid = track.sid;
        v._lkTrack = track;
        t.insertBefore(v, t.firstChild);
      }
      return;
    }
    if (v) removeVideo(v);
    if (!initial) {
      const i = document.createElement('div');
      i.className = 'initial';
      i.textContent = (nameOf(p)[0] || '?').toUpperCase();
      t.insertBefore(i, t.firstChild);
    }
  }

  function removeVideo(v) {
    if (v._lkTrack) v._lkTrack.detach(v);
    v.remove();
  }

  function videoOf(p, source) {
    const pub = p.getTrackPublication(source);
    return pub && pub.isSubscribed && pub.track ? pub.track : null;
  }

  // layout redraws the stage from the room's current participants.
  function layout() {
    state.layouts++;
    syncAudio();
    const people = Array.from(room.remoteParticipants.values());
    state.participants = people.length;
    const entries = []; // {key, p, track, share}
    for (const p of people) {
      const share = videoOf(p, LK.Track.Source.ScreenShare);
      if (share) entries.push({ key: p.identity + '/screen', p, track: share, share: true });
      entries.push({ key: p.identity + '/camera', p, track: videoOf(p, LK.Track.Source.Camera), share: false });
    }
    let shown = entries;
    if (!tilesLayout && entries.length > 0) {
      // The main picture stays on whoever has it while they still speak
      // (no flapping between two voices), then goes to the loudest.
      const speaking = room.activeSpeakers.filter((s) => s !== room.localParticipant);
      if (speaking.length > 0 && !speaking.some((s) => s.identity === lastSpeaker)) {
        lastSpeaker = speaking[0].identity;
      }
      const pick = entries.find((e) => e.share) ||
        entries.find((e) => e.p.identity === lastSpeaker && e.track) ||
        entries.find((e) => e.p.identity === lastSpeaker) ||
        entries.find((e) => e.track) || entries[0];
      shown = [pick];
    }
    state.main = shown.length === 1 ? shown[0].key : '';
    const keep = new Set(shown.map((e) => e.key));
    // Pictures not on screen are paused at the server (as Jitsi's last-n
    // does): neither sent nor decoded. Shown again, the server resumes
    // them from a keyframe.
    for (const p of people) {
      for (const pub of p.videoTrackPublications.values()) {
        const key = p.identity + (pub.source === LK.Track.Source.ScreenShare ? '/screen' : '/camera');
        if (pub.isSubscribed && pub.isEnabled !== keep.has(key)) pub.setEnabled(keep.has(key));
      }
    }
    for (const [key, t] of tiles) {
      if (!keep.has(key)) {
        const v = t.querySelector('video');
        if (v) removeVideo(v); // a hidden video is not decoded for nothing
        t.remove();
        tiles.delete(key);
      }
    }
    const cols = Math.ceil(Math.sqrt(shown.length)) || 1;
    const rows = Math.ceil(shown.length / cols) || 1;
    stage.style.gridTemplateColumns = 'repeat(' + cols + ', 1fr)';
    stage.style.gridTemplateRows = 'repeat(' + rows + ', 1fr)';
    const speakers = new Set(room.activeSpeakers.map((s) => s.identity));
    shown.forEach((e, i) => {
      const t = tileFor(e.key, e.p);
      setVideo(t, e.track, e.p);
      t.classList.toggle('speaking', tilesLayout && speakers.has(e.p.identity));
      if (stage.children[i] !== t) stage.insertBefore(t, stage.children[i] || null);
    });
    empty.hidden = shown.length > 0;
  }

  // Each subscribed microphone plays in an <audio> element of its own,
  // by track sid. livekit-client may detach a departing participant's
  // tracks itself before saying so, leaving their elements in the page:
  // every layout also drops the elements of tracks no longer subscribed.
  const audioEls = new Map();
  function syncAudio() {
    const live = new Set();
    for (const p of room.remoteParticipants.values()) {
      for (const pub of p.audioTrackPublications.values()) {
        if (pub.isSubscribed && pub.track) live.add(pub.track.sid);
      }
    }
    for (const [sid, el] of audioEls) {
      if (!live.has(sid)) {
        el.remove();
        audioEls.delete(sid);
      }
    }
  }

  function onTrack(track) {
    if (track.kind === LK.Track.Kind.Audio && !audioEls.has(track.sid)) {
      const a = track.attach();
      audioEls.set(track.sid, a);
      audioBox.appendChild(a);
    }
    layout();
  }
  function offTrack(track) {
    track.detach();
    const a = audioEls.get(track.sid);
    if (a) {
      a.remove();
      audioEls.delete(track.sid);
    }
    layout();
  }

  const E = LK.RoomEvent;
  room
    .on(E.TrackSubscribed, onTrack)
    .on(E.TrackUnsubscribed, offTrack)
    .on(E.TrackMuted, layout)
    .on(E.TrackUnmuted, layout)
    .on(E.ParticipantConnected, layout)
    .on(E.ParticipantDisconnected, layout)
    .on(E.ParticipantNameChanged, layout)
    .on(E.ActiveSpeakersChanged, layout)
    .on(E.Reconnecting, () => { state.where = 'loading'; })
    .on(E.Reconnected, () => { state.where = 'joined'; })
    .on(E.Disconnected, (reason) => {
      // A moderator (or the server's RoomService.RemoveParticipant)
      // removed the bot: it stays out, as for Jitsi and BBB.
      state.where = reason === LK.DisconnectReason.PARTICIPANT_REMOVED ? 'removed' : 'left';
      state.reason = String(reason);
    })
    .on(E.AudioPlaybackStatusChanged, () => {
      if (!room.canPlaybackAudio) room.startAudio().catch(() => {});
    });

  room.connect(cfg.url, cfg.token, { autoSubscribe: true })
    .then(() => {
      state.where = 'joined';
      room.startAudio().catch(() => {});
      layout();
    })
    .catch((e) => {
      // livekit-client quotes the token in some errors: never report it.
      const why = (e && e.message ? e.message : String(e)).replace(/eyJ[\w-]*(\.[\w-]*)*/g, '[redacted]');
      state.where = 'refused:' + why;
    });
})();
