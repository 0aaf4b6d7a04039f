package configs

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// dashPanel is the part of a Grafana panel the tests read.
type dashPanel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos struct {
		X int `json:"x"`
		Y int `json:"y"`
		W int `json:"w"`
		H int `json:"h"`
	} `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	FieldConfig struct {
		Defaults struct {
			Mappings []struct {
				Type    string `json:"type"`
				Options map[string]struct {
					Text string `json:"text"`
				} `json:"options"`
			} `json:"mappings"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
}

func readDashboard(t *testing.T) []dashPanel {
	t.Helper()
	var dash struct {
		Panels []dashPanel `json:"panels"`
	}
	data, err := os.ReadFile(repoPath(grafanaDash))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &dash))
	require.NotEmpty(t, dash.Panels)
	return dash.Panels
}

// grafanaVars are the dashboard variables and Grafana's built-in ones, as
// Grafana would substitute them.
var grafanaVars = strings.NewReplacer(
	"$channel", ".*",
	"$__rate_interval", "1m",
	"$__range", "1h",
	"$__interval", "15s",
)

// promQL returns a panel query with the variables substituted.
func promQL(t *testing.T, p dashPanel, expr string) string {
	t.Helper()
	q := grafanaVars.Replace(expr)
	require.NotContains(t, q, "$", "panel %q: unknown variable in %s", p.Title, expr)
	return q
}

// TestGrafanaLayout checks that panel ids are unique and that no two
// panels overlap on Grafana's 24-column grid.
func TestGrafanaLayout(t *testing.T) {
	panels := readDashboard(t)
	ids := map[int]string{}
	type cell struct{ x, y int }
	used := map[cell]string{}
	for _, p := range panels {
		if other, ok := ids[p.ID]; ok {
			t.Fatalf("panel %q: id %d also used by %q", p.Title, p.ID, other)
		}
		ids[p.ID] = p.Title
		g := p.GridPos
		require.True(t, g.W > 0 && g.H > 0 && g.X >= 0 && g.X+g.W <= 24, "panel %q: gridPos %+v", p.Title, g)
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				c := cell{x, y}
				if other, ok := used[c]; ok {
					t.Fatalf("panel %q overlaps %q at x=%d y=%d", p.Title, other, x, y)
				}
				used[c] = p.Title
			}
		}
	}
}

// TestGrafanaQueriesParse has promtool parse every panel query, as
// recording rules (promtool has no command to parse a bare expression).
func TestGrafanaQueriesParse(t *testing.T) {
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for _, p := range readDashboard(t) {
		for _, tg := range p.Targets {
			rules = append(rules, rule{
				Record: fmt.Sprintf("grafana_panel_%d_%s", p.ID, tg.RefID),
				Expr:   promQL(t, p, tg.Expr),
			})
		}
	}
	require.Greater(t, len(rules), 30)
	data, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "grafana", "rules": rules}}})
	require.NoError(t, err)
	f := filepath.Join(t.TempDir(), "grafana_queries.yml")
	require.NoError(t, os.WriteFile(f, data, 0o600))
	promtool(t, "check", "rules", f)
}

// stateCase is one input of a state-timeline panel that codes a state as a
// number: the series present, and the text its value must map to.
type stateCase struct {
	channel string
	series  map[string]string // metric selector (without the channel) → values
	text    string            // "" : the channel has no value
}

