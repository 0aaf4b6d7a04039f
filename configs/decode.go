package configs

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Limits that keep a hostile file (aliases of aliases, self-referencing
// anchors) from making decoding loop or blow up.
const (
	maxDepth = 32
	maxNodes = 100_000
)

// decoder decodes a YAML node tree into a Config, expanding ${NAME} in scalar
// values as it reads them. Its errors name the key path, and never quote a value
// that came from the environment.
type decoder struct {
	getenv func(string) (string, bool)
	errs   []error
	// tainted maps the key paths whose value came (in part) from the
	// environment to the references it came from, e.g. "${BOURG_YT_KEY}".
	tainted map[string][]string
	// values are the environment values the file used, for scrub.
	values []string
	nodes  int
	// tooDeep is set once the limits are hit, to report it once.
	tooDeep bool
}

// defaulter is implemented by list elements that have defaults (Channel,
// Destination): a new element gets them before its keys are decoded.
type defaulter interface{ setDefaults() }

var (
	durationType = reflect.TypeFor[Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
	bitRateType  = reflect.TypeFor[BitRate]()
)

func (d *decoder) fail(path, msg string) {
	d.errs = append(d.errs, &problem{path: path, msg: msg})
}

// decode decodes n into v, which is addressable.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, depth int) {
	d.nodes++
	if depth > maxDepth || d.nodes > maxNodes {
		if !d.tooDeep {
			d.tooDeep = true
			d.fail(path, "the document is nested or aliased too deeply")
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		d.decode(n.Alias, v, path, depth+1)
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // "key:" or "key: ~" leaves the default
	}
	t := v.Type()
	switch {
	case t == durationType:
		s, ok := d.scalar(n, path, `a duration like "30s"`)
		if !ok {
			return
		}
		dur, err := parseDuration(s)
		if err != nil {
			d.fail(path, d.show(path, strconv.Quote(s))+" "+err.Error())
			return
		}
		v.Set(reflect.ValueOf(dur))
	case t == byteSizeType:
		s, ok := d.scalar(n, path, `a size like "50GiB"`)
		if !ok {
			return
		}
		size, err := parseByteSize(s)
		if err != nil {
			d.fail(path, d.show(path, strconv.Quote(s))+" "+err.Error())
			return
		}
		v.Set(reflect.ValueOf(size))
	case t == bitRateType:
		s, ok := d.scalar(n, path, `a bit rate like "500k"`)
		if !ok {
			return
		}
		rate, err := parseBitRate(s)
		if err != nil {
			d.fail(path, d.show(path, strconv.Quote(s))+" "+err.Error())
			return
		}
		v.Set(reflect.ValueOf(rate))
	case t.Kind() == reflect.Struct:
		d.decodeStruct(n, v, path, depth)
	case t.Kind() == reflect.Slice:
		d.decodeSlice(n, v, path, depth)
	case t.Kind() == reflect.String:
		if s, ok := d.scalar(n, path, "a string"); ok {
			v.SetString(s)
		}
	case t.Kind() == reflect.Bool:
		s, ok := d.scalar(n, path, "true or false")
		if !ok {
			return
		}
		switch strings.ToLower(s) {
		case "true", "yes", "on":
			v.SetBool(true)
		case "false", "no", "off":
			v.SetBool(false)
		default:
			d.fail(path, d.show(path, strconv.Quote(s))+" is not true or false")
		}
	case t.Kind() == reflect.Int:
		s, ok := d.scalar(n, path, "a whole number")
		if !ok {
			return
		}
		i, err := strconv.ParseInt(s, 10, 0)
		if err != nil {
			d.fail(path, d.show(path, strconv.Quote(s))+" is not a whole number")
			return
		}
		v.SetInt(i)
	default:
		// Only reached if the schema gains a type this decoder does not know.
		d.fail(path, "cannot be read: unsupported type "+t.String())
	}
}

// scalar returns the expanded value of a scalar node, or reports that n is not
// one.
func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.fail(path, "expected "+want+", got "+kindName(n))
		return "", false
	}
	s, refs, err := expand(n, d.getenv, &d.values)
	if err != nil {
		d.errs = append(d.errs, err)
		return "", false
	}
	if len(refs) > 0 {
		d.tainted[path] = refs
	} else {
		delete(d.tainted, path) // a later key (merge, duplicate) replaced it
	}
	return s, true
}

