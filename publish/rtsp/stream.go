package rtsp

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtpmpeg4audio"
	"github.com/pion/rtp"

	"github.com/seance-relay/seance/relay"
)

// RTP payload types announced in the SDP.
const (
	videoPayloadType = 96
	audioPayloadType = 97
	videoClockRate   = 90000
)

// errTracksChanged means the publisher changed what the SDP announced in
// a way readers cannot follow (audio added, removed or reconfigured): the
// stream must be recreated and its readers reconnect.
var errTracksChanged = errors.New("tracks changed")

// stream is one live channel as gortsplib serves it: the description, the
// RTP state, and the ServerStream that copies every packet to each reader.
// Packetisation and marshalling happen here, once per channel; per reader
// only a queue push remains. Only the channel's feeding goroutine calls
// write.
type stream struct {
	st     *gortsplib.ServerStream
	tracks *relay.Tracks

	video     *description.Media
	h264      *format.H264
	videoBase uint32
	videoSeq  uint16
	pkt       rtp.Packet

	audio     *description.Media
	aacClock  int
	aacEnc    *rtpmpeg4audio.Encoder
	audioBase uint32

	// t0 is the wall-clock time of timeline zero, for sender reports.
	t0 time.Time
}

func newStream(srv *gortsplib.Server, tr *relay.Tracks) (*stream, error) {
	if tr == nil || tr.Video == nil {
		return nil, relay.ErrNoVideo
	}
	s := &stream{tracks: tr}
	s.h264 = &format.H264{
		PayloadTyp:        videoPayloadType,
		PacketizationMode: 1,
		SPS:               bytes.Clone(tr.Video.SPS),
		PPS:               bytes.Clone(tr.Video.PPS),
	}
	s.video = &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{s.h264}}
	desc := &description.Session{Medias: []*description.Media{s.video}}
	if tr.Audio != nil && tr.Audio.Config != nil {
		aac := &format.MPEG4Audio{
			PayloadTyp:       audioPayloadType,
			ProfileLevelID:   1,
			Config:           tr.Audio.Config,
			SizeLength:       13,
			IndexLength:      3,
			IndexDeltaLength: 3,
		}
		enc, err := aac.CreateEncoder()
		if err != nil {
			return nil, fmt.Errorf("aac rtp encoder: %w", err)
		}
		s.aacEnc = enc
		s.aacClock = aac.ClockRate()
		s.audio = &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{aac}}
		desc.Medias = append(desc.Medias, s.audio)
	}
	var r [10]byte
	if _, err := rand.Read(r[:]); err != nil {
		return nil, err
	}
	s.videoBase = binary.BigEndian.Uint32(r[:4])
	s.audioBase = binary.BigEndian.Uint32(r[4:8])
	s.videoSeq = binary.BigEndian.Uint16(r[8:])
	s.st = &gortsplib.ServerStream{Server: srv, Desc: desc}
	if err := s.st.Initialize(); err != nil {
		return nil, fmt.Errorf("rtsp stream: %w", err)
	}
	return s, nil
}

// close disconnects every reader.
func (s *stream) close() { s.st.Close() }

// write sends one frame to every reader. It never blocks: gortsplib
// queues each packet for each reader and drops it when a reader's queue
// is full (OnStreamWriteError).
func (s *stream) write(f *relay.Frame) error {
	if f.Tracks != nil && f.Tracks != s.tracks {
		if err := s.follow(f.Tracks); err != nil {
			return err
		}
	}
	if s.t0.IsZero() {
		arrived := f.Arrived
		if arrived.IsZero() {
			arrived = time.Now()
		}
		s.t0 = arrived.Add(-f.PTS)
	}
	ntp := s.t0.Add(f.PTS)
	switch f.Kind {
	case relay.KindVideo:
		payloads := f.RTPPayloads()
		ts := s.videoBase + rtpTime(f.PTS, videoClockRate)
		for i, p := range payloads {
			s.pkt = rtp.Packet{
				Header: rtp.Header{
					Version:        2,
					PayloadType:    videoPayloadType,
					SequenceNumber: s.videoSeq,
					Timestamp:      ts,
					Marker:         i == len(payloads)-1,
				},
				Payload: p,
			}
			s.videoSeq++
			if err := s.st.WritePacketRTPWithNTP(s.video, &s.pkt, ntp); err != nil {
				return err
			}
		}
	case relay.KindAudio:
		if s.audio == nil || len(f.AU) == 0 {
			return nil
		}
		pkts, err := s.aacEnc.Encode([][]byte{f.AU})
		if err != nil {
			return fmt.Errorf("aac rtp: %w", err)
		}
		ts := s.audioBase + rtpTime(f.PTS, s.aacClock)
		for _, p := range pkts {
			p.Timestamp += ts
			if err := s.st.WritePacketRTPWithNTP(s.audio, p, ntp); err != nil {
				return err
			}
		}
	}
	return nil
}

// follow adopts new tracks: new SPS/PPS are announced to readers that
// connect from now on (those connected get them in band with every
// keyframe); an audio change needs a new stream.
func (s *stream) follow(tr *relay.Tracks) error {
	if !sameAudio(s.tracks.Audio, tr.Audio) || tr.Video == nil {
		return errTracksChanged
	}
	sps, pps := s.h264.SafeParams()
	if !bytes.Equal(sps, tr.Video.SPS) || !bytes.Equal(pps, tr.Video.PPS) {
		s.h264.SafeSetParams(bytes.Clone(tr.Video.SPS), bytes.Clone(tr.Video.PPS))
	}
	s.tracks = tr
	return nil
}

func sameAudio(a, b *relay.AudioTrack) bool {
	if a == nil || a.Config == nil || b == nil || b.Config == nil {
		return (a == nil || a.Config == nil) == (b == nil || b.Config == nil)
	}
	ea, erra := a.Config.Marshal()
	eb, errb := b.Config.Marshal()
	return erra == nil && errb == nil && bytes.Equal(ea, eb)
}

// rtpTime converts a timeline position to RTP clock units, without
// overflowing for sessions of any length.
func rtpTime(d time.Duration, clock int) uint32 {
	c := int64(clock)
	return uint32(int64(d/time.Second)*c + int64(d%time.Second)*c/int64(time.Second))
}
