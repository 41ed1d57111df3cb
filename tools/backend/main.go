// Command backend is g6's test server. Modes:
//
//	echo   send back every byte received
//	greet  send "hello from NAME\n" on connect, then echo
//	http   answer each HTTP/1.x request with "NAME\n" (keep-alive aware)
//	proxy  read a PROXY protocol v1/v2 header, report it (and the types of
//	       its v2 TLVs, with what a PP2_TYPE_SSL one says), then echo
//	whoami send "you are IP:PORT\n" (the peer's address), then echo
//	udp    UDP: answer each datagram with "NAME:" and the datagram (an
//	       empty one with "NAME:", one too long for that with itself)
//
// -delay holds the greeting or each HTTP answer, for response-time tests.
// It listens on every -listen address given (comma-separated) and runs until
// killed.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strings"
	"time"
)

type server struct {
	name  string
	mode  string
	delay time.Duration
}

func main() {
	listen := flag.String("listen", "127.0.0.1:9001", "addresses to listen on, comma-separated")
	s := &server{}
	flag.StringVar(&s.name, "name", "", "name in greetings and answers (default: the address)")
	flag.StringVar(&s.mode, "mode", "greet", "echo, greet, http, proxy or whoami")
	flag.DurationVar(&s.delay, "delay", 0, "delay before the greeting or each HTTP answer")
	flag.Parse()
	if s.mode != "echo" && s.mode != "greet" && s.mode != "http" && s.mode != "proxy" && s.mode != "whoami" && s.mode != "udp" {
		log.Fatalf("backend: unknown mode %q", s.mode)
	}
	for _, addr := range strings.Split(*listen, ",") {
		if s.mode == "udp" {
			pc, err := net.ListenPacket("udp", addr)
			if err != nil {
				log.Fatalf("backend: %v", err)
			}
			name := s.name
			if name == "" {
				name = pc.LocalAddr().String()
			}
			go serveUDP(pc, name)
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			log.Fatalf("backend: %v", err)
		}
		name := s.name
		if name == "" {
			name = ln.Addr().String()
		}
		fmt.Fprintf(os.Stderr, "backend %s listening on %s (%s)\n", name, ln.Addr(), s.mode)
		go serve(ln, &server{name: name, mode: s.mode, delay: s.delay})
	}
	select {}
}

func serve(ln net.Listener, s *server) {
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Printf("backend: accept: %v", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go s.handle(c)
	}
}

func (s *server) handle(c net.Conn) {
	defer c.Close()
	switch s.mode {
	case "echo":
		echo(c)
	case "greet":
		time.Sleep(s.delay)
		if _, err := fmt.Fprintf(c, "hello from %s\n", s.name); err != nil {
			return
		}
		echo(c)
	case "http":
		s.http(c)
	case "proxy":
		s.proxy(c)
	case "whoami":
		if _, err := fmt.Fprintf(c, "you are %s\n", c.RemoteAddr()); err != nil {
			return
		}
		echo(c)
	}
}

// echo copies c to itself and passes the client's half-close on.
func echo(c net.Conn) {
	copyBack(c, c)
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}

