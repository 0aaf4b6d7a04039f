package web

import (
	"sync"
	"time"
)

// historyLen is how many samples a channel's history keeps: 15 minutes of
// one-second samples, about 30 kB per channel.
const historyLen = 900

// history is a ring of a channel's last health samples, in memory, for
// the dashboard's sparklines. Safe for concurrent use.
type history struct {
	mu      sync.Mutex
	t       [historyLen]int64 // unix milliseconds
	bitrate [historyLen]float64
	fps     [historyLen]float64
	viewers [historyLen]int
	next    int
	n       int
}

func (h *history) add(s healthSample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	i := h.next
	h.t[i], h.bitrate[i], h.fps[i], h.viewers[i] = s.Time.UnixMilli(), s.Bitrate, s.FPS, s.Viewers["total"]
	h.next = (h.next + 1) % historyLen
	h.n = min(h.n+1, historyLen)
}

// historyResponse is the body of GET /api/v1/channels/{channel}/history:
// parallel arrays, oldest first.
type historyResponse struct {
	Channel  string    `json:"channel"`
	Interval float64   `json:"interval_s"`
	Times    []int64   `json:"t"`
	Bitrate  []float64 `json:"bitrate_bps"`
	FPS      []float64 `json:"fps"`
	Viewers  []int     `json:"viewers"`
}

func (h *history) snapshot(channel string, every time.Duration) historyResponse {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := historyResponse{
		Channel:  channel,
		Interval: every.Seconds(),
		Times:    make([]int64, 0, h.n),
		Bitrate:  make([]float64, 0, h.n),
		FPS:      make([]float64, 0, h.n),
		Viewers:  make([]int, 0, h.n),
	}
	start := (h.next - h.n + historyLen) % historyLen
	for k := range h.n {
		i := (start + k) % historyLen
		out.Times = append(out.Times, h.t[i])
		out.Bitrate = append(out.Bitrate, h.bitrate[i])
		out.FPS = append(out.FPS, h.fps[i])
		out.Viewers = append(out.Viewers, h.viewers[i])
	}
	return out
}
