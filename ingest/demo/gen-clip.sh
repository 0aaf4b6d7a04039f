#!/usr/bin/env bash
# gen-clip.sh generates the clip embedded by the demo source (clip.go):
#   clip.h264  H.264 Annex-B, 1280x720, 30 fps, 240 frames (8 s), 2 s closed
#              GOPs, no B-frames, an access unit delimiter before every frame
#   clip.aac   AAC-LC ADTS, 48 kHz stereo, 440 Hz tone, >= 8 s
# 8 s is the shortest length where 2 s GOPs, 30 fps frames and 1024-sample AAC
# frames at 48 kHz (375 of them) all line up, so the clip loops seamlessly.
#
# Run it from anywhere; it writes next to itself. Needs ffmpeg with libx264.
set -euo pipefail

cd "$(dirname "$0")"
command -v ffmpeg >/dev/null || { echo "gen-clip.sh: ffmpeg not found" >&2; exit 1; }

dur=8
src="testsrc2=size=1280x720:rate=30:duration=${dur}"
label="seance — démo"

# Overlay a title when drawtext and a font are available; otherwise keep the
# plain test pattern (it already shows a moving frame counter).
font=""
if command -v fc-match >/dev/null; then
	font="$(fc-match -f '%{file}' 'DejaVu Sans:bold' 2>/dev/null || true)"
fi
vf="format=yuv420p"
filters="$(ffmpeg -hide_banner -filters 2>/dev/null || true)"
if [[ -n "$font" && -r "$font" && "$filters" == *" drawtext "* ]]; then
	vf="drawtext=fontfile='${font}':text='${label}':fontsize=56:fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=16:x=(w-tw)/2:y=h-th-48,${vf}"
else
	echo "gen-clip.sh: drawtext or font unavailable, using plain testsrc2" >&2
fi

encode_video() {
	ffmpeg -hide_banner -loglevel error -y \
		-f lavfi -i "$src" -vf "$1" \
		-frames:v $((dur * 30)) -an \
		-c:v libx264 -profile:v main -preset medium -tune zerolatency \
		-g 60 -keyint_min 60 -sc_threshold 0 -bf 0 \
		-b:v 800k -maxrate 900k -bufsize 1600k \
		-x264-params aud=1:repeat-headers=1 \
		-f h264 clip.h264
}

if ! encode_video "$vf"; then
	echo "gen-clip.sh: drawtext failed, using plain testsrc2" >&2
	encode_video "format=yuv420p"
fi

# ffmpeg's AAC encoder starts with one priming frame (1024 samples of encoder
# delay) that ADTS cannot signal. Drop it so the first frame starts at sample
# 0: 440 Hz makes exactly 3520 periods in 8 s, so the tone loops without a
# click or a gap.
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
ffmpeg -hide_banner -loglevel error -y \
	-f lavfi -i "sine=frequency=440:sample_rate=48000:duration=${dur}.1" \
	-ac 2 -c:a aac -profile:a aac_low -b:a 96k \
	-f adts "$tmp"
read -r b0 b1 _ b3 b4 b5 < <(od -An -tu1 -N6 "$tmp")
if ((b0 != 0xff || (b1 & 0xf0) != 0xf0)); then
	echo "gen-clip.sh: ffmpeg did not write ADTS" >&2
	exit 1
fi
first=$((((b3 & 3) << 11) | (b4 << 3) | (b5 >> 5)))
tail -c +$((first + 1)) "$tmp" >clip.aac

ls -l clip.h264 clip.aac
