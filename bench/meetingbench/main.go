// meetingbench measures what a meeting capture costs: seance (the binary
// given) joins a stand-in meeting in headless Chromium (ingest.meeting),
// and for each case (picture size, number of participant videos the page
// decodes) meetingbench reports the time from seance's start to the
// channel being live, the CPU and memory (PSS) of the browser's process
// tree, seance's own CPU, the capture frame rate and the ingest bitrate.
// A case "livekit:SIZE:N:LAYOUT" joins a real livekit-server room instead
// (scripts/build-livekit-server.sh) where N headless Chromiums publish
// their fake camera (-participant-size, 15 fps) and a tone; their own CPU
// is not counted.
//
//	go run ./bench/meetingbench -seance /tmp/seance [-cases 1280x720:0,1920x1080:0,1280x720:4,livekit:1280x720:4:speaker] [-duration 20s]
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/seance-relay/seance/ingest/meeting/meetingtest"
)

type result struct {
	Kind          string  `json:"kind"`
	Layout        string  `json:"layout,omitempty"`
	Size          string  `json:"size"`
	Tiles         int     `json:"tiles"`
	LiveSeconds   float64 `json:"start_to_live_s"`
	BrowserCores  float64 `json:"browser_cpu_cores"`
	BrowserPSSMiB float64 `json:"browser_pss_mib_mean"`
	BrowserPSSMax float64 `json:"browser_pss_mib_max"`
	Processes     int     `json:"browser_processes"`
	SeanceCores   float64 `json:"seance_cpu_cores"`
	CaptureFPS    float64 `json:"capture_fps_mean"`
	IngestFPS     float64 `json:"ingest_fps_mean"`
	BitrateKbps   float64 `json:"ingest_kbit_s_mean"`
	Restarts      int     `json:"restarts"`
	Load1         float64 `json:"load_average_1m"`
}

func main() {
	bin := flag.String("seance", "", "the seance binary (go build -o /tmp/seance ./cmd/seance)")
	cases := flag.String("cases", "1280x720:0,1920x1080:0,1280x720:4,1920x1080:4", "size:participant videos, comma-separated")
	dur := flag.Duration("duration", 20*time.Second, "measuring window of each case")
	warm := flag.Duration("warmup", 5*time.Second, "wait after the channel is live before measuring")
	out := flag.String("out", "", "directory for results.jsonl and the logs (default: none)")
	psize := flag.String("participant-size", "1280x720", "LiveKit cases: the participants' camera size")
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "meetingbench: -seance is required")
		os.Exit(2)
	}
	tile, err := tileVideo()
	if err != nil {
		fmt.Fprintln(os.Stderr, "meetingbench: making the participant video (needs ffmpeg with libvpx):", err)
		os.Exit(1)
	}
	var results []result
	for _, c := range strings.Split(*cases, ",") {
		var r result
		var err error
		size, n, _ := strings.Cut(c, ":")
		tiles, _ := strconv.Atoi(n)
		if f := strings.Split(c, ":"); f[0] == "livekit" && len(f) == 4 {
			size, layout := f[1], f[3]
			tiles, _ = strconv.Atoi(f[2])
			r, err = runLiveKitCase(*bin, size, tiles, layout, *psize, *warm, *dur, *out)
		} else {
			r, err = runCase(*bin, size, tiles, tile, *warm, *dur, *out)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "meetingbench: %s with %d videos: %v\n", size, tiles, err)
			os.Exit(1)
		}
		results = append(results, r)
		line, _ := json.Marshal(r)
		fmt.Println(string(line))
		if *out != "" {
			f, err := os.OpenFile(filepath.Join(*out, "results.jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
			if err == nil {
				f.Write(append(line, '\n'))
				f.Close()
			}
		}
	}
	fmt.Println()
	fmt.Println("| meeting | picture | participant videos | start → live | browser CPU | browser memory (PSS, mean / max) | processes | seance CPU | capture fps | ingest bitrate | load avg |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		kind := r.Kind
		if r.Layout != "" {
			kind += " " + r.Layout
		}
		fmt.Printf("| %s | %s | %d | %.2f s | %.2f cores | %.0f / %.0f MiB | %d | %.3f cores | %.1f | %.0f kbit/s | %.1f |\n",
			kind, r.Size, r.Tiles, r.LiveSeconds, r.BrowserCores, r.BrowserPSSMiB, r.BrowserPSSMax, r.Processes,
			r.SeanceCores, r.CaptureFPS, r.BitrateKbps, r.Load1)
	}
}

