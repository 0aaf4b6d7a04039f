package relay

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// SlateSource supplies the slate a channel sends while its publisher is
// gone (package slate implements it). Its methods are called with the
// channel's lock held: they must return at once and must not call the
// channel.
type SlateSource interface {
	// Prepare tells the source the parameters of the live stream, when the
	// channel goes live and whenever they change, so that it can make a
	// matching slate ahead of need (in the background).
	Prepare(p SlateParams)
	// Slate returns the slate for a stream with parameters p, or nil to
	// send none.
	Slate(p SlateParams) *Slate
}

// SlateParams describe the live stream a slate should match.
type SlateParams struct {
	// Width and Height are the live picture's size in pixels (0 when the
	// SPS cannot be read).
	Width, Height int
	// FPS is the live frame rate: from the SPS's timing information, else
	// as measured; 0 when unknown.
	FPS float64
	// Audio is the live audio track; nil when there is none.
	Audio *AudioTrack
}

// Slate is a looped H.264 clip and one frame of silence, sent in place of
// the publisher's stream. It is read-only once returned by a SlateSource.
type Slate struct {
	// SPS and PPS are the clip's parameter sets.
	SPS, PPS []byte
	// Frames is one loop of the clip; Frames[0] is an IDR. Its NALUs carry
	// no parameter sets and no access unit delimiters.
	Frames []SlateFrame
	// FrameDuration is the time from one frame to the next.
	FrameDuration time.Duration
	// Silence is one raw AAC access unit of silence for SlateParams.Audio;
	// nil sends no audio.
	Silence []byte
	// Name says which slate this is, for logs ("built-in 1280x720 30 fps").
	Name string
}

// SlateFrame is one H.264 access unit of a slate.
type SlateFrame struct {
	NALUs [][]byte
	Key   bool
}

// maxSlateLag is how far the slate may fall behind the wall clock (a
// stalled host) before it stops catching up; timestamps stay continuous.
const maxSlateLag = time.Second

// slateRun is a slate being sent: its frames prepared once (AVCC and RTP
// payloads shared by every loop), and the signal that stops it.
type slateRun struct {
	name    string
	tracks  *Tracks // the slate's video track and the live audio track
	video   []slateAU
	step    time.Duration
	vclock  frameClock
	silence []byte
	aclock  frameClock
	stop    chan struct{}
}

// frameClock gives the time of frame n of a stream whose frames are unit
// ticks long at rate ticks per second, exactly (rounded down to the
// nanosecond), however large n. Multiplying a frame duration already
// rounded to the nanosecond would not do: 1/30 s is 33 333 333 ns, so six
// frames would be 2 ns short of 200 ms — and HLS parts (200 ms by
// default), cut at the first frame at least 200 ms after the part's
// start, would hold seven frames (233 ms) all through the slate and
// change the playlist's PART-TARGET at each interruption.
type frameClock struct{ unit, rate int64 }

func (c frameClock) at(n int64) time.Duration {
	t := n * c.unit
	return time.Duration(t/c.rate)*time.Second + time.Duration(t%c.rate*int64(time.Second)/c.rate)
}

// videoClock is the clock of frames step apart: the rate is taken to the
// thousandth of a frame per second (30, 25, 29.97, 23.976…), which is
// what step was rounded from.
// Steps under 1 ms (no real slate) count as 1 ms, which keeps at() far
// from overflowing.
func videoClock(step time.Duration) frameClock {
	step = max(step, time.Millisecond)
	perKilosecond := (1000*int64(time.Second) + int64(step)/2) / int64(step)
	return frameClock{unit: 1000, rate: perKilosecond}
}

type slateAU struct {
	key   bool
	nalus [][]byte
	avcc  []byte
	rtp   [][]byte
}

func newSlateRun(sl *Slate, audio *AudioTrack) *slateRun {
	r := &slateRun{
		name:   sl.Name,
		tracks: &Tracks{Video: &VideoTrack{SPS: sl.SPS, PPS: sl.PPS}, Audio: audio},
		step:   sl.FrameDuration,
		stop:   make(chan struct{}),
	}
	if r.step <= 0 {
		r.step = time.Second / 30
	}
	r.vclock = videoClock(r.step)
	if audio != nil && audio.Config != nil && len(sl.Silence) > 0 {
		r.silence = sl.Silence
		r.aclock = aacClock(audio.Config)
	}
	for _, fr := range sl.Frames {
		au := slateAU{key: fr.Key}
		var params [][]byte
		if fr.Key {
			params = [][]byte{sl.SPS, sl.PPS}
		}
		au.nalus, au.avcc = avccOf(params, fr.NALUs)
		f := &Frame{NALUs: au.nalus, AVCC: au.avcc}
		au.rtp = packetizeH264(f)
		r.video = append(r.video, au)
	}
	return r
}

// aacClock is the clock of AAC access units (960 or 1024 samples, ISO
// 14496-3 4.5.1.1) at the config's sample rate.
func aacClock(cfg *mpeg4audio.AudioSpecificConfig) frameClock {
	n := int64(mpeg4audio.SamplesPerAccessUnit)
	if cfg.FrameLengthFlag {
		n = 960
	}
	if cfg.SampleRate <= 0 {
		return frameClock{unit: 1024, rate: 48000}
	}
	return frameClock{unit: n, rate: int64(cfg.SampleRate)}
}

