package configs

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// yamlPaths lists every key path of the schema, the way the README's config
// reference writes them ("channels[].destinations[].key").
func yamlPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		path := prefix + tag
		ft := f.Type
		switch {
		case ft.Kind() == reflect.Struct && ft != reflect.TypeFor[Duration]():
			out = append(out, yamlPaths(ft, path+".")...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && ft.Elem() != reflect.TypeFor[ICEServer]():
			out = append(out, yamlPaths(ft.Elem(), path+"[].")...)
		default:
			out = append(out, path)
		}
	}
	return out
}

// TestREADMEDocumentsEveryKey keeps the README's config reference and the
// example file in step with the schema.
func TestREADMEDocumentsEveryKey(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	example, err := os.ReadFile("seance.yaml")
	require.NoError(t, err)
	paths := yamlPaths(reflect.TypeFor[Config](), "")
	require.Greater(t, len(paths), 20)
	for _, p := range paths {
		require.True(t, strings.Contains(string(readme), "`"+p+"`"), "README's config reference must document %s", p)
		last := p[strings.LastIndex(p, ".")+1:]
		require.True(t, strings.Contains(string(example), last+":"), "configs/seance.yaml must show %s", p)
	}
}
