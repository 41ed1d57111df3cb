package e2e

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"g6/internal/testenv"
)

// TestIdleTimeout: a session idle longer than its listen address's timeout
// is closed; one with traffic inside the timeout lives on. The timeout is
// shorter and longer than the connect timeout, so both timer paths run.
func TestIdleTimeout(t *testing.T) {
	for _, tc := range []struct{ timeout, connect string }{{"400ms", "5s"}, {"400ms", "200ms"}} {
		t.Run(tc.timeout+"/"+tc.connect, func(t *testing.T) {
			back, front := testenv.Addr(t), testenv.Addr(t)
			testenv.Backend(t, "echo", back)
			cfg := fmt.Sprintf(`
[global]
connect_timeout = %q
[[rule]]
id = "idle"
algorithm = "RR"
clients = ["*:*"]
listen = [{ address = %q, timeout = %q }]
servers = [%q]
`, tc.connect, front, tc.timeout, back)
			testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "1"})
			idle, err := net.Dial("tcp", front)
			if err != nil {
				t.Fatal(err)
			}
			defer idle.Close()
			busy, err := net.Dial("tcp", front)
			if err != nil {
				t.Fatal(err)
			}
			defer busy.Close()
			busy.SetDeadline(time.Now().Add(10 * time.Second))
			echoOnce(t, idle, "hi")
			for i := 0; i < 8; i++ { // 1.2 s of traffic every 150 ms
				echoOnce(t, busy, fmt.Sprint("tick ", i))
				time.Sleep(150 * time.Millisecond)
			}
			idle.SetReadDeadline(time.Now().Add(2 * time.Second))
			if n, err := idle.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("idle session after 1.2 s: read %d, %v; want EOF (closed by the 400ms timeout)", n, err)
			}
			echoOnce(t, busy, "still alive")
		})
	}
}
