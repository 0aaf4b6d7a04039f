#!/usr/bin/env bash
# Benchmark seance's WebRTC (WHEP) egress, and MediaMTX's on the same load
# when given its binary.
#
#   bench/run.sh SEANCE_BIN [MEDIAMTX_BIN]
#
# For each server and each N: start the server fresh, publish the cached
# 720p30 clip over RTMP with `ffmpeg -c copy`, run bench/whepload with N
# viewers, stop everything. Then print both servers side by side. Results:
# bench/results/<time>/ (one JSON line per run in results.jsonl, logs).
# Everything listens on 127.0.0.1 (seance's WebRTC UDP port binds every
# interface: it has no setting for that; the viewers only use loopback).
#
# Environment (defaults):
#   NS="50 100 200"  DURATION=20s  RAMP=5s  SETTLE=3s
#   REPEAT=1         runs of each (server, N); the summary shows medians
#   SEANCE_PPROF=host:port  also fetch a CPU profile of every seance run
#                           over the window, and a heap profile at its end
#                           (only for a seance binary that
#                           serves net/http/pprof there; seance does not)
#   ports: SEANCE_HTTP=28080 SEANCE_ADMIN=29090 SEANCE_RTMP=21935
#          SEANCE_UDP=28189 MTX_WEBRTC=8889 MTX_RTMP=21936 MTX_UDP=28190
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
	echo "usage: $0 SEANCE_BIN [MEDIAMTX_BIN]" >&2
	exit 2
fi
SEANCE_BIN=$(realpath "$1")
MEDIAMTX_BIN=${2:+$(realpath "$2")}
NS=${NS:-"50 100 200"}
DURATION=${DURATION:-20s}
RAMP=${RAMP:-5s}
SETTLE=${SETTLE:-3s}
REPEAT=${REPEAT:-1}
SEANCE_HTTP=${SEANCE_HTTP:-28080}
SEANCE_ADMIN=${SEANCE_ADMIN:-29090}
SEANCE_RTMP=${SEANCE_RTMP:-21935}
SEANCE_UDP=${SEANCE_UDP:-28189}
MTX_WEBRTC=${MTX_WEBRTC:-8889}
MTX_RTMP=${MTX_RTMP:-21936}
MTX_UDP=${MTX_UDP:-28190}
KEY=bench-$RANDOM$RANDOM

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
out=$here/out
res=$here/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$out" "$res"
jsonl=$res/results.jsonl

for tool in ffmpeg go jq ss curl; do
	command -v "$tool" >/dev/null || { echo "$0: $tool is needed" >&2; exit 1; }
done
[[ -x $SEANCE_BIN ]] || { echo "$0: $SEANCE_BIN is not executable" >&2; exit 1; }
[[ -z $MEDIAMTX_BIN || -x $MEDIAMTX_BIN ]] || { echo "$0: $MEDIAMTX_BIN is not executable" >&2; exit 1; }

