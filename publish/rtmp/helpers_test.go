package rtmp

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/configs"
	"github.com/seance-relay/seance/relay"
)

// Distinctive secrets: no status, error or log line may hold them.
const (
	streamKey = "strm-KEY-9c41f0e2b7"
	password  = "pa55-W0RD-3e8d1a"
)

const (
	videoStep = time.Second / 30
	audioStep = 1024 * time.Second / 44100
)

// testMedia is three access units of a real libx264 stream (320x240,
// testsrc2): an IDR with SPS, PPS and SEI in front, then two P frames.
// Made with:
//
//	ffmpeg -f lavfi -i testsrc2=size=320x240:rate=30 -frames:v 3 -c:v libx264 \
//	  -preset veryfast -threads 1 -g 30 -bf 0 -pix_fmt yuv420p \
//	  -bsf:v h264_mp4toannexb -f h264 testdata/testsrc2.h264
type testMedia struct {
	sps, pps []byte
	aus      [][][]byte
}

func loadMedia(t testing.TB) testMedia {
	t.Helper()
	buf, err := os.ReadFile("testdata/testsrc2.h264")
	require.NoError(t, err)
	var nalus h264.AnnexB
	require.NoError(t, nalus.Unmarshal(buf))
	var m testMedia
	var au [][]byte
	for _, n := range nalus {
		typ := h264.NALUType(n[0] & 0x1f)
		switch typ {
		case h264.NALUTypeSPS:
			m.sps = n
		case h264.NALUTypePPS:
			m.pps = n
		}
		au = append(au, n)
		if typ == h264.NALUTypeIDR || typ == h264.NALUTypeNonIDR {
			m.aus = append(m.aus, au)
			au = nil
		}
	}
	require.Len(t, m.aus, 3)
	return m
}

func aacConfig() *mpeg4audio.AudioSpecificConfig {
	return &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 44100, ChannelConfig: 2}
}

var silentAAC = []byte{0x21, 0x10, 0x04, 0x60, 0x8c, 0x1c}

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is a channel, its publisher side and a destination's plumbing.
type env struct {
	media testMedia
	hub   *relay.Hub
	ch    *relay.Channel
	reg   *prometheus.Registry
	met   *Metrics
	logs  *syncBuffer
	log   zerolog.Logger

	sess  *relay.Session
	video int
	now   time.Duration
	audio time.Duration
}

func newEnv(t testing.TB) *env {
	t.Helper()
	reg := prometheus.NewRegistry()
	logs := &syncBuffer{}
	log := zerolog.New(zerolog.MultiLevelWriter(zerolog.NewTestWriter(t), logs))
	hub := relay.NewHub([]relay.ChannelConfig{{Name: "bourg", Title: "Conseil municipal de Bourg"}}, log, relay.NewMetrics(reg))
	ch, err := hub.Channel("bourg")
	require.NoError(t, err)
	return &env{media: loadMedia(t), hub: hub, ch: ch, reg: reg, met: NewMetrics(reg), logs: logs, log: log}
}

// goLive publishes on the channel and sends its first keyframe.
func (e *env) goLive(t testing.TB) {
	t.Helper()
	sess, err := e.ch.Publish(relay.PublisherInfo{Protocol: "demo"}, relay.Tracks{
		Video: &relay.VideoTrack{SPS: e.media.sps, PPS: e.media.pps},
		Audio: &relay.AudioTrack{Config: aacConfig()},
	})
	require.NoError(t, err)
	e.sess = sess
	e.video, e.now, e.audio = 0, 0, 0
	e.write(videoStep)
}

// write publishes d worth of 30 fps video (a keyframe every second) and
// its audio, with timestamps that start at 10 s like a publisher that has
// been running for a while.
func (e *env) write(d time.Duration) {
	const offset = 10 * time.Second
	end := e.now + d
	for e.now < end {
		for e.audio <= e.now {
			e.sess.WriteAAC(offset+e.audio, silentAAC)
			e.audio += audioStep
		}
		au := e.media.aus[0]
		if e.video%30 != 0 {
			au = e.media.aus[1+e.video%2]
		}
		e.sess.WriteH264(offset+e.now, offset+e.now, au)
		e.video++
		e.now += videoStep
	}
}

// end closes the publisher; with no grace period the channel goes idle.
func (e *env) end(t testing.TB) {
	t.Helper()
	e.sess.Close()
	st, _ := e.ch.State()
	require.Equal(t, relay.StateIdle, st)
}

// start runs a destination for rawURL until the test ends.
func (e *env) start(t testing.TB, name, rawURL string, manual bool) *Destination {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	d := New(Config{
		Name:         name,
		URL:          u,
		Display:      configs.RedactURL(rawURL),
		Manual:       manual,
		WriteTimeout: 5 * time.Second,
	}, e.ch, e.log, e.met)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(15 * time.Second):
			t.Error("Run did not return after cancel")
		}
		require.Equal(t, StateIdle, d.Status().State)
	})
	return d
}

