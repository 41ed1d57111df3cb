// Package health probes a server the way its clients use it: a check
// type speaks the server's protocol (HTTP, TLS, Redis, PostgreSQL, MySQL,
// SMTP, DNS over TCP) far enough to tell a server that works from a port
// that accepts. The master runs one probe per server every interval (a
// goroutine per server, never on a worker's loop); a Probe is one try.
//
// Every probe runs under one deadline (the check's timeout) for the
// connect, the writes and the reads, and reads at most a bounded number of
// bytes (an answer longer than its protocol allows fails the check, it is
// never buffered whole). A failed check's error is short and says what
// was expected and what came ("expected +PONG, got -LOADING"): show
// servers prints it after "down: check: ".
//
// Sharp edges: a pgsql check with a password logs in (SCRAM-SHA-256, md5
// or cleartext, as the server asks; cleartext only over a connection the
// server chose); a redis check sends AUTH in the clear. Both are read from
// the config, so the config file holds a secret: keep its mode 0600.
package health
