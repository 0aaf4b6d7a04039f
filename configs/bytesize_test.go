package configs

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{
		"0": 0, "1048576": 1 << 20, "500MB": 500e6, "50GiB": 50 << 30, "1.5 GB": 1.5e9,
		"2tib": 2 << 40, "10k": 10e3, "7B": 7,
	} {
		got, err := parseByteSize(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "GB", "-1GB", "lots", "1e30TB", "1 PB"} {
		_, err := parseByteSize(in)
		require.ErrorIs(t, err, errByteSize, in)
	}
	require.Equal(t, "50GiB", ByteSize(50<<30).String())
	require.Equal(t, "500000000B", ByteSize(500e6).String())
	cfg, err := Parse([]byte("channels:\n  - name: a\n    ingest: {demo: true}\n    record: {enabled: true, dir: /r, max_size: 2GiB}\n"), nil)
	require.NoError(t, err)
	require.Equal(t, ByteSize(2<<30), cfg.Channels[0].Record.MaxSize)
}
