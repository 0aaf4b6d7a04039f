package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/seance-relay/seance/relay"
)

// A recording file is a fragmented MP4 (ISO/IEC 14496-12) laid out so that
// it can be finished in place, without rewriting what was recorded:
//
//	ftyp
//	moov (mvhd, trak video, trak audio, mvex (mehd, trex…))
//	free        reserved room for the sidx written when the file is finished
//	moof mdat   one fragment (≤ 2 s), written with a single write call
//	moof mdat   …
//	mfra        written when the file is finished (tfra per track, mfro)
//
// Finishing the file (at its end, or when repairing one cut by a crash)
// writes the segment index (sidx, 8.16.3) into the reserved room, the
// movie's duration into mvhd and mehd, and appends the random access box
// (mfra, 8.8.9). Players then know the duration and where every fragment
// starts without reading the whole file, which is what makes seeking over
// HTTP range requests fast.

// Track IDs and timescales of the files seance writes.
const (
	videoTrackID   = 1
	audioTrackID   = 2
	videoTimescale = 90000
	// movieTimescale is mvhd's timescale (mediacommon writes 1000).
	movieTimescale = 1000
)

// mp4Epoch is the origin of MP4 times (mvhd creation_time, 8.2.2.3).
var mp4Epoch = time.Date(1904, 1, 1, 0, 0, 0, 0, time.UTC)

// Sizes of the boxes finishing writes.
const (
	mehdSize       = 20 // version 1: 64-bit fragment_duration
	sidxHeaderSize = 40 // version 1, without references
	sidxRefSize    = 12
	freeHeaderSize = 8
	tfraEntrySize  = 19 // version 1, 1-byte traf/trun/sample numbers
	mfroSize       = 16
)

// reserveFor returns the room reserved after the moov for the two sidx
// (video, audio) of a file of up to segment: one reference per second,
// plus slack. Fragments
// last at least 1 s except around a track change, and a sidx reference may
// span several fragments when there are more of them than room.
func reserveFor(segment time.Duration) int {
	refs := int(segment/time.Second) + 64
	return 2 * (sidxHeaderSize + refs*sidxRefSize)
}

// initLayout says where finishing patches the init.
type initLayout struct {
	mvhdDuration int64 // offset of mvhd's 32-bit duration (version 0)
	mehdDuration int64 // offset of mehd's 64-bit fragment_duration (version 1)
	reserveStart int64 // the free box after the moov
	reserveEnd   int64 // where the first fragment starts
}

// buildInit returns the file's beginning: ftyp, moov with an mehd, and the
// reserved free box. created goes into mvhd (players show it as the
// recording's creation time).
func buildInit(tracks *relay.Tracks, created time.Time, reserve int) ([]byte, initLayout, error) {
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{{
		ID:        videoTrackID,
		TimeScale: videoTimescale,
		Codec:     &codecs.H264{SPS: tracks.Video.SPS, PPS: tracks.Video.PPS},
	}}}
	if a := tracks.Audio; a != nil && a.Config != nil {
		init.Tracks = append(init.Tracks, &fmp4.InitTrack{
			ID:        audioTrackID,
			TimeScale: uint32(a.Config.SampleRate),
			Codec:     &codecs.MPEG4Audio{Config: *a.Config},
		})
	}
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		return nil, initLayout{}, fmt.Errorf("writing the MP4 header: %w", err)
	}
	b := buf.Bytes()
	moov, ok := findBox(b, 0, int64(len(b)), "moov")
	if !ok {
		return nil, initLayout{}, errors.New("writing the MP4 header: no moov")
	}
	mvhd, ok := findBox(b, moov.body, moov.end, "mvhd")
	if !ok || b[mvhd.body] != 0 {
		return nil, initLayout{}, errors.New("writing the MP4 header: no version 0 mvhd")
	}
	mvex, ok := findBox(b, moov.body, moov.end, "mvex")
	if !ok {
		return nil, initLayout{}, errors.New("writing the MP4 header: no mvex")
	}
	// mvhd creation and modification times, seconds since 1904.
	secs := uint32(max(created.Sub(mp4Epoch)/time.Second, 0))
	binary.BigEndian.PutUint32(b[mvhd.body+4:], secs)
	binary.BigEndian.PutUint32(b[mvhd.body+8:], secs)

	// Insert an mehd (8.8.2) as mvex's first child; its duration is
	// written when the file is finished.
	out := make([]byte, 0, len(b)+mehdSize+reserve)
	out = append(out, b[:mvex.body]...)
	mehdAt := int64(len(out))
	out = binary.BigEndian.AppendUint32(out, mehdSize)
	out = append(out, "mehd"...)
	out = append(out, 1, 0, 0, 0)
	out = binary.BigEndian.AppendUint64(out, 0)
	out = append(out, b[mvex.body:]...)
	growBox(out, moov.start, mehdSize)
	growBox(out, mvex.start, mehdSize)

	l := initLayout{
		mvhdDuration: mvhd.body + 16,
		mehdDuration: mehdAt + 12,
		reserveStart: int64(len(out)),
	}
	out = appendFree(out, reserve)
	l.reserveEnd = int64(len(out))
	return out, l, nil
}