// evalStatePanel runs the panel's query over the cases with promtool's
// rule unit tests, expecting for each channel the value whose mapping
// starts with the case's text.
func evalStatePanel(t *testing.T, p dashPanel, cases []stateCase) {
	t.Helper()
	require.Len(t, p.Targets, 1, "panel %q", p.Title)
	require.Len(t, p.FieldConfig.Defaults.Mappings, 1, "panel %q", p.Title)
	mapping := p.FieldConfig.Defaults.Mappings[0].Options

	var inputs []map[string]string
	var samples []map[string]any
	for _, c := range cases {
		for sel, values := range c.series {
			name, labels, _ := strings.Cut(strings.TrimSuffix(sel, "}"), "{")
			lbls := `job="seance", instance="i", channel="` + c.channel + `"`
			if labels != "" {
				lbls += ", " + labels
			}
			inputs = append(inputs, map[string]string{"series": name + "{" + lbls + "}", "values": values})
		}
		if c.text == "" {
			continue
		}
		var values []string
		for k, m := range mapping {
			if strings.HasPrefix(m.Text, c.text) {
				values = append(values, k)
			}
		}
		require.Len(t, values, 1, "panel %q: values that map to %q", p.Title, c.text)
		v, err := strconv.ParseFloat(values[0], 64)
		require.NoError(t, err)
		samples = append(samples, map[string]any{"labels": `{channel="` + c.channel + `"}`, "value": v})
	}
	test := map[string]any{
		"rule_files":          []string{},
		"evaluation_interval": "15s",
		"tests": []any{map[string]any{
			"interval":     "15s",
			"input_series": inputs,
			"promql_expr_test": []any{map[string]any{
				"expr":        promQL(t, p, p.Targets[0].Expr),
				"eval_time":   "1m",
				"exp_samples": samples,
			}},
		}},
	}
	data, err := yaml.Marshal(test)
	require.NoError(t, err)
	f := filepath.Join(t.TempDir(), "panel_test.yml")
	require.NoError(t, os.WriteFile(f, data, 0o600))
	promtool(t, "test", "rules", f)
}

// panelUsing returns the one panel whose queries match re.
func panelUsing(t *testing.T, re string) dashPanel {
	t.Helper()
	var found []dashPanel
	for _, p := range readDashboard(t) {
		for _, tg := range p.Targets {
			if regexp.MustCompile(re).MatchString(tg.Expr) {
				found = append(found, p)
				break
			}
		}
	}
	require.Len(t, found, 1, "panels whose query matches %s", re)
	return found[0]
}

// TestGrafanaRecordingState checks the recording panel: each state of a
// recording channel shows its text; a channel without recording shows
// nothing.
func TestGrafanaRecordingState(t *testing.T) {
	p := panelUsing(t, `seance_recording_up\b`)
	require.Equal(t, "state-timeline", p.Type)
	evalStatePanel(t, p, []stateCase{
		{"rec", map[string]string{"seance_recording_up": "1x4", "seance_channel_live": "1x4"}, "Enregistre"},
		{"failing", map[string]string{"seance_recording_up": "0x4", "seance_channel_live": "1x4"}, "En direct, n'enregistre pas"},
		{"offline", map[string]string{"seance_recording_up": "0x4", "seance_channel_live": "0x4"}, "Hors ligne"},
		{"finishing", map[string]string{"seance_recording_up": "1x4", "seance_channel_live": "0x4"}, "Termine le fichier"},
		{"norecord", map[string]string{"seance_channel_live": "1x4"}, ""},
	})
}

// TestGrafanaMeetingState checks the meeting capture panel: each state
// shows the words the seance dashboard uses for it.
func TestGrafanaMeetingState(t *testing.T) {
	p := panelUsing(t, `seance_meeting_state\b`)
	require.Equal(t, "state-timeline", p.Type)
	states := []string{"idle", "waiting", "launching", "joining", "capturing", "retrying", "removed", "alone"}
	texts := map[string]string{
		"idle": "À l'arrêt", "waiting": "En attente de la réunion", "launching": "Démarrage du navigateur",
		"joining": "Entrée dans la réunion", "capturing": "Capture en cours", "retrying": "Redémarrage",
		"removed": "Retiré de la réunion", "alone": "Seul dans la réunion",
	}
	var cases []stateCase
	for _, s := range states {
		series := map[string]string{}
		for _, o := range states {
			v := "0x4"
			if o == s {
				v = "1x4"
			}
			series[`seance_meeting_state{state="`+o+`"}`] = v
		}
		cases = append(cases, stateCase{"c_" + s, series, texts[s]})
	}
	// All gauges at 0 (as between two scrapes of a state change) shows idle.
	cases = append(cases, stateCase{"never", map[string]string{`seance_meeting_state{state="idle"}`: "0x4", `seance_meeting_state{state="capturing"}`: "0x4"}, texts["idle"]})
	evalStatePanel(t, p, cases)
}
