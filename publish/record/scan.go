package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// Limits on what the scanner reads into memory: the boxes it parses are
// small in the files seance writes (a moov is ~1 KiB, a moof for 2 s of
// 60 fps video with audio ~3 KiB).
const (
	maxMoovSize = 1 << 20
	maxMoofSize = 4 << 20
)

// errNotMP4 means the file does not start with an ftyp box.
var errNotMP4 = errors.New("not an MP4 file (no ftyp box at the start)")

// scanResult is what a pass over a recording's top-level boxes finds.
type scanResult struct {
	size int64 // the file's size
	// end is where the last complete fragment ends (or the header, when
	// there is none): anything after it and before an mfra is a fragment
	// cut by a crash.
	end int64
	// finished is true when an mfra closes the file right after end.
	finished bool
	// moov is true when a complete moov was found.
	moov    bool
	created time.Time
	// layout locates what finishing patches; an offset is -1 when the box
	// is missing.
	layout      initLayout
	mvhdWide    bool // mvhd duration is 64-bit (version 1)
	mehdWide    bool
	tracks      map[uint32]*trackInfo
	frags       []fragment
	firstMoofAt int64 // -1 without fragments
}

// trackInfo is what the moov says about a track.
type trackInfo struct {
	timescale   uint32
	video       bool
	defDuration uint32 // trex defaults
	defSize     uint32
	defFlags    uint32
}

// duration is the longest track's span, from its first fragment's decode
// time to its last sample's end.
func (s *scanResult) duration() time.Duration {
	var best time.Duration
	for id, t := range s.tracks {
		if t.timescale == 0 {
			continue
		}
		var first, end uint64
		seen := false
		for i := range s.frags {
			ft := s.frags[i].track(id)
			if ft == nil {
				continue
			}
			if !seen {
				first, seen = ft.base, true
			}
			end = max(end, ft.base+ft.duration)
		}
		if !seen || end < first {
			continue
		}
		d := time.Duration(float64(end-first) / float64(t.timescale) * float64(time.Second))
		best = max(best, d)
	}
	return best
}

// scanFile reads a recording's structure. It never fails on a cut or
// damaged tail: it stops there and says where the good part ends.
func scanFile(r io.ReaderAt, size int64) (*scanResult, error) {
	s := &scanResult{
		size:        size,
		tracks:      map[uint32]*trackInfo{},
		firstMoofAt: -1,
		layout:      initLayout{mvhdDuration: -1, mehdDuration: -1, reserveStart: -1, reserveEnd: -1},
	}
	off := int64(0)
	first := true
	for off < size {
		typ, hdr, boxSize, ok := readHeader(r, off, size)
		if !ok {
			break
		}
		if first {
			if typ != "ftyp" {
				return nil, errNotMP4
			}
			first = false
			off += boxSize
			s.end = off
			continue
		}
		switch typ {
		case "moov":
			if s.moov || boxSize > maxMoovSize {
				return s, nil
			}
			b := make([]byte, boxSize)
			if _, err := r.ReadAt(b, off); err != nil {
				return s, nil
			}
			if err := s.parseMoov(b, off, hdr); err != nil {
				return s, nil
			}
			s.moov = true
		case "free", "skip", "sidx":
			// The room reserved for the index, before the first fragment.
			if !s.moov || s.firstMoofAt >= 0 {
				return s, nil
			}
			if s.layout.reserveStart < 0 {
				s.layout.reserveStart = off
			}
			s.layout.reserveEnd = off + boxSize
		case "moof":
			if !s.moov || boxSize > maxMoofSize {
				return s, nil
			}
			f, ok := s.readFragment(r, off, hdr, boxSize)
			if !ok {
				return s, nil
			}
			if s.firstMoofAt < 0 {
				s.firstMoofAt = off
			}
			s.frags = append(s.frags, f)
			boxSize = f.size
		case "mfra":
			if off+boxSize == size && boxSize >= 8+mfroSize && s.moov {
				var tail [mfroSize]byte
				if _, err := r.ReadAt(tail[:], size-mfroSize); err == nil &&
					string(tail[4:8]) == "mfro" && int64(binary.BigEndian.Uint32(tail[12:])) == boxSize {
					s.finished = true
				}
			}
			return s, nil
		default:
			return s, nil
		}
		off += boxSize
		s.end = off
	}
	return s, nil
}

