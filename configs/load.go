package configs

import (
	"bytes"
	_ "embed" // default.yaml
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

//go:embed default.yaml
var defaultYAML []byte

// Default returns the built-in configuration seance serves without a file:
// every key at its default and one channel, "demo", playing the demo source.
// Each call returns a new Config.
func Default() *Config {
	cfg, err := Parse(defaultYAML, func(string) (string, bool) { return "", false })
	if err != nil {
		// default.yaml is compiled in and tested (TestDefault): this is a
		// build defect, not a runtime condition a caller could handle.
		panic("configs: embedded default.yaml is invalid: " + err.Error())
	}
	return cfg
}

// Load reads the YAML file at path and returns its configuration as Parse does,
// with ${NAME} taken from the process environment. Each problem in the
// returned error is prefixed with path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(data, os.LookupEnv)
	if err != nil {
		return nil, prefixErrors(path, err)
	}
	return cfg, nil
}

// Parse reads a YAML configuration: it decodes data over the defaults,
// replacing ${NAME} in values with getenv(NAME) (os.LookupEnv when getenv is
// nil), fills the defaults that depend on other keys, and validates the result.
//
// "$$" is a literal "$", and a "$" not followed by "{" stays as it is. An
// unset variable is an error (matching ErrEnvNotSet); a variable set to ""
// gives "". Only values are expanded, after YAML parsing, so a value cannot
// change the file's structure and comments are left alone.
//
// The returned error joins every problem found (errors.Join), each naming the
// YAML key path or line, and never shows a value that came from the
// environment nor a Secret.
func Parse(data []byte, getenv func(string) (string, bool)) (*Config, error) {
	if getenv == nil {
		getenv = os.LookupEnv
	}
	root, err := parseYAML(data)
	if err != nil {
		return nil, err
	}
	cfg := defaults()
	d := &decoder{getenv: getenv, tainted: make(map[string][]string)}
	if root != nil {
		d.decode(root, reflect.ValueOf(cfg).Elem(), "", 0)
	}
	if len(d.errs) > 0 {
		return nil, scrub(d.errs, d.values)
	}
	cfg.fill()
	if errs := cfg.validate(d.tainted); len(errs) > 0 {
		return nil, scrub(errs, d.values)
	}
	return cfg, nil
}

// parseYAML parses the single YAML document in data. It returns nil for an
// empty document.
func parseYAML(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, yamlError(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, lineProblem(extra.Line, "the file holds more than one YAML document: keep one")
	case !errors.Is(err, io.EOF):
		return nil, yamlError(err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode && !(root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null") {
		return nil, lineProblem(root.Line, "expected a mapping of keys (log, public, channels…), got "+kindName(root))
	}
	return root, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError rewrites a YAML syntax error as "line N: invalid YAML: …". It is
// raised before any ${NAME} is expanded, so it cannot show an environment value.
func yamlError(err error) error {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return lineProblem(line, "invalid YAML: "+m[2])
	}
	return &problem{msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// prefixErrors prefixes each of the joined errors in err.
func prefixErrors(prefix string, err error) error {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = fmt.Errorf("%s: %w", prefix, e)
	}
	return errors.Join(out...)
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expand replaces ${NAME} in a scalar's value. It returns the references it
// replaced ("${NAME}", each once) and appends the values it used to values.
func expand(n *yaml.Node, getenv func(string) (string, bool), values *[]string) (string, []string, error) {
	s := n.Value
	if !strings.Contains(s, "$") {
		return s, nil, nil
	}
	var b strings.Builder
	var refs []string
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", nil, lineProblem(lineOf(n, i), `"${" is not closed: write "$${" for a literal "${"`)
			}
			name := s[i+2 : i+2+end]
			if !envNameRE.MatchString(name) {
				if len(name) > 64 {
					name = name[:64] + "…"
				}
				return "", nil, lineProblem(lineOf(n, i), fmt.Sprintf("%q is not a valid environment variable name", name))
			}
			v, ok := getenv(name)
			if !ok {
				p := lineProblem(lineOf(n, i), "environment variable "+name+" is not set")
				p.wrapped = ErrEnvNotSet
				return "", nil, p
			}
			b.WriteString(v)
			*values = append(*values, v)
			if ref := "${" + name + "}"; !slices.Contains(refs, ref) {
				refs = append(refs, ref)
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String(), refs, nil
}

// lineOf returns the line of the byte at offset in n's value, as exactly as the
// scalar's style allows.
func lineOf(n *yaml.Node, offset int) int {
	if n.Style&yaml.LiteralStyle != 0 {
		// The value starts on the line after the "|" indicator.
		return n.Line + 1 + strings.Count(n.Value[:offset], "\n")
	}
	return n.Line
}
