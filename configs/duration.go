package configs

import (
	"errors"
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written in YAML as a Go duration string: "30s",
// "1m30s", "0". Convert it with time.Duration(d).
type Duration time.Duration

// String returns the duration as time.Duration formats it ("30s").
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText encodes the duration as its String form; YAML and JSON use it.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a duration string such as "30s".
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := parseDuration(string(text))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// UnmarshalYAML reads a duration string such as "30s". Parse does not use it
// (its errors name the key); it serves other YAML readers, and its errors name
// the line.
func (d *Duration) UnmarshalYAML(value *yaml.Node) error {
	if value.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expected a duration like \"30s\"", value.Line)
	}
	v, err := parseDuration(value.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q %w", value.Line, value.Value, err)
	}
	*d = v
	return nil
}

// errDuration is the reason parseDuration gives; callers prefix the value.
var errDuration = errors.New("is not a duration: use a number and a unit, e.g. \"30s\" or \"1m\"")

func parseDuration(s string) (Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, errDuration
	}
	return Duration(v), nil
}