// avccOf lays out params then nalus in length-prefixed form in one buffer,
// and returns the NALU slices pointing into it.
func avccOf(params, nalus [][]byte) ([][]byte, []byte) {
	size := 0
	for _, n := range params {
		size += 4 + len(n)
	}
	for _, n := range nalus {
		size += 4 + len(n)
	}
	buf := make([]byte, 0, size)
	out := make([][]byte, 0, len(params)+len(nalus))
	for _, list := range [2][][]byte{params, nalus} {
		for _, n := range list {
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(n)))
			start := len(buf)
			buf = append(buf, n...)
			out = append(out, buf[start:len(buf):len(buf)])
		}
	}
	return out, buf
}

// SetSlate changes the channel's slate source from the next interruption
// on (config reload); nil sends no slate. A slate on air stays until the
// publisher returns or the session ends.
func (c *Channel) SetSlate(src SlateSource) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cfg.Slate = src
	c.prepared = nil
}

// slateParamsLocked describes the live stream from its track and the
// measured frame rate.
func (c *Channel) slateParamsLocked() SlateParams {
	var p SlateParams
	if c.tracks == nil {
		return p
	}
	vi := parseVideoInfo(c.tracks.Video)
	p.Width, p.Height, p.FPS = vi.Width, vi.Height, vi.FPS
	if p.FPS <= 0 || math.IsInf(p.FPS, 0) || math.IsNaN(p.FPS) {
		p.FPS = c.measuredFPS
	}
	p.Audio = c.tracks.Audio
	return p
}

// prepareSlateLocked hands the source the live parameters when they
// changed since last time.
func (c *Channel) prepareSlateLocked() {
	if c.cfg.Slate == nil || c.tracks == nil {
		return
	}
	p := c.slateParamsLocked()
	if c.prepared != nil && p == *c.prepared {
		return
	}
	c.prepared = &p
	c.cfg.Slate.Prepare(p)
}

// startSlateLocked puts the slate on air, if the channel has one, from
// right after the last live frame. It is called when the publisher leaves.
func (c *Channel) startSlateLocked() {
	if c.cfg.Slate == nil || c.slate != nil || c.tracks == nil {
		return
	}
	sl := c.cfg.Slate.Slate(c.slateParamsLocked())
	if sl == nil || len(sl.Frames) == 0 || !sl.Frames[0].Key || len(sl.SPS) == 0 || len(sl.PPS) == 0 {
		return
	}
	run := newSlateRun(sl, c.tracks.Audio)
	c.slate = run
	// The slate's frames are placed like a new publisher's: its first
	// frame goes one frame after the last live one.
	c.tl.newSession()
	c.health.Slate = true
	c.met.slateActive.Set(1)
	c.slateWG.Add(1)
	go func() {
		defer c.slateWG.Done()
		c.runSlate(run)
	}()
	c.log.Info().Str("slate", run.name).Bool("audio", run.silence != nil).
		Msg("slate on air: destinations and viewers see it until the publisher comes back")
}

// stopSlateLocked takes the slate off air. The goroutine sending it exits
// on its own; it publishes nothing more (c.slate no longer points to it).
func (c *Channel) stopSlateLocked(why string) {
	run := c.slate
	if run == nil {
		return
	}
	c.slate = nil
	close(run.stop)
	c.health.Slate = false
	c.met.slateActive.Set(0)
	c.log.Info().Str("slate", run.name).Msg(why)
}

// runSlate sends the slate's frames in timestamp order, each when the wall
// clock reaches it, looping the clip, until the slate is stopped.
func (c *Channel) runSlate(run *slateRun) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	start := time.Now()
	var vn, an int64 // frames sent so far, per kind
	for {
		vts := run.vclock.at(vn)
		ats := time.Duration(math.MaxInt64)
		if run.silence != nil {
			ats = run.aclock.at(an)
		}
		next := min(vts, ats)
		switch wait := next - time.Since(start); {
		case wait > 0:
			timer.Reset(wait)
			select {
			case <-run.stop:
				return
			case <-timer.C:
			}
		case wait < -maxSlateLag:
			start = start.Add(-wait)
		}
		var f *Frame
		if vts <= ats {
			au := &run.video[vn%int64(len(run.video))]
			f = &Frame{Kind: KindVideo, DTS: vts, PTS: vts, Key: au.key, NALUs: au.nalus, AVCC: au.avcc}
			f.rtpOnce.Do(func() { f.rtp = au.rtp })
			vn++
		} else {
			f = &Frame{Kind: KindAudio, DTS: ats, PTS: ats, AU: run.silence}
			an++
		}
		f.Tracks = run.tracks
		if !c.publishSlate(run, f) {
			return
		}
	}
}

// publishSlate places a slate frame on the channel timeline, caches it and
// fans it out like a publisher's frame. It reports false once the slate is
// off air.
func (c *Channel) publishSlate(run *slateRun, f *Frame) bool {
	c.pub.Lock()
	defer c.pub.Unlock()
	c.mu.Lock()
	if c.slate != run {
		c.mu.Unlock()
		return false
	}
	f.Arrived = time.Now()
	var keep bool
	f.DTS, _, keep = c.tl.place(f.Kind, f.DTS)
	if !keep {
		// Silence overlapping the live audio's end (see timeline.place).
		c.mu.Unlock()
		return true
	}
	f.PTS = f.DTS
	if f.Kind == KindVideo {
		c.met.slateSeconds.Add(run.step.Seconds())
	}
	c.mu.Unlock()
	return c.deliver(f, true, func() bool { return c.slate == run })
}
