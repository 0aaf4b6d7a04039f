package configs

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// redacted is what a secret or a secret part of a URL is replaced with.
const redacted = "[redacted]"

// Secret is a string that must not leak: an ingest key, a stream key, the admin
// token, a TURN credential. Every way of printing or encoding it (fmt verbs,
// JSON, YAML, text) gives "[redacted]", or "" when the secret is empty; only
// Value returns the real string. The zero value is an unset secret.
type Secret string

// Value returns the secret itself, for the one place that needs it (a
// handshake, a comparison). Never log or wrap it into an error.
func (s Secret) Value() string { return string(s) }

// IsSet reports whether the secret is not empty.
func (s Secret) IsSet() bool { return s != "" }

// Equal reports, in constant time, whether other is the secret. An empty secret
// equals nothing, so an unset key never matches an empty attempt.
func (s Secret) Equal(other string) bool {
	if s == "" {
		return false
	}
	// Hashing first makes the comparison's time independent of both lengths.
	a := sha256.Sum256([]byte(s))
	b := sha256.Sum256([]byte(other))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// String returns "[redacted]", or "" for an empty secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString returns the same as String, so %#v does not print the secret.
func (s Secret) GoString() string { return s.String() }

// Format implements fmt.Formatter so that no verb (%d, %x, bad verbs) prints
// the secret: fmt would otherwise format the underlying string for them.
func (s Secret) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, fmt.FormatString(f, verb), s.String())
}

// MarshalJSON encodes the secret as "[redacted]", or "" when it is empty.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalYAML encodes the secret as "[redacted]", or "" when it is empty.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalText encodes the secret as "[redacted]", or "" when it is empty.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalYAML reads the secret from a plain YAML string. Parse does not use
// it (it decodes keys itself to expand ${ENV}); it serves other YAML readers.
func (s *Secret) UnmarshalYAML(value *yaml.Node) error {
	if value.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expected a string", value.Line)
	}
	*s = Secret(value.Value)
	return nil
}

// invalidURL is what RedactURL returns for input it cannot make safe.
const invalidURL = "[invalid URL]"

// queryKeyRE matches query keys kept as they are; any other key may be a secret.
var queryKeyRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)

// backupValueRE matches the values of YouTube's "backup" query parameter kept as
// they are ("1").
var backupValueRE = regexp.MustCompile(`^[A-Za-z0-9]{0,8}$`)

// RedactURL returns raw in a form safe to log: userinfo, every query value
// (except a short "backup" value, as in YouTube's ?backup=1), the fragment and,
// for rtmp and rtmps URLs, every path segment after the first (the stream key in
// rtmp://a.rtmp.youtube.com/live2/KEY) are replaced with "[redacted]". It
// returns "" for "" and "[invalid URL]" for anything it cannot parse or that has
// no scheme; it never returns its input on error.
func RedactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return invalidURL
	}
	var b strings.Builder
	b.WriteString(u.Scheme)
	b.WriteByte(':')
	if u.Opaque != "" {
		// scheme:opaque (e.g. rtmp:host/app/KEY): nothing in it is known to be safe.
		b.WriteString(redacted)
	} else {
		if u.Host != "" || u.User != nil || strings.HasPrefix(raw[len(u.Scheme)+1:], "//") {
			b.WriteString("//")
		}
		if u.User != nil {
			b.WriteString(redacted + "@")
		}
		b.WriteString(u.Host)
		b.WriteString(redactPath(u.Scheme, u.EscapedPath()))
	}
	if u.RawQuery != "" || u.ForceQuery {
		b.WriteByte('?')
		b.WriteString(redactQuery(u.RawQuery))
	}
	if u.Fragment != "" {
		b.WriteString("#" + redacted)
	}
	return b.String()
}

// redactPath hides the stream key in an RTMP path: every segment after the
// first (the application) is replaced.
func redactPath(scheme, path string) string {
	if !strings.HasPrefix(scheme, "rtmp") {
		return path
	}
	segs := strings.Split(path, "/")
	// segs[0] is "" (before the leading slash), segs[1] the application.
	for i := 2; i < len(segs); i++ {
		if segs[i] != "" {
			segs[i] = redacted
		}
	}
	return strings.Join(segs, "/")
}

// redactQuery keeps the query's keys and hides its values. A part without '='
// or with an unusual key may itself be a secret, so it is hidden whole.
func redactQuery(rawQuery string) string {
	parts := strings.Split(rawQuery, "&")
	for i, part := range parts {
		if part == "" {
			continue
		}
		key, value, ok := strings.Cut(part, "=")
		switch {
		case !ok || !queryKeyRE.MatchString(key):
			parts[i] = redacted
		case key == "backup" && backupValueRE.MatchString(value):
			// YouTube's backup ingestion flag: not a secret, and useful in logs.
		default:
			parts[i] = key + "=" + redacted
		}
	}
	return strings.Join(parts, "&")
}
