package relay

import "time"

// maxForwardJump is the largest DTS step a publisher may make before the
// relay treats it as a discontinuity and splices it out.
const maxForwardJump = 5 * time.Second

// nominal frame durations, used to place the first frame after a splice.
var nominalStep = [2]time.Duration{time.Second / 30, 1024 * time.Second / 48000}

// timeline maps publisher timestamps onto the channel's continuous
// timeline: it starts at zero, never goes backwards per track, and keeps
// going across publisher reconnects and timestamp jumps, so that sinks see
// one stream. It is used under Channel.mu.
type timeline struct {
	// keep: the timestamps given are already on a channel timeline (a
	// rendition's, taken from its parent's); they are kept as they are,
	// only made increasing per track.
	keep bool

	started bool             // a frame was output in this channel session
	offset  time.Duration    // added to the publisher's timestamps
	synced  bool             // offset is valid for the current publisher
	last    [2]time.Duration // last output DTS per kind
	seen    [2]bool          // kind output since the current publisher came
	have    [2]bool          // kind output since the channel went live
	step    [2]time.Duration // last DTS step per kind
}

// newSession forgets the publisher-specific offset; the next frame is
// placed right after the last one.
func (t *timeline) newSession() {
	t.synced = false
	t.seen = [2]bool{}
}

// place returns the channel DTS for a publisher DTS, whether a
// discontinuity was smoothed over, and whether to keep the frame (false:
// audio of a new source that would overlap the previous source's).
//
// A new source (a publisher back, the slate, the publisher after the
// slate) whose first frame is video keeps the video cadence: that frame
// goes one video frame after the last one, and the source's audio keeps
// its distance to its video (same offset). Its audio frames that would
// start less than half a frame after the previous source's last audio
// frame are dropped: that time is already covered. Placing the video
// after the later of the two tracks instead would lengthen the video
// step at each seam by up to one audio frame (0–23 ms): the video's
// phase then drifts from seam to seam, which HLS parts (a 214 ms part,
// a new PART-TARGET) and ffmpeg's decoding to a 1/fps time base (two
// frames on one tick: "non monotonically increasing dts") show.
func (t *timeline) place(k Kind, dts time.Duration) (time.Duration, bool, bool) {
	jump := false
	switch {
	case t.keep:
		t.started, t.synced = true, true
	case !t.started:
		t.offset = -dts
		t.started, t.synced = true, true
	case !t.synced:
		if k == KindVideo && t.have[KindVideo] {
			t.offset = t.last[KindVideo] + t.stepOf(KindVideo) - dts
		} else {
			t.offset = t.end() - dts
		}
		t.synced = true
	case t.seen[k]:
		d := dts + t.offset - t.last[k]
		if d < 0 || d > maxForwardJump {
			t.offset = t.last[k] + t.stepOf(k) - dts
			jump = true
		}
	}
	out := dts + t.offset
	if out < 0 {
		out = 0
	}
	if k == KindAudio && !t.seen[k] && t.have[k] && out < t.last[k]+t.stepOf(k)/2 {
		return out, jump, false
	}
	if t.have[k] && out <= t.last[k] {
		// Never go backwards or repeat a timestamp on a track: muxers
		// downstream (FLV, MP4, RTP) reject it.
		out = t.last[k] + time.Millisecond
	}
	if t.seen[k] {
		t.step[k] = out - t.last[k]
	}
	t.last[k] = out
	t.seen[k], t.have[k] = true, true
	return out, jump, true
}

// end is where the next frame of a new publisher goes: one frame after the
// latest frame of any track.
func (t *timeline) end() time.Duration {
	e := t.last[KindVideo] + t.stepOf(KindVideo)
	if a := t.last[KindAudio] + t.stepOf(KindAudio); a > e {
		e = a
	}
	return e
}

func (t *timeline) stepOf(k Kind) time.Duration {
	if s := t.step[k]; s > 0 && s < time.Second {
		return s
	}
	return nominalStep[k]
}