// show returns quoted, the value read at path ready to quote in a message, or,
// when it came from the environment, the references it came from.
func (d *decoder) show(path, quoted string) string {
	return showValue(d.tainted, path, quoted)
}

func showValue(tainted map[string][]string, path, quoted string) string {
	if refs, ok := tainted[path]; ok {
		return "the value of " + strings.Join(refs, " and ")
	}
	return quoted
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return "a single value"
}

// decodeStruct decodes a mapping into a struct, by the fields' yaml tags.
func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		d.fail(path, "expected a mapping of keys, got "+kindName(n))
		return
	}
	t := v.Type()
	fields := make(map[string]int, t.NumField())
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		fields[name] = i
		names = append(names, name)
	}
	// Merge keys ("<<: *defaults") first, so that the mapping's own keys
	// override what they bring, wherever they are written.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if isMerge(n.Content[i]) {
			d.merge(n.Content[i+1], v, path, depth)
		}
	}
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if isMerge(k) {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(path, fmt.Sprintf("line %d: a key must be a plain name, got %s", k.Line, kindName(k)))
			continue
		}
		if line, dup := seen[k.Value]; dup {
			d.fail(path, fmt.Sprintf("key %q is set twice (lines %d and %d)", k.Value, line, k.Line))
			continue
		}
		seen[k.Value] = k.Line
		idx, ok := fields[k.Value]
		if !ok {
			msg := fmt.Sprintf("unknown key %q", k.Value)
			if s := suggest(k.Value, names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.fail(path, msg)
			continue
		}
		d.decode(val, v.Field(idx), joinKey(path, k.Value), depth+1)
	}
}

func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "" || k.Tag == "!" || k.ShortTag() == "!!merge")
}

// merge decodes the mapping, or list of mappings, of a merge key into v.
func (d *decoder) merge(n *yaml.Node, v reflect.Value, path string, depth int) {
	for n.Kind == yaml.AliasNode && depth <= maxDepth {
		n, depth = n.Alias, depth+1
	}
	switch n.Kind {
	case yaml.MappingNode:
		d.decodeStruct(n, v, path, depth+1)
	case yaml.SequenceNode:
		// Earlier mappings in the list override later ones (YAML merge key spec).
		for i := len(n.Content) - 1; i >= 0; i-- {
			d.merge(n.Content[i], v, path, depth+1)
		}
	default:
		d.fail(path, "a merge key (<<) needs a mapping or a list of mappings")
	}
}

// decodeSlice decodes a list. A single value is accepted as a one-item list of
// strings (urls: "stun:…").
func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string, depth int) {
	elem := v.Type().Elem()
	if n.Kind == yaml.ScalarNode && elem.Kind() == reflect.String {
		s := reflect.MakeSlice(v.Type(), 1, 1)
		d.decode(n, s.Index(0), path+"[0]", depth+1)
		v.Set(s)
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(path, "expected a list, got "+kindName(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		e := s.Index(i)
		if df, ok := e.Addr().Interface().(defaulter); ok {
			df.setDefaults()
		}
		d.decode(item, e, path+"["+strconv.Itoa(i)+"]", depth+1)
	}
	v.Set(s)
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// suggest returns the name closest to key, when one is close enough to be a
// likely typo.
func suggest(key string, names []string) string {
	best, bestDist := "", 3
	for _, name := range names {
		if dist := editDistance(strings.ToLower(key), name); dist < bestDist {
			best, bestDist = name, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, bytewise.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
