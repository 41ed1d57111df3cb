package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"g6/internal/testenv"
)

// TestProxyProtocol: a backend parsing PROXY v1 and v2 sees the real client
// address and port, before 1 MB of data that then travels intact (the
// direction switches to splice after 256 KiB).
func TestProxyProtocol(t *testing.T) {
	for _, v := range []string{"v1", "v2"} {
		t.Run(v, func(t *testing.T) {
			back, front := testenv.Addr(t), testenv.Addr(t)
			testenv.Backend(t, "proxy", back)
			cfg := fmt.Sprintf(`
[[rule]]
id = "pp"
algorithm = "RR"
proxy_protocol = %q
clients = ["*:*"]
listen = [%q]
servers = [%q]
`, v, front, back)
			testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "1"})
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.5")}}
			c, err := d.Dial("tcp", front)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			payload := make([]byte, 1<<20)
			rand.Read(payload)
			go writeAndClose(c.(*net.TCPConn), payload)
			r := bufio.NewReader(c)
			line, err := r.ReadString('\n')
			want := "proxy from " + c.LocalAddr().String() + " to " + front
			if err != nil || strings.TrimSpace(line) != want {
				t.Fatalf("backend saw %q (%v), want %q", line, err, want)
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("echo after the header: %d bytes (%v), want %d intact", len(got), err, len(payload))
			}
		})
	}
}

func writeAndClose(c *net.TCPConn, b []byte) {
	c.Write(b)
	c.CloseWrite()
}
