package relay

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestMetricsScenario(t *testing.T) {
	h, reg := newTestHub(t,
		ChannelConfig{Name: "bourg", Grace: time.Minute},
		ChannelConfig{Name: "cenon", Grace: time.Minute},
	)
	c, _ := h.Channel("bourg")

	s := publish(t, c, avTracks())
	s.WriteH264(0, 0, [][]byte{sps720, testPPS}) // no frame
	f := newFeed(s, 0, 30)
	f.audio = true
	f.frames(4)
	s.WriteAAC(f.dts(), []byte{1})
	s.Close()
	s = publish(t, c, avTracks())
	defer s.Close()
	f.s = s
	f.frames(1)

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP seance_channel_live 1 while the channel is live (a publisher is sending, or the channel is within its grace period after the publisher left), else 0.
# TYPE seance_channel_live gauge
seance_channel_live{channel="bourg"} 1
seance_channel_live{channel="cenon"} 0
# HELP seance_ingest_frames_total Access units received from the channel's publishers, by kind (video/audio).
# TYPE seance_ingest_frames_total counter
seance_ingest_frames_total{channel="bourg",kind="audio"} 6
seance_ingest_frames_total{channel="bourg",kind="video"} 5
seance_ingest_frames_total{channel="cenon",kind="audio"} 0
seance_ingest_frames_total{channel="cenon",kind="video"} 0
# HELP seance_ingest_reconnects_total Publishers that came back within the channel's grace period (same session downstream).
# TYPE seance_ingest_reconnects_total counter
seance_ingest_reconnects_total{channel="bourg"} 1
seance_ingest_reconnects_total{channel="cenon"} 0
# HELP seance_ingest_publishers_total Publisher sessions accepted, by ingest protocol.
# TYPE seance_ingest_publishers_total counter
seance_ingest_publishers_total{channel="bourg",protocol="rtmp"} 2
`), "seance_channel_live", "seance_ingest_frames_total", "seance_ingest_reconnects_total",
		"seance_ingest_publishers_total"))

	// Video bytes: AVCC of one IDR with parameter sets and four P-frames
	// (the last one, from the new publisher, reaches no sink but counts).
	idr := 3*4 + len(sps720) + len(testPPS) + 1000
	require.Equal(t, float64(idr+4*(4+1000)), testutil.ToFloat64(c.met.bytes[KindVideo]))
	require.Equal(t, float64(5*200+1), testutil.ToFloat64(c.met.bytes[KindAudio]))
}
