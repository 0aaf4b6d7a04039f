package configs

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fuzzSecret is what every environment variable holds in FuzzParse, except
// those whose name starts with "E", which are empty, and "U…", which are unset.
const fuzzSecret = "Zq7fuzzS3CR3Tvalue"

func fuzzEnv(name string) (string, bool) {
	switch {
	case strings.HasPrefix(name, "E"):
		return "", true
	case strings.HasPrefix(name, "U"):
		return "", false
	}
	return fuzzSecret, true
}

func FuzzParse(f *testing.F) {
	for _, tc := range badCases {
		f.Add([]byte(tc.yaml))
	}
	for _, name := range []string{"seance.yaml", "default.yaml"} {
		data, err := os.ReadFile(name)
		require.NoError(f, err)
		f.Add(data)
	}
	f.Add([]byte("channels:\n  - {name: ${N}, title: ${T}, ingest: {pull: \"${P}\"}, grace: ${G}}\nwebrtc: {udp_port: ${W}, nat_ips: [${I}]}\n"))
	f.Add([]byte("public: {listen: \"${L}\", base_url: \"${B}\"}\nadmin: {listen: \"${A}:1\"}\nlog: {level: ${V}}\n"))
	f.Add([]byte("channels: &c [*c]\nwebrtc: &w {ice_servers: [*w]}\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, fuzzEnv)
		if err != nil {
			require.Nil(t, cfg)
			require.NotContains(t, err.Error(), fuzzSecret)
			require.NotEmpty(t, err.Error())
			return
		}
		require.NotNil(t, cfg)
		require.NoError(t, cfg.Validate())
		for _, ch := range cfg.Channels {
			for _, d := range ch.Destinations {
				u, err := d.PublishURL()
				require.NoError(t, err, "a valid destination gives a publish URL")
				require.NotEmpty(t, u.Fragment)
			}
		}
	})
}
