// Package meeting feeds a channel from a Jitsi Meet or BigBlueButton
// meeting, or a LiveKit room (through seance's own layout page, livekit.go):
// seance joins it as a silent viewer (muted, camera off) in
// headless Chromium, captures the meeting tab's picture and sound with a
// small browser extension, and publishes them to itself over WHIP on
// loopback. No Jibri, no X server, no ffmpeg.
//
// A Capture supervises the browser: it restarts it with backoff, inside
// the channel's grace period, when it crashes, hangs or is thrown out of
// the meeting; it kills the whole process tree and deletes its profile on
// stop.
package meeting

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/seance-relay/seance/configs"
)

// State is a capture's state as shown to IT staff.
type State int

// Capture states.
const (
	// StateIdle: not running: start: manual and not started, stopped, or
	// seance is stopping.
	StateIdle State = iota
	// StateWaiting: the BigBlueButton meeting has not started yet; seance
	// asks again every few seconds.
	StateWaiting
	// StateLaunching: starting the browser.
	StateLaunching
	// StateJoining: opening the meeting page and joining.
	StateJoining
	// StateCapturing: the meeting's picture and sound feed the channel.
	StateCapturing
	// StateRetrying: the last attempt failed, or the browser crashed, hung
	// or was thrown out; waiting before the next one. See LastError.
	StateRetrying
	// StateRemoved: a moderator removed the bot from the meeting; it stays
	// out until IT staff start it again (Start) or Meeting.RejoinAfter.
	StateRemoved
	// StateAlone: no one else is in the meeting: the channel shows its
	// slate, the bot waits in the meeting for someone to join.
	StateAlone
)

var stateNames = [...]string{"idle", "waiting", "launching", "joining", "capturing", "retrying", "removed", "alone"}

// String returns the state's name.
func (s State) String() string { return stateNames[s] }

// MarshalText makes a State print as its name in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Backoff of failed attempts: the wait doubles from minBackoff to
// maxBackoff (±20 %). A browser that had been capturing for stableCapture
// is restarted after restartAfterCapture, so that it is back well within
// the grace period; one that fails sooner backs off, so that a crash loop
// does not spin.
const (
	minBackoff          = time.Second
	maxBackoff          = 30 * time.Second
	restartAfterCapture = 250 * time.Millisecond
	stableCapture       = 10 * time.Second
)

// Config says which meeting to capture and where to publish it.
type Config struct {
	// Channel is the channel's name, for logs and metrics.
	Channel string
	// Meeting is the meeting to join, validated by configs.
	Meeting configs.Meeting
	// WHIPURL is where the browser publishes: seance's internal WHIP
	// endpoint for the channel (whip.Server.InternalHandler on loopback).
	WHIPURL string
	// WHIPToken is the Bearer token of WHIPURL (whip.Server.InternalToken).
	WHIPToken configs.Secret
	// PageBase is the base URL of the internal loopback listener that
	// serves PageHandler ("http://127.0.0.1:port"): the LiveKit layout
	// page is opened from it. Needed for LiveKit rooms only.
	PageBase string
	// Disconnect ends the channel's session from the browser at once
	// (whip.Server.Disconnect), so that the channel's grace period starts
	// when the browser goes, not when ICE notices. Nil: nothing.
	Disconnect func()
	// Browser is the Chromium executable. Empty: chromium,
	// chromium-browser, google-chrome-stable or google-chrome in PATH.
	Browser string
	// TempDir holds the extension and the browser profiles, in a directory
	// of its own removed when Run returns. Empty: os.TempDir().
	TempDir string
	// HTTPClient calls the BigBlueButton API. Nil: a client with a 10 s
	// timeout.
	HTTPClient *http.Client

	// Test knobs; zero means the default.
	hangAfter  time.Duration // no picture or page answer for this long: 10 s
	statsEvery time.Duration // capture stats: 1 s
	leftAfter  time.Duration // joined, then not for this long: thrown out, 6 s
	bbbPoll    time.Duration // asking whether a meeting started: every 5 s
}