func (e *env) value(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue metrics
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

// states returns the states the destination logged, in order.
func (e *env) states(t testing.TB) []string {
	t.Helper()
	var out []string
	for line := range strings.Lines(e.logs.String()) {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
		if rec["component"] == "publish.rtmp" {
			if s, ok := rec["state"].(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

func requireState(t testing.TB, d *Destination, want State) {
	t.Helper()
	require.Eventually(t, func() bool { return d.Status().State == want },
		10*time.Second, 5*time.Millisecond, "destination never reached %s (now %s)", want, d.Status().State)
}

func requireNoSecrets(t testing.TB, s, what string) {
	t.Helper()
	require.NotContains(t, s, streamKey, "%s holds the stream key", what)
	require.NotContains(t, s, password, "%s holds the password", what)
}

// closedURL returns an RTMP URL on a loopback port nobody listens on.
func closedURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return fmt.Sprintf("rtmp://seance:%s@%s/live2#%s", password, addr, streamKey)
}

// videoFrame is an H.264 access unit the receiver got.
type videoFrame struct {
	dts   time.Duration
	key   bool
	nalus [][]byte
}

// session is one connection the receiver took.
type session struct {
	streamKey string
	tracks    []*gortmplib.Track
	video     []videoFrame
	configs   [][]byte // the SPS of each AVC sequence header
	audio     int
	commands  []string
	ended     bool // the connection closed
}

// receiverOpts change how a receiver behaves.
type receiverOpts struct {
	// refuse answers publish with an error that repeats the stream key,
	// as some servers do.
	refuse bool
	// gate, when set, holds every connection before the handshake until
	// it is closed.
	gate chan struct{}
}

// receiver is a tiny RTMP server standing in for YouTube.
type receiver struct {
	ln   net.Listener
	opts receiverOpts

	mu       sync.Mutex
	accepted int
	sessions []*session
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
}

func startReceiver(t testing.TB, opts receiverOpts) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r := &receiver{ln: ln, opts: opts, conns: map[net.Conn]struct{}{}}
	r.wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns[nc] = struct{}{}
			r.accepted++
			r.mu.Unlock()
			r.wg.Go(func() { r.handle(nc) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		r.mu.Lock()
		for nc := range r.conns {
			nc.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

// url is the publish URL with the key in the fragment and a password.
func (r *receiver) url() string {
	return fmt.Sprintf("rtmp://seance:%s@%s/live2#%s", password, r.ln.Addr(), streamKey)
}

// connections returns how many TCP connections the receiver accepted.
func (r *receiver) connections() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.accepted
}

// snapshot returns a copy of the sessions so far.
func (r *receiver) snapshot() []session {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]session, len(r.sessions))
	for i, s := range r.sessions {
		out[i] = *s
		out[i].video = slices.Clone(s.video)
		out[i].commands = slices.Clone(s.commands)
		out[i].configs = slices.Clone(s.configs)
	}
	return out
}

func (r *receiver) update(s *session, f func(*session)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(s)
}

// tapConn shows the receiver every message, commands included (the
// Reader drops those).
type tapConn struct {
	*gortmplib.ServerConn
	onCommand func(string)
}

func (c *tapConn) Read() (message.Message, error) {
	msg, err := c.ServerConn.Read()
	if cmd, ok := msg.(*message.CommandAMF0); ok {
		c.onCommand(cmd.Name)
	}
	return msg, err
}

func (r *receiver) handle(nc net.Conn) {
	s := &session{}
	defer func() {
		nc.Close()
		r.update(s, func(s *session) { s.ended = true })
	}()
	if r.opts.gate != nil {
		<-r.opts.gate
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	sc := &gortmplib.ServerConn{RW: nc}
	if sc.Initialize() != nil || sc.AcceptConn() != nil || !sc.Publish {
		return
	}
	s.streamKey = strings.TrimPrefix(sc.URL.Path, "/live2/")
	r.mu.Lock()
	r.sessions = append(r.sessions, s)
	r.mu.Unlock()
	if r.opts.refuse {
		_ = sc.Write(&message.CommandAMF0{
			ChunkStreamID:   5,
			MessageStreamID: 0x1000000,
			Name:            "onStatus",
			CommandID:       5,
			Arguments: []any{nil, amf0.Object{
				{Key: "level", Value: "error"},
				{Key: "code", Value: "NetStream.Publish.BadName"},
				{Key: "description", Value: "invalid stream key " + s.streamKey},
			}},
		})
		return
	}

	rd := &gortmplib.Reader{Conn: &tapConn{ServerConn: sc, onCommand: func(name string) {
		r.update(s, func(s *session) { s.commands = append(s.commands, name) })
	}}}
	if err := sc.AcceptAction(); err != nil {
		return
	}
	if err := rd.Initialize(); err != nil {
		return
	}
	r.update(s, func(s *session) { s.tracks = rd.Tracks() })
	for _, tr := range rd.Tracks() {
		switch tr.Codec.(type) {
		case *codecs.H264:
			rd.OnDataH264(tr, func(_, dts time.Duration, au [][]byte) {
				if !slices.ContainsFunc(au, isVCL) {
					// A sequence header, replayed as parameter sets.
					r.update(s, func(s *session) { s.configs = append(s.configs, au[0]) })
					return
				}
				r.update(s, func(s *session) {
					s.video = append(s.video, videoFrame{dts: dts, key: h264.IsRandomAccess(au), nalus: au})
				})
			})
		case *codecs.MPEG4Audio:
			rd.OnDataMPEG4Audio(tr, func(time.Duration, []byte) {
				r.update(s, func(s *session) { s.audio++ })
			})
		}
	}
	for {
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := rd.Read(); err != nil {
			return
		}
	}
}

func isVCL(nalu []byte) bool {
	typ := h264.NALUType(nalu[0] & 0x1f)
	return typ == h264.NALUTypeIDR || typ == h264.NALUTypeNonIDR
}
