package rtsp

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/seance-relay/seance/configs"
	"github.com/seance-relay/seance/ingest/demo"
	"github.com/seance-relay/seance/relay"
)

// FuzzRTSPServer sends any bytes to the RTSP server as a client would,
// then half-closes: the server answers or closes, never panics, and keeps
// serving (the next connection gets an answer to OPTIONS).
func FuzzRTSPServer(f *testing.F) {
	for _, s := range []string{
		"OPTIONS rtsp://h/demo RTSP/1.0\r\nCSeq: 1\r\n\r\n",
		"DESCRIBE rtsp://h/demo RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n",
		"DESCRIBE rtsp://h/demo RTSP/1.0\r\nCSeq: 2\r\nAuthorization: Basic bWFpcmllOnB3\r\n\r\n",
		"DESCRIBE rtsp://h/demo RTSP/1.0\r\nCSeq: 2\r\nAuthorization: Digest username=\"mairie\", realm=\"x\", nonce=\"n\", uri=\"rtsp://h/demo\", response=\"00\"\r\n\r\n",
		"SETUP rtsp://h/demo/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\nPLAY rtsp://h/demo RTSP/1.0\r\nCSeq: 4\r\nSession: 1\r\n\r\n",
		"SETUP rtsp://h/demo/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP;unicast;client_port=9-10\r\n\r\n",
		"ANNOUNCE rtsp://h/demo RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 5\r\n\r\nv=0\r\n",
		"$\x00\x00\x04abcd",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"OPTIONS * RTSP/1.0\r\nCSeq: 99999999999999999999\r\nContent-Length: -1\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	reg := prometheus.NewRegistry()
	log := zerolog.Nop()
	hub := relay.NewHub([]relay.ChannelConfig{{Name: "demo"}}, log, relay.NewMetrics(reg))
	srv, err := New(Config{Listen: "127.0.0.1:0", Username: "mairie", Password: configs.Secret("pw"),
		IdleTimeout: time.Second, SessionTimeout: 2 * time.Second}, hub, log, reg)
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 3)
	go func() { _ = hub.Run(ctx); done <- struct{}{} }()
	go func() { _ = srv.Run(ctx); done <- struct{}{} }()
	ch, _ := hub.Channel("demo")
	src, err := demo.New(ch, log)
	if err != nil {
		f.Fatal(err)
	}
	go func() { _ = src.Run(ctx); done <- struct{}{} }()
	f.Cleanup(func() {
		cancel()
		for range 3 {
			<-done
		}
	})
	exchange := func(t *testing.T, b []byte) []byte {
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = c.Write(b)
		_ = c.(*net.TCPConn).CloseWrite()
		out, _ := io.ReadAll(io.LimitReader(c, 1<<20))
		return out
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		exchange(t, data)
		if out := exchange(t, []byte("OPTIONS rtsp://h/demo RTSP/1.0\r\nCSeq: 1\r\n\r\n")); len(out) < 12 || string(out[:12]) != "RTSP/1.0 200" {
			t.Fatalf("the server stopped answering: %q", out)
		}
	})
}
