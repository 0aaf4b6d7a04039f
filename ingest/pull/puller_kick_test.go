package pull

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/relay"
)

// TestPullerKicked: a publisher kicked from the admin API drops the
// connection to the source, which is pulled again within the grace period.
func TestPullerKicked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, 30*time.Second)
		attempts := 0
		src := &fakeSource{pull: func(ctx context.Context, publish func(relay.PublisherInfo, relay.Tracks) (*relay.Session, error)) error {
			attempts++
			sess, err := publish(relay.PublisherInfo{Protocol: "rtsp", RemoteAddr: "cam.lan"}, testTracks)
			require.NoError(t, err)
			defer sess.Close()
			<-ctx.Done() // a real source closes its connection here
			return nil
		}}
		p := newPuller(f.ch, src, "rtsp://cam.lan/stream", nil, f.log, f.met)
		f.run(t, p)
		synctest.Wait()
		require.Equal(t, StateLive, p.Status().State)

		require.True(t, f.ch.Kick())
		synctest.Wait()
		st := p.Status()
		require.Equal(t, StateRetrying, st.State)
		require.Equal(t, "publisher kicked by an administrator", st.LastError)

		time.Sleep(2 * time.Second)
		synctest.Wait()
		require.Equal(t, 2, attempts)
		require.Equal(t, StateLive, p.Status().State)
		require.EqualValues(t, 1, f.ch.Health().Reconnects, "back within the grace period: same session")
	})
}
