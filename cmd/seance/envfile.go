package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// parseEnvFile reads KEY=value lines as systemd's EnvironmentFile= does
// for the files seance writes: blank lines and lines starting with '#'
// or ';' are skipped, spaces around the key and value are trimmed, and a
// value in matching single or double quotes loses them. Errors name the
// line, never its value (it is a secret).
func parseEnvFile(data []byte) (map[string]string, error) {
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || !envVarRE.MatchString(k) {
			return nil, fmt.Errorf("line %d: expected NAME=value", n)
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		env[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return env, nil
}

// setEnvFile sets the variables of the env file at path in this process's
// environment.
func setEnvFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	env, err := parseEnvFile(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for k, v := range env {
		if err := os.Setenv(k, v); err != nil {
			return fmt.Errorf("%s: %s: %w", path, k, err)
		}
	}
	return nil
}
