package configs

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// The operations files (docker-compose.yml, Dockerfile, Prometheus and
// Grafana configs) are checked here without a Docker engine or a running
// Prometheus: promtool validates the Prometheus files, and the compose file
// is parsed and cross-checked against seance's compose config.

const (
	repoRoot       = ".."
	promtoolHint   = "run make test (installs prometheus for promtool)"
	composeFile    = "docker-compose.yml"
	composeSeance  = "configs/compose/seance.yaml"
	envExample     = ".env.example"
	promConfigFile = "configs/prometheus/prometheus.yml"
	promAlertsFile = "configs/prometheus/alerts.yml"
	promRulesTest  = "configs/prometheus/alerts_test.yml"
	grafanaDash    = "configs/grafana/dashboards/seance.json"
	grafanaDSFile  = "configs/grafana/provisioning/datasources/prometheus.yml"
	grafanaDBFile  = "configs/grafana/provisioning/dashboards/seance.yml"
)

func repoPath(p string) string { return filepath.Join(repoRoot, filepath.FromSlash(p)) }

func promtool(t *testing.T, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is missing: %s", promtoolHint)
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
}

// TestPromtoolCheckConfig checks prometheus.yml as Prometheus would load it:
// a copy whose token file exists, next to alerts.yml (rule_files are
// relative to the config file).
func TestPromtoolCheckConfig(t *testing.T) {
	cfg, err := os.ReadFile(repoPath(promConfigFile))
	require.NoError(t, err)
	const tokenFile = "/etc/prometheus/seance_admin_token"
	require.Contains(t, string(cfg), "credentials_file: "+tokenFile)
	dir := t.TempDir()
	tok := filepath.Join(dir, "seance_admin_token")
	require.NoError(t, os.WriteFile(tok, []byte("test-token\n"), 0o600))
	copied := strings.ReplaceAll(string(cfg), tokenFile, tok)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(copied), 0o600))
	alerts, err := os.ReadFile(repoPath(promAlertsFile))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "alerts.yml"), alerts, 0o600))
	promtool(t, "check", "config", filepath.Join(dir, "prometheus.yml"))
}

// TestPromtoolCheckRules checks alerts.yml, then runs its unit tests
// (alerts_test.yml): each alert fires when it should and not otherwise.
func TestPromtoolCheckRules(t *testing.T) {
	promtool(t, "check", "rules", repoPath(promAlertsFile))
	promtool(t, "test", "rules", repoPath(promRulesTest))
}

// TestAlertsAnnotations requires French and English text on every alert.
func TestAlertsAnnotations(t *testing.T) {
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Record      string            `yaml:"record"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, promAlertsFile, &f)
	var alerts []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts = append(alerts, r.Alert)
			for _, k := range []string{"summary", "description", "summary_en", "description_en"} {
				require.NotEmpty(t, r.Annotations[k], "%s: annotation %s", r.Alert, k)
			}
			require.Contains(t, []string{"critical", "warning"}, r.Labels["severity"], "%s: severity", r.Alert)
		}
	}
	for _, want := range []string{"SeanceIngestDown", "SeanceDestinationDown", "SeanceKeyframeIntervalTooLong",
		"SeanceViewerPacketLoss", "SeanceTranscoderErrors", "SeancePublisherStalled", "SeanceSlateOnAirTooLong",
		"SeanceRecordingFailing", "SeanceMeetingCaptureRestarting", "SeanceMeetingCaptureStuck", "SeanceHLSMuxerErrors"} {
		require.Contains(t, alerts, want)
	}
}

// TestREADMEAlerts requires the README's table of alerts to list exactly
// the alerts of alerts.yml, each with its severity.
func TestREADMEAlerts(t *testing.T) {
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert  string            `yaml:"alert"`
				Labels map[string]string `yaml:"labels"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, promAlertsFile, &f)
	want := map[string]string{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				want[r.Alert] = r.Labels["severity"]
			}
		}
	}
	data, err := os.ReadFile(repoPath("README.md"))
	require.NoError(t, err)
	got := map[string]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(Seance[A-Za-z]+)` \\|.*\\| (critical|warning) \\|$").FindAllStringSubmatch(string(data), -1) {
		got[m[1]] = m[2]
	}
	require.Equal(t, want, got, "README's alert table vs %s", promAlertsFile)
}

// compose is the part of docker-compose.yml the tests read.
type compose struct {
	Services map[string]struct {
		Build struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		EnvFile     stringList        `yaml:"env_file"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Ports       []string          `yaml:"ports"`
		Secrets     []struct {
			Source string `yaml:"source"`
			Target string `yaml:"target"`
		} `yaml:"secrets"`
	} `yaml:"services"`
	Secrets map[string]struct {
		File        string `yaml:"file"`
		Environment string `yaml:"environment"`
	} `yaml:"secrets"`
	Volumes map[string]any `yaml:"volumes"`
}

