// Package conf reads g6's configuration: g6.toml (BurntSushi/toml) and, for
// migration, G6's legacy G6.conf grammar.
//
// Model: a file is decoded into raw structs whose properties are pointers
// (nil = not written), then resolved into a Config whose every field holds its
// effective value. Inheritance is G6's: global → list default → address, the
// most specific wins, and an explicit 0 cancels an inherited limit. Unlike G6,
// a limit applies wherever it is declared (G6 ignored per-address limits when
// no list-level limit existed, docs/g6-differences.md §1.5).
//
// Sharp edges:
//   - Every error carries FILE:LINE. BurntSushi/toml does not export key
//     positions, so lines for semantic errors come from locate.go, which scans
//     the source text for the rule's section and the offending key or value.
//   - Unknown keys are errors. Entries that take either a string or a table
//     (clients, listen, servers) are decoded by hand, so they check their own
//     keys.
//   - The resolved Config is what workers receive (as JSON over ipc), so it
//     must stay plain data.
//   - AddrKey is the one spelling of an address that master and workers key
//     sockets and shared slots by; anything else that names an address for
//     lookup must go through it. ListenKey adds the protocol ("udp/" for a
//     UDP rule's listen address), since a TCP and a UDP socket may share
//     IP:PORT.
//   - A server entry is a literal IP:PORT (Rule.Servers) or a DNS name
//     (Rule.Names: "NAME:PORT", or { srv = "_svc._tcp.NAME" }). conf checks
//     a name's syntax only (RFC 1123 labels); resolving it is the master's.
//     An entry whose host part has a letter is a name, so a mistyped
//     address without one keeps the address error. G6.conf has no names.
//   - A listen address belongs to one rule, except that rules told apart
//     by sni share one (validate.go: at most one of them without sni, no
//     sni entry in two, the same inspection settings, since they share a
//     socket). Listen.ProxySources stays as written; ParseSources reads it.
//   - Hostile input is bounded before it is parsed: a config is a regular
//     file of at most MaxFileSize, nests at most 32 levels (nesting.go), and
//     holds at most MaxConfigServers servers.
package conf
