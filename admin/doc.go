// Package admin is g6's admin protocol: text lines in, replies out, served by
// the master on the admin rule's listen addresses.
//
// Framing (fixing G6 bug B17, docs/g6-differences.md): a command is one line ending in "\n" or "\r\n";
// several lines in one packet are all run, in order; every reply is written
// in full and ends with one empty line; an error is one line starting with
// "error:" and the connection stays usable. A line over MaxLine bytes is
// answered with an error as soon as the limit is passed, and skipped up to
// its end (which must come within the idle limit, or the connection closes). "quit", or the client
// closing its side, ends the connection after the replies are written.
//
// Sharp edges: each connection has its own goroutine with read and write
// deadlines, a line is at most MaxLine bytes, 100 error replies in a row
// close it, and the number of connections is capped, so a slow, idle or
// flooding client costs bounded memory. Commands run in the connection's
// goroutine: show commands read a snapshot (the master's lock is held only
// to copy it); a runtime change waits on the fleet's store when there is
// one (without holding a lock the master's loop or show needs); show
// servers and show nodes read the fleet's registry from the store.
package admin
