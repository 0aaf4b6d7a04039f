package configs

import (
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// Dockerfile.debian (the Debian image with Chromium and ffmpeg) and
// docker-compose.debian.yml, checked without a Docker engine.

const (
	debianDockerfile = "Dockerfile.debian"
	debianCompose    = "docker-compose.debian.yml"
)

// exposed returns the ports a Dockerfile's EXPOSE lines list.
func exposed(t *testing.T, dockerfile string) []string {
	t.Helper()
	df, err := os.ReadFile(repoPath(dockerfile))
	require.NoError(t, err)
	var out []string
	for line := range strings.Lines(string(df)) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "EXPOSE "); ok {
			out = append(out, strings.Fields(rest)...)
		}
	}
	slices.Sort(out)
	return out
}

// dockerIgnored reports whether .dockerignore keeps p out of the build
// context: the last pattern matching p or one of its parent directories
// decides, "!" re-including.
func dockerIgnored(patterns []string, p string) bool {
	ignored := false
	for _, pat := range patterns {
		neg := strings.HasPrefix(pat, "!")
		pat = strings.TrimPrefix(strings.TrimPrefix(pat, "!"), "/")
		for q := p; q != "." && q != "/"; q = path.Dir(q) {
			if ok, _ := path.Match(pat, q); ok {
				ignored = !neg
				break
			}
		}
	}
	return ignored
}

func TestDebianImage(t *testing.T) {
	df, err := os.ReadFile(repoPath(debianDockerfile))
	require.NoError(t, err)
	text := string(df)

	t.Run("built as the package", func(t *testing.T) {
		require.Regexp(t, `packaging/build-deb\.sh -o /out`, text, "the image builds the .deb as make deb does")
		require.Regexp(t, `apt-get install -y --no-install-recommends /tmp/seance\.deb`, text, "and installs it with apt")
		// The package's Recommends, which --no-install-recommends leaves out.
		nfpm, err := os.ReadFile(repoPath("packaging/nfpm.yaml"))
		require.NoError(t, err)
		var pkg struct {
			Recommends []string `yaml:"recommends"`
			Contents   []struct {
				Src string `yaml:"src"`
			} `yaml:"contents"`
		}
		require.NoError(t, yaml.Unmarshal(nfpm, &pkg))
		require.NotEmpty(t, pkg.Recommends)
		for _, r := range pkg.Recommends {
			require.Regexp(t, `(?m)^\s.*\b`+regexp.QuoteMeta(r)+`\b`, text, "the image installs the package's Recommends: %s", r)
		}
		// What nfpm packs must be in the Docker build context.
		ign, err := os.ReadFile(repoPath(".dockerignore"))
		require.NoError(t, err)
		var patterns []string
		for line := range strings.Lines(string(ign)) {
			if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
				patterns = append(patterns, l)
			}
		}
		for _, c := range append(pkg.Contents, struct {
			Src string `yaml:"src"`
		}{"packaging/build-deb.sh"}) {
			if c.Src == "" || strings.Contains(c.Src, "${") {
				continue
			}
			require.FileExists(t, repoPath(c.Src))
			require.False(t, dockerIgnored(patterns, c.Src), ".dockerignore keeps %s (packed by nfpm) out of the Docker build", c.Src)
		}
		require.True(t, dockerIgnored(patterns, "docs/design-notes.md"), "the matcher reads .dockerignore")
	})

	t.Run("same ports and health check as the distroless image", func(t *testing.T) {
		require.Equal(t, exposed(t, "Dockerfile"), exposed(t, debianDockerfile))
		require.Regexp(t, `(?m)^\s*CMD \["/usr/bin/seance", "healthcheck"\]`, text)
		require.Regexp(t, `(?m)^ENTRYPOINT \["/usr/bin/seance"\]`, text)
	})

	t.Run("recordings volume", func(t *testing.T) {
		// The same uid as the distroless image, and the recordings
		// directory (record.dir of the compose config) prepared for it.
		require.Regexp(t, `(?m)^USER 65532:65532$`, text)
		require.Regexp(t, `useradd --system --uid 65532`, text)
		require.Regexp(t, `chown seance:seance /var/lib/seance/records`, text)
		raw, err := os.ReadFile(repoPath(composeFile))
		require.NoError(t, err)
		require.Contains(t, string(raw), "recordings:/var/lib/seance/records")
	})

	t.Run("compose override", func(t *testing.T) {
		raw, err := os.ReadFile(repoPath(debianCompose))
		require.NoError(t, err)
		var c struct {
			Services map[string]struct {
				Build struct {
					Context    string            `yaml:"context"`
					Dockerfile string            `yaml:"dockerfile"`
					Args       map[string]string `yaml:"args"`
				} `yaml:"build"`
				Image   string   `yaml:"image"`
				Init    bool     `yaml:"init"`
				ShmSize string   `yaml:"shm_size"`
				Ports   []string `yaml:"ports"`
			} `yaml:"services"`
		}
		dec := yaml.NewDecoder(strings.NewReader(string(raw)))
		dec.KnownFields(true)
		require.NoError(t, dec.Decode(&c))
		require.Len(t, c.Services, 1, "the override changes the seance service only")
		s, ok := c.Services["seance"]
		require.True(t, ok)
		require.Equal(t, ".", s.Build.Context)
		require.Equal(t, debianDockerfile, s.Build.Dockerfile)
		require.FileExists(t, repoPath(path.Join(s.Build.Context, s.Build.Dockerfile)))
		require.True(t, s.Init, "init: true reaps the browser's processes")
		require.NotEmpty(t, s.ShmSize, "Chromium needs more than Docker's 64 MB of /dev/shm")
		require.Empty(t, s.Ports, "the ports stay docker-compose.yml's")
		require.Contains(t, s.Build.Args, "VERSION", "the version goes into the package")
		require.Contains(t, s.Image, "seance-debian", "its own image name, not the distroless one's")
	})
}
