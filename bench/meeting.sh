#!/usr/bin/env bash
# Benchmark the meeting capture: what one meeting costs the machine.
#
#   bench/meeting.sh [SEANCE_BIN]
#
# Builds seance (unless given) and bench/meetingbench, then for each case
# (picture size : participant videos the meeting page decodes) starts
# seance fresh with one channel fed by a stand-in Jitsi meeting
# (ingest/meeting/meetingtest: animation, a 440 Hz tone through WebRTC,
# and N looped 640x360 VP8 videos like a meeting's video grid), measures
# start → live, then the browser tree's CPU and PSS and seance's own CPU
# over DURATION, and stops it. Results: bench/results/meeting-<time>/.
#
# A case livekit:SIZE:N:LAYOUT (e.g. livekit:1280x720:4:speaker) joins a
# real livekit-server room instead (scripts/build-livekit-server.sh builds
# it once), where N headless Chromiums publish their fake camera at
# PARTICIPANT_SIZE (15 fps) and a tone; layout is speaker or tiles. The
# participants' own CPU is not counted, but shares the machine.
#
# Environment (defaults):
#   CASES="1280x720:0,1920x1080:0,1280x720:4,1920x1080:4"
#   PARTICIPANT_SIZE=1280x720
#   DURATION=20s  WARMUP=5s
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
for tool in go ffmpeg; do
	command -v "$tool" >/dev/null || { echo "$0: $tool is needed" >&2; exit 1; }
done
command -v chromium >/dev/null || { echo "$0: chromium is needed (apt-get install chromium)" >&2; exit 1; }
res=$here/results/meeting-$(date +%Y%m%d-%H%M%S)
mkdir -p "$res"
bin=${1:-}
if [[ -z $bin ]]; then
	bin=$res/seance
	(cd "$repo" && go build -o "$bin" ./cmd/seance)
fi
(cd "$repo" && go build -o "$res/meetingbench" ./bench/meetingbench)
{
	echo "# $(date -u +%FT%TZ) $(nproc) cores, $(chromium --version 2>/dev/null), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
	"$res/meetingbench" -seance "$(realpath "$bin")" -cases "${CASES:-1280x720:0,1920x1080:0,1280x720:4,1920x1080:4}" \
		-duration "${DURATION:-20s}" -warmup "${WARMUP:-5s}" -participant-size "${PARTICIPANT_SIZE:-1280x720}" -out "$res"
} | tee "$res/summary.txt"
