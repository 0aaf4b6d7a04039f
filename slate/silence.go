package slate

import (
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// Syntactic element ids of a raw_data_block (ISO 14496-3 4.4.2.1,
// Table 4.85).
const (
	idSCE = 0 // single channel element
	idCPE = 1 // channel pair element
	idLFE = 3 // low frequency effects element
	idEND = 7
)

// elementsOf lists the elements of an access unit for each channel
// configuration (ISO 14496-3 1.6.3.4, Table 1.19).
var elementsOf = map[uint8][]int{
	1: {idSCE},
	2: {idCPE},
	3: {idSCE, idCPE},
	4: {idSCE, idCPE, idSCE},
	5: {idSCE, idCPE, idCPE},
	6: {idSCE, idCPE, idCPE, idLFE},
	7: {idSCE, idCPE, idCPE, idCPE, idLFE},
}

// Silence returns one raw AAC access unit of digital silence for a stream
// with configuration cfg, so that the slate's sound has exactly the live
// track's configuration and destinations never see it change. It is built
// bit by bit rather than encoded: every channel is a long window with no
// scale factor band (max_sfb 0), which decoders render as zeros; the same
// few bytes suit any sample rate, 960- or 1024-sample frames, and HE-AAC
// (whose SBR data is optional in each frame). Channel configuration 0 (a
// program config element) is not supported.
func Silence(cfg *mpeg4audio.AudioSpecificConfig) ([]byte, error) {
	if cfg == nil {
		return nil, fmt.Errorf("%w: no audio configuration", ErrUnsupportedAudio)
	}
	if cfg.Type != mpeg4audio.ObjectTypeAACLC {
		return nil, fmt.Errorf("%w: object type %d, want AAC-LC (or HE-AAC over AAC-LC)", ErrUnsupportedAudio, cfg.Type)
	}
	elems, ok := elementsOf[cfg.ChannelConfig]
	if !ok {
		return nil, fmt.Errorf("%w: channel configuration %d", ErrUnsupportedAudio, cfg.ChannelConfig)
	}
	var w bitWriter
	tags := map[int]uint64{}
	for _, id := range elems {
		w.put(uint64(id), 3)
		w.put(tags[id], 4) // element_instance_tag, counted per element type
		tags[id]++
		if id == idCPE {
			w.put(0, 1) // common_window: each channel has its own ics_info
			silentICS(&w)
		}
		silentICS(&w)
	}
	w.put(idEND, 3)
	return w.bytes(), nil
}

// silentICS writes an individual_channel_stream with no spectral data
// (ISO 14496-3 4.4.2.7 and 4.4.2.1 ics_info).
func silentICS(w *bitWriter) {
	w.put(100, 8) // global_gain: any value, no band uses it
	w.put(0, 1)   // ics_reserved_bit
	w.put(0, 2)   // window_sequence: ONLY_LONG_SEQUENCE
	w.put(0, 1)   // window_shape: sine
	w.put(0, 6)   // max_sfb: no band, so no section or scale factor data
	w.put(0, 1)   // predictor_data_present
	w.put(0, 1)   // pulse_data_present
	w.put(0, 1)   // tns_data_present
	w.put(0, 1)   // gain_control_data_present
}

// bitWriter packs bits MSB first.
type bitWriter struct {
	buf []byte
	n   int // bits written
}

func (w *bitWriter) put(v uint64, bits int) {
	for i := bits - 1; i >= 0; i-- {
		if w.n%8 == 0 {
			w.buf = append(w.buf, 0)
		}
		if v>>uint(i)&1 == 1 {
			w.buf[len(w.buf)-1] |= 0x80 >> uint(w.n%8)
		}
		w.n++
	}
}

// bytes returns the bits written, zero-padded to a byte boundary
// (byte_alignment after the END element).
func (w *bitWriter) bytes() []byte { return w.buf }