// readHeader reads the box header at off. ok is false when the box does
// not fit in the file or its size is invalid (0, "to the end of the
// file", is never written by seance and is refused too).
func readHeader(r io.ReaderAt, off, fileSize int64) (typ string, hdr, size int64, ok bool) {
	var b [16]byte
	if off+8 > fileSize {
		return "", 0, 0, false
	}
	n := 8
	if off+16 <= fileSize {
		n = 16
	}
	if _, err := r.ReadAt(b[:n], off); err != nil {
		return "", 0, 0, false
	}
	size = int64(binary.BigEndian.Uint32(b[:4]))
	typ = string(b[4:8])
	hdr = 8
	if size == 1 {
		if n < 16 {
			return "", 0, 0, false
		}
		u := binary.BigEndian.Uint64(b[8:16])
		if u > uint64(fileSize) {
			return "", 0, 0, false
		}
		size, hdr = int64(u), 16
	}
	if size < hdr || size > fileSize-off {
		return "", 0, 0, false
	}
	return typ, hdr, size, true
}

// children iterates over the boxes in b[from:to] (offsets relative to b).
func children(b []byte, from, to int64, fn func(typ string, body, end int64) error) error {
	for off := from; off < to; {
		if off+8 > to {
			return errors.New("truncated box header")
		}
		size := int64(binary.BigEndian.Uint32(b[off:]))
		hdr := int64(8)
		if size == 1 {
			if off+16 > to {
				return errors.New("truncated box header")
			}
			u := binary.BigEndian.Uint64(b[off+8:])
			if u > uint64(to-off) {
				return errors.New("box too large")
			}
			size, hdr = int64(u), 16
		}
		if size < hdr || size > to-off {
			return fmt.Errorf("box %q of size %d does not fit", b[off+4:off+8], size)
		}
		if err := fn(string(b[off+4:off+8]), off+hdr, off+size); err != nil {
			return err
		}
		off += size
	}
	return nil
}

// need checks that b[at:at+n] is within [0, end).
func need(at, n, end int64) error {
	if at < 0 || at+n > end {
		return errors.New("box too short")
	}
	return nil
}

func (s *scanResult) parseMoov(b []byte, fileOff, hdr int64) error {
	size := int64(len(b))
	return children(b, hdr, size, func(typ string, body, end int64) error {
		switch typ {
		case "mvhd":
			if err := need(body, 4, end); err != nil {
				return err
			}
			if b[body] == 1 {
				if err := need(body, 36, end); err != nil {
					return err
				}
				secs := binary.BigEndian.Uint64(b[body+4:])
				s.created = mp4Epoch.Add(time.Duration(min(secs, 1<<32)) * time.Second)
				s.layout.mvhdDuration, s.mvhdWide = fileOff+body+24, true
			} else {
				if err := need(body, 20, end); err != nil {
					return err
				}
				s.created = mp4Epoch.Add(time.Duration(binary.BigEndian.Uint32(b[body+4:])) * time.Second)
				s.layout.mvhdDuration = fileOff + body + 16
			}
		case "trak":
			return s.parseTrak(b, body, end)
		case "mvex":
			return children(b, body, end, func(typ string, body, end int64) error {
				switch typ {
				case "mehd":
					if err := need(body, 8, end); err != nil {
						return err
					}
					s.layout.mehdDuration = fileOff + body + 4
					s.mehdWide = b[body] == 1
					if s.mehdWide {
						if err := need(body, 12, end); err != nil {
							return err
						}
					}
				case "trex":
					if err := need(body, 24, end); err != nil {
						return err
					}
					t := s.track(binary.BigEndian.Uint32(b[body+4:]))
					t.defDuration = binary.BigEndian.Uint32(b[body+12:])
					t.defSize = binary.BigEndian.Uint32(b[body+16:])
					t.defFlags = binary.BigEndian.Uint32(b[body+20:])
				}
				return nil
			})
		}
		return nil
	})
}

