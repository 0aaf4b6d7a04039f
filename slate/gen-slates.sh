#!/usr/bin/env bash
# gen-slates.sh generates the built-in slates embedded by clip.go: one still
# picture saying "Séance interrompue — reprise dans quelques instants" /
# "Session interrupted — resuming shortly", as H.264 Annex-B clips of 2 s
# (one loop) for each size and frame rate seance picks from:
#
#   slate-<width>x<height>-<fps>.h264   1920x1080, 1280x720, 854x480, 640x360
#                                       at 25 and 30 fps
#
# Each clip is Constrained Baseline (decodable by every H.264 decoder that
# plays the live stream, browsers' WebRTC decoders included), one IDR then
# P-frames (a static picture: each P-frame is a few bytes of skipped
# macroblocks), no B-frames, an access unit delimiter before every frame so
# that clip.go can split the frames. Audio is not stored: seance makes the
# silence at run time for the live stream's own AAC configuration.
#
# Developers run it (make slates) after changing the picture; CI does not.
# It writes next to itself. Needs ffmpeg with libx264 and drawtext, and the
# DejaVu fonts (Debian: fonts-dejavu-core).
set -euo pipefail

cd "$(dirname "$0")"
command -v ffmpeg >/dev/null || { echo "gen-slates.sh: ffmpeg not found" >&2; exit 1; }

bold=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf
regular=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
for f in "$bold" "$regular"; do
	[[ -r "$f" ]] || { echo "gen-slates.sh: $f missing (apt-get install fonts-dejavu-core)" >&2; exit 1; }
done

# Sizes are relative to the picture height, so every size looks the same.
background=0x1b2a41
vf="drawtext=fontfile=${bold}:text='Séance interrompue':fontsize=h/12:fontcolor=white:x=(w-tw)/2:y=h*0.42-th"
vf+=",drawtext=fontfile=${regular}:text='reprise dans quelques instants':fontsize=h/20:fontcolor=white:x=(w-tw)/2:y=h*0.47"
vf+=",drawtext=fontfile=${regular}:text='Session interrupted — resuming shortly':fontsize=h/28:fontcolor=0xc8d0dc:x=(w-tw)/2:y=h*0.70"
vf+=",format=yuv420p"

rm -f slate-*.h264
for size in 1920x1080 1280x720 854x480 640x360; do
	for fps in 25 30; do
		gop=$((2 * fps))
		out="slate-${size}-${fps}.h264"
		ffmpeg -hide_banner -loglevel error -y \
			-f lavfi -i "color=c=${background}:size=${size}:rate=${fps}" -vf "$vf" \
			-frames:v "$gop" -an \
			-c:v libx264 -profile:v baseline -preset veryslow -qp 20 \
			-g "$gop" -keyint_min "$gop" -sc_threshold 0 -bf 0 -refs 1 \
			-x264-params aud=1 -bsf:v filter_units=remove_types=6 \
			-f h264 "$out"
	done
done

ls -l slate-*.h264
du -cb slate-*.h264 | tail -1
