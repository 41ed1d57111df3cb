package e2e

import (
	"fmt"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"g6/internal/testenv"

	"golang.org/x/sys/unix"
)

// blackhole is a listening socket whose accept queue is full, so further
// connects to it hang in SYN-SENT (the kernel drops their SYNs).
func blackhole(t *testing.T) string {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	port := testenv.FreePort(t)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	c, err := net.DialTimeout("tcp", addr, time.Second) // a backlog of 0 still queues one
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return addr
}

// reset closes c with an RST instead of a FIN.
func reset(c net.Conn) {
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
}

// TestCountsExactAfterEveryEnding: whichever way sessions end (refused,
// connect timeout, no server left, client reset before and after the
// server answered, client limit, normal close, worker killed), every
// server and client count is back to exactly what the live sessions hold.
func TestCountsExactAfterEveryEnding(t *testing.T) {
	greet := backends(t, 1)[0]
	closed, hole := testenv.Addr(t), blackhole(t)
	refusing, hanging, live := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	cfg := fmt.Sprintf(`
[global]
connect_timeout = "300ms"
moratorium = "100ms"

[[rule]]
id = "refused"
algorithm = "RR"
clients = ["*:*"]
listen = [%q]
servers = [%q]

[[rule]]
id = "timeout"
algorithm = "RR"
clients = ["*:*"]
listen = [%q]
servers = [%q]

[[rule]]
id = "live"
algorithm = "LC"
clients = [{ pattern = "*:*", max_connections = 3, max_connections_per_ip = 3 }]
listen = [%q]
servers = [%q]
`, refusing, closed, hanging, hole, live, greet)
	m := testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "2"})
	pid := m.Cmd.Process.Pid
	for i := 0; i < 5; i++ { // refused, then no server while isolated
		testenv.Greeting(refusing)
		time.Sleep(60 * time.Millisecond)
	}
	for i := 0; i < 3; i++ { // connect timeouts
		testenv.Greeting(hanging)
	}
	for i := 0; i < 3; i++ { // the client resets while g6 connects
		if c, err := net.Dial("tcp", hanging); err == nil {
			time.Sleep(50 * time.Millisecond)
			reset(c)
		}
	}
	testenv.CheckCounts(t, pid)
	var held []net.Conn
	for i := 0; i < 4; i++ { // three admitted, one refused by the limit
		if c, _, err := testenv.Hold(live, ""); err == nil {
			held = append(held, c)
		}
	}
	if len(held) != 3 {
		t.Fatalf("held %d sessions, want 3 (max_connections = 3)", len(held))
	}
	testenv.CheckCounts(t, pid)
	reset(held[0])  // reset after the server answered
	held[1].Close() // normal close
	testenv.CheckCounts(t, pid)
	for _, w := range m.Workers(t) { // held[2] dies with its worker
		syscall.Kill(w, syscall.SIGKILL)
	}
	m.WaitCount(t, "respawning", 2, 5*time.Second)
	held[2].Close()
	testenv.CheckCounts(t, pid)
	if n, _ := holdN(t, live, "", 4); n != 3 {
		t.Fatalf("after every kind of ending, %d of 4 admitted, want 3", n)
	}
}
