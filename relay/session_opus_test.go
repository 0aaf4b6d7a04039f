package relay

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// TestWriteAACWithOpus: a WHIP publisher's own Opus rides with the AAC
// frame, moved onto the channel timeline, and the channel does not
// transcode that audio again for WebRTC sinks.
func TestWriteAACWithOpus(t *testing.T) {
	c, _ := newTestChannel(t, 0)
	s := publish(t, c, avTracks())
	defer s.Close()
	release := c.WantOpus()
	defer release()
	sub := c.Subscribe("webrtc", 16)
	defer sub.Close()

	base := 5 * time.Second // the publisher's clock; the channel starts at 0
	s.WriteH264(base, base, [][]byte{idrNALU(10)})
	opus := []OpusPacket{
		{PTS: base + 30*time.Millisecond, Data: []byte{0xfc, 1}},
		{PTS: base + 50*time.Millisecond, Data: []byte{0xfc, 2}},
	}
	// Not a decodable AAC unit: transcoding it would count an error.
	s.WriteAACWithOpus(base+10*time.Millisecond, []byte{0x01, 0x02}, opus)
	s.WriteAACWithOpus(base+20*time.Millisecond, nil, opus) // ignored

	got := onlyKind(drain(sub), KindAudio)
	require.Len(t, got, 1)
	a := got[0]
	require.Equal(t, 10*time.Millisecond, a.PTS)
	require.Equal(t, []OpusPacket{
		{PTS: 30 * time.Millisecond, Data: []byte{0xfc, 1}},
		{PTS: 50 * time.Millisecond, Data: []byte{0xfc, 2}},
	}, a.Opus)
	require.Zero(t, testutil.ToFloat64(c.met.transcodeErrors), "no AAC → Opus transcoding")
	require.Zero(t, testutil.ToFloat64(c.met.transcodeFrames))

	// Plain AAC from the same session is not transcoded either: its Opus
	// would interleave with the publisher's.
	s.WriteAAC(base+31*time.Millisecond, []byte{0x01, 0x02})
	got = onlyKind(drain(sub), KindAudio)
	require.Len(t, got, 1)
	require.Empty(t, got[0].Opus)
	require.Zero(t, testutil.ToFloat64(c.met.transcodeErrors))
}
