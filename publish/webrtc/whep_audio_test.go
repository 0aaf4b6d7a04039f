package webrtc

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWHEPAudioOnly: a viewer whose offer has no video section (the watch
// page's « Son seul ») gets an answer with audio only and receives Opus
// packets at once, and no video; a full viewer beside it receives both.
// It logs the bytes per second of each, for the README's numbers.
func TestWHEPAudioOnly(t *testing.T) {
	e := newEnv(t, envOpts{})
	full := newClient(t, clientOpts{})
	sound := newClient(t, clientOpts{audioOnly: true})
	full.post(e, "demo")
	sound.post(e, "demo")
	require.NotContains(t, sound.answer, "m=video", "the answer has no video section")
	require.Contains(t, sound.answer, "m=audio")
	require.Len(t, sound.pc.GetTransceivers(), 1)

	for _, c := range []*client{full, sound} {
		select {
		case <-c.firstAudio:
		case <-time.After(10 * time.Second):
			t.Fatal("no audio packet within 10 s")
		}
	}
	start := time.Now()
	a0, v0 := sound.received()
	fa0, fv0 := full.received()
	// Four seconds of the demo source's audio (a longer window evens out
	// packets bunched by a loaded machine).
	require.Eventually(t, func() bool {
		a, _ := sound.received()
		return a-a0 > 0 && time.Since(start) >= 4*time.Second
	}, 15*time.Second, 50*time.Millisecond)
	a1, v1 := sound.received()
	fa1, fv1 := full.received()
	secs := time.Since(start).Seconds()
	t.Logf("Son seul: %.0f B/s of audio payload, %d B of video; Haute: %.0f B/s (audio %.0f, video %.0f)",
		float64(a1-a0)/secs, v1, float64(fa1-fa0+fv1-fv0)/secs, float64(fa1-fa0)/secs, float64(fv1-fv0)/secs)
	require.Zero(t, v1, "no video sent to an audio-only viewer")
	require.Zero(t, v1-v0)
	// On the wire: payload plus ~50 B of RTP, SRTP, UDP and IPv4 headers a
	// packet, 50 packets/s.
	wire := (float64(a1-a0)/secs + 50*50) * 8
	require.Less(t, wire, 64000.0, "Son seul is under 64 kbit/s on the wire (%.0f bit/s)", wire)
	require.Greater(t, fv1-fv0, 0, "the full viewer gets video")
	require.Empty(t, sound.videoPackets())
	require.Equal(t, 2, e.srv.Viewers("demo"), "both count as viewers")
}
