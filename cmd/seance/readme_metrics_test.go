package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestREADMEDocumentsEveryMetric keeps the README's metrics reference in
// step with the code: every metric name registered anywhere in seance must
// be documented there.
func TestREADMEDocumentsEveryMetric(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	out, err := exec.Command("git", "-C", "../..", "ls-files", "*.go").Output()
	require.NoError(t, err)
	name := regexp.MustCompile(`Name:\s+"(seance_[a-z_]+)"`)
	seen := map[string]bool{}
	for _, f := range strings.Fields(string(out)) {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile("../../" + f)
		require.NoError(t, err)
		for _, m := range name.FindAllStringSubmatch(string(src), -1) {
			seen[m[1]] = true
		}
	}
	require.Greater(t, len(seen), 20, "the metric scan found too few names")
	for m := range seen {
		require.True(t, strings.Contains(string(readme), "`"+m+"`"), "README's metrics reference must document %s", m)
	}
}
