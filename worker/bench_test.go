package worker

import (
	"fmt"
	"testing"

	"g6/conf"
	"g6/ipc"
	"g6/shared"

	"golang.org/x/sys/unix"
)

// rawListen returns a listening loopback socket and its port.
func rawListen(t testing.TB) (int, int) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 16); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	return fd, sa.(*unix.SockaddrInet4).Port
}

// inProcess builds a worker in this process with one RR rule in front of
// one backend, and one established session through it. It returns the
// worker, the client socket and the backend's accepted socket.
func inProcess(t testing.TB) (*Worker, int, int) {
	lfd, lport := rawListen(t)
	bfd, bport := rawListen(t)
	cfg, err := conf.ParseTOML("bench.toml", fmt.Appendf(nil, `
[[rule]]
id = "b"
algorithm = "RR"
clients = ["*:*"]
listen = ["127.0.0.1:%d"]
servers = ["127.0.0.1:%d"]
`, lport, bport))
	if err != nil {
		t.Fatal(err)
	}
	region, err := shared.Create(shared.Sizes{Rules: 1, Servers: 1, Clients: 1, IPs: 16})
	if err != nil {
		t.Fatal(err)
	}
	slots, _ := region.Assign(shared.Keys{Rules: []string{"b"}, Servers: []string{"b x"}, Clients: []string{"b *"}})
	m, wctl, err := ipc.Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(m) })
	setup := &ipc.Setup{Config: cfg, Listeners: []string{cfg.Rules[0].Listen[0].Address},
		RuleSlots: slots.Rules, Servers: [][]int{slots.Servers}, Clients: [][]int{slots.Clients}}
	w, err := New(setup, wctl, region.Fd(), lfd)
	if err != nil {
		t.Fatal(err)
	}
	cfd, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err := unix.Connect(cfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: lport}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10 && len(w.live) == 0; i++ {
		w.step(100)
	}
	afd, _, err := unix.Accept(bfd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10 && w.live[0].state != stateEstablished; i++ {
		w.step(100)
	}
	return w, cfd, afd
}

// roundTrip sends msg client → backend and back through the worker.
func roundTrip(t testing.TB, w *Worker, cfd, afd int, msg, buf []byte) {
	unix.Write(cfd, msg)
	for got := 0; got < len(msg); {
		w.step(100)
		n, _ := unix.Read(afd, buf)
		got += max(n, 0)
	}
	unix.Write(afd, msg)
	for got := 0; got < len(msg); {
		w.step(100)
		n, _ := unix.Read(cfd, buf)
		got += max(n, 0)
	}
}

// BenchmarkForward measures one request/response through an established
// session: the data path must not allocate (-benchmem shows 0 allocs/op).
func BenchmarkForward(b *testing.B) {
	w, cfd, afd := inProcess(b)
	unix.SetNonblock(afd, true)
	unix.SetNonblock(cfd, true)
	msg := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	buf := make([]byte, 4096)
	roundTrip(b, w, cfd, afd, msg, buf)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		roundTrip(b, w, cfd, afd, msg, buf)
	}
}

func TestForwardDoesNotAllocate(t *testing.T) {
	if testing.Short() {
		t.Skip()
	}
	w, cfd, afd := inProcess(t)
	unix.SetNonblock(afd, true)
	unix.SetNonblock(cfd, true)
	msg := []byte("ping")
	buf := make([]byte, 4096)
	roundTrip(t, w, cfd, afd, msg, buf)
	allocs := testing.AllocsPerRun(200, func() { roundTrip(t, w, cfd, afd, msg, buf) })
	if allocs != 0 {
		t.Fatalf("%.1f allocations per round trip, want 0", allocs)
	}
}
