package web

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/relay"
)

// openAPIDoc is the embedded document, decoded.
func openAPIDoc(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	require.NoError(t, json.Unmarshal(openAPI, &doc))
	return doc
}

var openAPIMethods = []string{"get", "put", "post", "delete", "patch", "head", "options"}

// pathParams returns the {names} of an OpenAPI path template.
func pathParams(p string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(p, -1) {
		out = append(out, m[1])
	}
	sort.Strings(out)
	return out
}

// sampleValue is a value of a path parameter the mux routes.
var sampleValue = map[string]string{"channel": "bourg", "destination": "youtube", "action": "start", "file": "dashboard.js"}

// TestOpenAPIRoutes walks the admin mux's routes: each is in the document,
// and each of the document's operations is routed by the mux to the same
// pattern, with its path parameters declared.
func TestOpenAPIRoutes(t *testing.T) {
	doc := openAPIDoc(t)
	require.True(t, strings.HasPrefix(doc["openapi"].(string), "3.1."), "OpenAPI 3.1")
	paths := doc["paths"].(map[string]any)
	hub, reg := newHub(t)
	a, err := newAdmin(AdminConfig{Gatherer: reg}, hub, zerolog.Nop())
	require.NoError(t, err)

	registered := map[string]bool{}
	for _, r := range a.routes {
		registered[r.pattern] = true
		method, p, ok := strings.Cut(r.pattern, " ")
		require.True(t, ok, "route %q has a method", r.pattern)
		item, ok := paths[p].(map[string]any)
		require.True(t, ok, "route %s is not in openapi.json", r.pattern)
		_, ok = item[strings.ToLower(method)]
		require.True(t, ok, "route %s: method not in openapi.json", r.pattern)
	}

	for p, it := range paths {
		item := it.(map[string]any)
		for _, method := range openAPIMethods {
			op, ok := item[method].(map[string]any)
			if !ok {
				continue
			}
			pattern := strings.ToUpper(method) + " " + p
			t.Run(pattern, func(t *testing.T) {
				require.True(t, registered[pattern], "documented but not a route")
				url := p
				for _, name := range pathParams(p) {
					v, ok := sampleValue[name]
					require.True(t, ok, "no sample value for {%s}", name)
					url = strings.ReplaceAll(url, "{"+name+"}", v)
				}
				req, err := http.NewRequest(strings.ToUpper(method), url, nil)
				require.NoError(t, err)
				_, got := a.mux.Handler(req)
				require.Equal(t, pattern, got, "the mux routes %s %s elsewhere", req.Method, url)

				var declared []string
				for _, list := range []any{item["parameters"], op["parameters"]} {
					params, _ := list.([]any)
					for _, pr := range params {
						prm := resolve(t, doc, pr.(map[string]any))
						if prm["in"] == "path" {
							declared = append(declared, prm["name"].(string))
							require.Equal(t, true, prm["required"], "path parameter %s is required", prm["name"])
						}
					}
				}
				sort.Strings(declared)
				require.Equal(t, pathParams(p), declared, "path parameters")
				require.NotEmpty(t, op["operationId"])
				require.NotEmpty(t, op["summary"])
				responses := op["responses"].(map[string]any)
				require.NotEmpty(t, responses)
				_, open := op["security"]
				if !open {
					require.Contains(t, responses, "401", "a route behind the token documents 401")
				}
				for code, r := range responses {
					resp := resolve(t, doc, r.(map[string]any))
					require.NotEmpty(t, resp["description"], "response %s", code)
					content, _ := resp["content"].(map[string]any)
					for ct, m := range content {
						if s, ok := m.(map[string]any)["schema"].(map[string]any); ok {
							requireRefsResolve(t, doc, s, fmt.Sprintf("%s %s %s", pattern, code, ct))
						}
					}
				}
			})
		}
	}
}

// TestOpenAPIErrorCodes: every code the admin code answers with is in the
// Error schema's enum.
func TestOpenAPIErrorCodes(t *testing.T) {
	doc := openAPIDoc(t)
	errSchema := resolve(t, doc, map[string]any{"$ref": "#/components/schemas/Error"})
	enum := errSchema["properties"].(map[string]any)["error"].(map[string]any)["properties"].(map[string]any)["code"].(map[string]any)["enum"].([]any)
	files, err := os.ReadDir(".")
	require.NoError(t, err)
	found := 0
	re := regexp.MustCompile(`a\.fail\(w, r, http\.Status\w+, "([a-z_]+)"`)
	for _, f := range files {
		if !strings.HasPrefix(f.Name(), "admin") || strings.HasSuffix(f.Name(), "_test.go") || !strings.HasSuffix(f.Name(), ".go") {
			continue
		}
		src, err := os.ReadFile(f.Name())
		require.NoError(t, err)
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			found++
			require.Contains(t, enum, m[1], "%s answers with code %q: document it", f.Name(), m[1])
		}
	}
	require.GreaterOrEqual(t, found, 8)
}