// growBox adds n to the 32-bit size of the box at off.
func growBox(b []byte, off int64, n uint32) {
	binary.BigEndian.PutUint32(b[off:], binary.BigEndian.Uint32(b[off:])+n)
}

// appendFree appends a free box of size n (n ≥ 8) whose content is zeros.
func appendFree(b []byte, n int) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = append(b, "free"...)
	return append(b, make([]byte, n-freeHeaderSize)...)
}

// boxRef locates one box in a byte slice or file.
type boxRef struct {
	start, body, end int64
	typ              string
}

// findBox returns the first box of type typ among the boxes in b[from:to].
func findBox(b []byte, from, to int64, typ string) (boxRef, bool) {
	for off := from; off+8 <= to; {
		size := int64(binary.BigEndian.Uint32(b[off:]))
		hdr := int64(8)
		if size == 1 {
			if off+16 > to {
				return boxRef{}, false
			}
			size = int64(binary.BigEndian.Uint64(b[off+8:]))
			hdr = 16
		}
		if size < hdr || size > to-off {
			return boxRef{}, false
		}
		if string(b[off+4:off+8]) == typ {
			return boxRef{start: off, body: off + hdr, end: off + size, typ: typ}, true
		}
		off += size
	}
	return boxRef{}, false
}

// fragment is what finishing needs to know about one moof+mdat.
type fragment struct {
	offset int64 // of the moof
	size   int64 // moof + mdat
	tracks []fragTrack
}

// fragTrack is one track's run in a fragment.
type fragTrack struct {
	id       uint32
	traf     int    // 1-based index of its traf in the moof
	base     uint64 // tfdt: decode time of the first sample, in the track's timescale
	duration uint64 // sum of the samples' durations
	sync     bool   // the first sample is a sync sample (an IDR)
	ctsFirst int64  // composition offset of the first sample
}

func (f *fragment) track(id uint32) *fragTrack {
	for i := range f.tracks {
		if f.tracks[i].id == id {
			return &f.tracks[i]
		}
	}
	return nil
}

// sidxTrack is a track the segment index covers.
type sidxTrack struct {
	id        uint32
	timescale uint32
}

