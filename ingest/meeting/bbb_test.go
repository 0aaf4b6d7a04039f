package meeting

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/ingest/meeting/meetingtest"
)

// TestBBBChecksumDocExample reproduces the example of BigBlueButton's API
// reference ("API Security Model", Usage): the create call's query, the
// shared secret, and the SHA-1 it gives.
func TestBBBChecksumDocExample(t *testing.T) {
	const (
		query  = "name=Test+Meeting&meetingID=abc123&attendeePW=111222&moderatorPW=333444"
		secret = "639259d4-9dd8-4b25-bf01-95f9567eaf4b"
	)
	require.Equal(t, query, bbbQuery([][2]string{
		{"name", "Test Meeting"}, {"meetingID", "abc123"}, {"attendeePW", "111222"}, {"moderatorPW", "333444"},
	}))
	require.Equal(t, "1fcbb0c4fc1f039f73aa6d697d2db9ba7f803f17", bbbChecksum(checksumSHA1, "create", query, secret))
	// The same call signed with SHA-256, seance's default (sha256sum of
	// the same string).
	require.Equal(t, "da9185f7f333cfdfcd6eeac32dca3777510c4c436020d8b887ba5515bd1d189e", bbbChecksum(checksumSHA256, "create", query, secret))
	c := newBBBClient("https://bbb.example.fr/bigbluebutton/api", secret, "abc123", nil)
	c.algo = checksumSHA1
	require.Equal(t, "https://bbb.example.fr/bigbluebutton/api/create?"+query+"&checksum=1fcbb0c4fc1f039f73aa6d697d2db9ba7f803f17",
		c.callURL("create", [][2]string{{"name", "Test Meeting"}, {"meetingID", "abc123"}, {"attendeePW", "111222"}, {"moderatorPW", "333444"}}))
}

func TestNormalizeBBBAPI(t *testing.T) {
	for in, want := range map[string]string{
		"https://bbb.example.fr/bigbluebutton/api":  "https://bbb.example.fr/bigbluebutton/api",
		"https://bbb.example.fr/bigbluebutton/api/": "https://bbb.example.fr/bigbluebutton/api",
		"https://bbb.example.fr/bigbluebutton/":     "https://bbb.example.fr/bigbluebutton/api",
		"https://bbb.example.fr/bigbluebutton":      "https://bbb.example.fr/bigbluebutton/api",
		"https://scalelite.example.fr/api":          "https://scalelite.example.fr/api",
	} {
		require.Equal(t, want, normalizeBBBAPI(in), in)
	}
}

// TestBBBJoinURL: a viewer, listen only, no echo test, no webcam, signed
// over exactly the query that is sent.
func TestBBBJoinURL(t *testing.T) {
	const secret = "bbb-secret-Zr8Qp2"
	c := newBBBClient("https://bbb.example.fr/bigbluebutton/", secret, "conseil bourg/2026", nil)
	raw := c.joinURL("Diffusion publique & Cie")
	u, err := url.Parse(raw)
	require.NoError(t, err)
	require.Equal(t, "/bigbluebutton/api/join", u.Path)
	q, sum, ok := strings.Cut(u.RawQuery, "&checksum=")
	require.True(t, ok)
	require.Equal(t, sha256Hex("join"+q+secret), sum)
	p := u.Query()
	for k, v := range map[string]string{
		"fullName": "Diffusion publique & Cie", "meetingID": "conseil bourg/2026", "role": "VIEWER", "redirect": "false",
		"userdata-bbb_hide_nav_bar": "true", "userdata-bbb_hide_actions_bar": "true",
		"userdata-bbb_auto_join_audio": "true", "userdata-bbb_listen_only_mode": "true",
		"userdata-bbb_force_listen_only": "true", "userdata-bbb_skip_check_audio": "true",
		"userdata-bbb_auto_share_webcam": "false", "userdata-bbb_skip_video_preview": "true",
	} {
		require.Equal(t, v, p.Get(k), k)
	}
	require.NotContains(t, raw, secret)
}

