package master

import (
	_ "embed"
	"encoding/json"
	"net/http"
	"strings"

	"g6/admin"
)

// The console's JSON API (issue #21): /api/v1/WHAT answers what `show
// WHAT json` does on the admin port, built by the same code (admin.Show),
// so the two never disagree. Read-only; served by the master, never by a
// worker.

// consoleLists are the documents under /api/v1/ that show commands make;
// /api/v1/history is the charts' ring (history.go).
var consoleLists = []string{"rules", "servers", "workers", "sessions", "stats", "nodes", "resolvers"}

//go:embed console.html
var consolePage []byte

// pageHandler serves the console's one page at /.
func pageHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'")
		w.Write(consolePage)
	})
}

// apiHandler serves /api/v1/.
func (m *Master) apiHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		what := strings.TrimPrefix(r.URL.Path, "/api/v1/")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "GET only", http.StatusMethodNotAllowed)
			return
		}
		if what == "history" {
			writeJSON(w, map[string]any{"interval_seconds": 1, "rules": m.history.snapshot()})
			return
		}
		known := false
		for _, l := range consoleLists {
			known = known || l == what
		}
		if !known {
			http.Error(w, "no such list; try /api/v1/{"+strings.Join(consoleLists, ",")+"}", http.StatusNotFound)
			return
		}
		doc, _, err := admin.Show(m, what)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, doc)
	})
}

func writeJSON(w http.ResponseWriter, doc any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(doc)
}
