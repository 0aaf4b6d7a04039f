// seance meeting capture: service worker. seance calls seanceStart over
// the DevTools protocol once the meeting is joined. Capture needs a media
// stream id for the meeting tab, which only the service worker can get
// (chrome.tabCapture), and a document to use it in: the offscreen document
// (reason USER_MEDIA), which publishes over WHIP.
'use strict';

async function offscreenDocument() {
  const open = await chrome.runtime.getContexts({ contextTypes: ['OFFSCREEN_DOCUMENT'] });
  if (open.length) return;
  await chrome.offscreen.createDocument({
    url: 'offscreen.html',
    reasons: ['USER_MEDIA'],
    justification: 'capture the meeting tab and publish it to seance',
  });
}

// seanceStart captures the meeting tab (the only web page) and publishes
// it: cfg is {whip, token, width, height, fps, bitrate}.
self.seanceStart = async (cfg) => {
  const tabs = await chrome.tabs.query({});
  const tab = tabs.find((t) => /^https?:/.test(t.url || t.pendingUrl || '')) || tabs[0];
  if (!tab) throw new Error('no meeting tab to capture');
  const streamId = await chrome.tabCapture.getMediaStreamId({ targetTabId: tab.id });
  await offscreenDocument();
  const res = await chrome.runtime.sendMessage({ type: 'seance-start', streamId, cfg });
  if (!res || res.error) throw new Error(res ? res.error : 'the capture document did not answer');
  return res;
};
