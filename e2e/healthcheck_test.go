package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"testing"
	"time"

	"g6/internal/testenv"
)

// silentServer accepts connections and never answers.
func silentServer(t *testing.T, addr string) net.Listener {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go acceptSilently(ln)
	return ln
}

func acceptSilently(ln net.Listener) {
	var held []net.Conn
	for {
		c, err := ln.Accept()
		if err != nil {
			for _, h := range held {
				h.Close()
			}
			return
		}
		held = append(held, c)
	}
}

// TestHealthCheck: a server that accepts but never answers the send/expect
// check is marked down within fall × interval, and is back after rise
// passes once it answers; an admin disable wins over a passing check.
func TestHealthCheck(t *testing.T) {
	good, flaky := testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "greet", good)
	silent := silentServer(t, flaky)
	front, adminAddr := testenv.Addr(t), testenv.Addr(t)
	cfg := fmt.Sprintf(`
[admin]
listen = [%q]
clients = ["127.0.0.1:*"]

[[rule]]
id = "hc"
algorithm = "RR"
health_check = { interval = "200ms", timeout = "100ms", rise = 2, fall = 3, expect = "hello" }
clients = ["*:*"]
listen = [%q]
servers = [%q, %q]
`, adminAddr, front, good, flaky)
	m := testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "2"})
	m.WaitLog(t, "health check fails; server down", 15*time.Second)
	if got := countGreetings(t, front, 6); got[good] != 6 {
		t.Fatalf("with the flaky server down: %v", got)
	}
	var doc struct {
		Servers []struct {
			Address, State string
			HealthCheck    string `json:"health_check"`
		}
	}
	json.Unmarshal([]byte(adminSend(t, adminAddr, "show servers json\n")), &doc)
	for _, s := range doc.Servers {
		if s.Address == flaky && (s.State != "down" || s.HealthCheck != "failing") {
			t.Fatalf("show servers says %+v for the failing server", s)
		}
	}
	silent.Close()
	testenv.Backend(t, "greet", flaky)
	m.WaitLog(t, "health check passes; server up", 3*time.Second)
	if got := countGreetings(t, front, 6); got[flaky] == 0 {
		t.Fatalf("after rise passes: %v, want the server back", got)
	}
	_, port, _ := net.SplitHostPort(flaky)
	adminSend(t, adminAddr, "disable 127.0.0.1 "+port+"\n")
	time.Sleep(500 * time.Millisecond) // checks keep passing
	if got := countGreetings(t, front, 6); got[flaky] != 0 {
		t.Fatalf("admin disable did not win over a passing check: %v", got)
	}
}
