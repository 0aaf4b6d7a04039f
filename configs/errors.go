package configs

import (
	"errors"
	"strconv"
	"strings"
)

// ErrEnvNotSet is matched (errors.Is) by the error Parse and Load return when the
// configuration refers to an environment variable, as ${NAME}, that is not set.
var ErrEnvNotSet = errors.New("environment variable is not set")

// ErrInvalidURL is wrapped by the errors of Destination.PublishURL when the
// destination URL does not parse or is not an rtmp:// or rtmps:// URL with a host.
var ErrInvalidURL = errors.New("invalid URL")

// ErrNoStreamKey is wrapped by the errors of Destination.PublishURL when the
// destination has no key and its URL path does not end with one.
var ErrNoStreamKey = errors.New("no stream key")

// problem is one configuration error. It names the YAML key path (empty for the
// top level or when the message names a line instead).
type problem struct {
	path string
	msg  string
	// wrapped, when not nil, is a sentinel the problem matches with errors.Is.
	wrapped error
}

func (p *problem) Error() string {
	if p.path == "" {
		return p.msg
	}
	return p.path + ": " + p.msg
}

func (p *problem) Unwrap() error { return p.wrapped }

// lineProblem returns a problem that names a line of the file instead of a key.
func lineProblem(line int, msg string) *problem {
	return &problem{msg: "line " + strconv.Itoa(line) + ": " + msg}
}

// scrub hides the values of environment variables that a message still shows.
// The messages are written not to quote values that came from the environment;
// this is the net under that rule. Values shorter than 4 bytes are left alone:
// they are not secrets, and replacing them would garble every message.
func scrub(errs []error, values []string) error {
	out := make([]error, 0, len(errs))
	for _, err := range errs {
		msg := err.Error()
		changed := false
		for _, v := range values {
			if len(v) >= 4 && strings.Contains(msg, v) {
				msg = strings.ReplaceAll(msg, v, "[redacted]")
				changed = true
			}
		}
		if changed {
			err = &problem{msg: msg, wrapped: errors.Unwrap(err)}
		}
		out = append(out, err)
	}
	return errors.Join(out...)
}