// TestOpenAPIResponses: real answers of the main routes, errors and event
// payloads validate against their documented schemas.
func TestOpenAPIResponses(t *testing.T) {
	doc := openAPIDoc(t)
	hub := relay.NewHub([]relay.ChannelConfig{
		{Name: "bourg", Title: "Conseil municipal de Bourg", Grace: time.Minute},
		{Name: "ville", Title: "Ville"},
	}, zerolog.Nop(), relay.NewMetrics(prometheus.NewRegistry()))
	base, c, _, _, _ := startAdminWith(t, hub, AdminConfig{Token: adminToken, sampleEvery: 50 * time.Millisecond})
	auth := bearer("Bearer " + adminToken)
	ch, err := hub.Channel("bourg")
	require.NoError(t, err)
	sess, err := ch.Publish(relay.PublisherInfo{Protocol: "rtmp", RemoteAddr: "192.0.2.1:50000"}, relay.Tracks{Video: &relay.VideoTrack{}})
	require.NoError(t, err)
	defer sess.Close()
	ev := openEvents(t, base, auth)

	for _, tc := range []struct {
		method, path, template string
		header                 http.Header
		status                 int
	}{
		{"GET", "/api/v1/channels", "/api/v1/channels", auth, 200},
		{"GET", "/api/v1/channels/bourg", "/api/v1/channels/{channel}", auth, 200},
		{"GET", "/api/v1/channels/ville", "/api/v1/channels/{channel}", auth, 200},
		{"GET", "/api/v1/channels/bourg/history", "/api/v1/channels/{channel}/history", auth, 200},
		{"POST", "/api/v1/channels/bourg/destinations/youtube/restart", "/api/v1/channels/{channel}/destinations/{destination}/{action}", auth, 202},
		{"POST", "/api/v1/channels/bourg/kick", "/api/v1/channels/{channel}/kick", auth, 202},
		{"POST", "/api/v1/channels/bourg/kick", "/api/v1/channels/{channel}/kick", auth, 409},
		{"GET", "/api/v1/openapi.json", "/api/v1/openapi.json", auth, 200},
		{"GET", "/api/v1/channels", "/api/v1/channels", nil, 401},
		{"GET", "/api/v1/channels/nope", "/api/v1/channels/{channel}", auth, 404},
		{"GET", "/api/v1/channels/nope/history", "/api/v1/channels/{channel}/history", auth, 404},
		{"POST", "/api/v1/channels/bourg/destinations/nope/stop", "/api/v1/channels/{channel}/destinations/{destination}/{action}", auth, 404},
		{"POST", "/api/v1/channels/bourg/meeting/restart", "/api/v1/channels/{channel}/meeting/{action}", auth, 202},
		{"POST", "/api/v1/channels/ville/meeting/start", "/api/v1/channels/{channel}/meeting/{action}", auth, 404},
	} {
		t.Run(fmt.Sprintf("%s %s %d", tc.method, tc.path, tc.status), func(t *testing.T) {
			r := do(t, c, tc.method, base+tc.path, tc.header)
			require.Equal(t, tc.status, r.status, r.body)
			op := paths(doc)[tc.template].(map[string]any)[strings.ToLower(tc.method)].(map[string]any)
			resp, ok := op["responses"].(map[string]any)[fmt.Sprint(tc.status)].(map[string]any)
			require.True(t, ok, "status %d is not documented", tc.status)
			resp = resolve(t, doc, resp)
			media, ok := resp["content"].(map[string]any)[strings.Split(r.header.Get("Content-Type"), ";")[0]].(map[string]any)
			require.True(t, ok, "content type %s is not documented", r.header.Get("Content-Type"))
			var v any
			require.NoError(t, json.Unmarshal([]byte(r.body), &v))
			requireValid(t, doc, media["schema"].(map[string]any), v)
		})
	}

	t.Run("events", func(t *testing.T) {
		x := paths(doc)["/api/v1/events"].(map[string]any)["get"].(map[string]any)["x-events"].(map[string]any)
		for _, name := range []string{eventState, eventHealth} {
			var v any
			require.NoError(t, json.Unmarshal([]byte(ev.next(t, name, 2*time.Second, nil).data), &v))
			requireValid(t, doc, x[name].(map[string]any), v)
		}
	})

	t.Run("the validator sees a broken answer", func(t *testing.T) {
		s := map[string]any{"$ref": "#/components/schemas/ChannelStatus"}
		require.NotEmpty(t, validate(doc, s, map[string]any{"name": "x"}, "$"), "missing properties")
		var good map[string]any
		require.NoError(t, json.Unmarshal([]byte(do(t, c, "GET", base+"/api/v1/channels/ville", auth).body), &good))
		require.Empty(t, validate(doc, s, good, "$"))
		good["state"] = "on air"
		require.NotEmpty(t, validate(doc, s, good, "$"), "enum")
		good["state"] = "idle"
		good["viewers"] = map[string]any{"total": "3"}
		require.NotEmpty(t, validate(doc, s, good, "$"), "type")
	})
}

