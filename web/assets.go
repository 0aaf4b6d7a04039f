package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"time"
)

// staticFS holds the public pages' scripts and styles, served at /static/.
// They are files, never inline, so the pages' CSP can forbid inline code.
//
//go:embed static
var staticFS embed.FS

// asset is one embedded file and the hash of its content.
type asset struct {
	body        []byte
	hash        string // first 16 hex digits of its SHA-256
	contentType string
}

// assets serves the embedded static files. Pages link them as
// /static/NAME?v=HASH: such a URL changes whenever the file does, so it is
// cached for a year; any other URL is revalidated (ETag) on every use.
type assets map[string]asset

var contentTypes = map[string]string{
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".json": "application/json",
	".txt":  "text/plain; charset=utf-8",
}

func loadAssets() (assets, error) { return loadAssetsFrom(staticFS, "static") }

// loadAssetsFrom reads the files under dir of fsys (the public pages'
// static/, the dashboard's dashboard/static/).
func loadAssetsFrom(fsys fs.FS, dir string) (assets, error) {
	a := assets{}
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct := contentTypes[path.Ext(p)]
		if ct == "" {
			ct = "application/octet-stream"
		}
		a[path.Base(p)] = asset{body: body, hash: hex.EncodeToString(sum[:8]), contentType: ct}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading embedded static files: %w", err)
	}
	return a, nil
}

// url is the cache-busting address of a static file for the pages.
func (a assets) url(name string) (string, error) { return a.urlAt("/static/", name) }

// urlAt is the cache-busting address of a static file served under prefix.
func (a assets) urlAt(prefix, name string) (string, error) {
	f, ok := a[name]
	if !ok {
		return "", fmt.Errorf("no static file %q", name)
	}
	return prefix + name + "?v=" + f.hash, nil
}

func (a assets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, ok := a[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("ETag", `"`+f.hash+`"`)
	if r.URL.Query().Get("v") == f.hash {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}