// stringList accepts a YAML string or a list of strings.
type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = []string{n.Value}
		return nil
	}
	var s []string
	if err := n.Decode(&s); err != nil {
		return err
	}
	*l = s
	return nil
}

func readYAML(t *testing.T, p string, v any) {
	t.Helper()
	data, err := os.ReadFile(repoPath(p))
	require.NoError(t, err)
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	require.NoError(t, dec.Decode(v), p)
}

func readCompose(t *testing.T) compose {
	t.Helper()
	var c compose
	readYAML(t, composeFile, &c)
	for _, s := range []string{"seance", "prometheus", "grafana"} {
		require.Contains(t, c.Services, s, "%s: service %s", composeFile, s)
	}
	return c
}

// mount is one short-syntax volume, "source:target[:mode]".
type mount struct{ source, target string }

func mounts(t *testing.T, vols []string) []mount {
	t.Helper()
	var out []mount
	for _, v := range vols {
		parts := strings.Split(v, ":")
		require.GreaterOrEqual(t, len(parts), 2, "volume %q", v)
		out = append(out, mount{parts[0], parts[1]})
	}
	return out
}

// hostPath returns a bind mount's local path, relative to the repository
// root, or "" for a named volume.
func (m mount) hostPath() string {
	if strings.HasPrefix(m.source, ".") || strings.HasPrefix(m.source, "/") {
		return path.Clean(m.source)
	}
	return ""
}

// containerFile returns where the local file p appears in a container
// with these mounts ("" if it does not).
func containerFile(ms []mount, p string) string {
	for _, m := range ms {
		hp := m.hostPath()
		if hp == "" {
			continue
		}
		if hp == p {
			return m.target
		}
		if rest, ok := strings.CutPrefix(p, hp+"/"); ok {
			return path.Join(m.target, rest)
		}
	}
	return ""
}

// readEnvExample returns .env.example's variables.
func readEnvExample(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(repoPath(envExample))
	require.NoError(t, err)
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "%s: %q is not NAME=value", envExample, line)
		env[k] = v
	}
	require.NoError(t, sc.Err())
	return env
}

// composeSeanceConfig parses the compose seance config with .env.example's
// values and returns it with the variables it used.
func composeSeanceConfig(t *testing.T) (*Config, []string) {
	t.Helper()
	env := readEnvExample(t)
	data, err := os.ReadFile(repoPath(composeSeance))
	require.NoError(t, err)
	var used []string
	cfg, err := Parse(data, func(k string) (string, bool) {
		used = append(used, k)
		v, ok := env[k]
		return v, ok
	})
	require.NoError(t, err, "%s with %s's values", composeSeance, envExample)
	slices.Sort(used)
	return cfg, slices.Compact(used)
}

// TestComposeFilesExist checks that every local file or directory
// docker-compose.yml refers to exists.
func TestComposeFilesExist(t *testing.T) {
	c := readCompose(t)
	for name, s := range c.Services {
		if s.Build.Context != "" {
			df := s.Build.Dockerfile
			if df == "" {
				df = "Dockerfile"
			}
			require.FileExists(t, repoPath(path.Join(s.Build.Context, df)), "service %s: build", name)
		}
		for _, m := range mounts(t, s.Volumes) {
			if hp := m.hostPath(); hp != "" {
				_, err := os.Stat(repoPath(hp))
				require.NoError(t, err, "service %s: volume %s", name, m.source)
			} else {
				require.Contains(t, c.Volumes, m.source, "service %s: named volume %s not declared", name, m.source)
			}
		}
		for _, ef := range s.EnvFile {
			// .env holds the keys and is never committed: its documented
			// template is .env.example.
			require.Equal(t, ".env", ef, "service %s: env_file", name)
			require.FileExists(t, repoPath(envExample))
		}
		for _, sec := range s.Secrets {
			require.Contains(t, c.Secrets, sec.Source, "service %s: secret %s not declared", name, sec.Source)
		}
	}
	for name, sec := range c.Secrets {
		if sec.File != "" {
			require.FileExists(t, repoPath(sec.File), "secret %s", name)
		}
	}
	for _, p := range []string{".dockerignore", promRulesTest, grafanaDSFile, grafanaDBFile, grafanaDash} {
		require.FileExists(t, repoPath(p))
	}
}

