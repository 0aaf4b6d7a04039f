package hls

import (
	"bytes"
	"slices"
	"strconv"
	"sync/atomic"
)

// gapFilter takes out of a low-latency muxer's media playlists the
// placeholder segments gohlslib lists at the start of a session.
//
// When its first segment is ready, gohlslib's low-latency muxer lists seven
// segments marked #EXT-X-GAP (URI gap.mp4, media sequence numbers 0 to 6)
// before it, for iOS; they leave the playlist one by one as real segments
// come, so they are there for the session's first seven segments (7 to 14 s).
// Safari and hls.js skip them, but Chromium's native HLS player, ffmpeg and
// VLC do not know the tag (draft-pantos-hls-rfc8216bis section 4.4.4.7): they
// fetch gap.mp4, get a 404 and fail.
//
// The filter drops those segments and advances #EXT-X-MEDIA-SEQUENCE by their
// number, so every real segment keeps its media sequence number: _HLS_msn
// blocking reloads, parts and the preload hint stay as gohlslib made them. In
// a delta update (_HLS_skip, section 6.2.5.1) gaps may be among the skipped
// segments; #EXT-X-SKIP's count loses them too. Every playlist a muxer serves
// goes through its filter, so a client never sees a gap, and the media
// sequence it sees never goes backwards.
//
// A gapFilter serves one media playlist (each of a muxer's streams has its
// own). Gaps come first and only at the start, so they are the segments numbered
// below end, the number of the first real segment: the filter learns it from
// the first playlist that shows a gap followed by a segment (a full playlist
// of that time shows them all, so a delta update, which needs an earlier full
// playlist, comes after it). It is safe for concurrent use.
type gapFilter struct {
	// end is the media sequence number of the first real segment, 0 while
	// no gap has been seen.
	end atomic.Int64
}

var (
	tagGap           = []byte("#EXT-X-GAP")
	tagMediaSequence = []byte("#EXT-X-MEDIA-SEQUENCE:")
	tagSkip          = []byte("#EXT-X-SKIP:SKIPPED-SEGMENTS=")
	tagInf           = []byte("#EXTINF:")
)

// filter returns pl without its leading gaps, or pl itself when it has
// none, or when it is not laid out as gohlslib lays it out (then a player
// that does not know gaps fails on it as before, and nothing else breaks).
func (f *gapFilter) filter(pl []byte) []byte {
	end := f.end.Load()
	if end == 0 {
		if !bytes.Contains(pl, tagGap) {
			return pl // no gap seen yet, none here
		}
	} else if seq, ok := mediaSequence(pl); !ok || seq >= end {
		return pl // the common case: the session's gaps are gone
	}
	lines := bytes.SplitAfter(pl, []byte("\n"))
	seqLine, skipLine := -1, -1
	var seq, skipped int64
	inSegments := false // past the leading gaps
	gaps := 0           // leading gaps shown
	hasSegment := false // a segment follows them
	var out [][]byte
	for i := 0; i < len(lines); i++ {
		line := bytes.TrimRight(lines[i], "\r\n")
		switch {
		case bytes.HasPrefix(line, tagMediaSequence):
			n, err := strconv.ParseInt(string(line[len(tagMediaSequence):]), 10, 64)
			if err != nil || n < 0 || seqLine >= 0 {
				return pl
			}
			seqLine, seq = len(out), n
		case bytes.HasPrefix(line, tagSkip):
			n, err := strconv.ParseInt(string(line[len(tagSkip):]), 10, 64)
			if err != nil || n < 0 || skipLine >= 0 {
				return pl
			}
			skipLine, skipped = len(out), n
		case bytes.Equal(line, tagGap) && !inSegments:
			// gohlslib writes a gap as these three lines.
			if i+2 >= len(lines) || !bytes.HasPrefix(lines[i+1], tagInf) || !bytes.Equal(bytes.TrimRight(lines[i+2], "\r\n"), []byte("gap.mp4")) {
				return pl
			}
			gaps++
			i += 2
			continue
		case isSegmentLine(line):
			inSegments = true
		}
		if len(line) > 0 && line[0] != '#' {
			hasSegment = true // a URI
		}
		out = append(out, lines[i])
	}
	if seqLine < 0 {
		return pl
	}
	if gaps > 0 {
		if !hasSegment {
			return pl // gaps and nothing else: gohlslib never serves that
		}
		end = seq + skipped + int64(gaps)
		f.end.Store(end)
	}
	if end == 0 || seq >= end {
		return pl
	}
	// The playlist's first end-seq segments are gaps: gaps of them shown,
	// the others skipped.
	hidden := end - seq - int64(gaps)
	if hidden < 0 || hidden > skipped || (hidden > 0 && skipLine < 0) {
		return pl
	}
	out[seqLine] = withValue(out[seqLine], tagMediaSequence, end)
	if skipLine >= 0 {
		out[skipLine] = withValue(out[skipLine], tagSkip, skipped-hidden)
	}
	return bytes.Join(out, nil)
}

// withValue returns tag with the value v, ended as line is.
func withValue(line, tag []byte, v int64) []byte {
	rest := line[len(tag):]
	eol := rest[len(bytes.TrimRight(rest, "\r\n")):]
	return slices.Concat(tag, strconv.AppendInt(nil, v, 10), eol)
}

// mediaSequence returns the value of a media playlist's
// #EXT-X-MEDIA-SEQUENCE tag.
func mediaSequence(pl []byte) (int64, bool) {
	i := bytes.Index(pl, tagMediaSequence)
	if i < 0 {
		return 0, false
	}
	v := pl[i+len(tagMediaSequence):]
	if j := bytes.IndexAny(v, "\r\n"); j >= 0 {
		v = v[:j]
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil && n >= 0
}

// isSegmentLine reports whether a media playlist line belongs to a media
// segment (or a part, or what follows the segments), not to the header.
func isSegmentLine(line []byte) bool {
	if len(line) == 0 {
		return false
	}
	if line[0] != '#' {
		return true // a URI
	}
	for _, p := range []string{"#EXTINF:", "#EXT-X-PART:", "#EXT-X-PROGRAM-DATE-TIME:", "#EXT-X-DISCONTINUITY",
		"#EXT-X-BYTERANGE:", "#EXT-X-BITRATE:", "#EXT-X-PRELOAD-HINT:", "#EXT-X-RENDITION-REPORT:", "#EXT-X-DATERANGE:"} {
		if bytes.HasPrefix(line, []byte(p)) {
			return true
		}
	}
	return false
}