// buildSidx returns room bytes holding a free box (when there is room to
// spare) then one version 1 sidx per track, the last one ending where the
// first fragment starts. Every sidx references the same byte ranges (each
// fragment carries every track), each with its own track's durations.
// When there are more fragments than room for references, consecutive
// fragments share one reference. ok is false when even that does not fit.
//
// Chromium's demuxer (FFmpeg's mov) needs a sidx for every track to seek
// without reading the file from its start, and reads the whole file at
// open when there is a gap between the sidx and the first fragment: both
// are measured in the design notes.
func buildSidx(frags []fragment, tracks []sidxTrack, room int) ([]byte, bool) {
	if len(frags) == 0 || len(tracks) == 0 {
		return nil, false
	}
	// A reference starts at each fragment that starts with a video
	// keyframe; the others (cut mid-GOP at 2 s, or without video) join
	// the previous reference. A player that seeks through the sidx lands
	// on a reference's first fragment and must find a keyframe there:
	// FFmpeg (Chromium) otherwise reads the file from its start.
	type ref struct {
		first, last int
	}
	var refs []ref
	for i := range frags {
		if v := frags[i].track(videoTrackID); len(refs) == 0 || v != nil && v.sync {
			refs = append(refs, ref{i, i})
			continue
		}
		refs[len(refs)-1].last = i
	}
	size := func(n int) int { return len(tracks) * (sidxHeaderSize + n*sidxRefSize) }
	for {
		n := len(refs)
		// The free box before the index needs at least its header.
		if left := room - size(n); left == 0 || left >= freeHeaderSize {
			break
		}
		if n == 1 {
			return nil, false
		}
		merged := refs[:0:0]
		for i := 0; i < n; i += 2 {
			r := refs[i]
			if i+1 < n {
				r.last = refs[i+1].last
			}
			merged = append(merged, r)
		}
		refs = merged
	}

	for _, r := range refs {
		var n int64
		for i := r.first; i <= r.last; i++ {
			n += frags[i].size
		}
		if n > 0x7fffffff {
			return nil, false // referenced_size has 31 bits
		}
	}
	b := make([]byte, 0, room)
	if left := room - size(len(refs)); left > 0 {
		b = appendFree(b, left)
	}
	one := sidxHeaderSize + len(refs)*sidxRefSize
	for k, t := range tracks {
		var ept uint64
		for _, f := range frags {
			if ft := f.track(t.id); ft != nil {
				ept = uint64(max(int64(ft.base)+ft.ctsFirst, 0))
				break
			}
		}
		b = binary.BigEndian.AppendUint32(b, uint32(one))
		b = append(b, "sidx"...)
		b = append(b, 1, 0, 0, 0)
		b = binary.BigEndian.AppendUint32(b, t.id)
		b = binary.BigEndian.AppendUint32(b, t.timescale)
		b = binary.BigEndian.AppendUint64(b, ept)
		// first_offset: from the end of this sidx to the first fragment,
		// over the sidx boxes that follow it.
		b = binary.BigEndian.AppendUint64(b, uint64((len(tracks)-1-k)*one))
		b = binary.BigEndian.AppendUint16(b, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(len(refs)))
		for _, r := range refs {
			var bytes int64
			var dur uint64
			for i := r.first; i <= r.last; i++ {
				bytes += frags[i].size
				if ft := frags[i].track(t.id); ft != nil {
					dur += ft.duration
				}
			}
			sap := uint32(0)
			if ft := frags[r.first].track(t.id); ft != nil && ft.sync {
				sap = 1<<31 | 1<<28 // starts_with_SAP, SAP_type 1
			}
			b = binary.BigEndian.AppendUint32(b, uint32(bytes)&0x7fffffff)
			b = binary.BigEndian.AppendUint32(b, uint32(min(dur, 0xffffffff)))
			b = binary.BigEndian.AppendUint32(b, sap)
		}
	}
	return b, true
}

// buildMfra returns the mfra box: one tfra per track, listing the
// fragments that start with a sync sample of that track.
func buildMfra(frags []fragment, trackIDs []uint32) []byte {
	var body []byte
	for _, id := range trackIDs {
		var entries []byte
		n := 0
		for _, f := range frags {
			t := f.track(id)
			if t == nil || !t.sync || t.traf > 255 {
				continue
			}
			n++
			entries = binary.BigEndian.AppendUint64(entries, uint64(max(int64(t.base)+t.ctsFirst, 0)))
			entries = binary.BigEndian.AppendUint64(entries, uint64(f.offset))
			entries = append(entries, byte(t.traf), 1, 1)
		}
		body = binary.BigEndian.AppendUint32(body, uint32(8+4+12+len(entries)))
		body = append(body, "tfra"...)
		body = append(body, 1, 0, 0, 0)
		body = binary.BigEndian.AppendUint32(body, id)
		body = binary.BigEndian.AppendUint32(body, 0) // 1-byte traf, trun and sample numbers
		body = binary.BigEndian.AppendUint32(body, uint32(n))
		body = append(body, entries...)
	}
	size := 8 + len(body) + mfroSize
	b := make([]byte, 0, size)
	b = binary.BigEndian.AppendUint32(b, uint32(size))
	b = append(b, "mfra"...)
	b = append(b, body...)
	b = binary.BigEndian.AppendUint32(b, mfroSize)
	b = append(b, "mfro"...)
	b = append(b, 0, 0, 0, 0)
	return binary.BigEndian.AppendUint32(b, uint32(size))
}
