package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/publish/record"
	"github.com/seance-relay/seance/relay"
)

// A 320x180 H.264 stream's parameter sets. The recordings these tests make
// carry synthetic pictures: the web servers list and serve files, they
// never decode them (cmd/seance's end-to-end tests record real streams).
var (
	testSPS = []byte{0x67, 0x64, 0x00, 0x0d, 0xac, 0xb2, 0x02, 0x83, 0x3f, 0x3e, 0x02, 0x20, 0x00, 0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x07, 0x81, 0xe2, 0x85, 0x49}
	testPPS = []byte{0x68, 0xeb, 0xc3, 0xcb, 0x22, 0xc0}
)

// recorded is a hub whose channels record to a temporary directory.
type recorded struct {
	hub  *relay.Hub
	root string
	recs map[string]*record.Recorder
}

// newRecorded returns a hub with channels bourg and ville, each with a
// running recorder (files cut every segment).
func newRecorded(t *testing.T, segment time.Duration) *recorded {
	t.Helper()
	reg := prometheus.NewRegistry()
	log := zerolog.New(zerolog.NewTestWriter(t))
	hub := relay.NewHub([]relay.ChannelConfig{
		{Name: "bourg", Title: "Conseil municipal de Bourg"},
		{Name: "ville", Title: "Ville"},
	}, log, relay.NewMetrics(reg))
	rd := &recorded{hub: hub, root: t.TempDir(), recs: map[string]*record.Recorder{}}
	met := record.NewMetrics(reg)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	for _, name := range []string{"bourg", "ville"} {
		ch, err := hub.Channel(name)
		require.NoError(t, err)
		rec, err := record.New(record.Config{Dir: rd.root, Segment: segment}, ch, log, met)
		require.NoError(t, err)
		rd.recs[name] = rec
		wg.Go(func() { _ = rec.Run(ctx) })
	}
	for _, rec := range rd.recs {
		select {
		case <-rec.Ready():
		case <-time.After(5 * time.Second):
			t.Fatal("a recorder did not subscribe")
		}
	}
	return rd
}

// publish sends seconds of 10 fps video (a keyframe a second) and AAC
// audio to channel, then ends the session unless keep.
func (rd *recorded) publish(t *testing.T, channel string, seconds float64, keep bool) *relay.Session {
	t.Helper()
	ch, err := rd.hub.Channel(channel)
	require.NoError(t, err)
	cfg := &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 44100, ChannelConfig: 2}
	sess, err := ch.Publish(relay.PublisherInfo{Protocol: "rtmp"}, relay.Tracks{
		Video: &relay.VideoTrack{SPS: testSPS, PPS: testPPS},
		Audio: &relay.AudioTrack{Config: cfg},
	})
	require.NoError(t, err)
	frames := int(seconds * 10)
	ai := 0
	for vi := 0; vi < frames; vi++ {
		ts := time.Duration(vi) * 100 * time.Millisecond
		for ; time.Duration(ai)*1024*time.Second/44100 < ts; ai++ {
			ats := time.Duration(ai) * 1024 * time.Second / 44100
			sess.WriteAAC(ats, []byte{0x21, 0x10, 0x04, byte(ai)})
		}
		if vi%10 == 0 {
			sess.WriteH264(ts, ts, [][]byte{testSPS, testPPS, {0x65, 0x88, byte(vi)}})
		} else {
			sess.WriteH264(ts, ts, [][]byte{{0x41, 0x9a, byte(vi)}})
		}
	}
	if !keep {
		sess.Close()
	}
	return sess
}

// waitFiles waits until channel lists n files, done of them finished.
func (rd *recorded) waitFiles(t *testing.T, channel string, n, done int) []record.Recording {
	t.Helper()
	var list []record.Recording
	require.Eventually(t, func() bool {
		var err error
		list, err = rd.recs[channel].Recordings()
		if err != nil || len(list) != n {
			return false
		}
		c := 0
		for _, r := range list {
			if r.Complete {
				c++
			}
		}
		return c == done
	}, 10*time.Second, 5*time.Millisecond)
	return list
}

