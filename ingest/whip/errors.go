package whip

import (
	"errors"
	"fmt"
)

// Errors of the WHIP endpoint, mapped to HTTP status codes by the handler.
// Test them with errors.Is.
var (
	// ErrBadOffer: the SDP offer is malformed or offers nothing seance can
	// take (400).
	ErrBadOffer = errors.New("bad SDP offer")
	// ErrNoH264: the offer has no H.264 video in packetization mode 1
	// (400). It wraps ErrBadOffer.
	ErrNoH264 = fmt.Errorf("%w: the offer has no H.264 video", ErrBadOffer)
	// ErrBusy: the channel already has a live publisher (409).
	ErrBusy = errors.New("the channel already has a live publisher")
	// ErrShuttingDown: the server is stopping (503).
	ErrShuttingDown = errors.New("the server is shutting down")
)
