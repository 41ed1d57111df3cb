package health

import (
	"context"
	"net"
	"testing"
	"time"

	"g6/conf"
	"g6/internal/testenv"
)

// udpServer answers each datagram with reply, on loopback.
func udpServer(t *testing.T, reply string) string {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go answerUDP(c, reply)
	return c.LocalAddr().String()
}

func answerUDP(c net.PacketConn, reply string) {
	buf := make([]byte, 2048)
	for {
		_, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		c.WriteTo([]byte(reply), from)
	}
}

func TestProbeUDP(t *testing.T) {
	closed, _ := net.ListenPacket("udp", "127.0.0.1:0")
	gone := closed.LocalAddr().String()
	closed.Close()
	quiet, _ := net.ListenPacket("udp", "127.0.0.1:0") // reads nothing, answers nothing: syslog
	t.Cleanup(func() { quiet.Close() })
	silent := quiet.LocalAddr().String()
	for _, tt := range []struct{ name, addr, send, expect, err string }{
		{"answers", udpServer(t, "PONG ok"), "PING", "PONG", ""},
		{"wrong answer", udpServer(t, "NOPE"), "PING", "PONG", `expected "PONG", got "NOPE"`},
		{"unreachable", gone, "PING", "PONG", "port unreachable (ICMP)"},
		{"no send", udpServer(t, "x"), "", "x", "a UDP check needs send"},
		{"silent server, nothing expected", silent, "<14>check", "", ""},
		{"unreachable, nothing expected", gone, "<14>check", "", "port unreachable (ICMP)"},
		{"silent server, an answer expected", silent, "PING", "PONG", "timeout"},
	} {
		p := &Probe{Check: &conf.HealthCheck{Type: conf.CheckTCP, Timeout: conf.Duration(500 * time.Millisecond), Send: tt.send, Expect: tt.expect},
			Addr: tt.addr, Network: conf.ProtocolUDP}
		wantErr(t, tt.name, p.Run(context.Background()), tt.err)
	}
}

// TestProbeDNSOverUDP: a dns check on a UDP rule asks dnsmasq over UDP.
func TestProbeDNSOverUDP(t *testing.T) {
	d := testenv.StartDNS(t)
	d.SetHosts("10.1.2.3 db.test") // dnsmasq rereads its hosts on a signal: poll
	probe := func(name string) error {
		p := &Probe{Check: &conf.HealthCheck{Type: conf.CheckDNS, Timeout: conf.Duration(2 * time.Second), Name: name},
			Addr: d.Addr, Network: conf.ProtocolUDP}
		return p.Run(context.Background())
	}
	var err error
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if err = probe("db.test"); err == nil {
			break
		}
	}
	wantErr(t, "db.test", err, "")
	wantErr(t, "nowhere.test", probe("nowhere.test"), "NXDOMAIN for nowhere.test.")
}
