package slate

import "errors"

// Errors of the slate package. Test them with errors.Is.
var (
	// ErrBadClip means an H.264 clip (built-in or rendered from an image)
	// is not a loopable slate: one IDR with its SPS and PPS, then P-frames,
	// an access unit delimiter before every frame.
	ErrBadClip = errors.New("not a loopable H.264 slate")
	// ErrUnsupportedAudio means no silent frame can be made for the live
	// audio configuration; the slate then has no sound.
	ErrUnsupportedAudio = errors.New("unsupported audio configuration for the slate's silence")
	// ErrBadImage means the configured slate image cannot be used.
	ErrBadImage = errors.New("unusable slate image")
	// ErrNoFFmpeg means a slate image is configured but ffmpeg, which
	// renders it, is not installed.
	ErrNoFFmpeg = errors.New("ffmpeg is not installed (Debian: apt-get install ffmpeg)")
)
