package hls

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/seance-relay/seance/relay"
)

// A channel with reduced renditions has its own multivariant playlist at
// /hls/{channel}/index.m3u8 (RFC 8216 4.3.4): the variant streams of the
// full rendition's muxer, of each reduced rendition's muxer (under
// {rendition}/) and of the audio-only one (under audio/), each as gohlslib
// announces it — BANDWIDTH and AVERAGE-BANDWIDTH measured on its segments,
// CODECS from its tracks, RESOLUTION from its SPS. A rendition whose muxer
// is not ready (its ffmpeg is starting or restarting) is left out: players
// reload the multivariant playlist when they start.

// renditionWait is how long the multivariant playlist waits for the
// reduced renditions' first segments once the full one has its own (they
// start a little later, through ffmpeg).
const renditionWait = 3 * time.Second

// serveMultivariant answers GET /hls/{channel}/index.m3u8 for a channel
// with renditions.
func (s *Server) serveMultivariant(w http.ResponseWriter, r *http.Request, ch *relay.Channel, hold <-chan time.Time) {
	feeds := feedsOf(ch)
	full, ok := s.multivariantOf(w, r, feeds[0], hold, true)
	if !ok {
		return
	}
	s.viewers.seen(ch.Name(), s.viewers.clientKey(r), s.now())
	parts := []variantPlaylist{{prefix: "", body: full}}
	deadline := time.NewTimer(renditionWait)
	defer deadline.Stop()
	for _, f := range feeds[1:] {
		if body, ok := s.multivariantOf(w, r, f, deadline.C, false); ok {
			parts = append(parts, variantPlaylist{prefix: f.sub + "/", group: f.sub, body: body})
		}
	}
	out := mergeMultivariant(parts)
	s.met.requests.WithLabelValues(ch.Name(), string(kindPlaylist)).Inc()
	s.met.bytes.WithLabelValues(ch.Name()).Add(float64(len(out)))
	h := w.Header()
	h.Set("Content-Type", "application/vnd.apple.mpegurl")
	h.Set("Cache-Control", cachePlaylist)
	h.Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(out)
	}
}

// multivariantOf returns the multivariant playlist gohlslib made for one
// feed, waiting for it until wait fires. For the full rendition (answer
// true) a failure is answered as for any playlist; for the others it only
// leaves them out.
func (s *Server) multivariantOf(w http.ResponseWriter, r *http.Request, f feedSpec, wait <-chan time.Time, answer bool) ([]byte, bool) {
	var mx *muxer
	for mx == nil {
		var changed <-chan struct{}
		mx, changed = s.watchMuxer(f.key)
		if mx != nil {
			break
		}
		state, stateChanged := f.ch.State()
		if state == relay.StateIdle {
			if answer {
				s.refuse(w, http.StatusNotFound, refusedNotLive, "channel is not live")
			}
			return nil, false
		}
		if !answer {
			return nil, false // not ready: left out
		}
		if !s.wait(w, r, wait, changed, stateChanged) {
			return nil, false
		}
	}
	select {
	case mx.slots <- struct{}{}:
	default:
		if answer {
			w.Header().Set("Retry-After", "1")
			s.refuse(w, http.StatusServiceUnavailable, refusedBusy, "too many waiting requests, try again")
		}
		return nil, false
	}
	rec := &recorder{header: http.Header{}}
	req := r.Clone(context.Background())
	req.URL = &url.URL{Path: "/index.m3u8", RawQuery: r.URL.RawQuery}
	done := make(chan struct{})
	go func() {
		defer func() {
			<-mx.slots
			close(done)
		}()
		mx.m.Handle(rec, req)
	}()
	if answer {
		if !s.wait(w, r, wait, done, nil) {
			return nil, false
		}
	} else {
		select {
		case <-done:
		case <-wait:
			return nil, false
		case <-r.Context().Done():
			return nil, false
		}
	}
	if rec.code != http.StatusOK || rec.body.Len() == 0 {
		if answer {
			s.refuse(w, http.StatusNotFound, refusedNotFound, "no playlist yet")
		}
		return nil, false
	}
	return rec.body.Bytes(), true
}

// variantPlaylist is one muxer's multivariant playlist and where its files
// are, relative to the channel's.
type variantPlaylist struct {
	prefix string // "" or "basse/"
	group  string // suffix of its renditions' GROUP-IDs, "" for the full one
	body   []byte
}

// mergeMultivariant joins multivariant playlists into one: the highest
// EXT-X-VERSION, then each one's EXT-X-MEDIA and EXT-X-STREAM-INF with
// their URIs moved under the playlist's prefix and their GROUP-IDs made
// unique (RFC 8216 4.3.4.1.1: a group's renditions must share codecs).
func mergeMultivariant(parts []variantPlaylist) []byte {
	version := 3
	var media, variants []string
	for _, p := range parts {
		pendingURI := false
		for line := range strings.Lines(string(p.body)) {
			line = strings.TrimRight(line, "\r\n")
			switch {
			case line == "" || line == "#EXTM3U" || line == "#EXT-X-INDEPENDENT-SEGMENTS":
			case strings.HasPrefix(line, "#EXT-X-VERSION:"):
				if v, err := strconv.Atoi(strings.TrimPrefix(line, "#EXT-X-VERSION:")); err == nil && v > version {
					version = v
				}
			case strings.HasPrefix(line, "#EXT-X-MEDIA:"):
				media = append(media, rewriteAttrs(line, p))
			case strings.HasPrefix(line, "#EXT-X-STREAM-INF:"):
				variants = append(variants, rewriteAttrs(line, p))
				pendingURI = true
			case strings.HasPrefix(line, "#"):
				// Other tags of a multivariant playlist gohlslib does not
				// write; dropped rather than misplaced.
			case pendingURI:
				variants = append(variants, p.prefix+line)
				pendingURI = false
			}
		}
	}
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:" + strconv.Itoa(version) + "\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	if len(media) > 0 {
		b.WriteString("\n")
		for _, m := range media {
			b.WriteString(m + "\n")
		}
	}
	b.WriteString("\n")
	for _, v := range variants {
		b.WriteString(v + "\n")
	}
	return []byte(b.String())
}

// rewriteAttrs moves a tag's URI attribute under the playlist's prefix and
// suffixes its GROUP-ID and AUDIO attributes with the playlist's group.
func rewriteAttrs(line string, p variantPlaylist) string {
	tag, attrs, _ := strings.Cut(line, ":")
	var out []string
	for _, a := range splitAttrs(attrs) {
		k, v, _ := strings.Cut(a, "=")
		switch {
		case k == "URI" && strings.HasPrefix(v, `"`):
			v = `"` + p.prefix + strings.TrimPrefix(v, `"`)
		case (k == "GROUP-ID" || k == "AUDIO") && p.group != "" && strings.HasSuffix(v, `"`):
			v = strings.TrimSuffix(v, `"`) + "-" + p.group + `"`
		}
		out = append(out, k+"="+v)
	}
	return tag + ":" + strings.Join(out, ",")
}

// splitAttrs splits an attribute list at the commas outside quoted strings
// (RFC 8216 4.2).
func splitAttrs(s string) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}