// portSpec is a published port: host port → container port/protocol.
type portSpec struct {
	hostIP, host, container, proto string
}

func parsePort(t *testing.T, s string) portSpec {
	t.Helper()
	spec, proto, ok := strings.Cut(s, "/")
	if !ok {
		proto = "tcp"
	}
	parts := strings.Split(spec, ":")
	var p portSpec
	switch len(parts) {
	case 2:
		p = portSpec{host: parts[0], container: parts[1]}
	case 3:
		p = portSpec{hostIP: parts[0], host: parts[1], container: parts[2]}
	default:
		t.Fatalf("port %q: want [ip:]host:container[/proto]", s)
	}
	p.proto = proto
	return p
}

// listenerPorts returns the ports the config listens on, as "port/proto".
func listenerPorts(t *testing.T, cfg *Config) map[string]string {
	t.Helper()
	ports := map[string]string{}
	for key, addr := range map[string]string{
		"public.listen": cfg.Public.Listen,
		"admin.listen":  cfg.Admin.Listen,
		"rtmp.listen":   cfg.RTMP.Listen,
		"rtsp.listen":   cfg.RTSP.Listen,
	} {
		if addr == "" {
			continue
		}
		_, port, err := net.SplitHostPort(addr)
		require.NoError(t, err, key)
		ports[port+"/tcp"] = key
	}
	ports[strconv.Itoa(cfg.WebRTC.UDPPort)+"/udp"] = "webrtc.udp_port"
	if cfg.WebRTC.TCPPort != 0 {
		ports[strconv.Itoa(cfg.WebRTC.TCPPort)+"/tcp"] = "webrtc.tcp_port"
	}
	return ports
}

// TestComposePortsMatchListeners checks that the seance service publishes
// exactly the compose config's listeners, each on the same host port, that
// the Dockerfile exposes them, and that Prometheus scrapes the admin one.
func TestComposePortsMatchListeners(t *testing.T) {
	c := readCompose(t)
	cfg, _ := composeSeanceConfig(t)
	want := listenerPorts(t, cfg)

	published := map[string]portSpec{}
	for _, s := range c.Services["seance"].Ports {
		p := parsePort(t, s)
		key := p.container + "/" + p.proto
		require.NotContains(t, published, key, "port %s published twice", key)
		require.Equal(t, p.container, p.host, "%q: publish seance's ports on the same host port (the README and the URLs seance logs use it)", s)
		published[key] = p
	}
	require.ElementsMatch(t, sortedKeys(want), sortedKeys(published), "seance's published ports vs %s's listeners (%v)", composeSeance, want)

	// The admin listener is open inside the compose network (Prometheus
	// scrapes it) but published on the host's loopback only.
	_, adminPort, err := net.SplitHostPort(cfg.Admin.Listen)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", published[adminPort+"/tcp"].hostIP, "admin port must be published on 127.0.0.1 only")
	require.True(t, cfg.Admin.Token.IsSet(), "admin.token must be set: Prometheus scrapes the admin listener from another container")

	// The Dockerfile's EXPOSE lists the same ports.
	df, err := os.ReadFile(repoPath("Dockerfile"))
	require.NoError(t, err)
	var exposed []string
	for line := range strings.Lines(string(df)) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "EXPOSE "); ok {
			for _, p := range strings.Fields(rest) {
				if !strings.Contains(p, "/") {
					p += "/tcp"
				}
				exposed = append(exposed, p)
			}
		}
	}
	require.ElementsMatch(t, sortedKeys(want), exposed, "Dockerfile EXPOSE vs %s's listeners", composeSeance)

	// The image's HEALTHCHECK runs `seance healthcheck`, whose default URL
	// is http://127.0.0.1:8080/healthz (cmd/seance/main.go).
	require.Regexp(t, `(?m)^\s*CMD \["/seance", "healthcheck"\]`, string(df))
	_, publicPort, err := net.SplitHostPort(cfg.Public.Listen)
	require.NoError(t, err)
	require.Equal(t, "8080", publicPort, "public.listen: the Dockerfile's HEALTHCHECK asks port 8080 (add -url to it if this changes)")

	// Prometheus scrapes seance:<admin port>.
	var prom struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			Authorization struct {
				CredentialsFile string `yaml:"credentials_file"`
			} `yaml:"authorization"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
		RuleFiles []string `yaml:"rule_files"`
	}
	readYAML(t, promConfigFile, &prom)
	var found bool
	for _, sc := range prom.ScrapeConfigs {
		if sc.JobName != "seance" {
			continue
		}
		found = true
		require.Len(t, sc.StaticConfigs, 1)
		require.Equal(t, []string{"seance:" + adminPort}, sc.StaticConfigs[0].Targets)
		// The token file is the compose secret holding SEANCE_ADMIN_TOKEN.
		var target string
		for _, sec := range c.Services["prometheus"].Secrets {
			target = sec.Target
			require.Equal(t, "SEANCE_ADMIN_TOKEN", c.Secrets[sec.Source].Environment)
		}
		require.Equal(t, sc.Authorization.CredentialsFile, target, "prometheus.yml's credentials_file vs the compose secret's target")
		require.Equal(t, "${SEANCE_ADMIN_TOKEN}", rawValue(t, composeSeance, "admin", "token"))
	}
	require.True(t, found, "%s: no scrape job \"seance\"", promConfigFile)

	// Prometheus loads the mounted config, and its rule files sit beside it.
	pm := mounts(t, c.Services["prometheus"].Volumes)
	promCfgPath := containerFile(pm, promConfigFile)
	require.NotEmpty(t, promCfgPath, "prometheus.yml is not mounted")
	require.Contains(t, c.Services["prometheus"].Command, "--config.file="+promCfgPath)
	for _, rf := range prom.RuleFiles {
		require.Equal(t, path.Join(path.Dir(promCfgPath), rf), containerFile(pm, path.Join(path.Dir(promConfigFile), rf)), "rule file %s", rf)
	}
}

// rawValue returns a scalar of a YAML file as written (before ${} expansion).
func rawValue(t *testing.T, p string, keys ...string) string {
	t.Helper()
	var m map[string]any
	readYAML(t, p, &m)
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		require.True(t, ok, "%s: %s", p, strings.Join(keys, "."))
		v = mm[k]
	}
	s, _ := v.(string)
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// composeVarRE matches ${NAME}, ${NAME:-default}, ${NAME:?message}.
var composeVarRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?+][^}]*)?\}`)

