package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/seance-relay/seance/configs"
	"github.com/seance-relay/seance/packaging"
)

// initOptions are `seance init`'s inputs once flags and answers are in.
type initOptions struct {
	config, envFile string
	channel, title  string
	baseURL         string
	youtubeEnv      string // the variable holding the YouTube stream key; "" for none
	youtubeKey      string // its value
	force           bool
}

// initIO is what `seance init` talks to: a terminal on stdin means it may
// ask for what the flags left out; otherwise it never asks.
type initIO struct {
	stdin    io.Reader
	terminal bool
	stdout   io.Writer
	stderr   io.Writer
	getenv   func(string) (string, bool)
}

var (
	channelNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	envVarRE      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// errInitUsage is a bad flag or answer: exit status 2.
var errInitUsage = errors.New("usage")

// initCommand is `seance init`: it writes a first config for one channel
// and the env file holding its secrets.
func initCommand(args []string, tio initIO) int {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	fs.SetOutput(tio.stderr)
	var o initOptions
	fs.StringVar(&o.config, "config", "/etc/seance/seance.yaml", "config file to write")
	fs.StringVar(&o.envFile, "env-file", "/etc/seance/seance.env", "env file to write the secrets to (systemd's EnvironmentFile=)")
	fs.StringVar(&o.channel, "channel", "", "channel name: a-z, 0-9, '-' and '_', e.g. bourg (asked in a terminal)")
	fs.StringVar(&o.title, "title", "", "title shown to citizens (default: the channel name; asked in a terminal)")
	fs.StringVar(&o.baseURL, "base-url", "", "public address of the watch pages, e.g. https://live.example.fr (asked in a terminal)")
	fs.StringVar(&o.youtubeEnv, "youtube-key-env", "", "push to YouTube with the stream key in this environment variable (its value goes into the env file)")
	fs.BoolVar(&o.force, "force", false, "overwrite existing files")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(tio.stderr, "seance init: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := initAsk(&o, set, tio); err != nil {
		fmt.Fprintf(tio.stderr, "seance init: %v\n", err)
		if errors.Is(err, errInitUsage) {
			return 2
		}
		return 1
	}
	secrets, err := initWrite(o)
	if err != nil {
		fmt.Fprintf(tio.stderr, "seance init: %v\n", err)
		return 1
	}
	initSummary(tio.stdout, o, secrets)
	return 0
}

// initAsk fills in o from the terminal for what the flags left out, then
// checks it. Without a terminal it asks nothing.
func initAsk(o *initOptions, set map[string]bool, tio initIO) error {
	in := bufio.NewReader(tio.stdin)
	ask := func(question, def string) (string, error) {
		if def != "" {
			fmt.Fprintf(tio.stdout, "%s [%s] : ", question, def)
		} else {
			fmt.Fprintf(tio.stdout, "%s : ", question)
		}
		line, err := in.ReadString('\n')
		if err != nil && (line == "" || !errors.Is(err, io.EOF)) {
			return "", fmt.Errorf("reading the answer: %w", err)
		}
		if line = strings.TrimSpace(line); line == "" {
			return def, nil
		}
		return line, nil
	}
	if tio.terminal {
		var err error
		if !set["channel"] {
			for {
				if o.channel, err = ask("Nom de la chaîne, dans les adresses (channel name: a-z, 0-9, - et _)", ""); err != nil {
					return err
				}
				if channelNameRE.MatchString(o.channel) {
					break
				}
				fmt.Fprintln(tio.stdout, "  lettres minuscules, chiffres, - et _ seulement (ex. : bourg-sur-gironde)")
			}
		}
		if !set["title"] {
			if o.title, err = ask("Titre montré au public (title)", "Conseil municipal"); err != nil {
				return err
			}
		}
		if !set["base-url"] {
			if o.baseURL, err = ask("Adresse publique du site, vide si aucune (public URL, e.g. https://live.example.fr)", ""); err != nil {
				return err
			}
		}
		if !set["youtube-key-env"] {
			key, err := ask("Clé de stream YouTube, vide pour ne pas diffuser sur YouTube (YouTube stream key)", "")
			if err != nil {
				return err
			}
			if key != "" {
				o.youtubeEnv, o.youtubeKey = envPrefix(o.channel)+"_YT_KEY", key
			}
		}
	}
	switch {
	case o.channel == "":
		return fmt.Errorf("%w: -channel NAME is required (stdin is not a terminal, so nothing is asked)", errInitUsage)
	case !channelNameRE.MatchString(o.channel):
		return fmt.Errorf("%w: -channel %q: use lowercase letters, digits, '-' and '_' (at most 64), starting with a letter or digit", errInitUsage, o.channel)
	}
	if o.title == "" {
		o.title = o.channel
	}
	if o.baseURL != "" {
		u, err := url.Parse(o.baseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return fmt.Errorf("%w: -base-url %q: give an absolute http(s) address, e.g. https://live.example.fr", errInitUsage, o.baseURL)
		}
		o.baseURL = strings.TrimRight(o.baseURL, "/")
	}
	if o.youtubeEnv != "" && o.youtubeKey == "" {
		if !envVarRE.MatchString(o.youtubeEnv) {
			return fmt.Errorf("%w: -youtube-key-env %q is not a valid environment variable name", errInitUsage, o.youtubeEnv)
		}
		v, ok := tio.getenv(o.youtubeEnv)
		if (!ok || v == "") && tio.terminal {
			var err error
			if v, err = ask("Clé de stream YouTube (YouTube stream key, "+o.youtubeEnv+")", ""); err != nil {
				return err
			}
		}
		if v == "" {
			return fmt.Errorf("%w: -youtube-key-env %s: the variable is not set: export it with the stream key from YouTube Studio (%s=xxxx-xxxx-xxxx-xxxx) and run seance init again", errInitUsage, o.youtubeEnv, o.youtubeEnv)
		}
		o.youtubeKey = v
	}
	if o.youtubeKey != "" && strings.ContainsAny(o.youtubeKey, " \t\r\n\"'\\$#") {
		return fmt.Errorf("%w: the YouTube stream key holds a space, quote, '\\', '$' or '#': copy it again from YouTube Studio", errInitUsage)
	}
	return nil
}

// envPrefix turns a channel name into the start of its variables' names:
// bourg-sur-gironde → BOURG_SUR_GIRONDE.
func envPrefix(channel string) string {
	p := strings.ToUpper(strings.NewReplacer("-", "_").Replace(channel))
	if p[0] >= '0' && p[0] <= '9' {
		p = "C" + p
	}
	return p
}

// initSecrets names the variables init wrote to the env file.
type initSecrets struct {
	adminToken, ingestKey string // variable names
	envMode               string // how the env file is protected, in words
}

// initWrite generates the secrets and writes both files, refusing to
// replace a file an operator wrote (without -force). The config is
// checked, with the env file's values, before anything is written.
func initWrite(o initOptions) (initSecrets, error) {
	s := initSecrets{adminToken: "SEANCE_ADMIN_TOKEN", ingestKey: envPrefix(o.channel) + "_INGEST_KEY"}
	for _, f := range []struct {
		path    string
		shipped []byte
	}{{o.config, packaging.StartingConfig}, {o.envFile, packaging.StartingEnv}} {
		if err := mayReplace(f.path, f.shipped, o.force); err != nil {
			return s, err
		}
	}
	env := map[string]string{
		s.adminToken: randomHex(32),
		s.ingestKey:  randomHex(16),
	}
	envText := fmt.Sprintf(`# Secrets for %s, written by seance init: read by seance.service
# (EnvironmentFile=). Keep this file mode 0640 root:seance (or 0600).
# One KEY=value a line, no quotes.

# Bearer token of the dashboard, /metrics and the admin API.
%s=%s
# The key Jitsi (Jibri), the BBB streamer or OBS push channel %s with.
%s=%s
`, o.config, s.adminToken, env[s.adminToken], o.channel, s.ingestKey, env[s.ingestKey])
	if o.youtubeEnv != "" {
		env[o.youtubeEnv] = o.youtubeKey
		envText += fmt.Sprintf("# The YouTube stream key (YouTube Studio → Go live → Stream).\n%s=%s\n", o.youtubeEnv, o.youtubeKey)
	}
	cfgText := initConfig(o, s)
	// The files must load together: check before writing either.
	if _, err := configs.Parse([]byte(cfgText), func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		return s, fmt.Errorf("the config seance init made does not load (a bug: please report it): %w", err)
	}
	mode, gid := os.FileMode(0o600), -1
	s.envMode = "0600"
	if os.Geteuid() == 0 {
		if g, err := user.LookupGroup("seance"); err == nil {
			if id, err := strconv.Atoi(g.Gid); err == nil {
				mode, gid, s.envMode = 0o640, id, "0640 root:seance"
			}
		}
	}
	if err := writeFileAtomic(o.envFile, []byte(envText), mode, gid); err != nil {
		return s, err
	}
	if err := writeFileAtomic(o.config, []byte(cfgText), 0o644, -1); err != nil {
		return s, err
	}
	return s, nil
}

// mayReplace fails when path exists and is neither what the package
// installed there nor to be overwritten (-force).
func mayReplace(path string, shipped []byte, force bool) error {
	cur, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("%s: %w", path, err)
	case force || bytes.Equal(cur, shipped):
		return nil
	}
	return fmt.Errorf("%s already exists and is not the package's starting point: nothing written (run with -force to replace it; keep a copy first) / le fichier existe déjà : rien n'a été écrit (-force pour le remplacer)", path)
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory, with mode (and group gid when ≥ 0) set before it holds
// anything, so that a secret is never readable by others, even briefly.
func writeFileAtomic(path string, data []byte, mode os.FileMode, gid int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after the rename: nothing to remove
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if gid >= 0 {
		if err := f.Chown(0, gid); err != nil {
			f.Close()
			return err
		}
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b)
}

// yamlString quotes s for YAML (a JSON string is a YAML double-quoted
// scalar), with "$" doubled so that it is not read as ${NAME}.
func yamlString(s string) string {
	b, _ := json.Marshal(strings.ReplaceAll(s, "$", "$$"))
	return string(b)
}

// initConfig is the config for one channel, with ${VAR}s for its secrets.
func initConfig(o initOptions, s initSecrets) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# seance's configuration, written by seance init for channel %s.
# Secrets are in %s (${NAME} below reads them). After an edit:
#   seance check-config -config %s -env-file %s
#   systemctl reload seance
# Every key is described in the README's config reference
# (/usr/share/doc/seance/seance.example.yaml shows them all);
# guide en français : /usr/share/doc/seance/guide.md

public:
  # Watch pages, WebRTC, WHIP and HLS: put a TLS reverse proxy in front.
  listen: ":8080"
`, o.channel, o.envFile, o.config, o.envFile)
	if o.baseURL != "" {
		fmt.Fprintf(&b, "  base_url: %s\n", yamlString(o.baseURL))
	} else {
		b.WriteString("  # base_url: \"https://live.example.fr\"   # the address citizens use, for links\n")
	}
	fmt.Fprintf(&b, `
admin:
  # Dashboard, /metrics and API: this machine only.
  listen: "127.0.0.1:9090"
  token: "${%s}"

rtmp:
  listen: ":1935"

webrtc:
  # Open this UDP port in the firewall.
  udp_port: 8189

channels:
  - name: %s
    title: %s
    ingest:
      key: "${%s}"
    grace: 30s
    record:
      enabled: true
      dir: /var/lib/seance/records
      # Delete the oldest sessions past this size: set it to what the disk holds.
      max_size: 100GiB
    replay: public
`, s.adminToken, o.channel, yamlString(o.title), s.ingestKey)
	if o.youtubeEnv != "" {
		fmt.Fprintf(&b, `    destinations:
      - name: youtube
        url: "rtmps://a.rtmps.youtube.com/live2"
        key: "${%s}"
      # YouTube's backup server, same key:
      # - name: youtube-backup
      #   url: "rtmp://b.rtmp.youtube.com/live2?backup=1"
      #   key: "${%s}"
`, o.youtubeEnv, o.youtubeEnv)
	} else {
		fmt.Fprintf(&b, `    destinations: []
    # destinations:
    #   - name: youtube
    #     url: "rtmps://a.rtmps.youtube.com/live2"
    #     key: "${%s_YT_KEY}"     # add %s_YT_KEY=… to %s
`, envPrefix(o.channel), envPrefix(o.channel), o.envFile)
	}
	return b.String()
}

// initSummary tells the operator what was written and what to paste
// where. Secrets are named, never shown.
func initSummary(w io.Writer, o initOptions, s initSecrets) {
	host := "SERVEUR"
	public := "http://SERVEUR:8080"
	if o.baseURL != "" {
		u, _ := url.Parse(o.baseURL)
		host, public = u.Hostname(), o.baseURL
	} else if h, err := os.Hostname(); err == nil && h != "" {
		host, public = h, "http://"+net.JoinHostPort(h, "8080")
	}
	key := fmt.Sprintf("<%s : voir %s>", s.ingestKey, o.envFile)
	fmt.Fprintf(w, `
Écrit / written:
  %s   (configuration)
  %s   (secrets, mode %s)

Jitsi Meet (« Démarrer la diffusion en direct ») et streamer BigBlueButton — adresse RTMP :
  rtmp://%s:1935/live/%s?key=%s
OBS — Paramètres → Stream → Service « Personnalisé » :
  Serveur : rtmp://%s:1935/live
  Clé     : %s?key=%s
Page publique (watch page) : %s/watch/%s
Tableau de bord (dashboard) : http://127.0.0.1:9090/dashboard   (jeton : %s dans %s)
`, o.config, o.envFile, s.envMode, host, o.channel, key, host, o.channel, key, public, o.channel, s.adminToken, o.envFile)
	if o.baseURL == "" {
		fmt.Fprintf(w, "  (%s : ce serveur tel que Jitsi, OBS et le public le joignent ; -base-url https://… l'écrit dans la config / this server as others reach it)\n", host)
	}
	if o.youtubeEnv != "" {
		fmt.Fprintf(w, "YouTube : rtmps://a.rtmps.youtube.com/live2 (clé : %s dans %s)\n", o.youtubeEnv, o.envFile)
	}
	fmt.Fprintf(w, `
Ensuite / next:
  seance check-config -config %s -env-file %s
  systemctl enable --now seance      (ou / or: systemctl restart seance)
`, o.config, o.envFile)
}

func groupExists(name string) bool {
	_, err := user.LookupGroup(name)
	return err == nil
}
