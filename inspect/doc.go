// Package inspect reads what a connection may start with before g6 picks
// its rule (issue #17): a PROXY protocol header from the balancer in front
// (v1 text or v2 binary) and a TLS ClientHello's server name and ALPN
// offer. The worker calls the parsers on the bytes read so far; nothing
// here reads from a socket.
//
// Model: each parser takes the stream's first bytes and returns what it
// found and how many bytes the header took, ErrShort when the bytes are a
// prefix of something valid (read more and call again), or an error when
// they can never become valid. The ClientHello is left in the stream (g6
// forwards it unchanged); the PROXY header is consumed.
//
// MatchSNI matches a rule's sni entries (checked by conf.CheckSNI): exact
// names and "*." wildcards of exactly one label, without regard to case.
//
// Sharp edges: the parsers never panic or read past b on any input (fuzz
// targets FuzzProxy and FuzzClientHello). A PROXY v2 header is bounded at
// MaxProxyV2 bytes, a ClientHello at MaxHello; v2 TLVs are returned as a
// subslice of b, so the caller copies them before reusing its buffer.
package inspect
