package rendition

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"

	"github.com/seance-relay/seance/procstat"
	"github.com/seance-relay/seance/relay"
)

const (
	// queueFrames is ffmpeg's input queue: about 4 s of video and audio.
	// When ffmpeg falls behind the queue overflows and its input skips to
	// the next keyframe; the publisher never waits for it.
	queueFrames = 384
	// tsBase is added to the channel's timestamps in the MPEG-TS sent to
	// ffmpeg (and taken off on the way back): the TS clock references
	// run a little ahead of the timestamps and must not go below zero.
	tsBase = 10 * 90000
	// gop bounds the rendition's keyframe interval, in frames (4 s at
	// 30 fps); keyframes follow the source's (-force_key_frames source).
	gop = 120
	// stderrKeep is how much of ffmpeg's error output is kept to say why
	// it stopped.
	stderrKeep = 512
	// killDelay is how long ffmpeg has to exit after its input closes.
	killDelay = 2 * time.Second
)

// args are ffmpeg's arguments for a rendition: MPEG-TS in on stdin with
// the channel's timestamps, scaled H.264 (x264 veryfast, zerolatency, no
// B-frames, keyframes where the source has them) and AAC out on stdout as
// MPEG-TS with the same timestamps (-copyts, no mux delay), frame for
// frame (passthrough: no frame dropped or duplicated). The picture is
// width x the rendition's height whatever comes later: the slate or a
// returning publisher of another aspect ratio is fitted and padded, since
// the encoder cannot change size mid-stream.
//
// The H.264 profile is the source's (Constrained Baseline, Main or High):
// WebRTC viewers negotiated the source's profile-level-id and a switch
// keeps that negotiation; a decoder limited to Constrained Baseline
// (OpenH264 in Firefox) must be able to play the rendition too.
func (mk *Maker) args(width int, profile string) []string {
	br := mk.r.VideoBitrate
	h := strconv.Itoa(mk.r.Height)
	w := strconv.Itoa(width)
	return []string{
		"-hide_banner", "-nostats", "-loglevel", "error",
		"-fflags", "+nobuffer", "-probesize", "500000", "-analyzeduration", "500000",
		"-f", "mpegts", "-i", "pipe:0",
		"-map", "0:v:0", "-map", "0:a:0?",
		"-copyts", "-fps_mode", "passthrough",
		"-vf", "scale=" + w + ":" + h + ":force_original_aspect_ratio=decrease:force_divisible_by=2," +
			"pad=" + w + ":" + h + ":-1:-1,setsar=1",
		"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
		"-profile:v", profile, "-pix_fmt", "yuv420p", "-bf", "0",
		"-b:v", strconv.FormatInt(br, 10), "-maxrate", strconv.FormatInt(br, 10),
		"-bufsize", strconv.FormatInt(2*br, 10),
		"-force_key_frames", "source", "-g", strconv.Itoa(gop), "-sc_threshold", "0",
		"-threads", "2",
		"-c:a", "aac", "-b:a", strconv.Itoa(mk.cfg.AudioBitrate), "-ac", "1",
		"-f", "mpegts", "-muxdelay", "0", "-muxpreload", "0", "-flush_packets", "1",
		"pipe:1",
	}
}

// width is the rendition's picture width: the source's aspect ratio at the
// rendition's height, even; 16:9 when the SPS cannot say.
func (mk *Maker) width(v *relay.VideoTrack) int {
	w, h := 16, 9
	var sps h264.SPS
	if v != nil && sps.Unmarshal(v.SPS) == nil && sps.Width() > 0 && sps.Height() > 0 {
		w, h = sps.Width(), sps.Height()
	}
	out := (mk.r.Height*w/h + 1) &^ 1
	return max(out, 2)
}

// profileOf is x264's name of the source's H.264 profile: baseline (x264's
// is Constrained Baseline), main, or high for anything else.
func profileOf(v *relay.VideoTrack) string {
	if v != nil && len(v.SPS) > 1 {
		switch v.SPS[1] {
		case 66:
			return "baseline"
		case 77:
			return "main"
		}
	}
	return "high"
}

var errAudioChanged = errors.New("the channel's audio changed: ffmpeg restarts")

