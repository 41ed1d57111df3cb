package master

import (
	"encoding/json"
	"net/http"
	"strings"

	"g6/admin"
)

// The console's JSON API (issue #21): /api/v1/WHAT answers what `show
// WHAT json` does on the admin port, built by the same code (admin.Show),
// so the two never disagree. Read-only; served by the master, never by a
// worker.

// consoleLists are the documents under /api/v1/.
var consoleLists = []string{"rules", "servers", "workers", "sessions", "stats", "nodes", "resolvers"}

// apiHandler serves /api/v1/.
func (m *Master) apiHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		what := strings.TrimPrefix(r.URL.Path, "/api/v1/")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "GET only", http.StatusMethodNotAllowed)
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
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(doc)
	})
}