// Status is what the dashboard shows about a capture.
type Status struct {
	// Platform is "jitsi", "bbb" or "livekit"; Server the meeting server's host name
	// (never the room, the token or the join link).
	Platform string    `json:"platform"`
	Server   string    `json:"server"`
	State    State     `json:"state"`
	Since    time.Time `json:"since"`
	// Manual is true for start: manual; Started says whether the capture
	// is wanted (always true for auto).
	Manual    bool   `json:"manual"`
	Started   bool   `json:"started"`
	Restarts  uint64 `json:"restarts"`
	LastError string `json:"last_error,omitempty"`
	// ErrorKey is BigBlueButton's messageKey when it refused the join
	// (checksumError, maxParticipantsReached…); LastError says it in French.
	ErrorKey string `json:"error_key,omitempty"`
	// DisplayName is the name the bot joins under, as the lobby shows it.
	DisplayName string `json:"display_name"`
	// Detail says, in plain words, what the capture waits for.
	Detail string `json:"detail,omitempty"`
	// Size is the captured picture, "1280x720" or "1920x1080".
	Size string `json:"size"`
	// CaptureFPS is the frame rate captured from the page.
	CaptureFPS float64 `json:"capture_fps"`
	// CPUCores is the browser tree's CPU use over the last seconds, in
	// cores (1.0 = one core busy).
	CPUCores float64 `json:"cpu_cores"`
	// MemoryBytes is the browser tree's proportional set size.
	MemoryBytes int64 `json:"memory_bytes"`
	Processes   int   `json:"processes"`
	// PageErrors counts the errors the meeting page logged.
	PageErrors    uint64 `json:"page_errors"`
	LastPageError string `json:"last_page_error,omitempty"`
}

// Capture keeps a channel fed from a meeting. Status, Start and Stop are
// safe for concurrent use.
type Capture struct {
	cfg   Config
	log   zerolog.Logger
	met   *captureMetrics
	scrub *strings.Replacer
	width int
	high  int

	mu      sync.Mutex
	status  Status
	wanted  bool
	cancel  context.CancelFunc // of the current attempt
	wake    chan struct{}      // Start/Stop: capacity 1
	sandbox bool               // Chromium's sandbox works here
	pid     int                // the browser's main process, 0 when none
}

