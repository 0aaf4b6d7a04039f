#!/usr/bin/env bash
# Installs the real peers the test suite talks to (ffmpeg, ffprobe, nginx
# with the RTMP module, Chromium driven by Node for the watch page) from
# Debian's packages when they are missing. Tests never skip for a missing
# tool: if this cannot install them, it fails with a clear message.
# (The browser test's npm packages, pinned in web/browsertest, are installed
# by the test itself with npm ci; it never downloads a browser.)
set -euo pipefail

need=()
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
# nginx with the RTMP module stands in for YouTube's ingestion servers; its
# HTTP proxy (in nginx-light too) for the reverse proxy in front of seance.
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
[ -e /usr/lib/nginx/modules/ngx_rtmp_module.so ] || need+=(libnginx-mod-rtmp)
# The browser test plays the watch page in Debian's Chromium, driven by
# playwright-core on Node >= 18; the meeting ingest's tests run the same
# Chromium headless, driven by seance itself (its fonts come with
# fontconfig: DejaVu is enough for the stand-in meeting page).
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
# promtool checks configs/prometheus (Debian ships it in the prometheus package).
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# Debian's coturn relays a WebRTC viewer with short-lived TURN REST
# credentials (use-auth-secret) in the TURN end-to-end test.
command -v turnserver >/dev/null 2>&1 || need+=(coturn)
# slate/gen-slates.sh (make slates) draws the built-in slates' text with the
# DejaVu fonts; the tests only read the committed slates.
[ -r /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf ] || need+=(fonts-dejavu-core)
# The Debian package's test (make test-deb): dpkg-deb and dpkg (always
# there on Debian), systemd-analyze (systemd) to verify the unit,
# systemd-nspawn (systemd-container) to run seance under its restrictions,
# unshare (util-linux) for the throwaway root's mount namespace.
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v systemd-nspawn >/dev/null 2>&1 || need+=(systemd-container)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
# The watch page in every engine (issue 11): Debian's Firefox ESR (stock
# prefs, no OpenH264: HLS through hls.js), driven over WebDriver BiDi by
# puppeteer-core; WebKitGTK's WebKitWebDriver and MiniBrowser under Xvfb,
# whose GStreamer needs the good/bad/libav plugins for HLS, MPEG-TS, fMP4,
# H.264 and AAC.
[ -x /usr/bin/firefox-esr ] || need+=(firefox-esr)
[ -x /usr/bin/WebKitWebDriver ] || need+=(webkit2gtk-driver)
[ -x /usr/bin/Xvfb ] || need+=(xvfb)
for p in gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done

# node_major prints the installed Node's major version (0 if none).
node_major() {
  local v
  v=$(node --version 2>/dev/null || echo v0)
  v=${v#v}
  echo "${v%%.*}"
}
check_node() {
  if command -v node >/dev/null 2>&1 && [ "$(node_major)" -lt 18 ]; then
    echo "The browser test needs Node.js 18 or later; $(command -v node) is $(node --version). Install a newer nodejs (Debian 12's is 18) and retry." >&2
    exit 1
  fi
}
check_node

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "The tests need: ${need[*]} (Debian packages). Run 'make test' as root, or: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "The tests need: ${need[*]}, and this is not a Debian-like system (no apt-get): install them and retry." >&2
  exit 1
fi
echo "Installing test dependencies: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# nginx's package would start a system service on port 80: tests run their
# own nginx processes, so keep it from starting.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
for t in ffmpeg ffprobe nginx node npm promtool systemd-analyze systemd-nspawn unshare dpkg-deb; do
  command -v "$t" >/dev/null 2>&1 || { echo "$t is still missing after apt-get install" >&2; exit 1; }
done
[ -x /usr/bin/chromium ] || { echo "/usr/bin/chromium is still missing after apt-get install chromium" >&2; exit 1; }
check_node
