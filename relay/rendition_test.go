package relay

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// TestRenditionChannel: a channel's rendition is a channel of its own, not
// in the hub and not on /metrics, whose frames keep the timestamps they
// are given (the parent's timeline), increasing per track, across its
// maker's restarts; it ends with its parent.
func TestRenditionChannel(t *testing.T) {
	h, reg := newTestHub(t, ChannelConfig{Name: "bourg", Renditions: []RenditionConfig{{Name: "basse", Height: 360, VideoBitrate: 500_000}}})
	c, err := h.Channel("bourg")
	require.NoError(t, err)
	require.Len(t, h.Channels(), 1, "the rendition is not a hub channel")
	r := c.Rendition("basse")
	require.NotNil(t, r)
	require.Nil(t, c.Rendition("moyenne"))
	require.Equal(t, []*Rendition{r}, c.Renditions())
	require.Equal(t, 360, r.Height)
	require.Equal(t, "bourg.basse", r.Channel.Name())
	_, err = h.Channel("bourg.basse")
	require.ErrorIs(t, err, ErrChannelNotFound)

	sub := r.Channel.Subscribe("webrtc", 64)
	defer sub.Close()
	for _, tc := range []struct {
		name string
		dts  []time.Duration
		want []time.Duration
	}{
		{"kept as given", []time.Duration{5 * time.Second, 5*time.Second + videoStep}, []time.Duration{5 * time.Second, 5*time.Second + videoStep}},
		{"restart: given again, not rebased", []time.Duration{7 * time.Second, 7*time.Second + videoStep}, []time.Duration{7 * time.Second, 7*time.Second + videoStep}},
		{"never backwards", []time.Duration{9 * time.Second, 9 * time.Second}, []time.Duration{9 * time.Second, 9*time.Second + time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := publish(t, r.Channel, Tracks{Video: &VideoTrack{SPS: sps360, PPS: testPPS}})
			for i, d := range tc.dts {
				n := pNALU(100)
				if i == 0 {
					n = idrNALU(100)
				}
				s.WriteH264(d, d, [][]byte{n})
			}
			s.Close()
			got := drain(sub)
			require.Len(t, got, len(tc.want))
			for i, f := range got {
				require.Equal(t, tc.want[i], f.DTS, "frame %d", i)
				require.Equal(t, tc.want[i], f.PTS, "frame %d", i)
			}
		})
	}
	// Not on the registry the hub's metrics go to.
	n, err := testutil.GatherAndCount(reg, "seance_channel_live")
	require.NoError(t, err)
	require.Equal(t, 1, n, "only bourg")

	h.Remove("bourg")
	st, _ := r.Channel.State()
	require.Equal(t, StateIdle, st)
	_, err = r.Channel.Publish(testPublisher, videoOnly())
	require.ErrorIs(t, err, ErrChannelNotFound, "closed with its parent")
}
