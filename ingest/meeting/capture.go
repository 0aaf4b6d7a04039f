package meeting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/seance-relay/seance/configs"
)

// Details of a state (Status.Detail).
const (
	// DetailMeetingNotStarted: BigBlueButton says the meeting is not
	// running yet.
	DetailMeetingNotStarted = "meeting_not_started"
	// DetailLobby: the bot knocked at Jitsi's lobby or waits as a
	// BigBlueButton guest: a moderator must admit it.
	DetailLobby = "lobby"
	// DetailLobbyNoKnock: Jitsi's lobby screen, without knocking (a server
	// overriding lobby.autoKnock): no moderator is told.
	DetailLobbyNoKnock = "lobby_no_knock"
	// DetailLoginPage: the meeting asks for a login or a password (Jitsi's
	// secure domain without a valid JWT).
	DetailLoginPage = "login_page"
	// DetailOtherPage: the page loaded is not the meeting (a login, error
	// or logout page): nothing is captured.
	DetailOtherPage = "other_page"
	// DetailPageLoading: the meeting page is loading or connecting.
	DetailPageLoading = "page_loading"
)

// Capture quality: OpenH264 at these caps, 30 fps.
const (
	captureFPS     = 30
	bitrate720p    = 2_500_000
	bitrate1080p   = 4_500_000
	callTimeout    = 10 * time.Second
	probeTimeout   = 2 * time.Second
	startTimeout   = 30 * time.Second
	captureTimeout = 20 * time.Second // from seanceStart to frames sent
)

// target returns the address the browser opens. For BigBlueButton it first
// waits, politely, for the meeting to start.
func (c *Capture) target(ctx context.Context) (string, error) {
	m := c.cfg.Meeting
	if m.Platform() == "jitsi" {
		return jitsiURL(m.Jitsi.URL.Value(), m.Jitsi.JWT.Value(), m.DisplayName, m.Layout)
	}
	if m.Platform() == configs.PlatformLiveKit {
		lk := m.LiveKit
		token, err := liveKitViewerToken(lk.APIKey, lk.APISecret.Value(), lk.Room.Value(), m.DisplayName)
		if err != nil {
			return "", err
		}
		return liveKitURL(c.cfg.PageBase, lk.URL, token, m.Layout)
	}
	bbb := newBBBClient(m.BBB.API, m.BBB.Secret.Value(), m.BBB.MeetingID, c.cfg.HTTPClient)
	for {
		running, err := bbb.running(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			return "", err
		}
		if running {
			return bbb.join(ctx, m.DisplayName)
		}
		c.setState(StateWaiting, "", DetailMeetingNotStarted)
		if !waitContext(ctx, c.cfg.bbbPoll) {
			return "", ctx.Err()
		}
	}
}

// probe returns the script that tells where the bot stands in the page.
func (c *Capture) probe() string {
	switch c.cfg.Meeting.Platform() {
	case configs.PlatformBBB:
		return bbbProbe
	case configs.PlatformLiveKit:
		return liveKitProbe
	}
	return jitsiProbe
}

// attempt runs one browser: it joins the meeting, starts the capture and
// watches it until something fails or ctx is cancelled. capturing is when
// the capture went live, zero if it never did. With needOthers, the
// capture starts only once someone else is in the meeting.
func (c *Capture) attempt(ctx context.Context, dir, ext string, needOthers bool) (capturing time.Time, err error) {
	path, err := findBrowser(c.cfg.Browser)
	if err != nil {
		return time.Time{}, err
	}
	url, err := c.target(ctx)
	if err != nil {
		return time.Time{}, err
	}
	if !needOthers { // alone: the state stays alone while the browser restarts
		c.setState(StateLaunching, "", "")
	}
	r, err := c.launch(ctx, path, dir, ext)
	if err != nil {
		return time.Time{}, err
	}
	c.mu.Lock()
	c.pid = r.b.pid()
	c.mu.Unlock()
	defer func() {
		if c.cfg.Disconnect != nil {
			c.cfg.Disconnect()
		}
		closing := time.Now()
		r.b.close()
		c.log.Debug().Dur("took", time.Since(closing)).Msg("browser closed")
		c.mu.Lock()
		c.pid = 0
		c.status.Processes, c.status.CPUCores, c.status.MemoryBytes = 0, 0, 0
		c.mu.Unlock()
		c.met.memory.Set(0)
		if err != nil && r.b.exitReason() != "still running" && !errors.Is(err, context.Canceled) {
			c.log.Debug().Str("stderr", c.clean(tail(r.b.stderr.String(), 2000))).Msg("browser output")
		}
	}()
	if err := r.open(ctx, url, needOthers); err != nil {
		return time.Time{}, c.thrownOut(ctx, r, err)
	}
	if err := r.startCapture(ctx); err != nil {
		return time.Time{}, err
	}
	capturing, err = r.watch(ctx)
	return capturing, c.thrownOut(ctx, r, err)
}

