package console

import (
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"g6/admin"
	"g6/conf"
)

// The JSON API (issue #21): /api/v1/WHAT answers what `show
// WHAT json` does on the admin port, built by the same code (admin.Show),
// so the two never disagree. Read-only; served by the master, never by a
// worker.

// Under /api/v1/ are the documents of admin.ShowLists, history (the
// charts' ring, history.go), actions (may this client act) and action.

//go:embed console.html
var consolePage []byte

// pageHandler serves the console's one page at /, and an empty icon (so
// the browser's own request for one is not an error on the page).
func pageHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/favicon.ico" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
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
func (s *Server) apiHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		what := strings.TrimPrefix(r.URL.Path, "/api/v1/")
		if what == "action" && r.Method == http.MethodPost {
			s.action(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "GET only", http.StatusMethodNotAllowed)
			return
		}
		if what == "actions" {
			cfg := s.backend.Snapshot().Config
			writeJSON(w, map[string]bool{"allowed": mayAct(r, cfg) == nil, "token": cfg.Global.ConsoleToken != ""})
			return
		}
		if what == "history" {
			writeJSON(w, map[string]any{"interval_seconds": 1, "rules": s.history.snapshot()})
			return
		}
		if !slices.Contains(admin.ShowLists, what) {
			http.Error(w, "no such list; try /api/v1/{"+strings.Join(admin.ShowLists, ",")+",history,actions}", http.StatusNotFound)
			return
		}
		doc, _, err := admin.Show(s.backend, what)
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

// actionType is the content type of the page's actions: not one an HTML
// form or a cross-site fetch without a CORS preflight (which the console
// never grants) can send.
const actionType = "application/x-g6-action"

// mayAct says why r's client may not change servers under cfg, or nil:
// it must match the [admin] patterns, and bring console_token if one is
// set. An action must also come from the page (sameSite).
func mayAct(r *http.Request, cfg *conf.Config) error {
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

// sameSite says why r, an action, may have been sent by another
// site, or nil. A page the operator opens elsewhere can make the browser
// POST to the console (with the operator's address, which [admin]'s
// patterns allow), or reach it under its own name by DNS rebinding; so the
// Host must be one the console serves (console_hosts; by default its own
// address and localhost, and any IP literal when it listens on all
// addresses: rebinding needs a name), an Origin, if sent, must be the
// console's own, and the content type the page's.
func sameSite(r *http.Request, g conf.Global) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != actionType {
		return fmt.Errorf("an action is sent as %s (Content-Type %q)", actionType, r.Header.Get("Content-Type"))
	}
	host := hostOnly(r.Host)
	if !consoleHost(host, g) {
		return fmt.Errorf("the Host header %q is not one the console serves (console_hosts)", r.Host)
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !strings.EqualFold(u.Host, r.Host) {
			return fmt.Errorf("the Origin header %q is not the console's", o)
		}
	}
	return nil
}

// consoleHost reports whether host (no port) names the console.
func consoleHost(host string, g conf.Global) bool {
	if len(g.ConsoleHosts) > 0 {
		return slices.ContainsFunc(g.ConsoleHosts, func(h string) bool { return strings.EqualFold(strings.Trim(h, "[]"), host) })
	}
	listen := hostOnly(g.Console)
	if strings.EqualFold(host, "localhost") || strings.EqualFold(host, listen) {
		return true
	}
	ip, err := netip.ParseAddr(host)
	la, lerr := netip.ParseAddr(listen)
	return err == nil && lerr == nil && la.IsUnspecified() && ip.IsValid()
}

// hostOnly is addr without its port and brackets.
func hostOnly(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return strings.Trim(addr, "[]")
}

// action runs the admin line in the request body (disable, enable,
// drain) and logs who did it.
func (s *Server) action(w http.ResponseWriter, r *http.Request) {
	cfg := s.backend.Snapshot().Config
	err := sameSite(r, cfg.Global)
	if err == nil {
		err = mayAct(r, cfg)
	}
	if err != nil {
		s.log.Warn("console action refused", "from", r.RemoteAddr, "err", err)
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	line, _ := io.ReadAll(io.LimitReader(r.Body, admin.MaxLine))
	reply, err := admin.Act(s.backend, strings.TrimSpace(string(line)))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.log.Info("console action", "from", r.RemoteAddr, "command", strings.TrimSpace(string(line)), "reply", reply)
	writeJSON(w, map[string]string{"reply": reply})
}
