package record

import "errors"

// Errors of the recordings API. Test them with errors.Is.
var (
	// ErrNotFound means the channel has no recording of that name.
	ErrNotFound = errors.New("no such recording")
	// ErrInProgress means the recording is the file being written.
	ErrInProgress = errors.New("the recording is being written")
)