// thrownOut tells, for BigBlueButton, a removal from the end of the
// meeting: both show the same meeting-ended screen
// (bigbluebutton-html5 meeting-ended/component.tsx), but a meeting that
// still runs did not end.
func (c *Capture) thrownOut(ctx context.Context, r *run, err error) error {
	m := c.cfg.Meeting
	if !errors.Is(err, ErrThrownOut) || !r.joined || m.Platform() != "bbb" || ctx.Err() != nil {
		return err
	}
	bbb := newBBBClient(m.BBB.API, m.BBB.Secret.Value(), m.BBB.MeetingID, c.cfg.HTTPClient)
	if running, rerr := bbb.running(ctx); rerr == nil && running {
		return fmt.Errorf("%w (BigBlueButton's meeting still runs)", ErrRemoved)
	}
	return err
}

// run is one browser and the DevTools sessions seance holds in it.
type run struct {
	c       *Capture
	b       *browser
	page    string // session of the meeting tab
	pageID  string // its target
	off     string // session of the extension's capture document
	joined  bool
	lastLog time.Time // last page error logged
	quiet   int       // page errors not logged since
	fatal   error     // set by events: the page crashed or closed
}

// launch starts the browser and checks it answers. When Chromium cannot
// start its sandbox here, it is started again without it, and the
// capture remembers.
func (c *Capture) launch(ctx context.Context, path, dir, ext string) (*run, error) {
	for {
		c.mu.Lock()
		sandbox := c.sandbox
		c.mu.Unlock()
		b, err := launchBrowser(path, dir, ext, c.width, c.high, sandbox)
		if err != nil {
			return nil, err
		}
		r := &run{c: c, b: b}
		var v struct {
			UserAgent string `json:"userAgent"`
		}
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		err = b.cdp.call(cctx, "", "Browser.getVersion", nil, &v)
		cancel()
		if err == nil {
			if err := r.setup(ctx, v.UserAgent); err != nil {
				b.close()
				return nil, fmt.Errorf("browser setup: %w", err)
			}
			return r, nil
		}
		select {
		case <-b.exited:
		case <-time.After(time.Second):
		}
		stderr := b.stderr.String()
		b.close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if sandbox && noSandbox(stderr) {
			c.mu.Lock()
			c.sandbox = false
			c.mu.Unlock()
			c.log.Warn().Msg("Chromium's sandbox is not available here (no user namespaces, or running as root): running the browser without it")
			continue
		}
		return nil, fmt.Errorf("%w at start (%s): %s", ErrBrowserExited, b.exitReason(), c.clean(lastLine(stderr)))
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return oneLine(lines[len(lines)-1], 300)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// targetInfo is Target.TargetInfo, as far as seance reads it.
type targetInfo struct {
	TargetID string `json:"targetId"`
	Type     string `json:"type"`
	URL      string `json:"url"`
}

// setup grants the media permissions join screens ask for, attaches to the
// tab, and makes the browser present itself as a normal Chrome.
func (r *run) setup(ctx context.Context, ua string) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	cdp := r.b.cdp
	if err := cdp.call(ctx, "", "Browser.grantPermissions", map[string]any{
		"permissions": []string{"audioCapture", "videoCapture"},
	}, nil); err != nil {
		return err
	}
	if err := cdp.call(ctx, "", "Target.setDiscoverTargets", map[string]any{"discover": true}, nil); err != nil {
		return err
	}
	page, err := r.findTarget(ctx, func(t targetInfo) bool { return t.Type == "page" })
	if err != nil {
		return err
	}
	r.pageID = page.TargetID
	if r.page, err = r.attach(ctx, page.TargetID); err != nil {
		return err
	}
	for _, m := range []string{"Page.enable", "Runtime.enable"} {
		if err := cdp.call(ctx, r.page, m, nil, nil); err != nil {
			return err
		}
	}
	// Meeting servers check the browser; "HeadlessChrome" is refused or
	// shown a warning by some.
	return cdp.call(ctx, r.page, "Emulation.setUserAgentOverride", map[string]any{
		"userAgent":      strings.Replace(ua, "HeadlessChrome/", "Chrome/", 1),
		"acceptLanguage": "fr-FR,fr;q=0.9,en;q=0.5",
	}, nil)
}

// findTarget waits for a target to exist.
func (r *run) findTarget(ctx context.Context, match func(targetInfo) bool) (targetInfo, error) {
	for {
		var res struct {
			TargetInfos []targetInfo `json:"targetInfos"`
		}
		if err := r.b.cdp.call(ctx, "", "Target.getTargets", nil, &res); err != nil {
			return targetInfo{}, err
		}
		for _, t := range res.TargetInfos {
			if match(t) {
				return t, nil
			}
		}
		if !waitContext(ctx, 50*time.Millisecond) {
			return targetInfo{}, fmt.Errorf("browser target not found: %w", ctx.Err())
		}
	}
}

func (r *run) attach(ctx context.Context, targetID string) (string, error) {
	var res struct {
		SessionID string `json:"sessionId"`
	}
	err := r.b.cdp.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": targetID, "flatten": true}, &res)
	return res.SessionID, err
}

// open loads the meeting page and waits, with no time limit, until the
// bot has joined: nothing is captured before, so a lobby, a login page, an
// error or logout page never goes on air. With needOthers it also waits
// for someone else to be in the meeting.
func (r *run) open(ctx context.Context, url string, needOthers bool) error {
	c := r.c
	loading := func() {
		if !needOthers {
			c.setState(StateJoining, "", DetailPageLoading)
		}
	}
	loading()
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	cctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := r.b.cdp.call(cctx, r.page, "Page.navigate", map[string]any{"url": url}, &nav); err != nil {
		return err
	}
	if nav.ErrorText != "" {
		return fmt.Errorf("the meeting page did not load: %s", c.clean(nav.ErrorText))
	}
	probe := c.probe()
	answered := time.Now()
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.b.exited:
			return fmt.Errorf("%w while joining (%s)", ErrBrowserExited, r.b.exitReason())
		case m, ok := <-r.b.cdp.Events():
			if !ok {
				return fmt.Errorf("%w while joining: its DevTools pipe closed", ErrBrowserExited)
			}
			r.event(m)
			if r.fatal != nil {
				return r.fatal
			}
			continue
		case <-tick.C:
		}
		var where string
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		err := r.b.cdp.evaluate(pctx, r.page, probe, &where)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// Navigations destroy the context mid-call: ask again, but a
			// page that never answers hangs.
			if time.Since(answered) > c.cfg.hangAfter {
				return fmt.Errorf("%w: the meeting page has not answered for %s", ErrHung, c.cfg.hangAfter)
			}
			continue
		}
		answered = time.Now()
		if others, ok := joinedOthers(where); ok {
			r.joined = true
			if needOthers && others == 0 {
				c.setState(StateAlone, "", "")
				continue
			}
			c.setState(StateJoining, "", "")
			return nil
		}
		switch {
		case where == "removed":
			return ErrRemoved
		case where == "left":
			return ErrThrownOut
		case strings.HasPrefix(where, "refused:"):
			return fmt.Errorf("%w: %s", ErrLiveKitRefused, c.clean(oneLine(strings.TrimPrefix(where, "refused:"), 200)))
		case strings.HasPrefix(where, "error:"):
			return fmt.Errorf("%w the join: %s", ErrBBBRefused, c.clean(oneLine(strings.TrimPrefix(where, "error:"), 200)))
		case where == "lobby":
			c.setState(StateJoining, "", DetailLobby)
		case where == "lobby_no_knock":
			c.setState(StateJoining, "", DetailLobbyNoKnock)
		case where == "login":
			c.setState(StateJoining, "", DetailLoginPage)
		case where == "other":
			c.setState(StateJoining, "", DetailOtherPage)
		default:
			loading()
		}
	}
}

