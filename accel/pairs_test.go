package accel

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func newPairs(t *testing.T) *Pairs {
	p, err := New(64)
	if errors.Is(err, os.ErrPermission) || errors.Is(err, unix.EPERM) {
		t.Skipf("no CAP_BPF here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// proxied is client c → (a, b: the proxy's raw sockets) → server s.
type proxied struct {
	c, s net.Conn
	a, b int
}

func rawFd(t *testing.T, c net.Conn) int {
	sc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	sc.Control(func(f uintptr) { fd, err = unix.Dup(int(f)) })
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func newProxied(t *testing.T) *proxied {
	t.Helper()
	front, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer front.Close()
	back, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	p := &proxied{}
	if p.c, err = net.Dial("tcp", front.Addr().String()); err != nil {
		t.Fatal(err)
	}
	ac, _ := front.Accept()
	bc, err := net.Dial("tcp", back.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if p.s, err = back.Accept(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.c.Close(); p.s.Close() })
	p.a, p.b = rawFd(t, ac), rawFd(t, bc)
	p.c.SetDeadline(time.Now().Add(10 * time.Second))
	p.s.SetDeadline(time.Now().Add(10 * time.Second))
	return p
}

func expect(t *testing.T, c net.Conn, want string) {
	t.Helper()
	b := make([]byte, len(want))
	if _, err := io.ReadFull(c, b); err != nil || string(b) != want {
		t.Fatalf("read %q, %v; want %q", b, err, want)
	}
}

// Bytes go both ways in the kernel, in order, counted, including those
// that were waiting before the pair was made.
func TestPairForwards(t *testing.T) {
	p := newPairs(t)
	x := newProxied(t)
	x.c.Write([]byte("early "))
	time.Sleep(20 * time.Millisecond)
	pr, _, err := p.Pair(x.a, x.b, [2]uint64{1 << 20, 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, x.s, "early ")
	x.c.Write([]byte("request"))
	expect(t, x.s, "request")
	x.s.Write([]byte("response!"))
	expect(t, x.c, "response!")
	if m, n := p.Moved(pr.Slot[0]), p.Moved(pr.Slot[1]); m != 13 || n != 9 {
		t.Fatalf("moved %d and %d, want 13 and 9", m, n)
	}
	if p.Last(pr.Slot[0]) == 0 || p.Spilled(pr.Slot[0]) {
		t.Fatal("no last activity, or spilled")
	}
	if w, err := Written(x.b); err != nil || w != 13 {
		t.Fatalf("written to b %d, %v; want 13", w, err)
	}
}

// Past its budget a socket's bytes come to its own queue, in order after
// the redirected ones, and the link says spilled.
func TestSpill(t *testing.T) {
	p := newPairs(t)
	x := newProxied(t)
	pr, _, err := p.Pair(x.a, x.b, [2]uint64{10, 10})
	if err != nil {
		t.Fatal(err)
	}
	x.c.Write([]byte("0123456789"))
	expect(t, x.s, "0123456789")
	x.c.Write([]byte("over"))
	time.Sleep(20 * time.Millisecond)
	if !p.Spilled(pr.Slot[0]) || p.Spilled(pr.Slot[1]) {
		t.Fatal("a should have spilled, b not")
	}
	b := make([]byte, 16)
	n, err := unix.Read(x.a, b)
	if err != nil || !bytes.Equal(b[:n], []byte("over")) {
		t.Fatalf("a's own queue: %q, %v", b[:n], err)
	}
	x.c.Write([]byte("more"))
	time.Sleep(20 * time.Millisecond)
	if n, _ = unix.Read(x.a, b); string(b[:n]) != "more" {
		t.Fatalf("after a spill bytes stay with a: %q", b[:n])
	}
}

// With b gone from the map (closed), a's bytes spill instead of being
// dropped.
func TestPeerGoneSpills(t *testing.T) {
	p := newPairs(t)
	x := newProxied(t)
	pr, _, err := p.Pair(x.a, x.b, [2]uint64{1 << 20, 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	p.socks.Delete(pr.Slot[1])
	x.c.Write([]byte("kept"))
	time.Sleep(20 * time.Millisecond)
	b := make([]byte, 16)
	n, _ := unix.Read(x.a, b)
	if string(b[:n]) != "kept" || !p.Spilled(pr.Slot[0]) {
		t.Fatalf("read %q, spilled %v", b[:n], p.Spilled(pr.Slot[0]))
	}
}

// Slots come back with Free and run out with ErrFull.
func TestSlots(t *testing.T) {
	p := newPairs(t)
	var prs []Pair
	for range 32 {
		x := newProxied(t)
		pr, _, err := p.Pair(x.a, x.b, [2]uint64{1, 1})
		if err != nil {
			t.Fatal(err)
		}
		prs = append(prs, pr)
	}
	x := newProxied(t)
	if _, _, err := p.Pair(x.a, x.b, [2]uint64{1, 1}); !errors.Is(err, ErrFull) {
		t.Fatalf("33rd pair of 64 slots: %v", err)
	}
	p.Unpair(prs[0])
	p.Free(prs[0])
	if _, _, err := p.Pair(x.a, x.b, [2]uint64{1, 1}); err != nil {
		t.Fatal(err)
	}
}

// Open takes another process's maps by fd (a handoff): the same links,
// the pair still forwarding, the maps told the same as the original.
func TestOpenHanded(t *testing.T) {
	p := newPairs(t)
	x := newProxied(t)
	pr, _, err := p.Pair(x.a, x.b, [2]uint64{1 << 20, 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	x.c.Write([]byte("before"))
	expect(t, x.s, "before")
	var dup [3]int
	for i, fd := range p.Fds() {
		if dup[i], err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0); err != nil {
			t.Fatal(err)
		}
	}
	q, err := Open(dup)
	if err != nil {
		t.Fatal(err)
	}
	if !q.Same(p) || q.Moved(pr.Slot[0]) != 6 {
		t.Fatalf("handed maps: same %v, moved %d", q.Same(p), q.Moved(pr.Slot[0]))
	}
	p.Close() // the first owner goes; the pair lives on in q's maps
	x.c.Write([]byte("after"))
	expect(t, x.s, "after")
	if q.Moved(pr.Slot[0]) != 11 {
		t.Fatalf("moved %d after the first owner closed, want 11", q.Moved(pr.Slot[0]))
	}
	q.Unpair(pr)
	q.Close()
	if !q.Closed() {
		t.Fatal("not closed")
	}
}