// runFFmpeg runs one ffmpeg until it exits or ctx is cancelled.
func (mk *Maker) runFFmpeg(ctx context.Context) error {
	sub := mk.src.Subscribe("rendition", queueFrames)
	defer sub.Close()
	// The first frame is a keyframe (the cached GOP's or the next one):
	// it says what tracks ffmpeg gets.
	var first *relay.Frame
	for first == nil {
		select {
		case <-ctx.Done():
			return nil
		case f := <-sub.Frames():
			if f.Kind == relay.KindVideo && f.Key && f.Tracks != nil {
				first = f
			}
		}
	}
	var audio *mpeg4audio.AudioSpecificConfig
	if a := first.Tracks.Audio; a != nil && a.Config != nil {
		audio = a.Config
	}

	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	cmd := exec.CommandContext(rctx, mk.cfg.FFmpeg, mk.args(mk.width(first.Tracks.Video), profileOf(first.Tracks.Video))...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = killDelay
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr := &tailBuffer{max: stderrKeep}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start ffmpeg: %w", err)
	}
	pid := cmd.Process.Pid
	mk.pid.Store(int64(pid))
	defer mk.pid.Store(0)

	var wg sync.WaitGroup
	var frames atomic.Int64
	wg.Go(func() {
		err := mk.feed(rctx, stdin, sub, first, audio)
		stdin.Close()
		if err != nil {
			cancel(err)
		}
	})
	wg.Go(func() {
		if err := mk.read(stdout, &frames); err != nil {
			cancel(err)
		}
	})
	wg.Go(func() { mk.sample(rctx, pid, &frames) })
	werr := cmd.Wait()
	cancel(nil)
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	if cause := context.Cause(rctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	if werr != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return fmt.Errorf("ffmpeg: %w: %s", werr, msg)
		}
		return fmt.Errorf("ffmpeg: %w", werr)
	}
	return errors.New("ffmpeg exited")
}

// feed writes the channel's frames to ffmpeg as MPEG-TS. It returns when
// ctx ends or ffmpeg's input fails (ffmpeg died).
func (mk *Maker) feed(ctx context.Context, w io.Writer, sub *relay.Subscription, first *relay.Frame, audio *mpeg4audio.AudioSpecificConfig) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	vt := &mpegts.Track{Codec: &tscodecs.H264{}}
	tracks := []*mpegts.Track{vt}
	var at *mpegts.Track
	if audio != nil {
		at = &mpegts.Track{Codec: &tscodecs.MPEG4Audio{Config: *audio}}
		tracks = append(tracks, at)
	}
	tw := &mpegts.Writer{W: bw, Tracks: tracks}
	if err := tw.Initialize(); err != nil {
		return err
	}
	audioTracks := first.Tracks.Audio
	write := func(f *relay.Frame) error {
		if f.Tracks != nil && f.Tracks.Audio != audioTracks {
			if !sameAudio(f.Tracks.Audio, audio) {
				return errAudioChanged
			}
			audioTracks = f.Tracks.Audio
		}
		var err error
		switch {
		case f.Kind == relay.KindVideo && len(f.NALUs) > 0:
			err = tw.WriteH264(vt, toTS(f.PTS), toTS(f.DTS), f.NALUs)
		case f.Kind == relay.KindAudio && at != nil && len(f.AU) > 0:
			err = tw.WriteMPEG4Audio(at, toTS(f.PTS), [][]byte{f.AU})
		default:
			return nil
		}
		if err != nil {
			return err
		}
		return bw.Flush()
	}
	if err := write(first); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case f := <-sub.Frames():
			if err := write(f); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if errors.Is(err, errAudioChanged) {
					return err
				}
				return fmt.Errorf("ffmpeg's input: %w", err)
			}
		}
	}
}