// joinedOthers reads a probe's "joined" or "joined:N" answer: N others in
// the meeting, -1 when the page does not say.
func joinedOthers(where string) (others int, ok bool) {
	if where == "joined" {
		return -1, true
	}
	n, found := strings.CutPrefix(where, "joined:")
	if !found {
		return 0, false
	}
	others, err := strconv.Atoi(n)
	if err != nil {
		return -1, true
	}
	return others, true
}

// captureConfig is what the extension's seanceStart takes.
type captureConfig struct {
	WHIP    string `json:"whip"`
	Token   string `json:"token"`
	Width   int    `json:"width"`
	Height  int    `json:"height"`
	FPS     int    `json:"fps"`
	Bitrate int    `json:"bitrate"`
}

// startCapture has the extension capture the tab and publish it.
func (r *run) startCapture(ctx context.Context) error {
	c := r.c
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	prefix := "chrome-extension://" + extensionID + "/"
	sw, err := r.findTarget(ctx, func(t targetInfo) bool {
		return t.Type == "service_worker" && strings.HasPrefix(t.URL, prefix)
	})
	if err != nil {
		return fmt.Errorf("the capture extension did not load: %w", err)
	}
	swSession, err := r.attach(ctx, sw.TargetID)
	if err != nil {
		return err
	}
	if err := r.b.cdp.call(ctx, swSession, "Runtime.enable", nil, nil); err != nil {
		return err
	}
	br := bitrate720p
	if c.high > 720 {
		br = bitrate1080p
	}
	cfg, err := json.Marshal(captureConfig{
		WHIP: c.cfg.WHIPURL, Token: c.cfg.WHIPToken.Value(),
		Width: c.width, Height: c.high, FPS: captureFPS, Bitrate: br,
	})
	if err != nil {
		return err
	}
	if err := r.b.cdp.evaluate(ctx, swSession, "seanceStart("+string(cfg)+")", nil); err != nil {
		return fmt.Errorf("the capture did not start: %s", c.clean(err.Error()))
	}
	off, err := r.findTarget(ctx, func(t targetInfo) bool { return t.URL == prefix+"offscreen.html" })
	if err != nil {
		return fmt.Errorf("the capture document did not open: %w", err)
	}
	if r.off, err = r.attach(ctx, off.TargetID); err != nil {
		return err
	}
	return r.b.cdp.call(ctx, r.off, "Runtime.enable", nil, nil)
}

