package admin

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"g6/conf"
)

// Server serves the admin protocol.
type Server struct {
	Backend  Backend
	Clients  []conf.Client // only peers matching one of these get in
	Log      *slog.Logger
	MaxConns int           // concurrent admin connections (default 64)
	Idle     time.Duration // close a connection idle this long (default 5m)

	sem chan struct{}
}

// maxErrors error replies in a row close a connection that keeps sending
// junk; a reply that is not an error starts the count again, so a long
// script that meets ordinary races ("already has server") is not cut off.
const maxErrors = 100

// errTooMany is the last reply before such a close.
var errTooMany = "error: " + strconv.Itoa(maxErrors) + " errors in a row: closing the connection"

var errLineTooLong = "error: line too long (max " + strconv.Itoa(MaxLine) + " bytes)"

// Serve accepts on ln until it is closed.
func (s *Server) Serve(ln net.Listener) {
	if s.MaxConns == 0 {
		s.MaxConns = 64
	}
	if s.Idle == 0 {
		s.Idle = 5 * time.Minute
	}
	if s.sem == nil {
		s.sem = make(chan struct{}, s.MaxConns)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.Log.Warn("admin accept", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if !s.allowed(c.RemoteAddr()) {
			s.Log.Info("admin: client matches no pattern", "client", c.RemoteAddr())
			c.Close()
			continue
		}
		select {
		case s.sem <- struct{}{}:
			go s.serveConn(c)
		default:
			c.SetWriteDeadline(time.Now().Add(time.Second))
			io.WriteString(c, "error: too many admin connections\n\n")
			c.Close()
		}
	}
}

func (s *Server) allowed(a net.Addr) bool { return Allowed(s.Clients, a.String()) }

// Allowed reports whether a client at addr (IP:PORT) may use the admin
// commands: the first of clients that matches decides.
func Allowed(clients []conf.Client, addr string) bool {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return false
	}
	ip := []byte(ap.Addr().Unmap().String())
	port := strconv.AppendUint(nil, uint64(ap.Port()), 10)
	for i := range clients {
		if clients[i].Pattern.Match(ap.Addr().Unmap(), ip, port) {
			return !clients[i].Deny
		}
	}
	return false
}

// serveConn runs the commands of one connection.
func (s *Server) serveConn(c net.Conn) {
	defer func() { <-s.sem }()
	defer c.Close()
	r := bufio.NewReaderSize(c, MaxLine)
	w := bufio.NewWriter(c)
	errs := 0
	for {
		c.SetReadDeadline(time.Now().Add(s.Idle))
		line, tooLong, err := readLine(r)
		if tooLong {
			// Answered at once, not when the line finally ends: a client
			// that waits for a reply before sending more would hang.
			errs++
			writeReply(w, errLineTooLong)
			if errs >= maxErrors {
				writeReply(w, errTooMany)
			}
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if w.Flush() != nil {
				return
			}
			err = skipLine(r) // within the same idle deadline
		} else if line != "" || err == nil {
			reply, quit := s.run(line)
			if reply != "" {
				if strings.HasPrefix(reply, "error:") {
					errs++
				} else {
					errs = 0
				}
				writeReply(w, reply)
				if errs >= maxErrors {
					writeReply(w, errTooMany)
				}
			}
			if quit {
				w.Flush()
				return
			}
		}
		if r.Buffered() == 0 || err != nil || errs >= maxErrors {
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if w.Flush() != nil {
				return
			}
		}
		if err != nil || errs >= maxErrors {
			return
		}
	}
}

// readLine returns one line without its ending, or tooLong as soon as
// MaxLine bytes came without one (the rest is still unread: skipLine). At
// EOF a last unterminated line is returned with the error.
func readLine(r *bufio.Reader) (string, bool, error) {
	b, err := r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return "", true, nil
	}
	line := string(b)
	for len(line) > 0 && (line[len(line)-1] == '\n' || line[len(line)-1] == '\r') {
		line = line[:len(line)-1]
	}
	return line, false, err
}

// skipLine discards up to and including the next newline.
func skipLine(r *bufio.Reader) error {
	for {
		_, err := r.ReadSlice('\n')
		if err != bufio.ErrBufferFull {
			return err
		}
	}
}

func writeReply(w *bufio.Writer, reply string) {
	w.WriteString(reply)
	if reply[len(reply)-1] != '\n' {
		w.WriteByte('\n')
	}
	w.WriteByte('\n')
}
