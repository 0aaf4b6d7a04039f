package meeting

import "errors"

// Errors a capture reports (Status.LastError, the log). Test them with
// errors.Is.
var (
	// ErrBrowserNotFound: no Chromium executable was found. Installing it
	// is enough: the capture keeps trying.
	ErrBrowserNotFound = errors.New("chromium is not installed: apt-get install chromium")
	// ErrWrongSecret: BigBlueButton refused the API checksum, with SHA-256
	// and with SHA-1.
	ErrWrongSecret = errors.New("BigBlueButton refused the checksum: check ingest.meeting.bbb.secret (bbb-conf --secret on the server)")
	// ErrBBBRefused: BigBlueButton answered an API call or the join with
	// an error (its message follows).
	ErrBBBRefused = errors.New("BigBlueButton refused")
	// ErrLiveKitRefused: the LiveKit server refused seance's connection to
	// the room (wrong API key or secret, unknown room, server unreachable;
	// its message follows).
	ErrLiveKitRefused = errors.New("the LiveKit server refused the connection: check ingest.meeting.livekit")
	// ErrThrownOut: the browser was in the meeting and is no longer (a
	// moderator removed it, or the meeting ended).
	ErrThrownOut = errors.New("no longer in the meeting: removed by a moderator, or the meeting ended")
	// ErrRemoved: a moderator removed the bot from the meeting. The
	// capture stays out (StateRemoved) until started again or
	// ingest.meeting.rejoin_after.
	ErrRemoved = errors.New("removed from the meeting by a moderator")
	// ErrHung: the browser or the meeting page stopped working (no picture
	// captured, or the page stopped answering, for 10 s).
	ErrHung = errors.New("the browser stopped working")
	// ErrBrowserExited: Chromium exited or crashed.
	ErrBrowserExited = errors.New("the browser (chromium) exited")
)

// errAlone: no one else in the meeting for Meeting.AloneAfter.
var errAlone = errors.New("alone in the meeting")