// captureStats is what the extension's seanceStats returns.
type captureStats struct {
	State      string  `json:"state"`
	Error      string  `json:"error"`
	Frames     int64   `json:"frames"`
	FramesSent int64   `json:"framesSent"`
	Bytes      int64   `json:"bytes"`
	AudioBytes int64   `json:"audioBytes"`
	Width      int     `json:"width"`
	Height     int     `json:"height"`
	AudioLevel float64 `json:"audioLevel"`
	Encoder    string  `json:"encoder"`
	Limitation string  `json:"limitation"`
	Target     float64 `json:"targetBitrate"`
	Available  float64 `json:"availableBitrate"`
	EncodedFPS float64 `json:"encodedFps"`
}

// watch follows the capture until it fails or ctx is cancelled, and says
// since when it was capturing (zero if it never did).
func (r *run) watch(ctx context.Context) (capturing time.Time, err error) {
	c := r.c
	every := c.cfg.statsEvery
	tick := time.NewTicker(every)
	defer tick.Stop()
	started := time.Now()
	lastFrames, lastFramesAt := int64(-1), time.Now()
	pageOK := time.Now()
	var notJoinedSince, disconnectedSince, aloneSince time.Time
	prevTree, prevTreeAt := readTree(r.b.pid()), time.Now()
	lastBytes, lastBytesAt := int64(0), time.Now()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return capturing, ctx.Err()
		case <-r.b.exited:
			return capturing, fmt.Errorf("%w (%s)", ErrBrowserExited, r.b.exitReason())
		case m, ok := <-r.b.cdp.Events():
			if !ok {
				// The pipe broke: the browser is exiting.
				select {
				case <-r.b.exited:
				case <-time.After(time.Second):
				}
				return capturing, fmt.Errorf("%w (%s)", ErrBrowserExited, r.b.exitReason())
			}
			r.event(m)
			if r.fatal != nil {
				return capturing, r.fatal
			}
			continue
		case <-tick.C:
		}
		n++
		now := time.Now()

		var st captureStats
		sctx, cancel := context.WithTimeout(ctx, probeTimeout)
		serr := r.b.cdp.evaluate(sctx, r.off, "seanceStats()", &st)
		cancel()
		if serr == nil && st.Frames > lastFrames {
			if lastFrames >= 0 {
				fps := float64(st.Frames-lastFrames) / now.Sub(lastFramesAt).Seconds()
				c.mu.Lock()
				c.status.CaptureFPS = fps
				c.mu.Unlock()
				c.met.fps.Set(fps)
			}
			lastFrames, lastFramesAt = st.Frames, now
		}
		if now.Sub(lastFramesAt) > c.cfg.hangAfter {
			return capturing, fmt.Errorf("%w: no picture captured for %s", ErrHung, c.cfg.hangAfter)
		}
		switch {
		case serr != nil:
		case st.State == "failed" || st.State == "closed":
			return capturing, errors.New("the browser's connection to seance closed (publisher disconnected from the admin API, or lost)")
		case st.State == "disconnected":
			if disconnectedSince.IsZero() {
				disconnectedSince = now
			} else if now.Sub(disconnectedSince) > 5*time.Second {
				return capturing, errors.New("the browser's connection to seance was lost")
			}
		case st.State == "connected" && st.FramesSent > 0:
			disconnectedSince = time.Time{}
			if capturing.IsZero() {
				capturing = now
				c.setState(StateCapturing, "", c.Status().Detail)
				c.log.Info().Dur("after", time.Since(started).Round(time.Millisecond)).
					Int("width", st.Width).Int("height", st.Height).Msg("meeting capture live")
			}
		}
		if capturing.IsZero() && now.Sub(started) > captureTimeout {
			why := st.Error
			if why == "" {
				why = "connection " + st.State
			}
			return capturing, fmt.Errorf("the capture did not start within %s: %s", captureTimeout, c.clean(why))
		}

		if serr == nil && n%(int(10*time.Second/every)) == 0 {
			sent := float64(st.Bytes-lastBytes) * 8 / now.Sub(lastBytesAt).Seconds() / 1000
			lastBytes, lastBytesAt = st.Bytes, now
			c.log.Debug().Float64("capture_fps", c.Status().CaptureFPS).Float64("encoded_fps", st.EncodedFPS).
				Float64("sent_kbit_s", sent).
				Float64("target_kbit_s", st.Target/1000).Float64("available_kbit_s", st.Available/1000).
				Str("encoder", st.Encoder).Str("quality_limited_by", st.Limitation).Msg("capture stats")
		}
		if n%2 == 0 {
			if err := r.checkPage(ctx, now, &pageOK, &notJoinedSince, &aloneSince); err != nil {
				return capturing, err
			}
			cur := readTree(r.b.pid())
			cpu := cpuDelta(prevTree, cur)
			c.met.cpu.Add(cpu.Seconds())
			c.met.memory.Set(float64(cur.pss))
			c.mu.Lock()
			c.status.CPUCores = cpu.Seconds() / now.Sub(prevTreeAt).Seconds()
			c.status.MemoryBytes = cur.pss
			c.status.Processes = cur.procs
			c.mu.Unlock()
			prevTree, prevTreeAt = cur, now
		}
	}
}

