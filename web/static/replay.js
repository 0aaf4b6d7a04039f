// seance's replays: plays a past session of the channel in the page, in a
// native <video controls> (the browser seeks with HTTP range requests), and
// goes on with the next part of a session split into several files.
// Without JavaScript the links open the files themselves. Vanilla JS,
// nothing from another origin.
'use strict';

(() => {
  const root = document.querySelector('.replays');
  if (!root) return;
  const box = root.querySelector('.replay');
  const video = root.querySelector('.replay-video');
  const now = root.querySelector('.replay-now');
  const links = Array.from(root.querySelectorAll('a.replay-link'));
  let current = -1;

  // play starts link i; focus moves to the title of what plays, so that
  // keyboard and screen reader users land on the player.
  function play(i, focus) {
    const a = links[i];
    current = i;
    links.forEach((l, j) => {
      if (j === i) l.setAttribute('aria-current', 'true');
      else l.removeAttribute('aria-current');
    });
    box.hidden = false;
    now.textContent = box.dataset.playing + (a.dataset.title || a.textContent);
    video.src = a.href;
    const p = video.play();
    // Browsers may refuse to start with sound without a click on the
    // video itself: the controls are there.
    if (p) p.catch(() => {});
    if (focus) now.focus();
  }

  links.forEach((a, i) => {
    a.addEventListener('click', (e) => {
      // Let the browser handle new tabs, downloads and other modifiers.
      if (e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      play(i, true);
    });
  });

  // The parts of one session follow each other.
  video.addEventListener('ended', () => {
    const next = links[current + 1];
    if (next && next.dataset.session === links[current].dataset.session) play(current + 1, false);
  });

  // One sound at a time: the live picture is muted while a replay plays.
  video.addEventListener('play', () => {
    const live = document.querySelector('.player .video');
    if (live && !live.muted) live.muted = true;
  });

  window.seanceReplay = { video, play, links };
})();