func TestParseBBBResponse(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       bbbResponse
		err        bool
	}{
		{"running", "<response><returncode>SUCCESS</returncode><running>true</running></response>",
			bbbResponse{ReturnCode: "SUCCESS", Running: "true"}, false},
		{"checksum error", "<?xml version=\"1.0\"?>\n<response>\n <returncode>FAILED</returncode>\n <messageKey>checksumError</messageKey>\n <message>Checksums do not match</message>\n</response>",
			bbbResponse{ReturnCode: "FAILED", MessageKey: "checksumError", Message: "Checksums do not match"}, false},
		{"html", "<html><body>502 Bad Gateway</body></html>", bbbResponse{}, true},
		{"no returncode", "<response><running>true</running></response>", bbbResponse{}, true},
		{"not xml", "{\"returncode\": \"SUCCESS\"}", bbbResponse{}, true},
		{"empty", "", bbbResponse{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseBBBResponse([]byte(tc.body))
			if tc.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func FuzzBBBResponse(f *testing.F) {
	f.Add([]byte("<response><returncode>SUCCESS</returncode><running>true</running></response>"))
	f.Add([]byte("<response><returncode>FAILED</returncode><messageKey>checksumError</messageKey></response>"))
	f.Add([]byte("<html>"))
	f.Add([]byte("<response><returncode>&lt;</returncode><!-- x --><running><![CDATA[false]]></running></response>"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := parseBBBResponse(body)
		if err == nil {
			require.NotEmpty(t, r.ReturnCode)
		}
	})
}

// TestBBBRunning talks to the stand-in BigBlueButton API: a meeting not
// started, then started; a server accepting SHA-1 only (seance falls back
// and keeps SHA-1); a wrong secret.
func TestBBBRunning(t *testing.T) {
	srv := meetingtest.New("right-secret-1234")
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	hc := &http.Client{Timeout: 5 * time.Second}

	c := newBBBClient(srv.BBBAPI(), "right-secret-1234", "conseil", hc)
	srv.SetRunning(false)
	running, err := c.running(ctx)
	require.NoError(t, err)
	require.False(t, running)
	srv.SetRunning(true)
	running, err = c.running(ctx)
	require.NoError(t, err)
	require.True(t, running)
	require.Equal(t, checksumSHA256, c.algo)

	srv.SHA1Only()
	running, err = c.running(ctx)
	require.NoError(t, err)
	require.True(t, running)
	require.Equal(t, checksumSHA1, c.algo, "SHA-1 is kept once it worked")
	require.Contains(t, c.joinURL("x"), "&checksum="+sha1Hex("join"+strings.SplitN(strings.SplitN(c.joinURL("x"), "?", 2)[1], "&checksum=", 2)[0]+"right-secret-1234"))

	bad := newBBBClient(srv.BBBAPI(), "wrong-secret-5678", "conseil", hc)
	_, err = bad.running(ctx)
	require.ErrorIs(t, err, ErrWrongSecret)
	require.NotContains(t, err.Error(), "wrong-secret-5678")

	down := newBBBClient("http://127.0.0.1:1/bigbluebutton/api", "right-secret-1234", "conseil", hc)
	_, err = down.running(ctx)
	require.ErrorContains(t, err, "BigBlueButton API unreachable")
	require.NotContains(t, err.Error(), "checksum=")
}

func sha256Hex(s string) string { return bbbChecksum(checksumSHA256, "", s, "") }
func sha1Hex(s string) string   { return bbbChecksum(checksumSHA1, "", s, "") }

// TestBBBJoin calls join on the stand-in API, which answers as
// ApiController.groovy does: the client's URL as XML with redirect=false,
// errors as a redirect to the logout URL with errors=[…] whatever redirect
// says. Each error is reported with its BBB key and in French, and never
// with the join URL, its checksum or the session token.
func TestBBBJoin(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	hc := &http.Client{Timeout: 5 * time.Second}
	for _, tc := range []struct {
		name    string
		setup   func(*meetingtest.Server)
		secret  string
		full    bool // someone joined first
		wantKey string
		wantFR  string
	}{
		{name: "joined", setup: func(*meetingtest.Server) {}},
		{name: "wrong secret", secret: "wrong-S3CR3T-x", wantKey: "checksumError", wantFR: "vérifiez ingest.meeting.bbb.secret"},
		{name: "not running", setup: func(s *meetingtest.Server) { s.SetRunning(false) }, wantKey: "invalidMeetingIdentifier", wantFR: "vérifiez ingest.meeting.bbb.meeting_id"},
		{name: "ended", setup: func(s *meetingtest.Server) { s.EndMeeting() }, wantKey: "meetingForciblyEnded", wantFR: "terminée par un modérateur"},
		{name: "full", setup: func(s *meetingtest.Server) { s.SetMaxParticipants(1) }, full: true, wantKey: "maxParticipantsReached", wantFR: "la réunion est complète"},
		{name: "guest denied", setup: func(s *meetingtest.Server) { s.SetGuestDeny(true) }, wantKey: "guestDeniedAccess", wantFR: "politique d'invités"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := meetingtest.New(testBBBKey)
			t.Cleanup(srv.Close)
			if tc.setup != nil {
				tc.setup(srv)
			}
			secret := testBBBKey
			if tc.secret != "" {
				secret = tc.secret
			}
			c := newBBBClient(srv.BBBAPI(), secret, "conseil", hc)
			if tc.full {
				_, err := c.join(ctx, "Premier")
				require.NoError(t, err)
			}
			got, err := c.join(ctx, "Diffusion publique")
			if tc.wantKey == "" {
				require.NoError(t, err)
				require.Len(t, srv.Joins(), 1)
				require.Equal(t, "false", srv.Joins()[0].Get("redirect"))
				tokens := srv.SessionTokens()
				require.Len(t, tokens, 1)
				require.Equal(t, srv.URL+"/html5client/join?fullName=Diffusion+publique&listenOnly=true&sessionToken="+tokens[0], got)
				return
			}
			var je *BBBJoinError
			require.ErrorAs(t, err, &je)
			require.Equal(t, tc.wantKey, je.Key)
			require.Contains(t, err.Error(), tc.wantFR)
			require.Contains(t, err.Error(), "("+tc.wantKey+")")
			require.NotContains(t, err.Error(), "checksum=")
			require.NotContains(t, err.Error(), secret)
			if !tc.full {
				require.Empty(t, srv.Joins())
			}
		})
	}
}

// TestBBBJoinAnswers: the join's answers other than the stand-in's: XML
// FAILED, 2.4's guestDeny as SUCCESS, a server that redirects to the client
// despite redirect=false, garbage.
func TestBBBJoinAnswers(t *testing.T) {
	for _, tc := range []struct {
		name, body, location string
		want, wantKey        string
	}{
		{name: "xml failed", body: "<response><returncode>FAILED</returncode><messageKey>maxParticipantsReached</messageKey><message>full</message></response>", wantKey: "maxParticipantsReached"},
		{name: "guestDeny", body: "<response><returncode>SUCCESS</returncode><messageKey>guestDeny</messageKey><url>https://bbb.example.fr/logout</url></response>", wantKey: "guestDeny"},
		{name: "guest wait", body: "<response><returncode>SUCCESS</returncode><messageKey>guestWait</messageKey><url>https://bbb.example.fr/html5client/guestWait?sessionToken=abc</url></response>", want: "https://bbb.example.fr/html5client/guestWait?sessionToken=abc"},
		{name: "redirect to the client", location: "https://bbb.example.fr/html5client/join?sessionToken=abc", want: "https://bbb.example.fr/html5client/join?sessionToken=abc"},
		{name: "redirect with unparsable errors", location: "https://bbb.example.fr/?errors=%5Bx", wantKey: "unknown"},
		{name: "no url", body: "<response><returncode>SUCCESS</returncode></response>"},
		{name: "html", body: "<html>502</html>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.location != "" {
					http.Redirect(w, r, tc.location, http.StatusFound)
					return
				}
				_, _ = w.Write([]byte(tc.body))
			}))
			t.Cleanup(srv.Close)
			c := newBBBClient(srv.URL+"/bigbluebutton/api", "s3cr3t-1234", "conseil", srv.Client())
			got, err := c.join(t.Context(), "x")
			switch {
			case tc.want != "":
				require.NoError(t, err)
				require.Equal(t, tc.want, got)
			case tc.wantKey != "":
				var je *BBBJoinError
				require.ErrorAs(t, err, &je)
				require.Equal(t, tc.wantKey, je.Key)
			default:
				require.Error(t, err)
				require.NotContains(t, err.Error(), "checksum")
			}
		})
	}
}

func FuzzBBBJoinRedirect(f *testing.F) {
	f.Add("https://bbb.example.fr/logout?errors=%5B%7B%22key%22%3A%22checksumError%22%2C%22message%22%3A%22x%22%7D%5D")
	f.Add("https://bbb.example.fr/html5client/join?sessionToken=abc")
	f.Add("https://bbb.example.fr/?errors=%5B%7B%22key%22%3A%22%5Cu0000%5Cn%22%7D%5D")
	f.Add("javascript:alert(1)")
	f.Fuzz(func(t *testing.T, raw string) {
		loc, err := url.Parse(raw)
		if err != nil {
			return
		}
		got, err := joinRedirect(loc)
		var je *BBBJoinError
		switch {
		case errors.As(err, &je):
			require.NotEmpty(t, je.Key)
			require.LessOrEqual(t, len(je.Key), 64)
			require.False(t, strings.ContainsAny(je.Key, "\n\r\x00"))
		case err == nil:
			u, perr := url.Parse(got)
			require.NoError(t, perr)
			require.Contains(t, []string{"http", "https"}, u.Scheme)
		}
	})
}
