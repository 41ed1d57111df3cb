// Package ipc is the master↔worker channel over a socketpair.
//
// Model: length-prefixed frames (4-byte big-endian length, then a JSON
// Message). Every message carries the protocol version and, for requests, an
// id that the reply repeats, so replies match requests even when several are
// in flight. A receiver ignores fields it does not know and answers an
// unknown Type with an error reply, which lets a newer master talk to an
// older worker during an upgrade. Each type's body is one named Go type
// (body.go), and DecodeBody refuses an empty or malformed one, so a receiver
// never acts on zero values.
//
// Sharp edges: the worker side reads from a non-blocking fd inside its epoll
// loop, so decoding is incremental (Decoder.Feed); the master side uses a
// blocking net.Conn per worker. Frames are capped at MaxFrame so a confused
// peer cannot make the other side allocate without bound.
package ipc