// TestComposeEnv checks that .env.example provides every variable the
// compose seance config and docker-compose.yml need, and nothing else.
func TestComposeEnv(t *testing.T) {
	env := readEnvExample(t)
	_, used := composeSeanceConfig(t) // fails on a variable .env.example lacks
	require.NotEmpty(t, used)
	needed := map[string]bool{}
	for _, k := range used {
		needed[k] = true
	}

	data, err := os.ReadFile(repoPath(composeFile))
	require.NoError(t, err)
	var root yaml.Node
	require.NoError(t, yaml.Unmarshal(data, &root))
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode {
			for _, m := range composeVarRE.FindAllStringSubmatch(n.Value, -1) {
				if strings.HasPrefix(m[2], "-") || strings.HasPrefix(m[2], ":-") {
					continue // has a default
				}
				needed[m[1]] = true
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
	c := readCompose(t)
	for _, sec := range c.Secrets {
		if sec.Environment != "" {
			needed[sec.Environment] = true
		}
	}
	require.Equal(t, sortedKeys(needed), sortedKeys(env), "variables needed (compose config, %s) vs %s", composeFile, envExample)
	for k, v := range env {
		require.NotEmpty(t, v, "%s: %s needs an example value", envExample, k)
	}
	// seance reads them from the env_file.
	require.Equal(t, stringList{".env"}, c.Services["seance"].EnvFile)
}

// TestComposeSeanceConfigLoads loads the compose seance config with Load,
// the way seance starts in the container, with .env.example's values.
func TestComposeSeanceConfigLoads(t *testing.T) {
	for k, v := range readEnvExample(t) {
		t.Setenv(k, v)
	}
	cfg, err := Load(repoPath(composeSeance))
	require.NoError(t, err)
	require.NotEmpty(t, cfg.Channels)

	// The seance service mounts it where its command points.
	c := readCompose(t)
	s := c.Services["seance"]
	i := slices.Index(s.Command, "-config")
	require.GreaterOrEqual(t, i, 0, "seance command: -config")
	require.Less(t, i+1, len(s.Command))
	require.Equal(t, s.Command[i+1], containerFile(mounts(t, s.Volumes), composeSeance))
}

// TestComposeRecordings checks that every directory the compose config
// records to is on a named volume of the seance service, and that the
// image creates that volume's directory owned by the user seance runs as:
// Docker gives a new named volume the owner of the image's directory, and
// seance, not root, could not write to a root-owned one.
func TestComposeRecordings(t *testing.T) {
	cfg, _ := composeSeanceConfig(t)
	c := readCompose(t)
	ms := mounts(t, c.Services["seance"].Volumes)
	data, err := os.ReadFile(repoPath("Dockerfile"))
	require.NoError(t, err)
	df := string(data)
	user := regexp.MustCompile(`(?m)^USER (\S+)\s*$`).FindStringSubmatch(df)
	require.NotNil(t, user, "Dockerfile: USER")
	require.Regexp(t, `^\d+:\d+$`, user[1], "Dockerfile: USER by number")

	recorded := 0
	for _, ch := range cfg.Channels {
		if !ch.Record.Enabled {
			require.NotEqual(t, ReplayPublic, ch.Replay, "channel %s: replay without recording", ch.Name)
			continue
		}
		recorded++
		var vol mount
		for _, m := range ms {
			if m.hostPath() == "" && (ch.Record.Dir == m.target || strings.HasPrefix(ch.Record.Dir, m.target+"/")) {
				vol = m
			}
		}
		require.NotEmpty(t, vol.target, "channel %s: record.dir %s is on no named volume of the seance service (recordings would be lost with the container)", ch.Name, ch.Record.Dir)
		require.Regexp(t, `(?m)^COPY --from=build --chown=`+regexp.QuoteMeta(user[1])+` \S+ `+regexp.QuoteMeta(vol.target)+`\s*$`, df,
			"Dockerfile: create %s owned by USER %s", vol.target, user[1])
	}
	// The ops scrape (cmd/seance TestOpsMetricNamesExist) runs this config:
	// it needs a recorder for the recording metrics the alerts use.
	require.NotZero(t, recorded, "%s records no channel", composeSeance)
}

// TestGrafanaProvisioning checks the dashboard JSON's shape and that the
// provisioning files point at what docker-compose.yml mounts.
func TestGrafanaProvisioning(t *testing.T) {
	var dash struct {
		UID        string `json:"uid"`
		Templating struct {
			List []struct {
				Name    string `json:"name"`
				Type    string `json:"type"`
				Current struct {
					Value any `json:"value"`
				} `json:"current"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	data, err := os.ReadFile(repoPath(grafanaDash))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &dash))
	require.NotEmpty(t, dash.UID)
	var vars []string
	var dsDefault any
	for _, v := range dash.Templating.List {
		vars = append(vars, v.Name)
		if v.Name == "datasource" {
			dsDefault = v.Current.Value
		}
	}
	require.Contains(t, vars, "channel")
	var rows []string
	for _, p := range dash.Panels {
		if p.Type == "row" {
			rows = append(rows, p.Title)
			continue
		}
		require.NotEmpty(t, p.Targets, "panel %q", p.Title)
		for _, tg := range p.Targets {
			require.NotEmpty(t, tg.Expr, "panel %q", p.Title)
		}
	}
	require.Len(t, rows, 5, "rows: ingest, viewers, destinations, slate and recording, meeting capture")

	var ds struct {
		Datasources []struct {
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	readYAML(t, grafanaDSFile, &ds)
	require.Len(t, ds.Datasources, 1)
	require.Equal(t, "prometheus", ds.Datasources[0].Type)
	require.Equal(t, dsDefault, ds.Datasources[0].UID, "the dashboard's default datasource is the provisioned one")
	c := readCompose(t)
	require.Equal(t, "http://prometheus:9090", ds.Datasources[0].URL, "Prometheus' own port inside the compose network")

	var prov struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, grafanaDBFile, &prov)
	require.Len(t, prov.Providers, 1)
	gm := mounts(t, c.Services["grafana"].Volumes)
	require.Equal(t, prov.Providers[0].Options.Path, path.Dir(containerFile(gm, grafanaDash)), "dashboards provider path vs the mounted dashboards")
	require.Equal(t, "/etc/grafana/provisioning", containerFile(gm, "configs/grafana/provisioning"))
	env := c.Services["grafana"].Environment
	require.Equal(t, containerFile(gm, grafanaDash), env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
	require.Equal(t, "false", env["GF_AUTH_ANONYMOUS_ENABLED"])
	require.Contains(t, env["GF_SECURITY_ADMIN_PASSWORD"], "${GRAFANA_ADMIN_PASSWORD")
}