// New prepares the capture of a meeting; nothing starts before Run.
func New(cfg Config, log zerolog.Logger, m *Metrics) (*Capture, error) {
	mt := cfg.Meeting
	w, h := mt.Dimensions()
	if mt.Platform() == "" || w == 0 {
		return nil, errors.New("meeting: no valid jitsi, bbb or livekit meeting")
	}
	if cfg.WHIPURL == "" || !cfg.WHIPToken.IsSet() {
		return nil, errors.New("meeting: no WHIP endpoint to publish to")
	}
	if cfg.hangAfter == 0 {
		cfg.hangAfter = 10 * time.Second
	}
	if cfg.statsEvery == 0 {
		cfg.statsEvery = time.Second
	}
	if cfg.leftAfter == 0 {
		cfg.leftAfter = 6 * time.Second
	}
	if cfg.bbbPoll == 0 {
		cfg.bbbPoll = 5 * time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.TempDir == "" {
		cfg.TempDir = os.TempDir()
	}
	if cfg.Meeting.AloneAfter == 0 {
		cfg.Meeting.AloneAfter = configs.DefaultAloneAfter
	}
	server := mt.String()
	if _, host, ok := strings.Cut(server, " on "); ok {
		server, _, _ = strings.Cut(host, ",")
	}
	manual := mt.Start == configs.StartManual
	c := &Capture{
		cfg:   cfg,
		log:   log.With().Str("component", "ingest.meeting").Str("channel", cfg.Channel).Logger(),
		met:   m.forChannel(cfg.Channel),
		scrub: secretScrubber(mt, cfg.WHIPToken.Value()),
		width: w, high: h,
		wanted:  !manual,
		wake:    make(chan struct{}, 1),
		sandbox: os.Geteuid() != 0, // Chromium refuses its sandbox as root
		status: Status{
			Platform: mt.Platform(), Server: server, State: StateIdle, Since: time.Now(),
			Manual: manual, Started: !manual, Size: mt.Size, DisplayName: mt.DisplayName,
		},
	}
	c.met.state[StateIdle].Set(1)
	return c, nil
}

// secretScrubber hides the meeting's secrets in text that reaches the log
// or the API (errors, the page's console, Chromium's output).
func secretScrubber(m configs.Meeting, token string) *strings.Replacer {
	var pairs []string
	for _, s := range []string{m.Jitsi.URL.Value(), m.Jitsi.JWT.Value(), m.BBB.Secret.Value(), token,
		m.LiveKit.APISecret.Value(), m.LiveKit.Room.Value()} {
		if len(s) >= 4 {
			pairs = append(pairs, s, "[redacted]")
		}
	}
	if u := m.Jitsi.URL.Value(); u != "" {
		// The room alone, as the page may print it.
		if i := strings.Index(u, "://"); i >= 0 {
			if _, room, ok := strings.Cut(u[i+3:], "/"); ok && len(room) >= 4 {
				pairs = append(pairs, room, "[redacted]")
			}
		}
	}
	return strings.NewReplacer(pairs...)
}

// credentialRE matches the credentials a meeting's own URLs carry, which a
// page may print in its errors: BigBlueButton's session token and API
// checksum, Jitsi's JWT.
var credentialRE = regexp.MustCompile(`(?i)((?:sessionToken|checksum|jwt)=)[^&\s"'#]+`)

// jwtRE matches a JSON Web Token (RFC 7519: base64url parts, the first
// a JSON object, so "eyJ"), such as the LiveKit tokens seance mints for
// every join, which a page may print in its errors; also one cut short.
var jwtRE = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){0,2}`)

// clean hides the meeting's secrets in text bound for the log or the API.
func (c *Capture) clean(s string) string {
	s = credentialRE.ReplaceAllString(c.scrub.Replace(s), "${1}[redacted]")
	return jwtRE.ReplaceAllString(s, "[redacted]")
}

// Status returns a snapshot of the capture's state.
func (c *Capture) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// Start asks for the capture to run (start: manual); it does nothing if it
// already runs, and joins again a meeting a moderator removed the bot from.
func (c *Capture) Start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.wanted {
		c.wanted = true
		c.status.Started = true
		c.log.Info().Msg("meeting capture started from the admin API")
	}
	c.signal()
}

// Stop ends the capture: the browser is killed and the channel's publisher
// leaves (its grace period starts). Start resumes it.
func (c *Capture) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.wanted {
		c.wanted = false
		c.status.Started = false
		c.log.Info().Msg("meeting capture stopped from the admin API")
	}
	if c.cancel != nil {
		c.cancel()
	}
	c.signal()
}

func (c *Capture) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Run captures until ctx is cancelled; it returns once the browser is gone
// and its files deleted.
func (c *Capture) Run(ctx context.Context) error {
	dir, err := os.MkdirTemp(c.cfg.TempDir, "seance-meeting-")
	if err != nil {
		return fmt.Errorf("meeting capture: %w", err)
	}
	defer os.RemoveAll(dir)
	ext, err := writeExtension(dir)
	if err != nil {
		return err
	}
	backoff := time.Duration(0)
	needOthers := false // alone in the meeting: wait there for someone before capturing
	for {
		c.mu.Lock()
		wanted := c.wanted
		c.mu.Unlock()
		if !wanted {
			needOthers = false
			c.setState(StateIdle, "", "")
			select {
			case <-ctx.Done():
				return nil
			case <-c.wake:
				continue
			}
		}
		actx, cancel := context.WithCancel(ctx)
		c.mu.Lock()
		c.cancel = cancel
		c.mu.Unlock()
		capturing, err := c.attempt(actx, dir, ext, needOthers)
		cancel()
		c.mu.Lock()
		c.cancel = nil
		wanted = c.wanted
		c.mu.Unlock()
		if ctx.Err() != nil {
			c.setState(StateIdle, "", "")
			return nil
		}
		if !wanted {
			continue // stopped from the API
		}
		if !capturing.IsZero() {
			needOthers = false
		}
		switch {
		case errors.Is(err, errAlone):
			// Not a failure: the bot leaves and joins again at once, and
			// waits in the meeting, not capturing, for someone to come.
			needOthers, backoff = true, 0
			c.setState(StateAlone, "", "")
			c.log.Info().Dur("after", time.Duration(c.cfg.Meeting.AloneAfter)).
				Msg("no one else in the meeting: the channel shows its slate until someone joins")
			continue
		case errors.Is(err, ErrRemoved):
			needOthers, backoff = false, 0
			if !c.waitRemoved(ctx, c.clean(err.Error())) {
				c.setState(StateIdle, "", "")
				return nil
			}
			continue
		}
		var wait time.Duration
		if !capturing.IsZero() && time.Since(capturing) >= stableCapture {
			backoff, wait = 0, restartAfterCapture
		} else {
			backoff, wait = nextBackoff(backoff)
		}
		var je *BBBJoinError
		reason := c.clean(err.Error())
		c.mu.Lock()
		c.status.Restarts++
		// The key and its message change together: the API never shows
		// one without the other.
		c.status.ErrorKey, c.status.LastError = "", reason
		if errors.As(err, &je) {
			c.status.ErrorKey = je.Key
		}
		c.mu.Unlock()
		c.met.restarts.Inc()
		c.log.Warn().Str("reason", reason).Str("retry_in", wait.Round(10*time.Millisecond).String()).
			Msg("meeting capture interrupted: restarting the browser")
		c.setState(StateRetrying, reason, "")
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			c.setState(StateIdle, "", "")
			return nil
		case <-c.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// waitRemoved keeps the bot out of the meeting a moderator removed it from
// until IT staff start it again (Start, or Stop then Start) or
// Meeting.RejoinAfter passes (never when 0). It returns false when ctx
// ends.
func (c *Capture) waitRemoved(ctx context.Context, reason string) bool {
	select { // a Start from before the removal does not count
	case <-c.wake:
	default:
	}
	after := time.Duration(c.cfg.Meeting.RejoinAfter)
	ev := c.log.Warn().Str("reason", reason)
	var rejoin <-chan time.Time
	if after > 0 {
		t := time.NewTimer(after)
		defer t.Stop()
		rejoin = t.C
		ev = ev.Str("rejoin_in", after.String())
	}
	ev.Msg("removed from the meeting by a moderator: seance stays out until started again from the dashboard or the API")
	c.setState(StateRemoved, reason, "")
	select {
	case <-ctx.Done():
		return false
	case <-c.wake:
		c.log.Info().Msg("joining the meeting again after the removal")
	case <-rejoin:
		c.log.Info().Msg("joining the meeting again: ingest.meeting.rejoin_after passed")
	}
	return true
}

// nextBackoff doubles the step prev within [minBackoff, maxBackoff] and
// returns it with the time to wait: the step ±20 %.
func nextBackoff(prev time.Duration) (step, wait time.Duration) {
	step = min(max(prev*2, minBackoff), maxBackoff)
	return step, step + time.Duration((rand.Float64()*0.4-0.2)*float64(step))
}

var stateMessage = [...]string{
	StateIdle:      "meeting capture stopped",
	StateWaiting:   "waiting for the meeting to start",
	StateLaunching: "starting the browser",
	StateJoining:   "joining the meeting",
	StateCapturing: "capturing the meeting: its picture and sound feed the channel",
	StateRetrying:  "meeting capture interrupted",
	StateRemoved:   "removed from the meeting",
	StateAlone:     "alone in the meeting: not capturing, the channel shows its slate",
}

// setState records a state change (and logs it); reason, when set, is the
// last error, already scrubbed; detail says what the capture waits for.
func (c *Capture) setState(s State, reason, detail string) {
	c.mu.Lock()
	prev := c.status.State
	if prev != s {
		c.status.State, c.status.Since = s, time.Now()
		c.met.state[prev].Set(0)
		c.met.state[s].Set(1)
	}
	if reason != "" {
		c.status.LastError = reason
	}
	changedDetail := c.status.Detail != detail
	c.status.Detail = detail
	if s != StateCapturing {
		c.status.CaptureFPS = 0
	} else {
		c.status.ErrorKey = ""
	}
	c.mu.Unlock()
	if s != StateCapturing {
		c.met.fps.Set(0)
	}
	if s == StateRetrying || s == StateRemoved || (prev == s && (!changedDetail || detail == "")) {
		return // Run logged the reason
	}
	ev := c.log.Info()
	if s == StateLaunching && prev == StateRetrying {
		ev = c.log.Debug()
	}
	if detail != "" {
		ev = ev.Str("detail", detail)
	}
	ev.Str("state", s.String()).Msg(stateMessage[s])
}
