package transcode

import "errors"

// Errors returned by the transcoders. Test them with errors.Is.
var (
	// ErrBadFrame means one input access unit could not be decoded. The unit
	// is skipped; the transcoder stays usable and later units decode normally.
	ErrBadFrame = errors.New("bad audio frame")
	// ErrUnsupported means the stream configuration cannot be transcoded,
	// for example HE-AAC (SBR/PS), 960-sample frames or more than two channels.
	ErrUnsupported = errors.New("unsupported audio configuration")
)

// errDecoderPanic marks an ErrBadFrame that came from a panic recovered inside
// the AAC decoder, so tests and fuzzing can tell a library bug from bad input.
var errDecoderPanic = errors.New("aac decoder panicked")
