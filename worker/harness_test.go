package worker

import (
	"fmt"
	"testing"
	"time"

	"g6/conf"
	"g6/ipc"
	"g6/pool"
	"g6/shared"

	"golang.org/x/sys/unix"
)

// harness runs a Worker in the test's own process: one RR rule in front of
// one backend listening socket, both raw loopback sockets. The test drives
// the loop with step and plays client and backend itself, so a data path
// case runs in milliseconds and can look at the session's state.
type harness struct {
	t    testing.TB
	w    *Worker
	ctl  int // the master's end of the control socketpair
	bfd  int // the backend's listening socket
	port int // the rule's listen port
}

// harnessOpts are config lines for [global] and for the rule.
type harnessOpts struct {
	global string // e.g. `splice = "off"`
	listen string // the listen entry; %d is the port. Default "127.0.0.1:%d"
	rule   string // more lines of the rule, e.g. `proxy_protocol = "v2"`
	udp    bool   // a UDP rule: the listen and backend sockets are UDP
}

// stepDeadline bounds every wait of a harness test.
const stepDeadline = 3 * time.Second

func rawSocket(t testing.TB) int { return rawSocketType(t, unix.SOCK_STREAM) }

func rawSocketType(t testing.TB, typ int) int {
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// rawListen returns a listening loopback socket and its port.
func rawListen(t testing.TB) (int, int) {
	fd, port := rawBound(t, unix.SOCK_STREAM)
	if err := unix.Listen(fd, 16); err != nil {
		t.Fatal(err)
	}
	return fd, port
}

// rawBound returns a loopback socket of type typ bound to a free port.
func rawBound(t testing.TB, typ int) (int, int) {
	fd := rawSocketType(t, typ)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	return fd, sa.(*unix.SockaddrInet4).Port
}

func newHarness(t testing.TB, o harnessOpts) *harness {
	var lfd, lport, bfd, bport int
	if o.udp {
		lfd, lport = rawBound(t, unix.SOCK_DGRAM)
		bfd, bport = rawBound(t, unix.SOCK_DGRAM)
		o.rule += "\nprotocol = \"udp\""
	} else {
		lfd, lport = rawListen(t)
		bfd, bport = rawListen(t)
	}
	if o.listen == "" {
		o.listen = `"127.0.0.1:%d"`
	}
	text := fmt.Sprintf("[global]\n%s\n\n[[rule]]\nid = \"b\"\nalgorithm = \"RR\"\nclients = [\"*:*\"]\n%s\n"+
		"listen = ["+o.listen+"]\nservers = [\"127.0.0.1:%d\"]\n", o.global, o.rule, lport, bport)
	cfg, err := conf.ParseTOML("harness.toml", []byte(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	region, err := shared.Create(shared.Sizes{Rules: 1, Servers: 1, Clients: 1, IPs: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { region.Close() })
	slots, err := region.Assign(shared.Keys{Rules: []string{"b"}, Clients: []string{"b *"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := pool.New(region, pool.State{}, true).Publish(cfg, slots.Rules); err != nil {
		t.Fatal(err)
	}
	m, wctl, err := ipc.Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(m); unix.Close(wctl) })
	r := &cfg.Rules[0]
	setup := &ipc.Setup{Config: cfg, Listeners: []string{conf.ListenKey(r.Protocol, r.Listen[0].Address)},
		RuleSlots: slots.Rules, Clients: [][]int{slots.Clients}, Files: cfg.Files}
	w, err := New(setup, wctl, region.Fd(), lfd)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, w: w, ctl: m, bfd: bfd, port: lport}
}

// until steps the loop until cond holds, failing the test after
// stepDeadline with what it was waiting for.
func (h *harness) until(what string, cond func() bool) {
	h.t.Helper()
	for end := time.Now().Add(stepDeadline); !cond(); {
		if time.Now().After(end) {
			h.t.Fatalf("after %v: still waiting for %s", stepDeadline, what)
		}
		if err := h.w.step(1); err != nil {
			h.t.Fatal(err)
		}
	}
}

// connect opens a client connection through the worker and returns the
// client socket, the backend's accepted socket (both non-blocking) and the
// established session.
func (h *harness) connect() (int, int, *session) {
	h.t.Helper()
	cfd := rawSocket(h.t)
	if err := unix.Connect(cfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: h.port}); err != nil {
		h.t.Fatal(err)
	}
	n := len(h.w.live)
	h.until("the session", func() bool { return len(h.w.live) > n })
	s := h.w.live[len(h.w.live)-1]
	h.until("the backend connection", func() bool { return s.state == stateEstablished })
	afd, _, err := unix.Accept4(h.bfd, unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { unix.Close(afd) })
	unix.SetNonblock(cfd, true)
	return cfd, afd, s
}

// read steps the loop until n bytes came from fd.
func (h *harness) read(fd, n int) []byte {
	h.t.Helper()
	out := make([]byte, 0, n)
	buf := make([]byte, 64<<10)
	h.until(fmt.Sprintf("%d bytes", n), func() bool {
		for len(out) < n {
			k, err := unix.Read(fd, buf[:min(len(buf), n-len(out))])
			if k <= 0 || err != nil {
				if k == 0 && err == nil {
					h.t.Fatalf("EOF after %d of %d bytes", len(out), n)
				}
				return false
			}
			out = append(out, buf[:k]...)
		}
		return true
	})
	return out
}

// readEOF steps the loop until fd reads EOF; bytes before it fail the test.
func (h *harness) readEOF(fd int) {
	h.t.Helper()
	var buf [512]byte
	h.until("EOF", func() bool {
		k, err := unix.Read(fd, buf[:])
		if k > 0 {
			h.t.Fatalf("read %q, want EOF", buf[:k])
		}
		return k == 0 && err == nil
	})
}

// write writes all of b to a non-blocking fd, stepping the loop while the
// socket is full.
func (h *harness) write(fd int, b []byte) {
	h.t.Helper()
	h.until(fmt.Sprintf("room to write %d bytes", len(b)), func() bool {
		for len(b) > 0 {
			k, err := unix.Write(fd, b)
			if err != nil {
				return false
			}
			b = b[k:]
		}
		return true
	})
}
