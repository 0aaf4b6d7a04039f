package rtsp

import "errors"

// Errors returned by Source.Pull when the source's tracks cannot be
// relayed. Test them with errors.Is.
var (
	// ErrNoH264 means the source offers no H.264 video track.
	ErrNoH264 = errors.New("the source offers no H.264 video")
	// ErrAudioCodec means the source's audio is neither AAC nor Opus.
	ErrAudioCodec = errors.New("audio codec not supported")
	// ErrNoKeyframe means the source sent no H.264 keyframe (IDR with
	// SPS and PPS) within FirstKeyframeTimeout.
	ErrNoKeyframe = errors.New("no H.264 keyframe received")
)
