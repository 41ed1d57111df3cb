// Package console is the master's HTTP side: Prometheus /metrics, and the
// web console (one embedded page at /, its JSON under /api/v1/, its
// actions, and the charts it draws). It serves an admin.Backend, the same
// interface the admin port serves, so /api/v1/WHAT is `show WHAT json`
// built by the same code (admin.Show) and an action is an admin line run
// by admin.Act; it holds no pointer into the master, and a test can give
// it any backend.
//
// Model: Start binds each address once (metrics and console may share
// one), behind a limitListener (limit.go) that caps connections per
// endpoint and per client address and makes room by closing the longest
// idle keep-alive one; the http.Server's timeouts close idle and slow
// clients. Every request reads a fresh Snapshot; with a console, a
// goroutine samples each rule's rates every second into the charts' ring
// (history.go).
//
// Sharp edges:
//   - Addresses are bound with SO_REUSEPORT (go-reuseport): during a USR2
//     upgrade both masters serve them until the old one closes its own.
//   - Only POST /api/v1/action changes anything, and only for a client
//     that matches [admin]'s patterns (with console_token if set) and a
//     request that comes from the page itself (sameSite: its content type,
//     a Host the console serves, its own Origin): the browser of an
//     operator that [admin] allows must not become a tool of another site.
//   - The settings are read at Start (addresses, limits); the ones read per
//     request (console_token, console_hosts, [admin]) come from the
//     snapshot, so a reload changes them.
package console
