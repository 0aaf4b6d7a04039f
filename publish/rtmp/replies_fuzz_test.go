package rtmp

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/rs/zerolog"
)

const fuzzKey = "yt-key-4f9a-7c21"

// recordingConn keeps what a real RTMP server writes.
type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	out bytes.Buffer
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.out.Write(p)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// recordServer returns what gortmplib's server sends a publisher up to
// its publish answer: a real ingest's replies.
func recordServer(f *testing.F) []byte {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer ln.Close()
	rec := make(chan []byte, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			rec <- nil
			return
		}
		defer nc.Close()
		rc := &recordingConn{Conn: nc}
		sc := &gortmplib.ServerConn{RW: rc}
		if sc.Initialize() == nil && sc.AcceptConn() == nil {
			_ = sc.AcceptAction()
		}
		rc.mu.Lock()
		rec <- bytes.Clone(rc.out.Bytes())
		rc.mu.Unlock()
	}()
	u, _ := url.Parse("rtmp://" + ln.Addr().String() + "/live2#" + fuzzKey)
	c := &gortmplib.Client{URL: u, Publish: true}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Initialize(ctx); err != nil {
		f.Fatal(err)
	}
	defer c.Close()
	return <-rec
}

// FuzzDestinationReplies plays any bytes as the RTMP server's replies to
// a destination (YouTube, or whoever answers at its address): the
// connection fails or streams, nothing panics, and the error never holds
// the stream key, even when the server echoes it.
func FuzzDestinationReplies(f *testing.F) {
	good := recordServer(f)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(append(bytes.Clone(good[:3073]), []byte("\x03\x00\x00\x00\x00\x00\x30\x14\x00\x00\x00\x00\x02\x00\x07_result")...))
	f.Add(append(bytes.Clone(good[:3073]), []byte("\x02\x00\x00\x00\x00\x00\x04\x01\x00\x00\x00\x00\x7f\xff\xff\xff")...))
	f.Add([]byte("\x03" + strings.Repeat("\x00", 3072) + fuzzKey))
	f.Add([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
	e := newEnv(f)
	e.goLive(f)
	f.Fuzz(func(t *testing.T, replies []byte) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		served := make(chan struct{})
		go func() {
			defer close(served)
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			defer nc.Close()
			_, _ = nc.Write(replies)
			_ = nc.(*net.TCPConn).CloseWrite()
			_, _ = io.Copy(io.Discard, nc) // until the destination closes
		}()
		u, _ := url.Parse("rtmp://" + ln.Addr().String() + "/live2#" + fuzzKey)
		logs := &syncBuffer{}
		d := New(Config{Name: "yt", URL: u, Display: "rtmp://x/live2", WriteTimeout: time.Second}, e.ch, zerolog.New(logs), e.met)
		// A valid answer streams until the server's end of the stream is
		// noticed or this bound: the destination never waits longer.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := d.runOnce(ctx, nil); err != nil && strings.Contains(err.Error(), fuzzKey) {
			t.Fatalf("the error holds the stream key: %v", err)
		}
		if strings.Contains(logs.String(), fuzzKey) {
			t.Fatalf("a log line holds the stream key: %s", logs)
		}
		ln.Close()
		<-served
	})
}
