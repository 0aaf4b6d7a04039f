package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// finishFile finishes a recording in place: the sidx in the reserved room,
// the duration in mvhd and mehd, then the mfra at the end of the last
// complete fragment (cutting off whatever follows it: the partial fragment
// a crash left). The mfra comes last, so a file that has one was finished
// completely; a crash while finishing leaves a file the next repair
// finishes again. It returns the file's new size.
func finishFile(f *os.File, s *scanResult) (int64, error) {
	if !s.moov {
		return 0, errors.New("no complete MP4 header")
	}
	// The index: when the room is missing or too small (a file seance
	// did not lay out), the file stays playable, only slower to seek.
	if l := s.layout; l.reserveStart >= 0 && l.reserveEnd > l.reserveStart && len(s.frags) > 0 &&
		s.firstMoofAt == l.reserveEnd {
		var tracks []sidxTrack
		for _, id := range s.trackIDs() {
			tracks = append(tracks, sidxTrack{id: id, timescale: s.tracks[id].timescale})
		}
		if sidx, ok := buildSidx(s.frags, tracks, int(l.reserveEnd-l.reserveStart)); ok {
			if _, err := f.WriteAt(sidx, l.reserveStart); err != nil {
				return 0, fmt.Errorf("writing the index: %w", err)
			}
		}
	}
	ms := uint64(s.duration() / (time.Second / movieTimescale))
	if at := s.layout.mvhdDuration; at >= 0 {
		var b []byte
		if s.mvhdWide {
			b = binary.BigEndian.AppendUint64(nil, ms)
		} else {
			b = binary.BigEndian.AppendUint32(nil, uint32(min(ms, 0xffffffff)))
		}
		if _, err := f.WriteAt(b, at); err != nil {
			return 0, fmt.Errorf("writing the duration: %w", err)
		}
	}
	if at := s.layout.mehdDuration; at >= 0 {
		var b []byte
		if s.mehdWide {
			b = binary.BigEndian.AppendUint64(nil, ms)
		} else {
			b = binary.BigEndian.AppendUint32(nil, uint32(min(ms, 0xffffffff)))
		}
		if _, err := f.WriteAt(b, at); err != nil {
			return 0, fmt.Errorf("writing the duration: %w", err)
		}
	}
	mfra := buildMfra(s.frags, s.trackIDs())
	if err := f.Truncate(s.end); err != nil {
		return 0, fmt.Errorf("cutting the unfinished fragment: %w", err)
	}
	if _, err := f.WriteAt(mfra, s.end); err != nil {
		return 0, fmt.Errorf("writing the random access index: %w", err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("syncing: %w", err)
	}
	return s.end + int64(len(mfra)), nil
}

// trackIDs returns the IDs of the tracks the moov describes, in order.
func (s *scanResult) trackIDs() []uint32 {
	ids := make([]uint32, 0, len(s.tracks))
	for id, t := range s.tracks {
		if t.timescale > 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// repairResult says what repairFile did.
type repairResult struct {
	// cut is how many bytes of a partial fragment were removed.
	cut int64
	// finished is true when the file was finished (it had no mfra).
	finished bool
	// empty is true when the file holds no complete fragment: there is
	// nothing to play and the caller removes it.
	empty bool
}

// repairFile finishes a recording left unfinished (seance was killed, or
// finishing failed): it cuts the trailing partial fragment and writes the
// index and duration. A finished file is left alone.
func repairFile(path string) (repairResult, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return repairResult{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return repairResult{}, err
	}
	s, err := scanFile(f, st.Size())
	if err != nil {
		return repairResult{}, err
	}
	if s.finished {
		return repairResult{}, nil
	}
	if !s.moov || len(s.frags) == 0 {
		return repairResult{empty: true}, nil
	}
	res := repairResult{cut: st.Size() - s.end, finished: true}
	if _, err := finishFile(f, s); err != nil {
		return repairResult{}, err
	}
	return res, f.Close()
}
