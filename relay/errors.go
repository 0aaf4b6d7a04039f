package relay

import "errors"

// Errors returned by the hub and its channels. Test them with errors.Is.
var (
	// ErrChannelNotFound means no channel has that name.
	ErrChannelNotFound = errors.New("channel not found")
	// ErrChannelBusy means another publisher is live on the channel.
	ErrChannelBusy = errors.New("channel already has a live publisher")
	// ErrNoVideo means a publisher announced no H.264 video track.
	ErrNoVideo = errors.New("no H.264 video track")
)
