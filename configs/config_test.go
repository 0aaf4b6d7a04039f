package configs

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

const testKey = "abcd-S3CR3T-efgh-ijkl"

func TestPublishURL(t *testing.T) {
	for _, tc := range []struct {
		name     string
		dest     Destination
		want     string // URL.String()
		fragment string
		path     string
	}{
		{
			name:     "key field",
			dest:     Destination{Name: "yt", URL: "rtmps://a.rtmps.youtube.com/live2", Key: testKey},
			want:     "rtmps://a.rtmps.youtube.com/live2#" + testKey,
			fragment: testKey, path: "/live2",
		},
		{
			name:     "key field keeps the backup query",
			dest:     Destination{Name: "yt", URL: "rtmp://b.rtmp.youtube.com/live2?backup=1", Key: testKey},
			want:     "rtmp://b.rtmp.youtube.com/live2?backup=1#" + testKey,
			fragment: testKey, path: "/live2",
		},
		{
			name:     "key field replaces a fragment",
			dest:     Destination{Name: "yt", URL: "rtmp://h/app#old", Key: testKey},
			want:     "rtmp://h/app#" + testKey,
			fragment: testKey, path: "/app",
		},
		{
			name:     "key in path",
			dest:     Destination{Name: "yt", URL: "rtmp://a.rtmp.youtube.com/live2/" + testKey},
			want:     "rtmp://a.rtmp.youtube.com/live2#" + testKey,
			fragment: testKey, path: "/live2",
		},
		{
			name:     "key in path with backup query",
			dest:     Destination{Name: "yt", URL: "rtmp://b.rtmp.youtube.com/live2/" + testKey + "?backup=1"},
			want:     "rtmp://b.rtmp.youtube.com/live2?backup=1#" + testKey,
			fragment: testKey, path: "/live2",
		},
		{
			name:     "key of several segments",
			dest:     Destination{Name: "x", URL: "rtmp://h:1936/app/inst/" + testKey},
			want:     "rtmp://h:1936/app#inst/" + testKey,
			fragment: "inst/" + testKey, path: "/app",
		},
		{
			name:     "key already in the fragment",
			dest:     Destination{Name: "x", URL: "rtmp://h/app#" + testKey},
			want:     "rtmp://h/app#" + testKey,
			fragment: testKey, path: "/app",
		},
		{
			name:     "key with characters to escape",
			dest:     Destination{Name: "x", URL: "rtmp://h/app", Key: "a b#c"},
			want:     "rtmp://h/app#a%20b%23c",
			fragment: "a b#c", path: "/app",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := tc.dest.PublishURL()
			require.NoError(t, err)
			require.Equal(t, tc.want, u.String())
			require.Equal(t, tc.fragment, u.Fragment)
			require.Equal(t, tc.path, u.Path)
		})
	}
}

func TestPublishURLErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		dest     Destination
		want     string
		sentinel error
	}{
		{
			name:     "no key",
			dest:     Destination{Name: "yt", URL: "rtmps://a.rtmps.youtube.com/live2"},
			want:     `destination "yt": no stream key: set its key, or end its URL with it (rtmps://a.rtmps.youtube.com/live2)`,
			sentinel: ErrNoStreamKey,
		},
		{
			name:     "empty key after the app",
			dest:     Destination{Name: "yt", URL: "rtmp://h/app/?token=" + testKey},
			want:     `destination "yt": no stream key: set its key, or end its URL with it (rtmp://h/app/?token=[redacted])`,
			sentinel: ErrNoStreamKey,
		},
		{
			name:     "scheme",
			dest:     Destination{Name: "yt", URL: "https://h/app/" + testKey, Key: testKey},
			want:     `destination "yt": invalid URL: scheme "https" is not supported: use rtmp:// or rtmps://`,
			sentinel: ErrInvalidURL,
		},
		{
			name:     "no host",
			dest:     Destination{Name: "yt", URL: "rtmp:///app/" + testKey},
			want:     `destination "yt": invalid URL: rtmp:///app/[redacted] has no host`,
			sentinel: ErrInvalidURL,
		},
		{
			name:     "unparseable",
			dest:     Destination{Name: "yt", URL: "rtmp://h:" + testKey + "/app", Key: testKey},
			want:     `destination "yt": invalid URL`,
			sentinel: ErrInvalidURL,
		},
		{
			name:     "no scheme",
			dest:     Destination{Name: "yt", URL: testKey},
			want:     `destination "yt": invalid URL`,
			sentinel: ErrInvalidURL,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := tc.dest.PublishURL()
			require.Nil(t, u)
			require.EqualError(t, err, tc.want)
			require.ErrorIs(t, err, tc.sentinel)
			require.NotContains(t, err.Error(), testKey)
			require.NotContains(t, fmt.Sprintf("%v %+v %#v", err, err, err), testKey)
		})
	}
}

func TestDestinationPrint(t *testing.T) {
	d := Destination{Name: "yt", URL: "rtmp://h/app/" + testKey, Key: testKey}
	in := Ingest{Pull: "rtsp://u:" + testKey + "@cam/s"}
	out := fmt.Sprintf("%v %+v %#v %s %v %#v", d, d, d, d, in, in)
	require.NotContains(t, out, testKey)
	require.Equal(t, "yt rtmp://h/app/[redacted]", d.String())
	require.Equal(t, "pull rtsp://[redacted]@cam/s", in.String())
	require.Equal(t, "push (key [redacted])", Ingest{Key: testKey}.String())
	require.Equal(t, "demo", Ingest{Demo: true}.String())
	require.Equal(t, "none", Ingest{}.String())
}

func TestDuration(t *testing.T) {
	var d Duration
	require.NoError(t, d.UnmarshalText([]byte("1m30s")))
	require.Equal(t, "1m30s", d.String())
	b, err := d.MarshalText()
	require.NoError(t, err)
	require.Equal(t, "1m30s", string(b))
	require.EqualError(t, d.UnmarshalText([]byte("soon")), `is not a duration: use a number and a unit, e.g. "30s" or "1m"`)
}
