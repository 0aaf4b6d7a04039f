package meeting

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/configs"
)

// TestClean: what reaches the log or the API loses the meeting's secrets,
// the room, and the credentials the meeting's own URLs carry.
func TestClean(t *testing.T) {
	const token = "internal-token-0123456789abcdef"
	for _, tc := range []struct {
		name    string
		meeting configs.Meeting
		in      string
		want    string
	}{
		{
			name:    "jitsi url, room and jwt",
			meeting: configs.Meeting{Jitsi: configs.Jitsi{URL: "https://visio.example.fr/Conseil-Secret-Room", JWT: "eyJ.secret.jwt"}},
			in:      "GET https://visio.example.fr/Conseil-Secret-Room?jwt=eyJ.secret.jwt failed; room Conseil-Secret-Room; token eyJ.secret.jwt",
			want:    "GET [redacted]?jwt=[redacted] failed; room [redacted]; token [redacted]",
		},
		{
			name:    "bbb secret, session token and checksum",
			meeting: configs.Meeting{BBB: configs.BBB{API: "https://bbb.example.fr/bigbluebutton/api", Secret: "bbb-shared-secret", MeetingID: "conseil"}},
			in:      `WebSocket wss://bbb.example.fr/html5client/sockjs?sessionToken=abc123xyz failed; join?meetingID=conseil&checksum=0f1e2d "bbb-shared-secret"`,
			want:    `WebSocket wss://bbb.example.fr/html5client/sockjs?sessionToken=[redacted] failed; join?meetingID=conseil&checksum=[redacted] "[redacted]"`,
		},
		{
			name: "livekit secret, room and tokens, whole or cut short",
			meeting: configs.Meeting{LiveKit: configs.LiveKit{URL: "wss://lk.example.fr", APIKey: "APIkey",
				APISecret: "lk-api-secret-value", Room: "salle-du-conseil"}},
			in: "invalid token: eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJBUElrZXkifQ.c2lnbmF0dXJl, again eyJhbGciOiJIUzI1NiJ9.eyJpc3Mi… " +
				"for salle-du-conseil signed with lk-api-secret-value",
			want: "invalid token: [redacted], again [redacted]… for [redacted] signed with [redacted]",
		},
		{
			name:    "internal token",
			meeting: configs.Meeting{Jitsi: configs.Jitsi{URL: "https://v.example.fr/r"}},
			in:      "WHIP answered 401 for Bearer " + token,
			want:    "WHIP answered 401 for Bearer [redacted]",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.meeting
			m.DisplayName, m.Size, m.Start = configs.DefaultDisplayName, configs.Size720p, configs.StartAuto
			c, err := New(Config{Channel: "c", Meeting: m, WHIPURL: "http://127.0.0.1:1/whip/c", WHIPToken: token},
				zerolog.Nop(), NewMetrics(prometheus.NewRegistry()))
			require.NoError(t, err)
			require.Equal(t, tc.want, c.clean(tc.in))
		})
	}
}