func sameAudio(a *relay.AudioTrack, cfg *mpeg4audio.AudioSpecificConfig) bool {
	if a == nil || a.Config == nil || cfg == nil {
		return (a == nil || a.Config == nil) && cfg == nil
	}
	x, err1 := a.Config.Marshal()
	y, err2 := cfg.Marshal()
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// read publishes what ffmpeg sends into the rendition's channel. It
// returns at the end of ffmpeg's output, with an error if that output is
// not MPEG-TS with H.264.
func (mk *Maker) read(r io.Reader, frames *atomic.Int64) error {
	tr := &mpegts.Reader{R: bufio.NewReaderSize(r, 64<<10)}
	if err := tr.Initialize(); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil // ffmpeg stopped before its first output
		}
		return fmt.Errorf("ffmpeg's output: %w", err)
	}
	var sess *relay.Session
	defer func() {
		if sess != nil {
			sess.Close()
		}
	}()
	var audio *relay.AudioTrack
	var vclock, aclock unwrapper
	var at *mpegts.Track
	for _, t := range tr.Tracks() {
		switch c := t.Codec.(type) {
		case *tscodecs.H264:
			tr.OnDataH264(t, func(pts, dts int64, au [][]byte) error {
				if sess == nil {
					s, err := mk.r.Channel.Publish(relay.PublisherInfo{Protocol: "rendition", RemoteAddr: "ffmpeg"},
						relay.Tracks{Video: &relay.VideoTrack{}, Audio: audio})
					if err != nil {
						return fmt.Errorf("publish the rendition: %w", err)
					}
					sess = s
				}
				sess.WriteH264(fromTS(vclock.unwrap(pts)), fromTS(vclock.unwrap(dts)), au)
				frames.Add(1)
				mk.met.bytes.Add(float64(auSize(au)))
				return nil
			})
		case *tscodecs.MPEG4Audio:
			if at == nil {
				at = t
				cfg := c.Config
				audio = &relay.AudioTrack{Config: &cfg}
				sr := int64(cfg.SampleRate)
				tr.OnDataMPEG4Audio(t, func(pts int64, aus [][]byte) error {
					if sess == nil {
						return nil // before the first picture
					}
					base := aclock.unwrap(pts)
					for i, au := range aus {
						sess.WriteAAC(fromTS(base+int64(i)*mpeg4audio.SamplesPerAccessUnit*90000/sr), au)
					}
					return nil
				})
			}
		}
	}
	tr.OnDecodeError(func(error) { mk.met.decodeErrors.Inc() })
	for {
		if err := tr.Read(); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.ErrClosedPipe) || errors.Is(err, syscall.EBADF) {
				return nil
			}
			if strings.Contains(err.Error(), "file already closed") {
				return nil
			}
			return fmt.Errorf("ffmpeg's output: %w", err)
		}
	}
}

func auSize(au [][]byte) int {
	n := 0
	for _, b := range au {
		n += len(b)
	}
	return n
}

// sample measures ffmpeg's frame rate and CPU once a second.
func (mk *Maker) sample(ctx context.Context, pid int, frames *atomic.Int64) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := time.Now()
	var lastCPU time.Duration
	if st, err := procstat.Read(pid); err == nil {
		lastCPU = st.CPU
	}
	var lastFrames int64
	for {
		select {
		case <-ctx.Done():
			if st, err := procstat.Read(pid); err == nil && st.CPU > lastCPU {
				mk.met.cpu.Add((st.CPU - lastCPU).Seconds())
			}
			return
		case now := <-t.C:
			dt := now.Sub(last).Seconds()
			last = now
			n := frames.Load()
			fps := float64(n-lastFrames) / dt
			lastFrames = n
			var cpu float64
			if st, err := procstat.Read(pid); err == nil {
				if d := st.CPU - lastCPU; d > 0 {
					mk.met.cpu.Add(d.Seconds())
					cpu = d.Seconds() / dt
				}
				lastCPU = st.CPU
			}
			mk.met.fps.Set(fps)
			if n > 0 {
				mk.setState(StateLive, nil)
			}
			mk.mu.Lock()
			mk.status.FPS, mk.status.CPU = fps, cpu
			mk.mu.Unlock()
		}
	}
}

// toTS converts a timeline position to MPEG-TS 90 kHz units.
func toTS(d time.Duration) int64 {
	return tsBase + int64(d/time.Second)*90000 + int64(d%time.Second)*90000/int64(time.Second)
}

// fromTS converts back an unwrapped MPEG-TS timestamp.
func fromTS(ts int64) time.Duration {
	ts -= tsBase
	return time.Duration(ts/90000)*time.Second + time.Duration(ts%90000)*time.Second/90000
}

// unwrapper undoes the 33-bit wrap of MPEG-TS timestamps (every 26.5 h)
// while keeping their absolute value, which the channel timeline needs.
type unwrapper struct {
	started bool
	last    int64 // last unwrapped value
}

func (u *unwrapper) unwrap(ts int64) int64 {
	const mod = 1 << 33
	if !u.started {
		u.started = true
		u.last = ts
		return ts
	}
	d := (ts - u.last) % mod
	if d < 0 {
		d += mod
	}
	if d > mod/2 {
		d -= mod
	}
	u.last += d
	return u.last
}

// tailBuffer keeps the last bytes written to it (ffmpeg's stderr).
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