func (rd *recorded) recorders(names ...string) map[string]Recorder {
	out := map[string]Recorder{}
	for _, n := range names {
		out[n] = rd.recs[n]
	}
	return out
}

// TestAdminRecordings: list, download with range requests, delete; the
// file being written is refused; names that are not the channel's files
// (paths, other channels', other directories') are not found, and nothing
// outside the channel's directory is read or removed.
func TestAdminRecordings(t *testing.T) {
	rd := newRecorded(t, time.Hour)
	rd.publish(t, "bourg", 2, false)
	sess := rd.publish(t, "bourg", 1.5, true) // a new session, still live
	defer sess.Close()
	files := rd.waitFiles(t, "bourg", 2, 1)
	live, done := files[0], files[1]
	require.True(t, live.InProgress)
	require.NotEqual(t, live.Session, done.Session)
	// Files outside the channel's directory that a traversal would reach.
	require.NoError(t, os.WriteFile(filepath.Join(rd.root, "secret.mp4"), []byte("secret"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(rd.root, "ville"), 0o755))
	villeFile := "ville_2026-03-12T18-30-05Z.mp4"
	require.NoError(t, os.WriteFile(filepath.Join(rd.root, "ville", villeFile), []byte("ville"), 0o644))

	doc := openAPIDoc(t)
	base, c, _, logs, _ := startAdminWith(t, rd.hub, AdminConfig{Token: adminToken, Recorders: rd.recorders("bourg")})
	auth := bearer("Bearer " + adminToken)
	valid := func(t *testing.T, template, method string, r response) {
		t.Helper()
		op := paths(doc)[template].(map[string]any)[strings.ToLower(method)].(map[string]any)
		resp, ok := op["responses"].(map[string]any)[fmt.Sprint(r.status)].(map[string]any)
		require.True(t, ok, "status %d is not documented", r.status)
		resp = resolve(t, doc, resp)
		media, ok := resp["content"].(map[string]any)[strings.Split(r.header.Get("Content-Type"), ";")[0]].(map[string]any)
		require.True(t, ok, "content type %s is not documented", r.header.Get("Content-Type"))
		if s, ok := media["schema"].(map[string]any); ok && strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
			var v any
			require.NoError(t, json.Unmarshal([]byte(r.body), &v))
			requireValid(t, doc, s, v)
		}
	}
	one := "/api/v1/channels/{channel}/recordings/{file}"

	t.Run("list", func(t *testing.T) {
		r := do(t, c, "GET", base+"/api/v1/channels/bourg/recordings", auth)
		require.Equal(t, http.StatusOK, r.status, r.body)
		valid(t, "/api/v1/channels/{channel}/recordings", "GET", r)
		var out struct {
			Recording  record.Status `json:"recording"`
			Recordings []struct {
				record.Recording
				URL string `json:"url"`
			} `json:"recordings"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.body), &out))
		require.Equal(t, record.StateRecording, out.Recording.State)
		require.Equal(t, live.Name, out.Recording.File)
		require.Len(t, out.Recordings, 2)
		require.Equal(t, live.Name, out.Recordings[0].Name, "newest first")
		require.True(t, out.Recordings[0].InProgress)
		require.Equal(t, "/api/v1/channels/bourg/recordings/"+done.Name, out.Recordings[1].URL)
		require.InDelta(t, 2.0, out.Recordings[1].Duration, 0.05)
		require.Equal(t, 1, out.Recordings[1].Part)

		r = do(t, c, "GET", base+"/api/v1/recordings", auth)
		require.Equal(t, http.StatusOK, r.status, r.body)
		valid(t, "/api/v1/recordings", "GET", r)
		require.Equal(t, 2, strings.Count(r.body, `"name"`))

		r = do(t, c, "GET", base+"/api/v1/channels/bourg", auth)
		require.Contains(t, r.body, `"state": "recording"`)
	})

	t.Run("download", func(t *testing.T) {
		want, err := os.ReadFile(filepath.Join(rd.root, "bourg", done.Name))
		require.NoError(t, err)
		r := do(t, c, "GET", base+"/api/v1/channels/bourg/recordings/"+done.Name, auth)
		require.Equal(t, http.StatusOK, r.status)
		valid(t, one, "GET", r)
		require.Equal(t, "video/mp4", r.header.Get("Content-Type"))
		require.Equal(t, `attachment; filename="`+done.Name+`"`, r.header.Get("Content-Disposition"))
		require.Equal(t, "bytes", r.header.Get("Accept-Ranges"))
		require.Equal(t, string(want), r.body)

		rng := http.Header{"Range": {"bytes=100-1099"}, "Authorization": auth["Authorization"]}
		r = do(t, c, "GET", base+"/api/v1/channels/bourg/recordings/"+done.Name, rng)
		require.Equal(t, http.StatusPartialContent, r.status)
		valid(t, one, "GET", r)
		require.Equal(t, fmt.Sprintf("bytes 100-1099/%d", len(want)), r.header.Get("Content-Range"))
		require.Equal(t, string(want[100:1100]), r.body)

		rng.Set("Range", "bytes=-16")
		r = do(t, c, "GET", base+"/api/v1/channels/bourg/recordings/"+done.Name, rng)
		require.Equal(t, http.StatusPartialContent, r.status)
		require.Equal(t, string(want[len(want)-16:]), r.body, "the file ends with the mfro")
		require.Contains(t, r.body, "mfro")

		rng.Set("Range", fmt.Sprintf("bytes=%d-", len(want)+10))
		r = do(t, c, "GET", base+"/api/v1/channels/bourg/recordings/"+done.Name, rng)
		require.Equal(t, http.StatusRequestedRangeNotSatisfiable, r.status)

		r = do(t, c, "GET", base+"/api/v1/channels/bourg/recordings/"+live.Name, auth)
		require.Equal(t, http.StatusOK, r.status, "the file being written can be downloaded")
		require.True(t, strings.HasPrefix(r.body[4:], "ftyp"))
	})

	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			method, path, code string
			status             int
		}{
			{"DELETE", "/api/v1/channels/bourg/recordings/" + live.Name, "recording_in_progress", 409},
			{"GET", "/api/v1/channels/ville/recordings", "recording_disabled", 404},
			{"GET", "/api/v1/channels/ville/recordings/" + villeFile, "recording_disabled", 404},
			{"GET", "/api/v1/channels/nope/recordings", "channel_not_found", 404},
			{"GET", "/api/v1/channels/bourg/recordings/nope.mp4", "recording_not_found", 404},
			{"DELETE", "/api/v1/channels/bourg/recordings/nope.mp4", "recording_not_found", 404},
		} {
			r := do(t, c, tc.method, base+tc.path, auth)
			require.Equal(t, tc.status, r.status, "%s %s: %s", tc.method, tc.path, r.body)
			require.Contains(t, r.body, `"code": "`+tc.code+`"`, tc.path)
			template := one
			if strings.HasSuffix(tc.path, "/recordings") {
				template = "/api/v1/channels/{channel}/recordings"
			}
			valid(t, template, tc.method, r)
		}
		r := do(t, c, "GET", base+"/api/v1/channels/bourg/recordings", nil)
		require.Equal(t, http.StatusUnauthorized, r.status)
		r = do(t, c, "DELETE", base+"/api/v1/channels/bourg/recordings/"+done.Name, nil)
		require.Equal(t, http.StatusUnauthorized, r.status)
	})

	t.Run("no traversal", func(t *testing.T) {
		for _, name := range []string{
			"..%2Fsecret.mp4", "..%2F..%2F..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd",
			"..%2Fville%2F" + villeFile, villeFile, "..%2F", "%2e%2e%2Fsecret.mp4",
			strings.ToUpper(done.Name), done.Name + "%00", done.Name + "%2F", "..%5Csecret.mp4",
			"bourg_2026-03-12T18-30-05Z.mp4%2F..%2F..%2Fsecret.mp4",
		} {
			for _, method := range []string{"GET", "DELETE"} {
				r := do(t, c, method, base+"/api/v1/channels/bourg/recordings/"+name, auth)
				require.Equal(t, http.StatusNotFound, r.status, "%s %s: %s", method, name, r.body)
				require.Contains(t, r.body, `"code": "recording_not_found"`, name)
				require.NotContains(t, r.body, "secret")
			}
		}
		// Unencoded dots are cleaned by the router before any handler:
		// what answers is another API route, never a file.
		for _, p := range []string{"/api/v1/channels/bourg/recordings/../../../../secret.mp4", "/api/v1/channels/bourg/recordings/..", "/api/v1/channels/bourg/recordings/."} {
			r := do(t, c, "GET", base+p, auth)
			require.NotEqual(t, "video/mp4", r.header.Get("Content-Type"), p)
			require.NotContains(t, r.body, "secret", p)
		}
		b, err := os.ReadFile(filepath.Join(rd.root, "secret.mp4"))
		require.NoError(t, err)
		require.Equal(t, "secret", string(b))
		_, err = os.Stat(filepath.Join(rd.root, "ville", villeFile))
		require.NoError(t, err, "another channel's file stays")
	})

	t.Run("delete", func(t *testing.T) {
		r := do(t, c, "DELETE", base+"/api/v1/channels/bourg/recordings/"+done.Name, auth)
		require.Equal(t, http.StatusNoContent, r.status, r.body)
		require.Empty(t, r.body)
		_, err := os.Stat(filepath.Join(rd.root, "bourg", done.Name))
		require.ErrorIs(t, err, os.ErrNotExist)
		r = do(t, c, "GET", base+"/api/v1/channels/bourg/recordings/"+done.Name, auth)
		require.Equal(t, http.StatusNotFound, r.status)
		r = do(t, c, "GET", base+"/api/v1/channels/bourg/recordings", auth)
		require.Equal(t, 1, strings.Count(r.body, `"name"`))
	})

	require.NotContains(t, logs.String(), adminToken)
}

// TestPublicReplay: a channel whose replays are public lists its finished
// sessions, parts in order, and serves the files with range requests and
// immutable caching; its watch page offers them in French or English. A
// channel without public replays answers 404 and its page shows nothing.
func TestPublicReplay(t *testing.T) {
	rd := newRecorded(t, time.Second)
	rd.publish(t, "bourg", 2.5, false) // three parts: 1 s, 1 s, 0.5 s
	rd.waitFiles(t, "bourg", 3, 3)
	rd.publish(t, "bourg", 1, false)
	rd.waitFiles(t, "bourg", 4, 4)
	sess := rd.publish(t, "bourg", 0.5, true) // being written: not public
	defer sess.Close()
	files := rd.waitFiles(t, "bourg", 5, 4)
	rd.publish(t, "ville", 1, false)
	villeFiles := rd.waitFiles(t, "ville", 1, 1)

	base, c := startPublicConfig(t, rd.hub, PublicConfig{Replays: rd.recorders("bourg")})

	t.Run("list", func(t *testing.T) {
		r := do(t, c, "GET", base+"/api/public/channels/bourg/recordings", nil)
		require.Equal(t, http.StatusOK, r.status, r.body)
		requirePrivate(t, r)
		require.Equal(t, "*", r.header.Get("Access-Control-Allow-Origin"))
		var out struct {
			Channel  string          `json:"channel"`
			Sessions []replaySession `json:"sessions"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.body), &out))
		require.Equal(t, "bourg", out.Channel)
		require.Len(t, out.Sessions, 2, "the session being written is not listed")
		require.Len(t, out.Sessions[0].Parts, 1, "newest first")
		require.Len(t, out.Sessions[1].Parts, 3)
		require.InDelta(t, 2.5, out.Sessions[1].Duration, 0.05)
		for i, p := range out.Sessions[1].Parts {
			require.Equal(t, "/replay/bourg/"+p.Name, p.URL)
			if i > 0 {
				require.Contains(t, p.Name, fmt.Sprintf("_%d.mp4", i+1))
			}
		}
		require.NotContains(t, r.body, files[0].Name, "in progress")

		for _, ch := range []string{"ville", "nope"} {
			r := do(t, c, "GET", base+"/api/public/channels/"+ch+"/recordings", nil)
			require.Equal(t, http.StatusNotFound, r.status, ch)
		}
	})

	t.Run("file", func(t *testing.T) {
		name := files[1].Name
		want, err := os.ReadFile(filepath.Join(rd.root, "bourg", name))
		require.NoError(t, err)
		r := do(t, c, "GET", base+"/replay/bourg/"+name, nil)
		require.Equal(t, http.StatusOK, r.status)
		requirePrivate(t, r)
		require.Equal(t, "video/mp4", r.header.Get("Content-Type"))
		require.Equal(t, "public, max-age=3600, immutable", r.header.Get("Cache-Control"))
		require.Equal(t, "bytes", r.header.Get("Accept-Ranges"))
		require.NotEmpty(t, r.header.Get("Last-Modified"))
		require.Equal(t, string(want), r.body)
		etag := r.header.Get("ETag")
		require.NotEmpty(t, etag)

		r = do(t, c, "GET", base+"/replay/bourg/"+name, http.Header{"Range": {"bytes=8-15"}})
		require.Equal(t, http.StatusPartialContent, r.status)
		require.Equal(t, string(want[8:16]), r.body)
		r = do(t, c, "GET", base+"/replay/bourg/"+name, http.Header{"If-None-Match": {etag}})
		require.Equal(t, http.StatusNotModified, r.status)

		for _, p := range []string{
			"/replay/bourg/" + files[0].Name,      // being written
			"/replay/ville/" + villeFiles[0].Name, // replays off
			"/replay/bourg/" + villeFiles[0].Name, // another channel's
			"/replay/bourg/..%2Fville%2F" + villeFiles[0].Name,
			"/replay/bourg/nope.mp4",
			"/replay/nope/" + name,
		} {
			r := do(t, c, "GET", base+p, nil)
			require.Equal(t, http.StatusNotFound, r.status, p)
		}
	})

	t.Run("watch page", func(t *testing.T) {
		r := do(t, c, "GET", base+"/watch/bourg", nil)
		require.Equal(t, http.StatusOK, r.status)
		requirePrivate(t, r)
		require.Contains(t, r.body, `<h2 id="replays-title">Revoir les séances</h2>`)
		require.Regexp(t, regexp.MustCompile(`>Revoir la séance du \d{1,2}(er)? [a-zéû]+ à \d{1,2} h \d\d</a> <span class="meta">\(durée 1 s\)</span>`), r.body)
		require.Regexp(t, regexp.MustCompile(`<p class="session-title">Revoir la séance du [^<]+ <span class="meta">\(durée 3 s, en 3 parties\)</span></p>`), r.body)
		require.Contains(t, r.body, `>Partie 2 sur 3</a>`)
		for _, f := range files[1:] {
			require.Contains(t, r.body, `href="/replay/bourg/`+f.Name+`"`)
		}
		require.NotContains(t, r.body, files[0].Name)
		require.Regexp(t, `<script src="/static/replay.js\?v=[0-9a-f]{16}" defer></script>`, r.body)
		require.Contains(t, r.body, `<video class="replay-video" controls preload="metadata" playsinline aria-label="Séance enregistrée"></video>`)

		r = do(t, c, "GET", base+"/watch/bourg", http.Header{"Accept-Language": {"en-GB,en;q=0.9"}})
		require.Regexp(t, regexp.MustCompile(`>Replay the session of \d{1,2} [A-Z][a-z]+ at \d\d:\d\d</a>`), r.body)
		require.Contains(t, r.body, `>Part 3 of 3</a>`)

		for _, p := range []string{"/watch/ville", "/embed/bourg"} {
			r := do(t, c, "GET", base+p, nil)
			require.Equal(t, http.StatusOK, r.status)
			require.NotContains(t, r.body, "replay", p)
		}
	})
}