func paths(doc map[string]any) map[string]any { return doc["paths"].(map[string]any) }

// resolve follows a local $ref.
func resolve(t *testing.T, doc map[string]any, v map[string]any) map[string]any {
	t.Helper()
	out, err := deref(doc, v)
	require.NoError(t, err)
	return out
}

func deref(doc map[string]any, v map[string]any) (map[string]any, error) {
	for range 10 {
		ref, ok := v["$ref"].(string)
		if !ok {
			return v, nil
		}
		var cur any = doc
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("bad $ref %s", ref)
			}
			cur = m[part]
		}
		next, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("$ref %s does not resolve", ref)
		}
		v = next
	}
	return nil, fmt.Errorf("$ref loop")
}

// requireRefsResolve checks every $ref under v.
func requireRefsResolve(t *testing.T, doc map[string]any, v any, where string) {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x["$ref"]; ok {
			_, err := deref(doc, x)
			require.NoError(t, err, where)
		}
		for _, c := range x {
			requireRefsResolve(t, doc, c, where)
		}
	case []any:
		for _, c := range x {
			requireRefsResolve(t, doc, c, where)
		}
	}
}

func requireValid(t *testing.T, doc, schema map[string]any, v any) {
	t.Helper()
	if errs := validate(doc, schema, v, "$"); len(errs) > 0 {
		b, _ := json.MarshalIndent(v, "", "  ")
		t.Fatalf("answer does not match its documented schema:\n%s\n%s", strings.Join(errs, "\n"), b)
	}
}

// validate is a minimal JSON Schema (2020-12, as OpenAPI 3.1 uses it)
// validator: $ref, type, enum, const, pattern, required, properties,
// additionalProperties, items and oneOf. Enough to keep the document
// honest about what the handlers answer.
func validate(doc, schema map[string]any, v any, at string) []string {
	schema, err := deref(doc, schema)
	if err != nil {
		return []string{at + ": " + err.Error()}
	}
	if alts, ok := schema["oneOf"].([]any); ok {
		n := 0
		for _, s := range alts {
			if len(validate(doc, s.(map[string]any), v, at)) == 0 {
				n++
			}
		}
		if n != 1 {
			return []string{fmt.Sprintf("%s: matches %d of oneOf's schemas, want 1", at, n)}
		}
		return nil
	}
	var errs []string
	if ty, ok := schema["type"]; ok {
		var types []string
		switch x := ty.(type) {
		case string:
			types = []string{x}
		case []any:
			for _, s := range x {
				types = append(types, s.(string))
			}
		}
		if !slices.ContainsFunc(types, func(ty string) bool { return isType(v, ty) }) {
			return []string{fmt.Sprintf("%s: %T is not %v", at, v, types)}
		}
	}
	if enum, ok := schema["enum"].([]any); ok && !slices.Contains(enum, v) {
		errs = append(errs, fmt.Sprintf("%s: %v is not one of %v", at, v, enum))
	}
	if c, ok := schema["const"]; ok && c != v {
		errs = append(errs, fmt.Sprintf("%s: %v is not %v", at, v, c))
	}
	if p, ok := schema["pattern"].(string); ok {
		if s, ok := v.(string); ok && !regexp.MustCompile(p).MatchString(s) {
			errs = append(errs, fmt.Sprintf("%s: %q does not match %s", at, s, p))
		}
	}
	switch x := v.(type) {
	case map[string]any:
		for _, r := range asList(schema["required"]) {
			if _, ok := x[r.(string)]; !ok {
				errs = append(errs, fmt.Sprintf("%s: missing required %q", at, r))
			}
		}
		props, _ := schema["properties"].(map[string]any)
		for k, val := range x {
			if ps, ok := props[k].(map[string]any); ok {
				errs = append(errs, validate(doc, ps, val, at+"."+k)...)
				continue
			}
			switch ap := schema["additionalProperties"].(type) {
			case map[string]any:
				errs = append(errs, validate(doc, ap, val, at+"."+k)...)
			case bool:
				if !ap {
					errs = append(errs, fmt.Sprintf("%s: unexpected property %q", at, k))
				}
			}
		}
	case []any:
		if items, ok := schema["items"].(map[string]any); ok {
			for i, it := range x {
				errs = append(errs, validate(doc, items, it, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	return errs
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func isType(v any, ty string) bool {
	switch ty {
	case "null":
		return v == nil
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "number":
		_, ok := v.(float64)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == math.Trunc(f)
	}
	return false
}
