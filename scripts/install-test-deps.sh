#!/usr/bin/env bash
# Installs the real peers the test suite talks to (ffmpeg, ffprobe, nginx
# with the RTMP module) from
# Debian's packages when they are missing. Tests never skip for a missing
# tool: if this cannot install them, it fails with a clear message.
set -euo pipefail

need=()
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
# nginx with the RTMP module stands in for YouTube's ingestion servers.
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
[ -e /usr/lib/nginx/modules/ngx_rtmp_module.so ] || need+=(libnginx-mod-rtmp)

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
for t in ffmpeg ffprobe nginx; do
  command -v "$t" >/dev/null 2>&1 || { echo "$t is still missing after apt-get install" >&2; exit 1; }
done
