// Package balance chooses servers. A Selector returns the servers of a rule
// in the order they should be tried (CoreDNS forward's model), so "the
// connect failed, try the next one" is just the next index; the caller skips
// servers that are unusable or full as it walks.
//
// Selectors read global state through View (backed by the shared region), so
// choices are the same whichever worker accepted the connection. They must
// not allocate: dst is a buffer the caller reuses. A server of weight 0 is
// never where a weighted draw lands, and a rule whose weights are all 0
// still gets an order (the caller finds no server usable).
package balance
