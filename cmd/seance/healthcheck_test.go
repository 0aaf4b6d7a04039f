package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHealthcheck(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) }))
	defer ok.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	defer bad.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	for _, tc := range []struct {
		name, url string
		code      int
		stderr    string
	}{
		{"healthy", ok.URL, 0, ""},
		{"unhealthy", bad.URL, 1, "503 Service Unavailable"},
		{"down", closedURL, 1, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			require.Equal(t, tc.code, run([]string{"healthcheck", "-url", tc.url}, &out, &errOut))
			require.Contains(t, errOut.String(), tc.stderr)
		})
	}
}