func (s *scanResult) track(id uint32) *trackInfo {
	t := s.tracks[id]
	if t == nil {
		t = &trackInfo{}
		s.tracks[id] = t
	}
	return t
}

func (s *scanResult) parseTrak(b []byte, from, to int64) error {
	var id uint32
	var timescale uint32
	video := false
	err := children(b, from, to, func(typ string, body, end int64) error {
		switch typ {
		case "tkhd":
			at := body + 12
			if err := need(body, 1, end); err == nil && b[body] == 1 {
				at = body + 20
			}
			if err := need(at, 4, end); err != nil {
				return err
			}
			id = binary.BigEndian.Uint32(b[at:])
		case "mdia":
			return children(b, body, end, func(typ string, body, end int64) error {
				switch typ {
				case "mdhd":
					at := body + 12
					if err := need(body, 1, end); err == nil && b[body] == 1 {
						at = body + 20
					}
					if err := need(at, 4, end); err != nil {
						return err
					}
					timescale = binary.BigEndian.Uint32(b[at:])
				case "hdlr":
					if err := need(body, 12, end); err != nil {
						return err
					}
					video = string(b[body+8:body+12]) == "vide"
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if id == 0 || timescale == 0 {
		return errors.New("track without an ID or timescale")
	}
	t := s.track(id)
	t.timescale, t.video = timescale, video
	return nil
}

// readFragment parses the moof at off and checks that its mdat follows,
// complete, and holds the samples the moof describes.
func (s *scanResult) readFragment(r io.ReaderAt, off, hdr, moofSize int64) (fragment, bool) {
	mdatAt := off + moofSize
	typ, mdatHdr, mdatSize, ok := readHeader(r, mdatAt, s.size)
	if !ok || typ != "mdat" {
		return fragment{}, false
	}
	b := make([]byte, moofSize)
	if _, err := r.ReadAt(b, off); err != nil {
		return fragment{}, false
	}
	f := fragment{offset: off, size: moofSize + mdatSize}
	var dataSize int64
	traf := 0
	err := children(b, hdr, moofSize, func(typ string, body, end int64) error {
		if typ != "traf" {
			return nil
		}
		traf++
		ft, n, err := s.parseTraf(b, body, end)
		if err != nil {
			return err
		}
		ft.traf = traf
		dataSize += n
		f.tracks = append(f.tracks, ft)
		return nil
	})
	if err != nil || len(f.tracks) == 0 || dataSize > mdatSize-mdatHdr {
		return fragment{}, false
	}
	return f, true
}

// Flags of tfhd and trun (ISO/IEC 14496-12 8.8.7, 8.8.8).
const (
	tfhdBaseDataOffset     = 0x01
	tfhdSampleDescIndex    = 0x02
	tfhdDefaultDuration    = 0x08
	tfhdDefaultSize        = 0x10
	tfhdDefaultFlags       = 0x20
	trunDataOffset         = 0x01
	trunFirstSampleFlags   = 0x04
	trunSampleDuration     = 0x100
	trunSampleSize         = 0x200
	trunSampleFlags        = 0x400
	trunSampleCTS          = 0x800
	sampleIsNonSync        = 0x10000
	maxSamplesPerFragments = 1 << 20
)

// parseTraf returns one track's run and the bytes of its samples.
func (s *scanResult) parseTraf(b []byte, from, to int64) (fragTrack, int64, error) {
	var ft fragTrack
	var t *trackInfo
	var defDur, defSize, defFlags uint32
	haveTfdt, first := false, true
	var total int64
	err := children(b, from, to, func(typ string, body, end int64) error {
		switch typ {
		case "tfhd":
			if err := need(body, 8, end); err != nil {
				return err
			}
			flags := uint32(b[body+1])<<16 | uint32(b[body+2])<<8 | uint32(b[body+3])
			ft.id = binary.BigEndian.Uint32(b[body+4:])
			t = s.tracks[ft.id]
			if t == nil || t.timescale == 0 {
				return fmt.Errorf("fragment of unknown track %d", ft.id)
			}
			defDur, defSize, defFlags = t.defDuration, t.defSize, t.defFlags
			at := body + 8
			if flags&tfhdBaseDataOffset != 0 {
				at += 8
			}
			if flags&tfhdSampleDescIndex != 0 {
				at += 4
			}
			read := func() (uint32, error) {
				if err := need(at, 4, end); err != nil {
					return 0, err
				}
				v := binary.BigEndian.Uint32(b[at:])
				at += 4
				return v, nil
			}
			var err error
			if flags&tfhdDefaultDuration != 0 {
				if defDur, err = read(); err != nil {
					return err
				}
			}
			if flags&tfhdDefaultSize != 0 {
				if defSize, err = read(); err != nil {
					return err
				}
			}
			if flags&tfhdDefaultFlags != 0 {
				if defFlags, err = read(); err != nil {
					return err
				}
			}
		case "tfdt":
			if t == nil {
				return errors.New("tfdt before tfhd")
			}
			if err := need(body, 8, end); err != nil {
				return err
			}
			if b[body] == 1 {
				if err := need(body, 12, end); err != nil {
					return err
				}
				ft.base = binary.BigEndian.Uint64(b[body+4:])
			} else {
				ft.base = uint64(binary.BigEndian.Uint32(b[body+4:]))
			}
			haveTfdt = true
		case "trun":
			if t == nil {
				return errors.New("trun before tfhd")
			}
			if err := need(body, 8, end); err != nil {
				return err
			}
			version := b[body]
			flags := uint32(b[body+1])<<16 | uint32(b[body+2])<<8 | uint32(b[body+3])
			count := int64(binary.BigEndian.Uint32(b[body+4:]))
			at := body + 8
			if flags&trunDataOffset != 0 {
				at += 4
			}
			firstFlags, haveFirstFlags := uint32(0), false
			if flags&trunFirstSampleFlags != 0 {
				if err := need(at, 4, end); err != nil {
					return err
				}
				firstFlags, haveFirstFlags = binary.BigEndian.Uint32(b[at:]), true
				at += 4
			}
			per := int64(0)
			for _, f := range []uint32{trunSampleDuration, trunSampleSize, trunSampleFlags, trunSampleCTS} {
				if flags&f != 0 {
					per += 4
				}
			}
			if count > maxSamplesPerFragments || (per > 0 && count > (end-at)/per) {
				return errors.New("trun sample count does not fit")
			}
			if per == 0 && count > 0 {
				// Every sample takes the defaults: no need to walk them.
				sflags := defFlags
				if haveFirstFlags {
					sflags = firstFlags
				}
				if first {
					ft.sync = sflags&sampleIsNonSync == 0
					first = false
				}
				ft.duration += uint64(count) * uint64(defDur)
				total += count * int64(defSize)
				return nil
			}
			for i := int64(0); i < count; i++ {
				dur, size, sflags, cts := defDur, defSize, defFlags, int64(0)
				if i == 0 && haveFirstFlags {
					sflags = firstFlags
				}
				if flags&trunSampleDuration != 0 {
					dur = binary.BigEndian.Uint32(b[at:])
					at += 4
				}
				if flags&trunSampleSize != 0 {
					size = binary.BigEndian.Uint32(b[at:])
					at += 4
				}
				if flags&trunSampleFlags != 0 {
					sflags = binary.BigEndian.Uint32(b[at:])
					at += 4
				}
				if flags&trunSampleCTS != 0 {
					v := binary.BigEndian.Uint32(b[at:])
					if version == 0 {
						cts = int64(v)
					} else {
						cts = int64(int32(v))
					}
					at += 4
				}
				if first {
					ft.sync = sflags&sampleIsNonSync == 0
					ft.ctsFirst = cts
					first = false
				}
				ft.duration += uint64(dur)
				total += int64(size)
			}
		}
		return nil
	})
	if err != nil {
		return ft, 0, err
	}
	if t == nil || !haveTfdt {
		return ft, 0, errors.New("traf without tfhd or tfdt")
	}
	return ft, total, nil
}
