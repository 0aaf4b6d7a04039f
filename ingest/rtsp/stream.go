package rtsp

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtpmpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
	"github.com/rs/zerolog"

	"github.com/seance-relay/seance/relay"
	"github.com/seance-relay/seance/transcode"
)

// stream is one connection's tracks, decoders and session. The client
// calls back from one goroutine per media over UDP, so the callbacks
// take mu: the session's writes must not run concurrently.
type stream struct {
	publish func(relay.PublisherInfo, relay.Tracks) (*relay.Session, error)
	info    relay.PublisherInfo
	log     zerolog.Logger
	failed  chan error    // capacity 1: publish refused
	live    chan struct{} // closed once published

	lost         atomic.Uint64
	decodeErrors atomic.Uint64

	// Set by pick, read-only afterwards.
	videoMedia *description.Media
	video      *format.H264
	audioMedia *description.Media
	audio      *format.MPEG4Audio
	opus       *format.Opus
	auSamples  int64

	mu        sync.Mutex
	c         *gortsplib.Client
	vdec      *rtph264.Decoder
	adec      *rtpmpeg4audio.Decoder
	tc        *transcode.OpusToAAC // Opus sources: AAC for RTMP/RTSP sinks
	pending   []relay.OpusPacket   // Opus packets not yet attached to an AAC unit
	sps, pps  []byte
	dtsx      h264.DTSExtractor
	needIDR   bool
	dtsErrors int
	sess      *relay.Session
	done      bool
}

// pick chooses the H.264 track and the audio track (AAC, or Opus, which
// is transcoded to AAC once per channel for RTMP destinations while
// WebRTC viewers get the source's own Opus). A source without H.264, or
// whose audio is another codec, is refused with an error naming the
// codecs: a council session without its sound is no broadcast, so it is an
// error rather than a video-only channel. A source without any audio
// track is relayed as video only.
func (s *stream) pick(desc *description.Session) error {
	var (
		videoOther, audioOther []string
		opusMedia              *description.Media
		opus                   *format.Opus
	)
	for _, m := range desc.Medias {
		for _, f := range m.Formats {
			switch f := f.(type) {
			case *format.H264:
				if s.video == nil {
					s.videoMedia, s.video = m, f
				}
			case *format.MPEG4Audio:
				if s.audio == nil {
					s.audioMedia, s.audio = m, f
				}
			case *format.Opus:
				if opus == nil {
					opusMedia, opus = m, f
				}
			default:
				switch m.Type {
				case description.MediaTypeVideo:
					videoOther = append(videoOther, f.Codec())
				case description.MediaTypeAudio:
					audioOther = append(audioOther, f.Codec())
				}
			}
		}
	}
	switch {
	case s.video == nil && len(videoOther) > 0:
		return fmt.Errorf("%w: its video is %s: set the camera's video codec to H.264", ErrNoH264, strings.Join(videoOther, ", "))
	case s.video == nil:
		return fmt.Errorf("%w: it offers no video track", ErrNoH264)
	case s.audio == nil && opus != nil:
		s.audioMedia, s.opus = opusMedia, opus
	case s.audio == nil && len(audioOther) > 0:
		return fmt.Errorf("%w: the source's audio is %s: set it to AAC", ErrAudioCodec, strings.Join(audioOther, ", "))
	}

	var err error
	if s.vdec, err = s.video.CreateDecoder(); err != nil {
		return fmt.Errorf("H.264 track: %w", err)
	}
	s.sps, s.pps = s.video.SafeParams()
	s.sps, s.pps = bytes.Clone(s.sps), bytes.Clone(s.pps)
	if s.audio != nil {
		if s.audio.Config == nil {
			return fmt.Errorf("%w: the AAC track has no configuration", ErrAudioCodec)
		}
		if s.adec, err = s.audio.CreateDecoder(); err != nil {
			return fmt.Errorf("AAC track: %w", err)
		}
		s.auSamples = 1024
		if s.audio.Config.FrameLengthFlag {
			s.auSamples = 960
		}
	}
	if s.opus != nil {
		if s.tc, err = transcode.NewOpusToAAC(0); err != nil {
			return fmt.Errorf("opus track: %w", err)
		}
	}
	return nil
}

// medias returns the medias to set up.
func (s *stream) medias() []*description.Media {
	if s.audioMedia == nil || s.audioMedia == s.videoMedia {
		return []*description.Media{s.videoMedia}
	}
	return []*description.Media{s.videoMedia, s.audioMedia}
}

// attach registers the packet callbacks on c, before PLAY.
func (s *stream) attach(c *gortsplib.Client) {
	s.mu.Lock()
	s.c = c
	s.mu.Unlock()
	c.OnPacketRTP(s.videoMedia, s.video, s.onVideo)
	if s.audio != nil {
		c.OnPacketRTP(s.audioMedia, s.audio, s.onAudio)
	}
	if s.opus != nil {
		c.OnPacketRTP(s.audioMedia, s.opus, s.onOpus)
	}
}

