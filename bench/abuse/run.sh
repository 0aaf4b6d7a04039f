#!/usr/bin/env bash
# Runs every attack of issue 13 at once for DURATION against a live
# channel watched by N WHEP viewers, from loopback addresses other than
# the viewers' and the publisher's, and prints: viewers lost (whepload),
# the publisher's reconnect times (ffmpeg killed and restarted three times
# during the attack), server CPU and RSS, and what each attack got.
#
#	bench/abuse/run.sh [SEANCE_BIN]   (builds ./cmd/seance when omitted)
#	ATTACK=0 bench/abuse/run.sh       (the same without the attacks: the baseline)
set -euo pipefail
N=${N:-50}
DURATION=${DURATION:-60}
HTTP=${HTTP:-28080} ADMIN=${ADMIN:-29090} RTMP=${RTMP:-21935} RTSP=${RTSP:-28554} UDP=${UDP:-28189}
KEY=abuse-$RANDOM$RANDOM

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$here")")
out=$here/out
mkdir -p "$out"
for tool in ffmpeg go curl jq bc; do
	command -v "$tool" >/dev/null || { echo "$0: $tool is needed" >&2; exit 1; }
done
(cd "$repo" && go build -o "$out/whepload" ./bench/whepload && go build -o "$out/abuse" ./bench/abuse)
if [[ $# -ge 1 ]]; then bin=$(realpath "$1"); else (cd "$repo" && go build -o "$out/seance" ./cmd/seance); bin=$out/seance; fi

src=$out/source.flv
if [[ ! -s $src ]]; then
	ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=640x360:rate=30 -f lavfi -i sine=frequency=440:sample_rate=44100 \
		-t 30 -c:v libx264 -pix_fmt yuv420p -preset veryfast -tune zerolatency -g 60 -b:v 1000k -c:a aac -ar 44100 -b:a 128k "$src"
fi

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

cat >"$out/seance.yaml" <<-YAML
	log: {level: warn}
	public: {listen: "127.0.0.1:$HTTP"}
	admin: {listen: "127.0.0.1:$ADMIN"}
	rtmp: {listen: "127.0.0.1:$RTMP"}
	rtsp: {listen: "127.0.0.1:$RTSP", udp_port: $((UDP + 111))}
	webrtc: {udp_port: $UDP, announce_loopback: true}
	hls: {enabled: false}
	channels:
	  - name: bench
	    ingest: {key: "$KEY"}
	    grace: 30s
YAML
"$bin" -config "$out/seance.yaml" >"$out/seance.log" 2>&1 &
server=$!
pids+=("$server")

publish() { ffmpeg -hide_banner -loglevel error -nostdin -re -stream_loop -1 -i "$src" -c copy -f flv "rtmp://127.0.0.1:$RTMP/live/bench?key=$KEY" >>"$out/ffmpeg.log" 2>&1 & pub=$!; }
state() { curl -fsS "http://127.0.0.1:$ADMIN/api/v1/channels/bench" 2>/dev/null | jq -r .state 2>/dev/null || echo none; }
rm -f "$out/reconnects.txt"
publish
for _ in $(seq 100); do [[ $(state) == live ]] && break; sleep 0.1; done

"$out/whepload" -url "http://127.0.0.1:$HTTP/whep/bench" -n "$N" -duration "$((DURATION - 10))s" -ramp 5s -settle 2s \
	-wait-live 30s -pid "$server" -label abuse >"$out/whepload.txt" 2>&1 &
load=$!
sleep 3
if [[ ${ATTACK:-1} == 1 ]]; then
	"$out/abuse" -http "127.0.0.1:$HTTP" -rtmp "127.0.0.1:$RTMP" -rtsp "127.0.0.1:$RTSP" -channel bench -duration "${DURATION}s" >"$out/abuse.txt" 2>&1 &
else
	echo "(no attack: baseline)" >"$out/abuse.txt"
	sleep "$DURATION" &
fi
attacker=$!
pids+=("$attacker")

# The publisher drops and reconnects three times during the attack.
for at in 15 30 45; do
	sleep 15
	kill "$pub" 2>/dev/null; wait "$pub" 2>/dev/null || true
	for _ in $(seq 50); do [[ $(state) != live ]] && break; sleep 0.05; done
	t0=$(date +%s.%N)
	publish
	ok=no
	for _ in $(seq 400); do [[ $(state) == live ]] && { ok=yes; break; }; sleep 0.05; done
	t1=$(date +%s.%N)
	echo "publisher reconnect at ${at}s: live=$ok after $(echo "$t1 - $t0" | bc)s" >>"$out/reconnects.txt"
done
wait "$load" || true
wait "$attacker" || true
kill "$pub" 2>/dev/null || true
echo "== viewers (whepload)"; grep -v '^{' "$out/whepload.txt"
echo "== attacks"; cat "$out/abuse.txt"
echo "== publisher reconnects"; cat "$out/reconnects.txt"
echo "== server: peak RSS $(grep VmHWM /proc/$server/status | awk '{print $2, $3}')"
