// Command abuse runs every attack of issue 13 at once from loopback
// addresses other than 127.0.0.1, against a running seance, for a
// duration, and prints what each attack got. bench/abuse/run.sh runs it
// beside 50 WHEP viewers (bench/whepload) and a reconnecting publisher.
//
//	abuse -http 127.0.0.1:28080 -rtmp 127.0.0.1:21935 -rtsp 127.0.0.1:28554 -channel bench -duration 60s
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/pion/webrtc/v4"
)

type tally struct {
	mu sync.Mutex
	m  map[string]int
}

func (t *tally) add(k string) {
	t.mu.Lock()
	t.m[k]++
	t.mu.Unlock()
}

func (t *tally) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var keys []string
	for k := range t.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d ", k, t.m[k])
	}
	return strings.TrimSpace(b.String())
}

func dialer(ip string) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 3 * time.Second}
}

func client(ip string) *http.Client {
	d := dialer(ip)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 64}}
}

// offer makes one real recvonly offer, without candidates.
func offer() (string, error) {
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return "", err
	}
	defer pc.Close()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return "", err
		}
	}
	o, err := pc.CreateOffer(nil)
	return o.SDP, err
}

func main() {
	httpAddr := flag.String("http", "127.0.0.1:28080", "public listener")
	rtmpAddr := flag.String("rtmp", "127.0.0.1:21935", "RTMP listener")
	rtspAddr := flag.String("rtsp", "127.0.0.1:28554", "RTSP listener")
	channel := flag.String("channel", "bench", "channel")
	dur := flag.Duration("duration", 60*time.Second, "how long")
	flag.Parse()
	sdp, err := offer()
	if err != nil {
		fmt.Fprintln(os.Stderr, "abuse:", err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	whep := "http://" + *httpAddr + "/whep/" + *channel
	results := map[string]*tally{}
	var wg sync.WaitGroup
	attack := func(name string, workers int, f func(ctx context.Context, t *tally)) {
		t := &tally{m: map[string]int{}}
		results[name] = t
		for range workers {
			wg.Go(func() {
				for ctx.Err() == nil {
					f(ctx, t)
				}
			})
		}
	}

	// 1. One address fills the channel with offers that never connect.
	offers := client("127.0.0.2")
	attack("whep offers (127.0.0.2)", 4, func(ctx context.Context, t *tally) {
		resp, err := offers.Post(whep, "application/sdp", strings.NewReader(sdp))
		if err != nil {
			t.add("error")
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t.add(fmt.Sprint(resp.StatusCode))
	})
	// 2. Trickled candidates naming victims, 10 per PATCH.
	cands := client("127.0.0.3")
	var frag strings.Builder
	frag.WriteString("m=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n")
	for i := range 10 {
		fmt.Fprintf(&frag, "a=candidate:%d 1 udp 2130706431 127.0.0.1 %d typ host\r\n", i, 40000+i)
	}
	attack("trickle candidates (127.0.0.3)", 2, func(ctx context.Context, t *tally) {
		resp, err := cands.Post(whep, "application/sdp", strings.NewReader(sdp))
		if err != nil {
			t.add("error")
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusCreated {
			t.add("offer " + fmt.Sprint(resp.StatusCode))
			return
		}
		for range 10 {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPatch, "http://"+*httpAddr+loc, strings.NewReader(frag.String()))
			req.Header.Set("Content-Type", "application/trickle-ice-sdpfrag")
			r, err := cands.Do(req)
			if err != nil {
				t.add("error")
				return
			}
			r.Body.Close()
			t.add("patch " + fmt.Sprint(r.StatusCode))
		}
	})
	// 3, 4. Idle TCP sockets on RTMP and RTSP, reopened as they close.
	idle := func(name, ip, addr string) {
		attack(name, 64, func(ctx context.Context, t *tally) {
			c, err := dialer(ip).DialContext(ctx, "tcp", addr)
			if err != nil {
				t.add("dial error")
				return
			}
			start := time.Now()
			stop := context.AfterFunc(ctx, func() { c.Close() })
			_, _ = c.Read(make([]byte, 1))
			stop()
			c.Close()
			if time.Since(start) < 100*time.Millisecond {
				t.add("closed at once")
			} else {
				t.add("held then closed")
			}
		})
	}
	idle("rtmp idle sockets (127.0.0.4)", "127.0.0.4", *rtmpAddr)
	idle("rtsp idle sockets (127.0.0.5)", "127.0.0.5", *rtspAddr)
	// 5. Slow request bodies, one byte every 2 s.
	attack("slow POST bodies (127.0.0.6)", 16, func(ctx context.Context, t *tally) {
		c, err := dialer("127.0.0.6").DialContext(ctx, "tcp", *httpAddr)
		if err != nil {
			t.add("dial error")
			return
		}
		defer c.Close()
		stop := context.AfterFunc(ctx, func() { c.Close() })
		defer stop()
		start := time.Now()
		fmt.Fprintf(c, "POST /whep/%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: 100000\r\n\r\n", *channel)
		for ctx.Err() == nil {
			if _, err := c.Write([]byte("v")); err != nil {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
		}
		t.add(fmt.Sprintf("cut after %ds", int(time.Since(start).Seconds())))
	})
	// 6. HTTP connections held open from one address.
	attack("http idle connections (127.0.0.7)", 64, func(ctx context.Context, t *tally) {
		c, err := dialer("127.0.0.7").DialContext(ctx, "tcp", *httpAddr)
		if err != nil {
			t.add("dial error")
			return
		}
		start := time.Now()
		stop := context.AfterFunc(ctx, func() { c.Close() })
		_, _ = c.Read(make([]byte, 1))
		stop()
		c.Close()
		if time.Since(start) < 100*time.Millisecond {
			t.add("closed at once")
		} else {
			t.add("held then closed")
		}
	})
	// 7. Key guesses, over RTMP and WHIP.
	attack("rtmp key guesses (127.0.0.8)", 2, func(ctx context.Context, t *tally) {
		u, _ := url.Parse("rtmp://" + *rtmpAddr + "/live#" + *channel + "?key=guess")
		d := dialer("127.0.0.8")
		c := &gortmplib.Client{URL: u, Publish: true, DialContext: d.DialContext}
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		err := c.Initialize(cctx)
		ccancel()
		time.Sleep(10 * time.Millisecond) // ~100 guesses a second per worker at most
		if err == nil {
			c.Close()
			t.add("accepted!")
			return
		}
		t.add("refused")
	})
	var n atomic.Int64
	guesses := client("127.0.0.9")
	attack("whip key guesses (127.0.0.9)", 2, func(ctx context.Context, t *tally) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+*httpAddr+"/whip/"+*channel, strings.NewReader(sdp))
		req.Header.Set("Content-Type", "application/sdp")
		req.Header.Set("Authorization", fmt.Sprintf("Bearer guess-%d", n.Add(1)))
		resp, err := guesses.Do(req)
		if err != nil {
			t.add("error")
			return
		}
		resp.Body.Close()
		t.add(fmt.Sprint(resp.StatusCode))
		time.Sleep(10 * time.Millisecond)
	})
	wg.Wait()
	var names []string
	for k := range results {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Printf("%-36s %s\n", k, results[k])
	}
}