// tileVideo encodes a participant's camera: 640x360, 30 fps, VP8, 10 s
// looped by the page, as a meeting's video grid decodes.
func tileVideo() ([]byte, error) {
	f, err := os.CreateTemp("", "meetingbench-*.webm")
	if err != nil {
		return nil, err
	}
	f.Close()
	defer os.Remove(f.Name())
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
		"-t", "10", "-c:v", "libvpx", "-b:v", "600k", "-deadline", "realtime", "-cpu-used", "8", f.Name())
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%w: %s", err, out)
	}
	return os.ReadFile(f.Name())
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func freeUDPPort() int {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func runCase(bin, size string, tiles int, tile []byte, warm, dur time.Duration, outDir string) (result, error) {
	meet := meetingtest.New("unused-bbb-secret")
	defer meet.Close()
	meet.SetTileVideo(tile)
	// Others in the room, so that a run longer than alone_after (5 min)
	// keeps capturing.
	meet.SetParticipants(max(tiles, 1))
	room := "Bench"
	if tiles > 0 {
		room += "?tiles=" + strconv.Itoa(tiles)
	}
	r := result{Kind: "stand-in jitsi", Size: size, Tiles: tiles}
	return measure(r, bin, fmt.Sprintf("jitsi: {url: %q}", meet.JitsiURL(room)), warm, dur, outDir)
}

// runLiveKitCase measures seance in a livekit-server room where n
// participants publish.
func runLiveKitCase(bin, size string, n int, layout, psize string, warm, dur time.Duration, outDir string) (result, error) {
	r := result{Kind: "livekit", Layout: layout, Size: size, Tiles: n}
	var pw, ph int
	if _, err := fmt.Sscanf(psize, "%dx%d", &pw, &ph); err != nil {
		return r, fmt.Errorf("-participant-size %q: %w", psize, err)
	}
	lkBin, err := meetingtest.BuildLiveKitServer()
	if err != nil {
		return r, err
	}
	dir, err := os.MkdirTemp("", "meetingbench-livekit-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	lk, err := meetingtest.RunLiveKit(lkBin, dir)
	if err != nil {
		return r, err
	}
	defer lk.Close()
	const room = "bench"
	for i := range n {
		p, err := lk.Publish(room, "p"+strconv.Itoa(i+1), "Participant "+strconv.Itoa(i+1), pw, ph)
		if err != nil {
			return r, err
		}
		defer p.Leave()
	}
	// Wait for every participant to publish its camera and microphone.
	deadline := time.Now().Add(60 * time.Second)
	for {
		ps, err := lk.Participants(room)
		tracks := 0
		for _, p := range ps {
			tracks += len(p.Tracks)
		}
		if err == nil && len(ps) == n && tracks == 2*n {
			break
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("%d participants did not all publish within 60 s (%d in the room, %d tracks)", n, len(ps), tracks)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return measure(r, bin, fmt.Sprintf("livekit: {url: %q, api_key: %q, api_secret: %q, room: %q}\n        layout: %s",
		lk.URL, lk.APIKey, lk.APISecret, room, layout), warm, dur, outDir)
}

// measure runs seance with a channel fed by the meeting (the YAML of
// ingest.meeting's platform key) and measures it.
func measure(r result, bin, meetingYAML string, warm, dur time.Duration, outDir string) (result, error) {
	size, tiles := r.Size, r.Tiles
	dir, err := os.MkdirTemp("", "meetingbench-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	admin := freePort()
	cfg := fmt.Sprintf(`log: {level: info}
public: {listen: "127.0.0.1:%d"}
admin: {listen: "127.0.0.1:%d"}
rtmp: {listen: ""}
rtsp: {listen: ""}
hls: {enabled: false}
webrtc: {udp_port: %d, announce_loopback: true}
channels:
  - name: bench
    ingest:
      meeting:
        %s
        size: %s
`, freePort(), admin, freeUDPPort(), meetingYAML, size)
	cfgPath := filepath.Join(dir, "seance.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return r, err
	}
	var logs bytes.Buffer
	cmd := exec.Command(bin, "-config", cfgPath)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return r, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if outDir != "" {
			name := fmt.Sprintf("seance-%s-%s-%d.log", strings.ReplaceAll(r.Kind+r.Layout, " ", "-"), size, tiles)
			_ = os.WriteFile(filepath.Join(outDir, name), logs.Bytes(), 0o644)
		}
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", admin)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		st, err := channel(ctx, base)
		if err == nil && st.Health.State == "live" {
			r.LiveSeconds = time.Since(start).Seconds()
			break
		}
		if ctx.Err() != nil {
			return r, fmt.Errorf("not live within 60 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(warm)
	cpu0, err := metric(ctx, base, `seance_meeting_browser_cpu_seconds_total{channel="bench"}`)
	if err != nil {
		return r, err
	}
	self0, err := procCPU(cmd.Process.Pid)
	if err != nil {
		return r, err
	}
	t0 := time.Now()
	var pss, fps, ifps, kbps []float64
	for time.Since(t0) < dur {
		time.Sleep(time.Second)
		st, err := channel(ctx, base)
		if err != nil {
			return r, err
		}
		if st.Meeting.MemoryBytes > 0 {
			pss = append(pss, float64(st.Meeting.MemoryBytes)/(1<<20))
		}
		fps = append(fps, st.Meeting.CaptureFPS)
		ifps = append(ifps, st.Health.FPS)
		kbps = append(kbps, st.Health.Bitrate/1000)
		r.Processes = st.Meeting.Processes
		r.Restarts = st.Meeting.Restarts
	}
	cpu1, err := metric(ctx, base, `seance_meeting_browser_cpu_seconds_total{channel="bench"}`)
	if err != nil {
		return r, err
	}
	self1, err := procCPU(cmd.Process.Pid)
	if err != nil {
		return r, err
	}
	el := time.Since(t0).Seconds()
	r.BrowserCores = (cpu1 - cpu0) / el
	r.SeanceCores = (self1 - self0).Seconds() / el
	r.BrowserPSSMiB, r.BrowserPSSMax = mean(pss), slices.Max(append(pss, 0))
	r.CaptureFPS, r.IngestFPS, r.BitrateKbps = mean(fps), mean(ifps), mean(kbps)
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		r.Load1, _ = strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	}
	return r, nil
}

type channelStatus struct {
	Health struct {
		State   string  `json:"state"`
		FPS     float64 `json:"fps"`
		Bitrate float64 `json:"bitrate_bps"`
	} `json:"health"`
	Meeting struct {
		State       string  `json:"state"`
		CaptureFPS  float64 `json:"capture_fps"`
		MemoryBytes int64   `json:"memory_bytes"`
		Processes   int     `json:"processes"`
		Restarts    int     `json:"restarts"`
	} `json:"meeting"`
}

func get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

func channel(ctx context.Context, base string) (channelStatus, error) {
	var st channelStatus
	b, err := get(ctx, base+"/api/v1/channels/bench")
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}

func metric(ctx context.Context, base, series string) (float64, error) {
	b, err := get(ctx, base+"/metrics")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, errors.New("no series " + series)
}

// procCPU is utime+stime of a process (USER_HZ is 100 on Linux).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	s, _ := strconv.ParseUint(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond, nil
}

func mean(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}
