package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// runDriver runs `node script` in dir (web/browsertest, from browserDriver)
// with env added to the test's environment, logs its stderr, and decodes
// the one JSON report it prints on stdout into report.
func runDriver(t *testing.T, dir, script string, timeout time.Duration, env []string, report any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1"), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("browser driver %s ran %s:\n%s", script, time.Since(start).Round(time.Millisecond), stderr.String())
	require.NoError(t, err, "node %s", script)
	require.NoError(t, json.Unmarshal(stdout.Bytes(), report), "driver output: %s", stdout.String())
}

// pageMeasure is what web/browsertest/measure.js's seanceMeasure returns:
// the player's state and what the video showed over a few seconds.
type pageMeasure struct {
	State             string   `json:"state"`
	Transport         string   `json:"transport"`
	Engine            string   `json:"engine"`
	Quality           string   `json:"quality"`
	Playing           string   `json:"playing"`
	TransportText     string   `json:"transportText"`
	StateText         string   `json:"stateText"`
	QualityText       string   `json:"qualityText"`
	VideoWidth        int      `json:"videoWidth"`
	VideoHeight       int      `json:"videoHeight"`
	Paused            bool     `json:"paused"`
	Muted             bool     `json:"muted"`
	Seconds           float64  `json:"seconds"`
	FPSQuality        float64  `json:"fpsQuality"`
	FPSRVFC           float64  `json:"fpsRVFC"`
	ClockRate         float64  `json:"clockRate"`
	AudioDecodedBytes int      `json:"audioDecodedBytes"`
	MSEAudioBytes     int      `json:"mseAudioBytes"`
	MSEVideoBytes     int      `json:"mseVideoBytes"`
	MozHasAudio       *bool    `json:"mozHasAudio"`
	AudioPeak         float64  `json:"audioPeak"`
	FirstFrameMs      int      `json:"firstFrameMs"`
	WHEPRequests      int      `json:"whepRequests"`
	HLSRequests       int      `json:"hlsRequests"`
	FirstHLSMs        int      `json:"firstHLSMs"`
	OffOrigin         []string `json:"offOrigin"`
	HLSJSLoaded       bool     `json:"hlsjsLoaded"`
	HLSJSWorker       bool     `json:"hlsjsWorker"`
	CanPlayHLS        string   `json:"canPlayHLS"`
}

// minFPS is the frame rate a playing page must show (the stream is 30 fps;
// a loaded 2-core machine costs a few).
const minFPS = 20

// fps is the frames shown per second: the larger of
// requestVideoFrameCallback's count (one per frame composited: headless
// engines on a virtual display composite at 20-25 Hz) and
// getVideoPlaybackQuality's frames presented (total less dropped).
func (m pageMeasure) fps() float64 { return max(m.FPSRVFC, m.FPSQuality) }

// requireMoving checks the picture moved at minFPS or more, at width×height.
func requireMoving(t *testing.T, m pageMeasure, width, height int) {
	t.Helper()
	require.Equal(t, [2]int{width, height}, [2]int{m.VideoWidth, m.VideoHeight}, "video size")
	require.False(t, m.Paused, "paused")
	require.GreaterOrEqual(t, m.fps(), float64(minFPS),
		"frames shown per second (rVFC %.1f, getVideoPlaybackQuality %.1f, clock rate %.2f)", m.FPSRVFC, m.FPSQuality, m.ClockRate)
}

// TestHLSJSMatchesLock: web/static/hls.min.js, which seance embeds and
// serves to browsers without WebRTC H.264 or native HLS, is byte for byte
// the dist file of the hls.js that web/browsertest/package-lock.json pins
// (npm ci checks the package against the lock's integrity hash).
// scripts/update-hlsjs.sh regenerates it.
func TestHLSJSMatchesLock(t *testing.T) {
	dir := browserDriver(t)
	var lock struct {
		Packages map[string]struct {
			Version   string `json:"version"`
			Integrity string `json:"integrity"`
		} `json:"packages"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &lock))
	pinned := lock.Packages["node_modules/hls.js"]
	require.NotEmpty(t, pinned.Integrity, "hls.js is pinned in package-lock.json")
	var pkg struct {
		Version string `json:"version"`
	}
	raw, err = os.ReadFile(filepath.Join(dir, "node_modules", "hls.js", "package.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &pkg))
	require.Equal(t, pinned.Version, pkg.Version, "installed hls.js is the locked one")
	for _, f := range []string{"hls.min.js", "hls.worker.js"} {
		want, err := os.ReadFile(filepath.Join(dir, "node_modules", "hls.js", "dist", f))
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join("..", "..", "web", "static", f))
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, got), "web/static/%s differs from hls.js %s: run scripts/update-hlsjs.sh", f, pinned.Version)
	}
	licence, err := os.ReadFile(filepath.Join("..", "..", "web", "static", "hls.js.LICENSE.txt"))
	require.NoError(t, err)
	require.Contains(t, string(licence), "Apache License")
}