// checkPage asks the meeting page where the bot stands: a page that stops
// answering hangs; one that left the meeting threw the bot out; one alone
// in it for Meeting.AloneAfter ends the capture (errAlone).
func (r *run) checkPage(ctx context.Context, now time.Time, pageOK, notJoinedSince, aloneSince *time.Time) error {
	c := r.c
	probe := c.probe()
	var where string
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	err := r.b.cdp.evaluate(pctx, r.page, probe, &where)
	cancel()
	if err != nil {
		if ctx.Err() == nil && now.Sub(*pageOK) > c.cfg.hangAfter {
			return fmt.Errorf("%w: the meeting page has not answered for %s", ErrHung, c.cfg.hangAfter)
		}
		return nil
	}
	*pageOK = now
	if others, ok := joinedOthers(where); ok {
		r.joined = true
		*notJoinedSince = time.Time{}
		if d := c.Status().Detail; d != "" {
			c.setState(StateCapturing, "", "")
		}
		switch {
		case others != 0:
			*aloneSince = time.Time{}
		case aloneSince.IsZero():
			*aloneSince = now
		case now.Sub(*aloneSince) >= time.Duration(c.cfg.Meeting.AloneAfter):
			return errAlone
		}
		return nil
	}
	switch {
	case where == "removed":
		return ErrRemoved
	case where == "left":
		return ErrThrownOut
	case r.joined:
		if notJoinedSince.IsZero() {
			*notJoinedSince = now
		} else if now.Sub(*notJoinedSince) > c.cfg.leftAfter {
			return ErrThrownOut
		}
	}
	return nil
}

