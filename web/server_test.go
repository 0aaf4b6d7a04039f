package web

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

func TestListenerTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	hub, _ := newHub(t)
	log := zerolog.New(zerolog.NewTestWriter(t))

	_, err = NewPublic(PublicConfig{Listen: ln.Addr().String()}, hub, log)
	require.ErrorContains(t, err, "public listener on "+ln.Addr().String())
	_, err = NewAdmin(AdminConfig{Listen: ln.Addr().String(), Gatherer: prometheus.NewRegistry()}, hub, log)
	require.ErrorContains(t, err, "admin listener on "+ln.Addr().String())
}

// TestRunShutdown cancels Run while a client holds a keep-alive
// connection: Run returns nil and the port is released.
func TestRunShutdown(t *testing.T) {
	for _, tc := range []struct {
		name          string
		cancelEarly   bool
		requestBefore bool
	}{
		{"idle", false, false},
		{"after a request", false, true},
		{"cancelled before Run", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hub, _ := newHub(t)
			s, err := NewPublic(PublicConfig{Listen: "127.0.0.1:0"}, hub, zerolog.New(zerolog.NewTestWriter(t)))
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancelEarly {
				cancel()
			}
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()
			if tc.requestBefore {
				c := client(t)
				r := do(t, c, http.MethodGet, "http://"+s.Addr().String()+"/healthz", nil)
				require.Equal(t, http.StatusOK, r.status)
			}
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return after cancel")
			}
			_, err = net.DialTimeout("tcp", s.Addr().String(), time.Second)
			require.Error(t, err, "the listener is still open")
		})
	}
}
