package steer

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// group binds n SO_REUSEPORT listeners on one loopback port.
func listeners(t *testing.T, n int) (string, []int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	l.Close()
	var fds []int
	for range n {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			t.Fatal(err)
		}
		if err := unix.Bind(fd, &unix.SockaddrInet4{Port: addr.Port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			t.Fatal(err)
		}
		if err := unix.Listen(fd, 128); err != nil {
			t.Fatal(err)
		}
		fds = append(fds, fd)
	}
	return addr.String(), fds
}

// spread dials k connections and counts which socket each landed on.
func spread(t *testing.T, addr string, fds []int, k int) []int {
	t.Helper()
	for range k {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	time.Sleep(20 * time.Millisecond)
	got := make([]int, len(fds))
	for i, fd := range fds {
		for {
			nfd, _, err := unix.Accept(fd)
			if err != nil {
				break
			}
			unix.Close(nfd)
			got[i]++
		}
	}
	return got
}

func newSteerer(t *testing.T) *Steerer {
	s, err := New()
	if errors.Is(err, os.ErrPermission) || errors.Is(err, unix.EPERM) {
		t.Skipf("no CAP_BPF here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestLeastSessions(t *testing.T) {
	s := newSteerer(t)
	addr, fds := listeners(t, 3)
	if err := s.Attach(addr, fds, 3); err != nil {
		t.Fatal(err)
	}
	for slot := range 3 {
		s.SetLive(slot, true)
	}
	s.SetSessions(0, 5)
	s.SetSessions(1, 2)
	s.SetSessions(2, 9)
	if got := spread(t, addr, fds, 20); got[1] != 20 {
		t.Fatalf("slot 1 has the fewest sessions, yet the connections went %v", got)
	}
	s.SetLive(1, false)
	if got := spread(t, addr, fds, 20); got[0] != 20 {
		t.Fatalf("slot 1 is not live and slot 0 has fewer than slot 2, yet %v", got)
	}
	s.SetSessions(2, 5)
	if got := spread(t, addr, fds, 20); got[0] != 20 {
		t.Fatalf("a tie goes to the lower slot, yet %v", got)
	}
}

func TestNoLiveSlotHashes(t *testing.T) {
	s := newSteerer(t)
	addr, fds := listeners(t, 2)
	if err := s.Attach(addr, fds, 2); err != nil {
		t.Fatal(err)
	}
	got := spread(t, addr, fds, 40)
	if got[0] == 0 || got[1] == 0 {
		t.Fatalf("with no live slot the kernel's hash spreads 40 connections; got %v", got)
	}
}

// Four sockets for two workers: slot i has sockets i and i+2; the program
// picks slot 1's first, socket 1. Detach gives the group back to the hash.
func TestMoreSocketsThanWorkers(t *testing.T) {
	s := newSteerer(t)
	addr, fds := listeners(t, 4)
	if err := s.Attach(addr, fds, 2); err != nil {
		t.Fatal(err)
	}
	s.SetLive(0, true)
	s.SetLive(1, true)
	s.SetSessions(0, 1)
	if got := spread(t, addr, fds, 10); got[1] != 10 {
		t.Fatalf("slot 1's first socket should take all; got %v", got)
	}
	Detach(fds[0])
	if got := spread(t, addr, fds, 40); got[1] == 40 {
		t.Fatalf("detached, the hash spreads; got %v", got)
	}
	if err := s.Attach(addr, fds[:1], 2); !errors.Is(err, ErrNoGroup) {
		t.Fatalf("one socket for two workers: %v, want ErrNoGroup", err)
	}
}

// A second Attach with another worker count replaces the program.
func TestReattach(t *testing.T) {
	s := newSteerer(t)
	addr, fds := listeners(t, 2)
	if err := s.Attach(addr, fds, 1); err != nil {
		t.Fatal(err)
	}
	s.SetLive(0, true)
	s.SetLive(1, true)
	s.SetSessions(0, 3)
	if got := spread(t, addr, fds, 10); got[0] != 10 {
		t.Fatalf("one worker of one slot: all to socket 0; got %v", got)
	}
	if err := s.Attach(addr, fds, 2); err != nil {
		t.Fatal(err)
	}
	if got := spread(t, addr, fds, 10); got[1] != 10 {
		t.Fatalf("two slots, slot 1 emptier: all to socket 1; got %v", got)
	}
}

// A successor adopts the arrays (as after USR2) and attaches its own
// program over them: a second array for the same sockets would be refused.
func TestAdoptExported(t *testing.T) {
	s := newSteerer(t)
	addr, fds := listeners(t, 2)
	if err := s.Attach(addr, fds, 2); err != nil {
		t.Fatal(err)
	}
	state, arrays := s.Export()
	dup := func(fd int) int {
		d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	inherited := map[string]int{}
	for k, fd := range arrays {
		inherited[k] = dup(fd)
	}
	n, err := Adopt(dup(state), inherited, map[string][]int{addr: fds})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Attach(addr, fds, 2); err != nil {
		t.Fatalf("attach over the adopted array: %v", err)
	}
	n.SetLive(0, true)
	n.SetLive(1, true)
	n.SetSessions(0, 4)
	if got := spread(t, addr, fds, 10); got[1] != 10 {
		t.Fatalf("the successor's program should send all to slot 1; got %v", got)
	}
}