// copyBack copies r to c through a buffer. Not io.Copy: between TCP
// connections it splices, taking a pipe (two more fds) per connection, and
// a backend standing in for 10,000 connections cannot afford that.
func copyBack(c net.Conn, r io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (s *server) http(c net.Conn) {
	r := bufio.NewReader(c)
	body := s.name + "\n"
	for {
		closeAfter := false
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if strings.HasSuffix(strings.TrimSpace(line), "HTTP/1.0") {
			closeAfter = true
		}
		for {
			h, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if strings.EqualFold(strings.TrimSpace(h), "connection: close") {
				closeAfter = true
			}
			if h == "\r\n" || h == "\n" {
				break
			}
		}
		time.Sleep(s.delay)
		conn := "keep-alive"
		if closeAfter {
			conn = "close"
		}
		_, err = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: text/plain\r\nConnection: %s\r\n\r\n%s", len(body), conn, body)
		if err != nil || closeAfter {
			return
		}
	}
}

// proxy reads a PROXY protocol v1 or v2 header, answers
// "proxy from IP:PORT to IP:PORT\n" with what it says, then echoes.
func (s *server) proxy(c net.Conn) {
	r := bufio.NewReader(c)
	src, dst, tlvs, err := readProxyHeader(r)
	if err != nil {
		fmt.Fprintf(c, "bad proxy header: %v\n", err)
		return
	}
	if tlvs != "" {
		tlvs = " tlvs" + tlvs
	}
	if _, err := fmt.Fprintf(c, "proxy from %s to %s%s\n", src, dst, tlvs); err != nil {
		return
	}
	copyBack(c, r)
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}

// sslTLV describes a PP2_TYPE_SSL value as "(client=F verify=N
// version=V cn=CN cipher=C)", the sub-TLVs in the order sent.
func sslTLV(v []byte) string {
	if len(v) < 5 {
		return "(short)"
	}
	out := fmt.Sprintf("(client=%d verify=%d", v[0], uint32(v[1])<<24|uint32(v[2])<<16|uint32(v[3])<<8|uint32(v[4]))
	names := map[byte]string{0x21: "version", 0x22: "cn", 0x23: "cipher", 0x24: "sig_alg", 0x25: "key_alg"}
	for sub := v[5:]; len(sub) >= 3; {
		l := min(int(sub[1])<<8|int(sub[2]), len(sub)-3)
		out += fmt.Sprintf(" %s=%s", names[sub[0]], sub[3:3+l])
		sub = sub[3+l:]
	}
	return out + ")"
}

// readProxyHeader returns a header's source and destination and, for v2,
// the types of its TLVs (" 05 e0"; "" for none).
func readProxyHeader(r *bufio.Reader) (src, dst, tlvs string, err error) {
	sig, err := r.Peek(12)
	if err != nil {
		return "", "", "", err
	}
	if string(sig) == "\r\n\r\n\x00\r\nQUIT\n" {
		hdr := make([]byte, 16)
		if _, err := io.ReadFull(r, hdr); err != nil {
			return "", "", "", err
		}
		n := int(hdr[14])<<8 | int(hdr[15])
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return "", "", "", err
		}
		port := func(b []byte) int { return int(b[0])<<8 | int(b[1]) }
		var alen int
		switch hdr[13] {
		case 0x11:
			alen = 12
			src, dst = fmt.Sprintf("%s:%d", net.IP(body[0:4]), port(body[8:])), fmt.Sprintf("%s:%d", net.IP(body[4:8]), port(body[10:]))
		case 0x21:
			alen = 36
			src, dst = fmt.Sprintf("[%s]:%d", net.IP(body[0:16]), port(body[32:])), fmt.Sprintf("[%s]:%d", net.IP(body[16:32]), port(body[34:]))
		default:
			return "", "", "", fmt.Errorf("v2 family %#x", hdr[13])
		}
		for t := body[alen:]; len(t) >= 3; t = t[min(len(t), 3+port(t[1:3])):] {
			tlvs += fmt.Sprintf(" %02x", t[0])
			if t[0] == 0x20 {
				tlvs += sslTLV(t[3:min(len(t), 3+port(t[1:3]))])
			}
		}
		return src, dst, tlvs, nil
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return "", "", "", err
	}
	f := strings.Fields(line)
	if len(f) != 6 || f[0] != "PROXY" {
		return "", "", "", fmt.Errorf("v1 line %q", line)
	}
	return net.JoinHostPort(f[2], f[4]), net.JoinHostPort(f[3], f[5]), "", nil
}

// serveUDP answers each datagram with "name:" and the datagram.
func serveUDP(pc net.PacketConn, name string) {
	buf := make([]byte, 64<<10)
	out := make([]byte, 0, 64<<10+len(name)+1)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			log.Printf("backend: udp read: %v", err)
			continue
		}
		out = append(append(append(out[:0], name...), ':'), buf[:n]...)
		if len(out) > 65507 {
			out = append(out[:0], buf[:n]...)
		}
		pc.WriteTo(out, from)
	}
}