# Processes this script started, stopped on exit whatever happens.
pids=()
stop() { # stop PID: SIGTERM, then SIGKILL after 5 s
	local pid=$1
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
cleanup() {
	for pid in "${pids[@]}"; do stop "$pid"; done
	pids=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { # port_free tcp|udp PORT
	! ss -Hln"${1:0:1}" "sport = :$2" | grep -q .
}
need_ports() {
	local p
	for p in "$@"; do
		if ! port_free "${p%%:*}" "${p#*:}"; then
			echo "$0: ${p%%:*} port ${p#*:} is in use: set another (see the top of $0)" >&2
			exit 1
		fi
	done
}

# 1. The source, encoded once: what Jibri sends (720p30, ~2.5 Mbit/s, 2 s
#    GOP, AAC 44.1 kHz).
src=$out/source.flv
if [[ ! -s $src ]]; then
	echo "encoding $src (once)…"
	timeout 600 ffmpeg -hide_banner -loglevel error -y \
		-f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=44100 -t 60 \
		-c:v libx264 -pix_fmt yuv420p -r 30 -preset veryfast -tune zerolatency -g 60 \
		-b:v 2500k -maxrate 2976k -bufsize 5952k -c:a aac -ar 44100 -b:a 128k "$out/source.tmp.flv"
	mv "$out/source.tmp.flv" "$src"
fi

# 2. The load generator, built once so that compiling is not measured.
(cd "$repo" && go build -o "$out/whepload" ./bench/whepload)

publish() { # publish URL LOG: loop the clip without re-encoding
	timeout 900 ffmpeg -hide_banner -loglevel error -nostdin -re -stream_loop -1 -i "$src" -c copy -f flv "$1" >"$2" 2>&1 &
	pids+=($!)
}

load() { # load LABEL URL PID N
	local label=$1 url=$2 pid=$3 n=$4 prof="" profpid=""
	if [[ $label == seance && -n ${SEANCE_PPROF:-} ]]; then
		prof=$res/seance-$n-$r
		# The window starts SETTLE + RAMP after live; sample 2 s less than
		# it, then take a heap profile (all viewers still connected).
		( sleep $((${SETTLE%s} + ${RAMP%s} + 2)); curl -fsS -m $((${DURATION%s} + 10)) -o "$prof.cpu.pprof" \
			"http://$SEANCE_PPROF/debug/pprof/profile?seconds=$((${DURATION%s} - 2))" || echo "pprof: failed" >&2
		  curl -fsS -m 10 -o "$prof.heap.pprof" "http://$SEANCE_PPROF/debug/pprof/heap" || echo "pprof heap: failed" >&2 ) &
		profpid=$!
	fi
	echo "== $label N=$n"
	timeout 300 "$out/whepload" -url "$url" -n "$n" -duration "$DURATION" -ramp "$RAMP" \
		-wait-live 30s -settle "$SETTLE" -pid "$pid" -label "$label" -json "$jsonl" \
		| tee "$res/$label-$n-$r.txt" | grep -v '^{' || echo "$label N=$n: whepload failed" >&2
	# Only the profiler: the publisher runs on until cleanup.
	[[ -z $profpid ]] || wait "$profpid"
}

run_seance() { # run_seance N
	need_ports tcp:"$SEANCE_HTTP" tcp:"$SEANCE_ADMIN" tcp:"$SEANCE_RTMP" udp:"$SEANCE_UDP"
	cat >"$res/seance.yaml" <<-EOF
		log: {level: warn, format: json}
		public: {listen: "127.0.0.1:$SEANCE_HTTP"}
		admin: {listen: "127.0.0.1:$SEANCE_ADMIN"}
		rtmp: {listen: "127.0.0.1:$SEANCE_RTMP"}
		rtsp: {listen: ""}
		webrtc: {udp_port: $SEANCE_UDP, announce_loopback: true}
		channels:
		  - name: bench
		    ingest: {key: "$KEY"}
	EOF
	"$SEANCE_BIN" -config "$res/seance.yaml" >>"$res/seance-$1-$r.log" 2>&1 &
	local pid=$!
	pids+=($pid)
	sleep 1
	publish "rtmp://127.0.0.1:$SEANCE_RTMP/live/bench?key=$KEY" "$res/ffmpeg-seance-$1-$r.log"
	load seance "http://127.0.0.1:$SEANCE_HTTP/whep/bench" "$pid" "$1"
	cleanup
}

run_mediamtx() { # run_mediamtx N
	need_ports tcp:"$MTX_WEBRTC" tcp:"$MTX_RTMP" udp:"$MTX_UDP"
	cat >"$res/mediamtx.yml" <<-EOF
		logLevel: warn
		api: no
		metrics: no
		pprof: no
		playback: no
		rtsp: no
		hls: no
		srt: no
		moq: no
		rtmp: yes
		rtmpAddress: 127.0.0.1:$MTX_RTMP
		webrtc: yes
		webrtcAddress: 127.0.0.1:$MTX_WEBRTC
		webrtcLocalUDPAddress: 127.0.0.1:$MTX_UDP
		webrtcLocalTCPAddress: ""
		webrtcIPsFromInterfaces: yes
		webrtcIPsFromInterfacesList: [lo]
		webrtcAdditionalHosts: []
		authInternalUsers:
		  - user: any
		    pass:
		    ips: []
		    permissions:
		      - action: publish
		      - action: read
		paths:
		  bench:
	EOF
	"$MEDIAMTX_BIN" "$res/mediamtx.yml" >>"$res/mediamtx-$1-$r.log" 2>&1 &
	local pid=$!
	pids+=($pid)
	sleep 1
	publish "rtmp://127.0.0.1:$MTX_RTMP/bench" "$res/ffmpeg-mediamtx-$1-$r.log"
	load mediamtx "http://127.0.0.1:$MTX_WEBRTC/bench/whep" "$pid" "$1"
	cleanup
}

{
	echo "seance: $("$SEANCE_BIN" version 2>&1 | head -1), $SEANCE_BIN sha256 $(sha256sum <"$SEANCE_BIN" | cut -c1-12), built $(date -u -r "$SEANCE_BIN" +%FT%TZ)"
	[[ -z $MEDIAMTX_BIN ]] || echo "mediamtx: $("$MEDIAMTX_BIN" --version 2>&1 | head -1), $MEDIAMTX_BIN sha256 $(sha256sum <"$MEDIAMTX_BIN" | cut -c1-12)"
	echo "repository now: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null) (uncommitted diff $(git -C "$repo" diff HEAD 2>/dev/null | sha256sum | cut -c1-12))"
	echo "machine: $(nproc) cores, $(uname -r); NS=$NS DURATION=$DURATION RAMP=$RAMP SETTLE=$SETTLE REPEAT=$REPEAT"
} | tee "$res/env.txt"

# One server at a time, so the two never compete for the cores; the servers
# alternate so that both see the same background load of a shared machine.
for r in $(seq "$REPEAT"); do
	for n in $NS; do
		run_seance "$n"
		[[ -z $MEDIAMTX_BIN ]] || run_mediamtx "$n"
	done
done

# 3. Side by side: the median of the repetitions of each (N, server).
{
	echo
	echo "server CPU, RSS and loss over a ${DURATION} window after a ${RAMP} ramp; first keyframe from each offer (POST); median of $REPEAT run(s)"
	echo "(above idle: minus the CPU the server used with the stream and no viewer; other cores: CPU the machine spent on neither server nor generator, max over the runs)"
	jq -rs '
		def med: map(select(. != null and . >= 0)) | sort | if length == 0 then -1 elif length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
		def f(d): if . == null or . < 0 then "n/a" else (. * pow(10; d) | round / pow(10; d) | tostring) end;
		(["N", "server", "runs", "ok", "CPU ms/viewer/s", "above idle", "CPU µs/pkt", "RSS KiB/viewer", "kbit/s/viewer", "loss %", "1st keyframe p50 ms", "p95 ms", "gen CPU ms/viewer/s", "other cores"] | @tsv),
		(group_by([.viewers, .label])[] |
			[.[0].viewers, .[0].label, length, (map(.ok) | min),
			 (map(.server_cpu_ms_per_viewer_s) | med | f(3)), (map(.server_cpu_ms_per_viewer_s_marginal) | med | f(3)),
			 (map(.server_cpu_us_per_packet) | med | f(2)), (map(.server_rss_per_viewer_kib) | med | f(0)),
			 (map(.kbps_per_viewer_mean) | med | f(0)), (map(.loss_pct) | med | f(3)),
			 (map(.first_keyframe_p50_ms) | med | f(0)), (map(.first_keyframe_p95_ms) | med | f(0)),
			 (map(.gen_cpu_ms_per_viewer_s) | med | f(3)), (map(.other_cores) | max | f(2))] | @tsv)
	' "$jsonl" | column -t -s $'\t'
	if [[ -n $MEDIAMTX_BIN ]]; then
		echo
		echo "seance / MediaMTX (medians)"
		jq -rs '
			def med: map(select(. != null and . >= 0)) | sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
			def ratio(a; b): if a == null or b == null or b <= 0 then "n/a" else (a / b * 100 | round / 100 | tostring) end;
			(["N", "CPU per viewer", "above idle", "RSS per viewer"] | @tsv),
			(group_by(.viewers)[] | map(select(.label == "seance")) as $s | map(select(.label == "mediamtx")) as $m |
				select(($s | length) > 0 and ($m | length) > 0) |
				[$s[0].viewers,
				 ratio($s | map(.server_cpu_ms_per_viewer_s) | med; $m | map(.server_cpu_ms_per_viewer_s) | med),
				 ratio($s | map(.server_cpu_ms_per_viewer_s_marginal) | med; $m | map(.server_cpu_ms_per_viewer_s_marginal) | med),
				 ratio($s | map(.server_rss_per_viewer_kib) | med; $m | map(.server_rss_per_viewer_kib) | med)] | @tsv)
		' "$jsonl" | column -t -s $'\t'
	fi
	echo
	echo "results: $res"
} | tee "$res/summary.txt"
