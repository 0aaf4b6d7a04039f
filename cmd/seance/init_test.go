package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/configs"
	"github.com/seance-relay/seance/packaging"
)

// runInit runs `seance init` with args in dir and returns its exit
// status, stdout and stderr.
func runInit(t *testing.T, args []string, stdin string, terminal bool, env map[string]string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := initCommand(args, initIO{
		stdin: strings.NewReader(stdin), terminal: terminal, stdout: &out, stderr: &errOut,
		getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	})
	return code, out.String(), errOut.String()
}

// loadInitResult loads the config with the env file's variables, as
// systemd gives them to seance.
func loadInitResult(t *testing.T, cfgPath, envPath string) (*configs.Config, map[string]string) {
	t.Helper()
	data, err := os.ReadFile(envPath)
	require.NoError(t, err)
	env, err := parseEnvFile(data)
	require.NoError(t, err)
	raw, err := os.ReadFile(cfgPath)
	require.NoError(t, err)
	cfg, err := configs.Parse(raw, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.NoError(t, err, string(raw))
	return cfg, env
}

func TestInit(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		stdin    string
		terminal bool
		env      map[string]string
		existing map[string][]byte // file (config or env) → content before
		code     int
		stderr   string // part of the error; "" when it succeeds
		check    func(t *testing.T, cfg *configs.Config, env map[string]string, stdout string)
	}{
		{
			name: "flags only",
			args: []string{"-channel", "bourg-sur-gironde", "-title", `Conseil municipal de Bourg « $HOME »`},
			check: func(t *testing.T, cfg *configs.Config, env map[string]string, stdout string) {
				require.Len(t, cfg.Channels, 1)
				c := cfg.Channels[0]
				require.Equal(t, "bourg-sur-gironde", c.Name)
				require.Equal(t, `Conseil municipal de Bourg « $HOME »`, c.Title)
				require.Len(t, env["BOURG_SUR_GIRONDE_INGEST_KEY"], 32)
				require.Len(t, env["SEANCE_ADMIN_TOKEN"], 64)
				require.Equal(t, env["BOURG_SUR_GIRONDE_INGEST_KEY"], c.Ingest.Key.Value())
				require.Equal(t, env["SEANCE_ADMIN_TOKEN"], cfg.Admin.Token.Value())
				require.Empty(t, c.Destinations)
				require.True(t, c.Record.Enabled)
				require.Contains(t, stdout, "/live/bourg-sur-gironde?key=<BOURG_SUR_GIRONDE_INGEST_KEY : voir ")
				require.Contains(t, stdout, ":8080/watch/bourg-sur-gironde")
			},
		},
		{
			name: "base url and youtube key from the environment",
			args: []string{"-channel", "prignac", "-base-url", "https://live.cc-bourg.fr/", "-youtube-key-env", "PRIGNAC_YT"},
			env:  map[string]string{"PRIGNAC_YT": "abcd-efgh-ijkl-mnop-qrst"},
			check: func(t *testing.T, cfg *configs.Config, env map[string]string, stdout string) {
				require.Equal(t, "https://live.cc-bourg.fr", cfg.Public.BaseURL)
				c := cfg.Channels[0]
				require.Equal(t, "prignac", c.Title, "the title defaults to the name")
				require.Len(t, c.Destinations, 1)
				require.Equal(t, "rtmps://a.rtmps.youtube.com/live2", c.Destinations[0].URL)
				require.Equal(t, "abcd-efgh-ijkl-mnop-qrst", env["PRIGNAC_YT"])
				require.Contains(t, stdout, "rtmp://live.cc-bourg.fr:1935/live/prignac?key=")
				require.Contains(t, stdout, "https://live.cc-bourg.fr/watch/prignac")
				require.Contains(t, stdout, "PRIGNAC_YT dans")
			},
		},
		{
			name:     "terminal: asks what is missing, again after a bad name",
			args:     []string{"-title", "Conseil de Tauriac"},
			terminal: true,
			stdin:    "Tauriac!\ntauriac\n\nabcd-efgh-ijkl\n",
			check: func(t *testing.T, cfg *configs.Config, env map[string]string, stdout string) {
				c := cfg.Channels[0]
				require.Equal(t, "tauriac", c.Name)
				require.Equal(t, "Conseil de Tauriac", c.Title, "a flag given is not asked")
				require.Empty(t, cfg.Public.BaseURL)
				require.Equal(t, "abcd-efgh-ijkl", env["TAURIAC_YT_KEY"])
				require.Len(t, c.Destinations, 1)
				require.Equal(t, 1, strings.Count(stdout, "Nom de la chaîne")-1, "asked the name twice")
				require.NotContains(t, stdout, "Titre")
			},
		},
		{
			name: "replaces the package's untouched starting point",
			args: []string{"-channel", "conseil"},
			existing: map[string][]byte{
				"seance.yaml": packaging.StartingConfig,
				"seance.env":  packaging.StartingEnv,
			},
		},
		{
			name:     "no terminal, no channel: asks nothing",
			args:     []string{},
			terminal: false,
			stdin:    "bourg\n",
			code:     2,
			stderr:   "-channel NAME is required",
		},
		{
			name:   "bad channel name",
			args:   []string{"-channel", "Bourg sur Gironde"},
			code:   2,
			stderr: `-channel "Bourg sur Gironde"`,
		},
		{
			name:   "youtube variable not set",
			args:   []string{"-channel", "bourg", "-youtube-key-env", "BOURG_YT_KEY"},
			code:   2,
			stderr: "BOURG_YT_KEY: the variable is not set",
		},
		{
			name:   "bad base url",
			args:   []string{"-channel", "bourg", "-base-url", "live.cc-bourg.fr"},
			code:   2,
			stderr: "-base-url",
		},
		{
			name:     "refuses to overwrite an operator's config",
			args:     []string{"-channel", "bourg"},
			existing: map[string][]byte{"seance.yaml": []byte("channels: []\n")},
			code:     1,
			stderr:   "already exists",
		},
		{
			name:     "refuses to overwrite an operator's env file",
			args:     []string{"-channel", "bourg"},
			existing: map[string][]byte{"seance.env": []byte("SEANCE_ADMIN_TOKEN=mine\n")},
			code:     1,
			stderr:   "already exists",
		},
		{
			name: "-force overwrites",
			args: []string{"-channel", "bourg", "-force"},
			existing: map[string][]byte{
				"seance.yaml": []byte("channels: []\n"),
				"seance.env":  []byte("SEANCE_ADMIN_TOKEN=mine\n"),
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfgPath, envPath := filepath.Join(dir, "seance.yaml"), filepath.Join(dir, "seance.env")
			for name, data := range tc.existing {
				require.NoError(t, os.WriteFile(filepath.Join(dir, name), data, 0o644))
			}
			args := append([]string{"-config", cfgPath, "-env-file", envPath}, tc.args...)
			code, stdout, stderr := runInit(t, args, tc.stdin, tc.terminal, tc.env)
			require.Equal(t, tc.code, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
			if tc.code != 0 {
				require.Contains(t, stderr, tc.stderr)
				if !tc.terminal {
					require.Empty(t, stdout, "nothing is asked without a terminal")
				}
				for _, name := range []string{"seance.yaml", "seance.env"} {
					data, err := os.ReadFile(filepath.Join(dir, name))
					if old, ok := tc.existing[name]; ok {
						require.NoError(t, err)
						require.Equal(t, old, data, "%s must be left alone", name)
					} else {
						require.ErrorIs(t, err, os.ErrNotExist, "%s must not be written", name)
					}
				}
				return
			}
			cfg, env := loadInitResult(t, cfgPath, envPath)
			fi, err := os.Stat(envPath)
			require.NoError(t, err)
			require.Contains(t, []os.FileMode{0o600, 0o640}, fi.Mode().Perm(), "the env file holds secrets")
			// Secrets are named, never shown.
			for k, v := range env {
				require.NotContains(t, stdout+stderr, v, "%s printed", k)
			}
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Len(t, entries, 2, "no temporary file left")
			if !tc.terminal {
				require.NotContains(t, stdout, "Nom de la chaîne", "nothing is asked without a terminal")
			}
			if tc.check != nil {
				tc.check(t, cfg, env, stdout)
			}
			// The command the summary suggests passes.
			var out, errOut bytes.Buffer
			require.Equal(t, 0, run([]string{"check-config", "-config", cfgPath, "-env-file", envPath}, &out, &errOut), errOut.String())
			require.Contains(t, out.String(), "OK (1 channel(s))")
		})
	}
}

// TestInitRootEnvFileMode: run as root with a seance group, the env file
// is 0640 root:seance. Without the group (or not root), 0600.
func TestInitEnvFileMode(t *testing.T) {
	dir := t.TempDir()
	cfgPath, envPath := filepath.Join(dir, "c.yaml"), filepath.Join(dir, "c.env")
	code, _, stderr := runInit(t, []string{"-config", cfgPath, "-env-file", envPath, "-channel", "bourg"}, "", false, nil)
	require.Equal(t, 0, code, stderr)
	fi, err := os.Stat(envPath)
	require.NoError(t, err)
	want := os.FileMode(0o600)
	if os.Geteuid() == 0 && groupExists("seance") {
		want = 0o640
	}
	require.Equal(t, want, fi.Mode().Perm())
}

// TestPackageStartingPoint: the package's seance.yaml passes check-config
// once the variables of its seance.env are set; until then it fails,
// naming what to set.
func TestPackageStartingPoint(t *testing.T) {
	env, err := parseEnvFile(packaging.StartingEnv)
	require.NoError(t, err)
	require.Contains(t, env, "SEANCE_ADMIN_TOKEN")
	_, err = configs.Parse(packaging.StartingConfig, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.ErrorContains(t, err, "${SEANCE_INGEST_KEY} is empty")
	for k := range env {
		env[k] = randomHex(16)
	}
	cfg, err := configs.Parse(packaging.StartingConfig, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.NoError(t, err)
	require.Len(t, cfg.Channels, 1)
}

func TestParseEnvFile(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     map[string]string
		err      string
	}{
		{"empty", "", map[string]string{}, ""},
		{"comments and blanks", "# a\n; b\n\n  A=1\n", map[string]string{"A": "1"}, ""},
		{"quotes", "A=\"x y\"\nB='z'\nC=\"unclosed\n", map[string]string{"A": "x y", "B": "z", "C": "\"unclosed"}, ""},
		{"empty value", "SEANCE_INGEST_KEY=\n", map[string]string{"SEANCE_INGEST_KEY": ""}, ""},
		{"spaces", " A = v \n", map[string]string{"A": "v"}, ""},
		{"equals in value", "A=b=c\n", map[string]string{"A": "b=c"}, ""},
		{"no equals", "A\n", nil, "line 1: expected NAME=value"},
		{"bad name", "ok=1\n1A=secretvalue\n", nil, "line 2: expected NAME=value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseEnvFile([]byte(tc.in))
			if tc.err != "" {
				require.EqualError(t, err, tc.err)
				require.NotContains(t, err.Error(), "secretvalue")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func FuzzParseEnvFile(f *testing.F) {
	f.Add([]byte("A=1\n# c\nB=\"x\"\n"))
	f.Add([]byte("SEANCE_ADMIN_TOKEN=\n"))
	f.Add(packaging.StartingEnv)
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := parseEnvFile(data)
		if err != nil {
			return
		}
		for k := range env {
			require.Regexp(t, envVarRE, k)
		}
	})
}