func (s *stream) onVideo(pkt *rtp.Packet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	pts, ok := s.c.PacketPTS2(s.videoMedia, pkt)
	if !ok {
		return
	}
	au, err := s.vdec.Decode(pkt)
	if err != nil {
		if !errors.Is(err, rtph264.ErrMorePacketsNeeded) && !errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious) {
			s.decodeErrors.Add(1)
		}
		return
	}
	s.writeVideo(pts, au)
}

// writeVideo publishes at the first keyframe, then relays each access
// unit with its DTS. Parameter sets are kept (copied: the client reuses
// its buffers) and put in front of every IDR.
func (s *stream) writeVideo(pts int64, au [][]byte) {
	idr := false
	payload := au[:0:0]
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			if !bytes.Equal(n, s.sps) {
				s.sps = bytes.Clone(n)
			}
			continue
		case h264.NALUTypePPS:
			if !bytes.Equal(n, s.pps) {
				s.pps = bytes.Clone(n)
			}
			continue
		case h264.NALUTypeIDR:
			idr = true
		}
		payload = append(payload, n)
	}
	if idr {
		if len(s.sps) == 0 || len(s.pps) == 0 {
			// Not decodable yet: wait for a keyframe with its parameters.
			return
		}
		payload = append([][]byte{s.sps, s.pps}, payload...)
	}

	if s.sess == nil {
		if !idr {
			return
		}
		tracks := relay.Tracks{Video: &relay.VideoTrack{SPS: bytes.Clone(s.sps), PPS: bytes.Clone(s.pps)}}
		if s.audio != nil {
			tracks.Audio = &relay.AudioTrack{Config: s.audio.Config}
		}
		if s.tc != nil {
			tracks.Audio = &relay.AudioTrack{Config: s.tc.Config()}
		}
		sess, err := s.publish(s.info, tracks)
		if err != nil {
			s.done = true
			s.failed <- err
			return
		}
		s.sess = sess
		s.dtsx = h264.DTSExtractor{}
		s.dtsx.Initialize()
		close(s.live)
	}
	if s.needIDR && !idr {
		return
	}

	// Cameras send no B-frames, and then DTS is PTS; the extractor also
	// handles a source that does reorder frames, from the pictures'
	// order counts.
	dts, err := s.dtsx.Extract(payload, pts)
	if err != nil {
		s.dtsErrors++
		if s.dtsErrors == 1 {
			s.log.Warn().Str("reason", err.Error()).Msg("RTSP source: cannot order the H.264 frames: skipping to the next keyframe")
		}
		s.dtsx = h264.DTSExtractor{}
		s.dtsx.Initialize()
		s.needIDR = true
		return
	}
	s.needIDR = false
	clock := s.video.ClockRate()
	s.sess.WriteH264(toDuration(pts, clock), toDuration(dts, clock), payload)
}

func (s *stream) onAudio(pkt *rtp.Packet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	pts, ok := s.c.PacketPTS2(s.audioMedia, pkt)
	if !ok || s.sess == nil {
		// Audio before the first keyframe is dropped with the video.
		return
	}
	aus, err := s.adec.Decode(pkt)
	if err != nil {
		if !errors.Is(err, rtpmpeg4audio.ErrMorePacketsNeeded) {
			s.decodeErrors.Add(1)
		}
		return
	}
	clock := s.audio.ClockRate()
	for i, au := range aus {
		s.sess.WriteAAC(toDuration(pts+int64(i)*s.auSamples, clock), au)
	}
}

// maxPendingOpus bounds the Opus packets waiting for the AAC unit that
// covers them (the encoder delays about one frame).
const maxPendingOpus = 8

// onOpus transcodes an Opus packet (RFC 7587: one per RTP packet) to AAC
// and publishes each AAC unit with the Opus packets it covers.
func (s *stream) onOpus(pkt *rtp.Packet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	pts, ok := s.c.PacketPTS2(s.audioMedia, pkt)
	if !ok || s.sess == nil || len(pkt.Payload) == 0 {
		return
	}
	p := toDuration(pts, s.opus.ClockRate())
	if len(s.pending) == maxPendingOpus {
		s.pending = s.pending[1:]
	}
	s.pending = append(s.pending, relay.OpusPacket{PTS: p, Data: bytes.Clone(pkt.Payload)})
	err := s.tc.Transcode(p, pkt.Payload, func(aPTS time.Duration, au []byte) {
		s.sess.WriteAACWithOpus(aPTS, au, s.pending)
		s.pending = nil
	})
	if err != nil {
		s.decodeErrors.Add(1)
	}
}

// close ends the session (the channel's grace period starts) once the
// client is closed, and reports what the connection lost.
func (s *stream) close() {
	s.mu.Lock()
	s.done = true
	if s.sess != nil {
		s.sess.Close()
	}
	s.mu.Unlock()
	if lost, bad := s.lost.Load(), s.decodeErrors.Load(); lost > 0 || bad > 0 {
		s.log.Warn().Uint64("rtp_packets_lost", lost).Uint64("decode_errors", bad).
			Msg("RTSP source: packets were lost during the connection")
	}
}

// toDuration converts a timestamp in units of clockRate to a duration
// without overflowing for long sessions.
func toDuration(v int64, clockRate int) time.Duration {
	cr := int64(clockRate)
	return time.Duration(v/cr)*time.Second + time.Duration((v%cr)*int64(time.Second)/cr)
}
