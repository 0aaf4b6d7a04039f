package relay

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// fanoutQueue is each subscriber's queue length in the fan-out benchmark:
// queues are drained (outside the timer) every fanoutQueue frames.
const fanoutQueue = 128

// fanoutSetup returns a live channel with n subscribers that have taken a
// first keyframe, and a P-frame access unit of a 720p30 2.5 Mbit/s stream.
func fanoutSetup(tb testing.TB, n int) (*Session, []*Subscription, [][]byte) {
	tb.Helper()
	h := NewHub([]ChannelConfig{{Name: "bench"}}, zerolog.Nop(), NewMetrics(prometheus.NewRegistry()))
	c, err := h.Channel("bench")
	require.NoError(tb, err)
	subs := make([]*Subscription, n)
	for i := range subs {
		subs[i] = c.Subscribe("webrtc", fanoutQueue)
	}
	s, err := c.Publish(PublisherInfo{Protocol: "demo"}, videoOnly())
	require.NoError(tb, err)
	tb.Cleanup(func() {
		s.Close()
		for _, sub := range subs {
			sub.Close()
		}
	})
	s.WriteH264(0, 0, [][]byte{idrNALU(30000)})
	drainAll(subs)
	return s, subs, [][]byte{audNALU, pNALU(10000)}
}

func drainAll(subs []*Subscription) {
	for _, sub := range subs {
		for len(sub.q) > 0 {
			<-sub.q
		}
	}
}

func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			s, subs, au := fanoutSetup(b, n)
			dts := time.Duration(0)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%fanoutQueue == fanoutQueue-1 {
					b.StopTimer()
					drainAll(subs)
					b.StartTimer()
				}
				dts += videoStep
				s.WriteH264(dts, dts, au)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/frame/sub")
			for _, sub := range subs {
				require.Zero(b, sub.Dropped())
			}
		})
	}
}

func TestFanoutZeroAllocsPerSubscriber(t *testing.T) {
	allocs := func(n int) float64 {
		s, subs, au := fanoutSetup(t, n)
		dts := time.Duration(0)
		return testing.AllocsPerRun(200, func() {
			dts += videoStep
			s.WriteH264(dts, dts, au)
			drainAll(subs)
		})
	}
	one, hundred := allocs(1), allocs(100)
	require.Positive(t, one, "the frame itself is allocated")
	require.LessOrEqual(t, one, 4.0)
	require.Equal(t, one, hundred, "allocations per frame must not depend on the number of subscribers")
}
