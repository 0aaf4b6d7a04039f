package web

import (
	_ "embed"
	"net/http"
)

// openAPI describes every admin route (OpenAPI 3.1). A test checks it
// against the mux's routes and the handlers' answers.
//
//go:embed openapi.json
var openAPI []byte

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(openAPI)
}
