// seance meeting capture: offscreen document. It turns the tab's media
// stream id into a stream (getUserMedia with chromeMediaSource 'tab') and
// publishes it to seance over WHIP (RFC 9725): H.264 first, Opus.
// seance reads seanceStats() over the DevTools protocol once a second.
'use strict';

let pc = null;
let stream = null;
let token = '';
let startError = '';

chrome.runtime.onMessage.addListener((msg, _sender, reply) => {
  if (msg && msg.type === 'seance-start') {
    start(msg.streamId, msg.cfg).then(
      (r) => reply(r),
      (e) => { startError = String((e && e.message) || e); reply({ error: startError }); });
    return true; // the answer is asynchronous
  }
  return false;
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function start(streamId, cfg) {
  token = cfg.token;
  stream = await navigator.mediaDevices.getUserMedia({
    audio: { mandatory: { chromeMediaSource: 'tab', chromeMediaSourceId: streamId } },
    video: {
      mandatory: {
        chromeMediaSource: 'tab', chromeMediaSourceId: streamId,
        minWidth: cfg.width, maxWidth: cfg.width, minHeight: cfg.height, maxHeight: cfg.height,
        maxFrameRate: cfg.fps,
      },
    },
  });
  const [video] = stream.getVideoTracks();
  // Slides and names must stay legible; the resolution must not change
  // mid-broadcast (a new SPS makes YouTube destinations reconnect).
  video.contentHint = 'detail';
  pc = new RTCPeerConnection();
  const vt = pc.addTransceiver(video, { direction: 'sendonly', streams: [stream] });
  const h264 = RTCRtpSender.getCapabilities('video').codecs.filter((c) => c.mimeType === 'video/H264');
  if (!h264.length) throw new Error('this Chromium has no H.264 encoder');
  vt.setCodecPreferences(h264);
  for (const a of stream.getAudioTracks()) pc.addTransceiver(a, { direction: 'sendonly', streams: [stream] });
  const params = vt.sender.getParameters();
  params.degradationPreference = 'maintain-resolution';
  if (params.encodings && params.encodings[0]) {
    params.encodings[0].maxBitrate = cfg.bitrate;
    params.encodings[0].maxFramerate = cfg.fps;
  }
  await vt.sender.setParameters(params);
  await pc.setLocalDescription(await pc.createOffer());
  // Loopback candidates gather at once; no trickle needed.
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') resolve(); };
    setTimeout(resolve, 1000);
  });
  // seance may still hold the previous browser's session for a moment
  // (409) or be restarting (503): try again for up to 10 s.
  let res;
  for (let i = 0; ; i++) {
    res = await fetch(cfg.whip, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp', Authorization: 'Bearer ' + token },
      body: pc.localDescription.sdp,
    });
    if (res.status === 201 || (res.status !== 409 && res.status !== 503) || i >= 20) break;
    await sleep(500);
  }
  if (res.status !== 201) throw new Error('WHIP answered ' + res.status + ': ' + (await res.text()).slice(0, 200));
  let answer = await res.text();
  // Loopback has room: start the encoder near its target rather than at
  // WebRTC's cautious 300 kbit/s (Chromium reads x-google-start-bitrate
  // from the remote H.264 fmtp line).
  const kbps = Math.round(cfg.bitrate / 1000 * 0.8);
  answer = answer.replace(/^(a=fmtp:\d+ [^\r\n]*packetization-mode=1[^\r\n]*)$/gm, `$1;x-google-start-bitrate=${kbps}`);
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  return { ok: true };
}

// seanceStats reports the capture and the publication.
self.seanceStats = async () => {
  const out = { state: pc ? pc.connectionState : 'none', error: startError, frames: 0, framesSent: 0, bytes: 0, audioBytes: 0 };
  if (stream) out.tracks = stream.getTracks().map((t) => t.kind + ':' + t.readyState).join(',');
  if (!pc) return out;
  (await pc.getStats()).forEach((s) => {
    if (s.type === 'media-source' && s.kind === 'video') {
      out.frames = s.frames || 0;
      out.fps = s.framesPerSecond || 0;
      out.width = s.width || 0;
      out.height = s.height || 0;
    } else if (s.type === 'outbound-rtp' && s.kind === 'video') {
      out.framesSent = s.framesSent || 0;
      out.bytes = s.bytesSent || 0;
      out.keyframes = s.keyFramesEncoded || 0;
      out.encoder = s.encoderImplementation || '';
      out.limitation = s.qualityLimitationReason || '';
      out.targetBitrate = s.targetBitrate || 0;
      out.encodedFps = s.framesPerSecond || 0;
    } else if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
      out.availableBitrate = s.availableOutgoingBitrate || 0;
    } else if (s.type === 'outbound-rtp' && s.kind === 'audio') {
      out.audioBytes = s.bytesSent || 0;
    } else if (s.type === 'media-source' && s.kind === 'audio') {
      out.audioLevel = s.audioLevel || 0;
    }
  });
  return out;
};
