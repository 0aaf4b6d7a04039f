package pull

import (
	"fmt"
	"net/url"
	"slices"

	"github.com/rs/zerolog"

	"github.com/seance-relay/seance/configs"
	"github.com/seance-relay/seance/ingest/rtmp"
	"github.com/seance-relay/seance/ingest/rtsp"
)

// newSource picks the client for the URL's scheme, with the credentials
// of the URL or, when it has none, of cfg. It also returns every secret
// that may show up in a library's error, for scrubbing.
func newSource(cfg Config, log zerolog.Logger) (Source, []string, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		// url.Error quotes the URL, credentials included: keep none of it.
		return nil, nil, fmt.Errorf("pull URL %s is not valid: use rtsp://, rtsps://, rtmp:// or rtmps://", configs.RedactURL(cfg.URL))
	}
	if u.User == nil && cfg.Username != "" {
		if cfg.Password.IsSet() {
			u.User = url.UserPassword(cfg.Username, cfg.Password.Value())
		} else {
			u.User = url.User(cfg.Username)
		}
	}
	secrets := []string{cfg.Password.Value()}
	if u.User != nil {
		if pw, ok := u.User.Password(); ok {
			secrets = append(secrets, u.User.String(), pw, url.QueryEscape(pw), url.PathEscape(pw))
		}
	}
	// Longest first, so that a secret containing another is replaced whole.
	sortByLength(secrets)

	switch u.Scheme {
	case "rtsp", "rtsps":
		src, err := rtsp.NewSource(rtsp.Config{URL: u, Transport: cfg.Transport}, log)
		return src, secrets, err
	case "rtmp", "rtmps":
		src, err := rtmp.NewPullSource(u, log)
		if err != nil {
			return nil, nil, err
		}
		// RTMP stream names are keys (configs.RedactURL hides them too);
		// very short ones would only mangle error messages.
		if k := src.StreamKey(); len(k) >= 4 {
			secrets = append(secrets, k)
			sortByLength(secrets)
		}
		return src, secrets, nil
	}
	return nil, nil, fmt.Errorf("pull URL scheme %q is not supported: use rtsp://, rtsps://, rtmp:// or rtmps://", u.Scheme)
}

func sortByLength(s []string) {
	slices.SortStableFunc(s, func(a, b string) int { return len(b) - len(a) })
}
