package e2e

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// sendOOB sends b as TCP urgent data (telnet's Synch, FTP's ABOR do).
func sendOOB(t *testing.T, c *net.TCPConn, b []byte) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), b, unix.MSG_OOB, nil)
		return serr != unix.EAGAIN
	}); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatalf("send urgent byte: %v", serr)
	}
}

// TestUrgentData: a byte sent as TCP urgent data travels inline, in order,
// and the bytes after it are not held back, whether the direction copies or
// splices (splice stops at an urgent mark, so the worker copies from then on).
func TestUrgentData(t *testing.T) {
	for _, mode := range []string{"auto", "always", "off"} {
		t.Run(mode, func(t *testing.T) {
			front, _ := startEchoRule(t, mode)
			c, err := net.Dial("tcp", front)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			tc := c.(*net.TCPConn)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			for i := 0; i < 3; i++ {
				before, after := fmt.Sprintf("line %d before", i), fmt.Sprintf("line %d after", i)
				io.WriteString(c, before)
				sendOOB(t, tc, []byte{'!'})
				io.WriteString(c, after)
				got := make([]byte, len(before)+1+len(after))
				if _, err := io.ReadFull(c, got); err != nil {
					t.Fatalf("round %d: read %q so far: %v", i, got, err)
				}
				if string(got) != before+"!"+after {
					t.Fatalf("round %d: got %q, want %q", i, got, before+"!"+after)
				}
			}
		})
	}
}
