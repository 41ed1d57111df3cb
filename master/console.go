package master

import (
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"g6/admin"
)

// The console's JSON API (issue #21): /api/v1/WHAT answers what `show
// WHAT json` does on the admin port, built by the same code (admin.Show),
// so the two never disagree. Read-only; served by the master, never by a
// worker.

// Under /api/v1/ are the documents of admin.ShowLists, history (the
// charts' ring, history.go), actions (may this client act) and action.

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
		if what == "action" && r.Method == http.MethodPost {
			m.consoleAction(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "GET only", http.StatusMethodNotAllowed)
			return
		}
		if what == "actions" {
			writeJSON(w, map[string]bool{"allowed": m.consoleMayAct(r) == nil, "token": m.consoleToken() != ""})
			return
		}
		if what == "history" {
			writeJSON(w, map[string]any{"interval_seconds": 1, "rules": m.history.snapshot()})
			return
		}
		if !slices.Contains(admin.ShowLists, what) {
			http.Error(w, "no such list; try /api/v1/{"+strings.Join(admin.ShowLists, ",")+",history,actions}", http.StatusNotFound)
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

// consoleToken is the running config's console_token.
func (m *Master) consoleToken() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cur.cfg.Global.ConsoleToken
}

// consoleMayAct says why r may not change servers, or nil: its client must
// match the [admin] patterns, and bring console_token if one is set.
func (m *Master) consoleMayAct(r *http.Request) error {
	m.mu.Lock()
	cfg := m.cur.cfg
	m.mu.Unlock()
	switch {
	case cfg.Admin == nil:
		return errors.New("read-only: no [admin] client patterns")
	case !admin.Allowed(cfg.Admin.Clients, r.RemoteAddr):
		return fmt.Errorf("%s matches no [admin] client pattern", r.RemoteAddr)
	case cfg.Global.ConsoleToken != "" &&
		subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+cfg.Global.ConsoleToken)) != 1:
		return errors.New("console_token is set: send Authorization: Bearer TOKEN")
	}
	return nil
}

// consoleAction runs the admin line in the request body (disable, enable,
// drain) and logs who did it.
func (m *Master) consoleAction(w http.ResponseWriter, r *http.Request) {
	if err := m.consoleMayAct(r); err != nil {
		m.log.Warn("console action refused", "from", r.RemoteAddr, "err", err)
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	line, _ := io.ReadAll(io.LimitReader(r.Body, admin.MaxLine))
	reply, err := admin.Act(m, strings.TrimSpace(string(line)))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	m.log.Info("console action", "from", r.RemoteAddr, "command", strings.TrimSpace(string(line)), "reply", reply)
	writeJSON(w, map[string]string{"reply": reply})
}
