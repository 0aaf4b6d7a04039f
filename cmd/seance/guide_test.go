package main

import (
	"bytes"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/configs"
)

// schemaPaths lists every key path of the config schema without the
// list markers: "channels.ingest.meeting.bbb.api".
func schemaPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		path, ft := prefix+tag, f.Type
		if ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		out = append(out, path)
		if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[configs.Duration]() {
			out = append(out, schemaPaths(ft, path+".")...)
		}
	}
	return out
}

// goSources returns the text of every non-test Go file of the repo.
func goSources(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("git", "-C", "../..", "ls-files", "*.go").Output()
	require.NoError(t, err)
	var b strings.Builder
	for _, f := range strings.Fields(string(out)) {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile("../../" + f)
		require.NoError(t, err)
		b.Write(src)
	}
	return b.String()
}

// flagsOf returns the flags `seance sub -h` lists (the serve command's
// usage for sub "").
func flagsOf(t *testing.T, sub string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	args := []string{"-h"}
	if sub != "" {
		args = []string{sub, "-h"}
	}
	run(args, &out, &errOut)
	return out.String() + errOut.String()
}

// TestGuideQuotesWhatExists keeps docs/fr/guide.md true: every seance
// command and flag it shows exists, every config key it names is in the
// schema, every alert in alerts.yml, every metric in the README, every
// health warning in the relay, and every error message it quotes is
// still what seance says.
func TestGuideQuotesWhatExists(t *testing.T) {
	guide, err := os.ReadFile("../../docs/fr/guide.md")
	require.NoError(t, err)
	text := string(guide)
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	require.Contains(t, strings.Join(strings.SplitN(string(readme), "\n", 12)[:11], "\n"), "docs/fr/guide.md",
		"the README's first lines link the French guide")
	alerts, err := os.ReadFile("../../configs/prometheus/alerts.yml")
	require.NoError(t, err)
	sources := goSources(t)

	t.Run("commands", func(t *testing.T) {
		// Commands are in code blocks and inline code.
		var cmds []string
		inBlock := false
		for _, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(line, "```") {
				inBlock = !inBlock
				continue
			}
			if inBlock {
				cmds = append(cmds, strings.Split(line, "&&")...)
			}
		}
		for _, m := range regexp.MustCompile("`([^`\n]+)`").FindAllStringSubmatch(text, -1) {
			cmds = append(cmds, m[1])
		}
		cmdRE := regexp.MustCompile(`^(?:sudo (?:--preserve-env=\S+ )?)?seance((?: .*)?)$`)
		n := 0
		for _, c := range cmds {
			c, _, _ = strings.Cut(c, "#")
			m := cmdRE.FindStringSubmatch(strings.TrimSpace(c))
			if m == nil {
				continue
			}
			fields := strings.Fields(m[1])
			sub := ""
			if len(fields) > 0 && !strings.HasPrefix(fields[0], "-") {
				sub, fields = fields[0], fields[1:]
			}
			switch sub {
			case "", "init", "check-config", "healthcheck", "version":
			default:
				require.Failf(t, "unknown seance command", "%q in the guide", c)
			}
			usage := flagsOf(t, sub)
			for _, f := range fields {
				if !strings.HasPrefix(f, "-") {
					continue
				}
				name := strings.TrimLeft(f, "-")
				require.Regexp(t, `(?m)^\s+-`+regexp.QuoteMeta(name)+`\b`, usage, "the guide shows `seance %s %s`, which does not exist", sub, f)
				n++
			}
		}
		require.Greater(t, n, 8, "the command scan found too few flags")
	})

	spans := regexp.MustCompile("`([^`\n]+)`").FindAllStringSubmatch(text, -1)

	t.Run("config keys", func(t *testing.T) {
		paths := schemaPaths(reflect.TypeFor[configs.Config](), "")
		keyRE := regexp.MustCompile(`^[a-z_]+(\.[a-z_]+)+$`)
		file := regexp.MustCompile(`\.(yaml|yml|env|conf|md|deb|service)$`)
		n := 0
		for _, s := range spans {
			key := s[1]
			if !keyRE.MatchString(key) || file.MatchString(key) {
				continue
			}
			found := false
			for _, p := range paths {
				if p == key || strings.HasSuffix(p, "."+key) {
					found = true
					break
				}
			}
			require.True(t, found, "the guide names config key %q, which the schema does not have", key)
			n++
		}
		require.Greater(t, n, 6, "the key scan found too few keys")
	})

	t.Run("alerts and metrics", func(t *testing.T) {
		n := 0
		for _, s := range spans {
			switch {
			case regexp.MustCompile(`^Seance[A-Za-z]+$`).MatchString(s[1]):
				require.Contains(t, string(alerts), "alert: "+s[1], "the guide names alert %s", s[1])
				n++
			case regexp.MustCompile(`^seance_[a-z_]+$`).MatchString(s[1]):
				require.Contains(t, string(readme), "`"+s[1]+"`", "the guide names metric %s", s[1])
			}
		}
		require.GreaterOrEqual(t, n, 12, "every alert of alerts.yml is in the guide")
		for _, m := range regexp.MustCompile(`(?m)alert: (\w+)`).FindAllStringSubmatch(string(alerts), -1) {
			require.Contains(t, text, "`"+m[1]+"`", "the guide's alert table lacks %s", m[1])
		}
	})

	t.Run("health warnings", func(t *testing.T) {
		sec := text[strings.Index(text, "## 7."):strings.Index(text, "## 8.")]
		rows := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|").FindAllStringSubmatch(sec, -1)
		require.GreaterOrEqual(t, len(rows), 7)
		metrics, err := os.ReadFile("../../relay/metrics.go")
		require.NoError(t, err)
		for _, r := range rows {
			require.Contains(t, string(metrics), `"`+r[1]+`"`, "the guide names health warning %s", r[1])
		}
	})

	t.Run("quoted messages", func(t *testing.T) {
		sec := text[strings.Index(text, "## 10."):strings.Index(text, "## 11.")]
		n := 0
		for _, line := range strings.Split(sec, "\n") {
			cells := strings.Split(line, "|")
			if len(cells) < 3 {
				continue
			}
			for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(cells[1], -1) {
				msg := m[1]
				if !strings.Contains(msg, " ") || strings.ContainsAny(msg, ":/") {
					continue // a key, a path or a config snippet
				}
				require.Contains(t, sources, msg, "the guide quotes %q, which seance no longer says", msg)
				n++
			}
		}
		require.GreaterOrEqual(t, n, 8, "the message scan found too few messages")
	})
}