// event handles a DevTools event: the page's errors reach the log and the
// status; a crashed or closed page ends the attempt.
func (r *run) event(m cdpMessage) {
	switch m.Method {
	case "Runtime.consoleAPICalled":
		var p struct {
			Type string `json:"type"`
			Args []struct {
				Type        string          `json:"type"`
				Value       json.RawMessage `json:"value"`
				Description string          `json:"description"`
			} `json:"args"`
		}
		if json.Unmarshal(m.Params, &p) != nil || (p.Type != "error" && p.Type != "assert") {
			return
		}
		var parts []string
		for _, a := range p.Args {
			var s string
			if json.Unmarshal(a.Value, &s) == nil {
				parts = append(parts, s)
			} else if a.Description != "" {
				parts = append(parts, a.Description)
			} else if len(a.Value) > 0 {
				parts = append(parts, string(a.Value))
			}
		}
		r.pageError(m.SessionID, strings.Join(parts, " "))
	case "Runtime.exceptionThrown":
		var p struct {
			ExceptionDetails exceptionDetails `json:"exceptionDetails"`
		}
		if json.Unmarshal(m.Params, &p) == nil {
			r.pageError(m.SessionID, "uncaught "+p.ExceptionDetails.String())
		}
	case "Inspector.targetCrashed":
		if m.SessionID == r.page {
			r.fatal = fmt.Errorf("%w: the meeting page crashed", ErrBrowserExited)
		}
	case "Target.targetCrashed", "Target.targetDestroyed":
		var p struct {
			TargetID string `json:"targetId"`
		}
		if json.Unmarshal(m.Params, &p) == nil && p.TargetID == r.pageID {
			r.fatal = fmt.Errorf("%w: the meeting page crashed or closed", ErrBrowserExited)
		}
	case "Target.detachedFromTarget":
		var p struct {
			SessionID string `json:"sessionId"`
		}
		if json.Unmarshal(m.Params, &p) == nil && (p.SessionID == r.page || (r.off != "" && p.SessionID == r.off)) {
			r.fatal = errors.New("the browser closed the meeting page or the capture")
		}
	}
}

// pageError records an error the page (or the capture extension) logged:
// counted, kept for the dashboard, logged at most every 5 s.
func (r *run) pageError(session, text string) {
	c := r.c
	text = oneLine(c.clean(text), 300)
	source := "meeting page"
	if session != r.page {
		source = "capture extension"
	} else {
		c.met.pageErrors.Inc()
		c.mu.Lock()
		c.status.PageErrors++
		c.status.LastPageError = text
		c.mu.Unlock()
	}
	if time.Since(r.lastLog) < 5*time.Second {
		r.quiet++
		return
	}
	ev := c.log.Warn().Str("source", source).Str("error", text)
	if r.quiet > 0 {
		ev = ev.Int("more_errors_not_logged", r.quiet)
	}
	ev.Msg("the meeting page reported an error")
	r.lastLog, r.quiet = time.Now(), 0
}
