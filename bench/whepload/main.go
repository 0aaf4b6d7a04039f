// Command whepload opens N WHEP viewers (receive-only H.264 + Opus) against
// a WHEP endpoint on this machine and measures what they receive and what the
// server process costs while it serves them.
//
//	whepload -url http://127.0.0.1:8080/whep/bench -n 100 -duration 30s -ramp 5s -pid PID
//
// Viewers join evenly over -ramp; the measurement window is the -duration
// that follows the ramp. It reports, for the window: server CPU (utime+stime
// of -pid from /proc) per viewer per second and per delivered RTP packet,
// server RSS (VmRSS) before the viewers join and at the end of the window,
// mean received bitrate per viewer, loss (sequence gaps), the generator's own
// CPU, and over the whole run the time from each viewer's offer (POST) to its
// first complete H.264 keyframe, p50/p95. It prints a table, then the same
// as one JSON line. It only talks to loopback addresses and stops by itself.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/pion/webrtc/v4"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	url      string
	n        int
	duration time.Duration
	ramp     time.Duration
	waitLive time.Duration
	settle   time.Duration
	pid      int
	label    string
	jsonOut  string
}

// result is the JSON line. Durations are in milliseconds, CPU in seconds,
// memory in KiB. A value that could not be measured is -1.
type result struct {
	Label    string  `json:"label,omitempty"`
	URL      string  `json:"url"`
	Viewers  int     `json:"viewers"`
	OK       int     `json:"ok"`
	Failed   int     `json:"failed"`
	RampS    float64 `json:"ramp_s"`
	WindowS  float64 `json:"window_s"`
	NoVideo  int     `json:"no_video"`
	NoAudio  int     `json:"no_audio"`
	Packets  uint64  `json:"packets"`
	Bytes    uint64  `json:"bytes"`
	Lost     uint64  `json:"lost"`
	LossPct  float64 `json:"loss_pct"`
	Discont  uint64  `json:"discontinuities"`
	KbpsMean float64 `json:"kbps_per_viewer_mean"`
	VideoPPS float64 `json:"video_pps_per_viewer"`
	AudioPPS float64 `json:"audio_pps_per_viewer"`

	AnswerP50   float64 `json:"answer_p50_ms"`
	AnswerP95   float64 `json:"answer_p95_ms"`
	FirstPktP50 float64 `json:"first_packet_p50_ms"`
	TTFKP50     float64 `json:"first_keyframe_p50_ms"`
	TTFKP95     float64 `json:"first_keyframe_p95_ms"`
	TTFKMax     float64 `json:"first_keyframe_max_ms"`
	TTFKNone    int     `json:"first_keyframe_missing"`

	ServerPID          int     `json:"server_pid,omitempty"`
	ServerCPUS         float64 `json:"server_cpu_s"`
	ServerCPUMsPerVS   float64 `json:"server_cpu_ms_per_viewer_s"`
	ServerCPUUsPerPkt  float64 `json:"server_cpu_us_per_packet"`
	ServerCores        float64 `json:"server_cores"`
	ServerIdleCores    float64 `json:"server_idle_cores"`
	ServerCPUMarginal  float64 `json:"server_cpu_ms_per_viewer_s_marginal"`
	ServerRSSBeforeKiB int64   `json:"server_rss_before_kib"`
	ServerRSSAfterKiB  int64   `json:"server_rss_after_kib"`
	ServerRSSPerVKiB   float64 `json:"server_rss_per_viewer_kib"`

	MachineBusyCores float64 `json:"machine_busy_cores"`
	OtherCores       float64 `json:"other_cores"`

	GenCPUS       float64 `json:"gen_cpu_s"`
	GenCPUMsPerVS float64 `json:"gen_cpu_ms_per_viewer_s"`
	GenCores      float64 `json:"gen_cores"`

	Errors map[string]int `json:"errors,omitempty"`
}

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("whepload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "", "WHEP endpoint on this machine, e.g. http://127.0.0.1:8080/whep/bench or http://127.0.0.1:8889/bench/whep")
	fs.IntVar(&o.n, "n", 10, "number of viewers")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "measurement window, after the ramp")
	fs.DurationVar(&o.ramp, "ramp", 5*time.Second, "viewers join evenly over this time, before the window")
	fs.DurationVar(&o.waitLive, "wait-live", 0, "first retry a probe viewer until the endpoint answers 201, for at most this long")
	fs.DurationVar(&o.settle, "settle", 0, "pause after -wait-live before the server's baseline RSS is taken")
	fs.IntVar(&o.pid, "pid", 0, "server process to measure (CPU, RSS from /proc/PID); 0 skips it")
	fs.StringVar(&o.label, "label", "", "name put in the JSON line (e.g. seance, mediamtx)")
	fs.StringVar(&o.jsonOut, "json", "", "also append the JSON line to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || o.url == "" || o.n < 1 || o.n > 5000 || o.duration <= 0 || o.ramp < 0 ||
		o.duration > time.Hour || o.ramp > 10*time.Minute || o.waitLive > 5*time.Minute || o.settle < 0 || o.settle > time.Minute {
		fmt.Fprintln(stderr, "whepload: need -url, 1 ≤ -n ≤ 5000, 0 < -duration ≤ 1h, 0 ≤ -ramp ≤ 10m, -wait-live ≤ 5m, -settle ≤ 1m")
		return 2
	}
	endpoint, err := checkLoopbackURL(o.url)
	if err != nil {
		fmt.Fprintln(stderr, "whepload:", err)
		return 2
	}
	pid := ""
	if o.pid > 0 {
		pid = strconv.Itoa(o.pid)
		if _, err := procCPU(pid); err != nil {
			fmt.Fprintln(stderr, "whepload: -pid:", err)
			return 2
		}
	}
	api, err := newAPI()
	if err != nil {
		fmt.Fprintln(stderr, "whepload:", err)
		return 1
	}
	client := newHTTPClient()

	// Hard bound: whatever hangs, the process ends.
	limit := o.waitLive + o.settle + o.ramp + o.duration + 45*time.Second
	hard := time.AfterFunc(limit, func() {
		fmt.Fprintf(stderr, "whepload: still running after %v: giving up\n", limit)
		os.Exit(3)
	})
	defer hard.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()

	if o.waitLive > 0 {
		if err := waitLive(ctx, api, client, endpoint, o.waitLive); err != nil {
			fmt.Fprintln(stderr, "whepload: the endpoint never answered 201:", err)
			return 1
		}
	}
	// The server's CPU with the stream but no viewer, over -settle.
	idle := -1.0
	before, _ := takeSample(pid, nil)
	if !sleepUntil(ctx, before.at.Add(o.settle)) {
		return 1
	}
	if after, err := takeSample(pid, nil); err == nil && pid != "" && o.settle > 0 {
		idle = (after.server - before.server).Seconds() / after.at.Sub(before.at).Seconds()
	}
	res, err := measure(ctx, o, api, client, endpoint, pid, idle)
	if err != nil {
		fmt.Fprintln(stderr, "whepload:", err)
		return 1
	}
	printTable(stdout, res)
	line, _ := json.Marshal(res)
	fmt.Fprintln(stdout, string(line))
	if o.jsonOut != "" {
		f, err := os.OpenFile(o.jsonOut, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err == nil {
			_, err = fmt.Fprintln(f, string(line))
			err = cmp.Or(f.Close(), err)
		}
		if err != nil {
			fmt.Fprintln(stderr, "whepload:", err)
			return 1
		}
	}
	if res.OK == 0 {
		return 1
	}
	return 0
}

// waitLive retries one probe viewer until the endpoint answers 201.
func waitLive(ctx context.Context, api *webrtc.API, client *http.Client, endpoint *url.URL, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		v := &viewer{}
		err := v.start(ctx, api, client, endpoint)
		v.stop(client)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// counts is a snapshot of one viewer's counters.
type counts struct {
	vPkts, vBytes, vLost, aPkts, aBytes, aLost, disc uint64
}

func (v *viewer) counts() counts {
	return counts{
		v.video.packets.Load(), v.video.bytes.Load(), v.video.lost.Load(),
		v.audio.packets.Load(), v.audio.bytes.Load(), v.audio.lost.Load(),
		v.video.discont.Load() + v.audio.discont.Load(),
	}
}

type sample struct {
	at        time.Time
	server    time.Duration
	self      time.Duration
	machine   time.Duration
	perViewer []counts
}

func takeSample(pid string, viewers []*viewer) (sample, error) {
	s := sample{at: time.Now(), perViewer: make([]counts, len(viewers))}
	var err error
	if pid != "" {
		if s.server, err = procCPU(pid); err != nil {
			return s, fmt.Errorf("server process: %w", err)
		}
	}
	if s.self, err = procCPU("self"); err != nil {
		return s, err
	}
	if s.machine, err = machineBusy(); err != nil {
		return s, err
	}
	for i, v := range viewers {
		s.perViewer[i] = v.counts()
	}
	return s, nil
}

func measure(ctx context.Context, o options, api *webrtc.API, client *http.Client, endpoint *url.URL, pid string, idle float64) (*result, error) {
	res := &result{Label: o.label, URL: endpoint.String(), Viewers: o.n, RampS: o.ramp.Seconds(), ServerPID: o.pid,
		ServerRSSBeforeKiB: -1, ServerRSSAfterKiB: -1, ServerRSSPerVKiB: -1, ServerCPUS: -1, ServerCPUMsPerVS: -1,
		ServerCPUUsPerPkt: -1, ServerCores: -1, ServerIdleCores: -1, ServerCPUMarginal: -1}
	if pid != "" {
		rss, err := procRSS(pid)
		if err != nil {
			return nil, fmt.Errorf("server process: %w", err)
		}
		res.ServerRSSBeforeKiB = rss
	}

	viewers := make([]*viewer, o.n)
	for i := range viewers {
		viewers[i] = &viewer{}
	}
	errs := make([]error, o.n)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i, v := range viewers {
		if !sleepUntil(ctx, t0.Add(o.ramp*time.Duration(i)/time.Duration(o.n))) {
			break
		}
		wg.Go(func() { errs[i] = v.start(ctx, api, client, endpoint) })
	}
	defer stopAll(viewers, client)
	sleepUntil(ctx, t0.Add(o.ramp))

	a, err := takeSample(pid, viewers)
	if err != nil {
		return nil, err
	}
	if !sleepUntil(ctx, a.at.Add(o.duration)) {
		return nil, ctx.Err()
	}
	b, err := takeSample(pid, viewers)
	if err != nil {
		return nil, err
	}
	if pid != "" {
		if rss, err := procRSS(pid); err == nil {
			res.ServerRSSAfterKiB = rss
		}
	}
	wg.Wait() // sessions still negotiating finish or time out (HTTP timeout)

	window := b.at.Sub(a.at).Seconds()
	res.WindowS = round(window, 3)
	res.Errors = map[string]int{}
	var answers, firstPkts, ttfk []time.Duration
	var kbps, vpps, apps float64
	for i, v := range viewers {
		if errs[i] != nil {
			res.Failed++
			res.Errors[errs[i].Error()]++
			continue
		}
		if v.firstPkt.Load() == 0 {
			res.Failed++
			res.Errors["no media received"]++
			continue
		}
		res.OK++
		if !v.gotVideo.Load() {
			res.NoVideo++
		}
		if !v.gotAudio.Load() {
			res.NoAudio++
		}
		ca, cb := a.perViewer[i], b.perViewer[i]
		pk := cb.vPkts - ca.vPkts + cb.aPkts - ca.aPkts
		by := cb.vBytes - ca.vBytes + cb.aBytes - ca.aBytes
		res.Packets += pk
		res.Bytes += by
		res.Lost += cb.vLost - ca.vLost + cb.aLost - ca.aLost
		res.Discont += cb.disc - ca.disc
		kbps += float64(by) * 8 / 1000 / window
		vpps += float64(cb.vPkts-ca.vPkts) / window
		apps += float64(cb.aPkts-ca.aPkts) / window
		answers = append(answers, v.answer)
		firstPkts = append(firstPkts, time.Duration(v.firstPkt.Load()))
		if kf := v.firstKF.Load(); kf > 0 {
			ttfk = append(ttfk, time.Duration(kf))
		} else {
			res.TTFKNone++
		}
	}
	if len(res.Errors) == 0 {
		res.Errors = nil
	}
	if res.OK > 0 {
		ok := float64(res.OK)
		res.KbpsMean = round(kbps/ok, 1)
		res.VideoPPS = round(vpps/ok, 1)
		res.AudioPPS = round(apps/ok, 1)
	}
	if res.Packets+res.Lost > 0 {
		res.LossPct = round(100*float64(res.Lost)/float64(res.Packets+res.Lost), 4)
	}
	res.AnswerP50, res.AnswerP95 = pct(answers, 0, 50), pct(answers, 0, 95)
	res.FirstPktP50 = pct(firstPkts, 0, 50)
	// Viewers that never got a keyframe rank last.
	res.TTFKP50, res.TTFKP95 = pct(ttfk, res.TTFKNone, 50), pct(ttfk, res.TTFKNone, 95)
	res.TTFKMax = pct(ttfk, res.TTFKNone, 100)

	if pid != "" {
		cpu := (b.server - a.server).Seconds()
		res.ServerCPUS = round(cpu, 3)
		res.ServerCores = round(cpu/window, 3)
		if res.OK > 0 {
			res.ServerCPUMsPerVS = round(cpu*1000/window/float64(res.OK), 4)
		}
		if idle >= 0 {
			res.ServerIdleCores = round(idle, 3)
			if res.OK > 0 {
				res.ServerCPUMarginal = round((cpu/window-idle)*1000/float64(res.OK), 4)
			}
		}
		if res.Packets > 0 {
			res.ServerCPUUsPerPkt = round(cpu*1e6/float64(res.Packets), 3)
		}
		if res.ServerRSSAfterKiB >= 0 && res.OK > 0 {
			res.ServerRSSPerVKiB = round(float64(res.ServerRSSAfterKiB-res.ServerRSSBeforeKiB)/float64(res.OK), 1)
		}
	}
	gen := (b.self - a.self).Seconds()
	res.GenCPUS = round(gen, 3)
	res.GenCores = round(gen/window, 3)
	if res.OK > 0 {
		res.GenCPUMsPerVS = round(gen*1000/window/float64(res.OK), 4)
	}
	// What else ran on the machine meanwhile (other processes, the
	// publisher): a measurement is only clean when this stays small.
	busy := (b.machine - a.machine).Seconds()
	res.MachineBusyCores = round(busy/window, 3)
	res.OtherCores = round((busy-gen-max(res.ServerCPUS, 0))/window, 3)
	return res, nil
}

// stopAll ends every session, 32 at a time.
func stopAll(viewers []*viewer, client *http.Client) {
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for _, v := range viewers {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			v.stop(client)
		})
	}
	wg.Wait()
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// pct is the nearest-rank percentile in milliseconds of ds plus missing
// values that rank above every other; -1 when it falls on a missing one or
// there is nothing.
func pct(ds []time.Duration, missing int, p float64) float64 {
	total := len(ds) + missing
	if total == 0 {
		return -1
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := max(int(math.Ceil(p/100*float64(total))), 1)
	if rank > len(s) {
		return -1
	}
	return round(float64(s[rank-1])/float64(time.Millisecond), 1)
}

func round(x float64, digits int) float64 {
	m := math.Pow(10, float64(digits))
	return math.Round(x*m) / m
}

func printTable(w io.Writer, r *result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	ms := func(v float64) string {
		if v < 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.0f ms", v)
	}
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	if r.Label != "" {
		row("server", "%s", r.Label)
	}
	row("endpoint", "%s", r.URL)
	row("viewers", "%d ok, %d failed (of %d; ramp %.0f s, window %.1f s)", r.OK, r.Failed, r.Viewers, r.RampS, r.WindowS)
	if r.NoVideo+r.NoAudio > 0 {
		row("tracks missing", "video %d, audio %d", r.NoVideo, r.NoAudio)
	}
	row("bitrate per viewer", "%.0f kbit/s (video %.0f pkt/s, audio %.0f pkt/s)", r.KbpsMean, r.VideoPPS, r.AudioPPS)
	row("loss", "%.3f %% (%d lost, %d received, %d discontinuities)", r.LossPct, r.Lost, r.Packets, r.Discont)
	row("offer → answer", "p50 %s, p95 %s", ms(r.AnswerP50), ms(r.AnswerP95))
	row("offer → first keyframe", "p50 %s, p95 %s, max %s (%d never)", ms(r.TTFKP50), ms(r.TTFKP95), ms(r.TTFKMax), r.TTFKNone)
	if r.ServerPID > 0 {
		row("server CPU", "%.2f s in window = %.2f cores", r.ServerCPUS, r.ServerCores)
		row("server CPU per viewer", "%.3f ms per viewer per second (%.3f above the %.3f cores it used before the viewers)",
			r.ServerCPUMsPerVS, r.ServerCPUMarginal, r.ServerIdleCores)
		row("server CPU per packet", "%.2f µs", r.ServerCPUUsPerPkt)
		row("server RSS", "%d → %d KiB (%.0f KiB per viewer)", r.ServerRSSBeforeKiB, r.ServerRSSAfterKiB, r.ServerRSSPerVKiB)
	}
	row("generator CPU", "%.2f s = %.2f cores (%.3f ms per viewer per second)", r.GenCPUS, r.GenCores, r.GenCPUMsPerVS)
	row("machine busy", "%.2f cores (%.2f neither server nor generator)", r.MachineBusyCores, r.OtherCores)
	for e, n := range r.Errors {
		row("error", "%d× %s", n, e)
	}
	tw.Flush()
}
